"""Encryption at rest for secrets kept in the database (the Jules API keys).

The keys come from FIELD_ENCRYPTION_KEY: comma-separated Fernet keys, the first of which
encrypts while all of them decrypt, so that a key can be rotated without downtime.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class DecryptionError(Exception):
    """A stored secret could not be decrypted with any configured key."""


def derived_dev_key() -> bytes:
    # Without FIELD_ENCRYPTION_KEY the key is derived from SECRET_KEY, so that a first run
    # works; the deploy check warns, because rotating SECRET_KEY would then lose the keys.
    digest = hashlib.sha256(("field-encryption:" + settings.SECRET_KEY).encode()).digest()
    return base64.urlsafe_b64encode(digest)


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    materials = [k.encode() for k in keys] if keys else [derived_dev_key()]
    return MultiFernet([Fernet(m) for m in materials])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError(
            "A stored API key could not be decrypted: FIELD_ENCRYPTION_KEY no longer holds "
            "the key it was encrypted with."
        ) from exc


def rotate(token: str) -> str:
    """Re-encrypt a token with the current first key."""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("A stored API key could not be decrypted for rotation.") from exc
