"""Request authentication (Azure Batch Shared Key)."""

from openbatch.auth.shared_key import SignedRequest, sign, string_to_sign_variants, verify

__all__ = ["SignedRequest", "sign", "string_to_sign_variants", "verify"]
