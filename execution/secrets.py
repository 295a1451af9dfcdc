"""Encryption of the organizations' secrets at rest (global variables).

Fernet tokens (AES-128-CBC + HMAC-SHA256) under keys from settings.SECRET_ENCRYPTION_KEYS,
newest first: new values are encrypted with the first key, any listed key decrypts,
and `rotate_secrets` re-encrypts everything under the first so an old key can be
retired. The keys are independent of SECRET_KEY, so rotating one never breaks the
other.

Decryption fails closed: a value that no key opens raises SecretUnavailable, and the
call that needed it is refused; ciphertext is never sent in its place.
"""

import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnavailable(Exception):
    """A stored secret cannot be decrypted with any configured key."""


@cache
def _keys(configured: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in configured])
    except (ValueError, TypeError) as error:
        raise ImproperlyConfigured(
            "SECRET_ENCRYPTION_KEYS holds a value that is not a Fernet key (32 url-safe "
            "base64-encoded bytes). Make one with: python -c 'from cryptography.fernet "
            "import Fernet; print(Fernet.generate_key().decode())'"
        ) from error


def _fernet() -> MultiFernet:
    configured = tuple(settings.SECRET_ENCRYPTION_KEYS)
    if not configured:
        raise ImproperlyConfigured("SECRET_ENCRYPTION_KEYS is empty: secrets cannot be stored.")
    return _keys(configured)


def key_fingerprint(key: str) -> str:
    """A short, public name for a key, so the dashboard can show which key sealed what."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def current_key_fingerprint() -> str:
    return key_fingerprint(settings.SECRET_ENCRYPTION_KEYS[0])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except (InvalidToken, UnicodeDecodeError):
        raise SecretUnavailable(
            "A stored secret could not be decrypted with any configured key."
        ) from None


def rotate(token: str) -> str:
    """The same secret, re-encrypted under the newest key (raises SecretUnavailable)."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUnavailable(
            "A stored secret could not be decrypted with any configured key."
        ) from None
