"""Sealing one personal field (infra/sealing.py): what is sealed opens only with its contract's
key and for its contract; the sealed text reveals nothing of the value."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from infra import sealing

TEXT = st.text(min_size=0, max_size=300)


@given(TEXT)
def test_a_sealed_value_opens_with_its_key_for_its_contract(value: str) -> None:
    key, contract = sealing.new_key(), str(uuid.uuid4())
    sealed = sealing.seal(key, contract, value)
    assert sealing.is_sealed(sealed)
    assert sealing.open_sealed(key, contract, sealed) == value
    assert sealing.open_sealed(sealing.cipher(key), contract, sealed) == value  # the key made ready once


@given(TEXT)
def test_a_sealed_value_opens_with_no_other_key_nor_for_another_contract(value: str) -> None:
    key, contract = sealing.new_key(), str(uuid.uuid4())
    sealed = sealing.seal(key, contract, value)
    assert sealing.open_sealed(sealing.new_key(), contract, sealed) is None
    assert sealing.open_sealed(sealing.cipher(sealing.new_key()), contract, sealed) is None
    assert sealing.open_sealed(key, str(uuid.uuid4()), sealed) is None
    assert sealing.open_sealed(None, contract, sealed) is None  # a destroyed key opens nothing


@given(st.text(min_size=8, max_size=100))
def test_the_sealed_text_neither_shows_the_value_nor_repeats_itself(value: str) -> None:
    key, contract = sealing.new_key(), str(uuid.uuid4())
    first, second = sealing.seal(key, contract, value), sealing.seal(key, contract, value)
    assert first != second  # a fresh nonce each time
    assert value not in first[len(sealing.PREFIX):]


def test_text_that_was_never_sealed_or_was_altered_opens_to_nothing() -> None:
    key, contract = sealing.new_key(), str(uuid.uuid4())
    sealed = sealing.seal(key, contract, "Zoë")
    at = len(sealing.PREFIX) + 20  # inside the ciphertext (the last base64 characters may carry unused bits)
    flipped = sealed[:at] + ("A" if sealed[at] != "A" else "B") + sealed[at + 1:]
    assert sealing.open_sealed(key, contract, flipped) is None
    assert sealing.open_sealed(key, contract, "Zoë") is None
    assert sealing.open_sealed(key, contract, sealing.PREFIX + "not base64!") is None
