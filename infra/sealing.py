"""Sealing one personal field under its contract's key (AES-256-GCM, `cryptography`).

A sealed value is text, so it travels in the events' JSON state like any other field:
`sealed:v1:` then the URL-safe base64 of a fresh 96-bit nonce followed by the ciphertext and
its 128-bit tag. The contract's id is the associated data, so a value sealed for one contract
cannot be passed off as another's. Nothing here keeps a key: callers read it when they need it
(infra/postgres/keys.py), so a destroyed key opens nothing anywhere.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "sealed:v1:"
KEY_BYTES = 32
NONCE_BYTES = 12


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def seal(key: bytes, contract_id: str, value: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, value.encode(), contract_id.encode())
    return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def cipher(key: bytes) -> AESGCM:
    """A key made ready to open many values: making it costs more than one opening does."""
    return AESGCM(key)


def open_sealed(key: bytes | AESGCM | None, contract_id: str, value: str) -> str | None:
    """The text a sealed value holds; None when the key is gone or the value was not sealed
    under it for this contract. `key` may be given as its `cipher`."""
    if key is None or not is_sealed(value):
        return None
    try:
        raw = base64.urlsafe_b64decode(value[len(PREFIX):])
        opening = cipher(key) if isinstance(key, bytes) else key
        return opening.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], contract_id.encode()).decode()
    except (InvalidTag, ValueError):
        return None
