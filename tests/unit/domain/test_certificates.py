"""A certificate is accepted only if its data is the certificate its thumbprint names."""

from __future__ import annotations

import base64

import pytest

from openbatch.domain.certificates import CertificateAddParameter, check_cancel_deletion, public_data
from openbatch.domain.errors import BatchError
from tests.support.certificates import PASSWORD, self_signed

THUMBPRINT, PFX, CER = self_signed()


def refused(**fields: object) -> str:
    param = {"thumbprint": THUMBPRINT, "thumbprintAlgorithm": "sha1", "data": PFX, "password": PASSWORD, **fields}
    with pytest.raises(BatchError) as info:
        public_data(CertificateAddParameter(**param))  # type: ignore[arg-type]
    assert info.value.status == 400
    return dict(info.value.values)["PropertyName"]


def test_pfx_and_cer_give_the_public_part() -> None:
    from_pfx = public_data(CertificateAddParameter(thumbprint=THUMBPRINT.upper(), thumbprintAlgorithm="SHA1",
                                                   data=PFX, password=PASSWORD))
    from_cer = public_data(CertificateAddParameter(thumbprint=THUMBPRINT, thumbprintAlgorithm="sha1", data=CER,
                                                   certificateFormat="cer"))
    assert from_pfx == from_cer == CER


def test_what_is_not_the_certificate_named_is_refused() -> None:
    assert refused(thumbprint="0" * 40) == "thumbprint"
    assert refused(thumbprint="xyz") == "thumbprint"
    assert refused(thumbprintAlgorithm="sha256") == "thumbprintAlgorithm"
    assert refused(password="wrong") == "data"
    assert refused(data="not base64!") == "data"
    assert refused(data=base64.b64encode(b"junk").decode()) == "data"
    assert refused(certificateFormat="cer", data=CER) == "password"        # a cer has no password
    assert refused(certificateFormat="pem") == "certificateFormat"


def test_only_a_failed_deletion_can_be_cancelled() -> None:
    check_cancel_deletion("deletefailed")
    for state, code in (("active", "CertificateStateActive"), ("deleting", "CertificateBeingDeleted")):
        with pytest.raises(BatchError) as info:
            check_cancel_deletion(state)
        assert info.value.code == code and info.value.status == 409
