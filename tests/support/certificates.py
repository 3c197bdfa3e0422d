"""A self-signed certificate for the Certificate tests: (thumbprint, PFX base64, CER base64)."""

from __future__ import annotations

import base64
import datetime
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

PASSWORD = "s3cret"


def self_signed(name: str = "openbatch-test") -> tuple[str, str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now)
                   .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    der = certificate.public_bytes(serialization.Encoding.DER)
    pfx = pkcs12.serialize_key_and_certificates(name.encode(), key, certificate, None,
                                                serialization.BestAvailableEncryption(PASSWORD.encode()))
    return hashlib.sha1(der).hexdigest(), base64.b64encode(pfx).decode(), base64.b64encode(der).decode()  # noqa: S324
