"""Certificates (the five deprecated Certificate operations): checked, identified by thumbprint, and
kept with their public part only.

Azure retired certificates on nodes (the KeyVault extension replaces them), but clients still add,
list, get and delete them. A certificate is accepted only if its data is what it claims: a PFX
(with its password) or a CER whose SHA-1 thumbprint is the one given; ``publicData`` is the
certificate's public part (DER, base64). The data and password are never stored. Pools cannot
reference certificates here (``certificateReferences`` is refused), so nothing ever uses one: a
delete takes it at once, and a deletion never fails (``deletefailed`` does not occur, so
CancelDeletion answers the documented 409).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from . import clock
from .errors import BatchError, invalid_property
from .models import Model

Json = dict[str, Any]

_THUMBPRINT = re.compile(r"[0-9a-fA-F]{40}")


class CertificateAddParameter(Model, kw_only=True):
    thumbprint: str
    thumbprintAlgorithm: str
    data: str
    certificateFormat: str | None = None
    password: str | None = None


class CertificateState(StrEnum):
    ACTIVE = "active"
    DELETING = "deleting"
    DELETE_FAILED = "deletefailed"


def key(algorithm: str, thumbprint: str) -> str:
    """The certificate's identity within its account (both parts case-insensitive)."""
    return f"{algorithm}-{thumbprint}".lower()


def public_data(param: CertificateAddParameter) -> str:
    """The certificate's public part, once its data is shown to be the certificate named (else a 400)."""
    if param.thumbprintAlgorithm.lower() != "sha1":
        raise invalid_property("thumbprintAlgorithm", param.thumbprintAlgorithm, "The algorithm must be sha1.")
    if not _THUMBPRINT.fullmatch(param.thumbprint):
        raise invalid_property("thumbprint", param.thumbprint, "A sha1 thumbprint is 40 hexadecimal digits.")
    form = (param.certificateFormat or "pfx").lower()
    if form not in ("pfx", "cer"):
        raise invalid_property("certificateFormat", param.certificateFormat, "The format must be pfx or cer.")
    if form == "cer" and param.password is not None:
        raise invalid_property("password", "", "A password must be omitted for a certificate in cer format.")
    try:
        raw = base64.b64decode(param.data, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_property("data", "", "The data is not valid base64.") from None
    certificate = _load(raw, form, param.password)
    der = certificate.public_bytes(Encoding.DER)
    if hashlib.sha1(der).hexdigest() != param.thumbprint.lower():   # noqa: S324 - the thumbprint *is* SHA-1
        raise invalid_property("thumbprint", param.thumbprint, "The thumbprint is not the certificate's.")
    return base64.b64encode(der).decode()


def _load(raw: bytes, form: str, password: str | None) -> x509.Certificate:
    try:
        if form == "cer":
            return x509.load_der_x509_certificate(raw) if not raw.lstrip().startswith(b"-----") \
                else x509.load_pem_x509_certificate(raw)
        _, certificate, _ = pkcs12.load_key_and_certificates(raw, password.encode() if password else None)
    except (ValueError, TypeError) as error:
        raise invalid_property("data", "", f"The data is not a {form} certificate (or the password is wrong): "
                                           f"{error}") from None
    if certificate is None:
        raise invalid_property("data", "", "The pfx holds no certificate.")
    return certificate


def new_body(param: CertificateAddParameter, public: str, now: datetime) -> Json:
    return {"thumbprint": param.thumbprint.lower(), "thumbprintAlgorithm": "sha1",
            "state": CertificateState.ACTIVE.value, "stateTransitionTime": clock.to_wire(now), "publicData": public}


def not_found(algorithm: str, thumbprint: str) -> BatchError:
    return BatchError("CertificateNotFound", "The specified certificate does not exist.",
                      [("ThumbprintAlgorithm", algorithm), ("Thumbprint", thumbprint)])


def check_cancel_deletion(state: str) -> None:
    """Only a certificate whose deletion failed can go back to active (the documented 409 otherwise)."""
    if state == CertificateState.DELETE_FAILED:
        return
    if state == CertificateState.DELETING:
        raise BatchError("CertificateBeingDeleted", "The specified certificate is being deleted.")
    raise BatchError("CertificateStateActive", "The specified certificate is active: there is no deletion to cancel.",
                     [("CertificateState", state)])
