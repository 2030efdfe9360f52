"""Decode modes and the rule that picks one from a request, a keyword and the file's slots."""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from psic import keys
from psic.errors import KeyRequiredError, UsageError, WrongKeyError
from psic.format import KeySlot


class Mode(str, Enum):
    """What a decode renders: the protected image (default) or the full one."""

    PROTECTED = "protected"
    FULL = "full"

    @property
    def beta(self) -> float:
        """The CLTG condition the decoder was trained with for this mode."""
        return 1.0 if self is Mode.PROTECTED else 0.0

    @classmethod
    def parse(cls, value: Mode | str) -> Mode:
        try:
            return cls(value)
        except ValueError:
            raise UsageError(f"unknown mode {value!r}: use 'protected' or 'full'") from None


def select_mode(requested: Mode | str | None, keyword: str | None, slots: Sequence[KeySlot]) -> Mode:
    """Protected unless a verified keyword (or, for a file without slots, an explicit request) asks for full."""
    mode = Mode.parse(requested) if requested is not None else None
    if keyword is not None:
        if not slots:
            raise WrongKeyError("this file has no keyword slots; decode it with mode 'full' instead of a keyword")
        if not keys.matches(keyword, slots):
            raise WrongKeyError("the keyword does not match this file")
        return mode or Mode.FULL
    if mode is Mode.FULL and slots:
        raise KeyRequiredError("this file is keyword-protected: full mode needs one of its keywords")
    return mode or Mode.PROTECTED
