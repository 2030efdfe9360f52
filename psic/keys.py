"""Keyword slots: the only code in PSIC that ever sees a keyword.

A ``.psic`` file can carry up to :data:`~psic.format.MAX_KEY_SLOTS` keyword slots. Each
slot stores a random salt, scrypt parameters and a 32-byte *verifier* (the scrypt
output over the normalized keyword). A keyword unlocks the file's "full" decode mode
in this decoder when it reproduces the verifier of any slot.

This is an access gate, not encryption: the pixels are not encrypted, and since the
model weights are open, anyone holding a file can patch a decoder to skip the check.
The verifier also lets anyone holding a file test keyword guesses offline, which is
why the KDF is deliberately slow and memory-hard and why keywords should be long.
See ``docs/security.md``.

Keywords are never stored, logged, or formatted into messages, reprs or tracebacks.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import unicodedata
from collections.abc import Iterable, Sequence

from psic.errors import InvalidKeywordError, LimitError, MalformedError, PsicIOError, UnsupportedError
from psic.format import MAX_KEY_SLOTS, KeySlot
from psic.format.spec import KDF_SCRYPT, SALT_SIZE, VERIFIER_SIZE

# --- defaults used for new slots (about 32 MiB and ~0.1 s per slot on a desktop CPU) --

DEFAULT_LOG2_N = 15
DEFAULT_R = 8
DEFAULT_P = 1

# --- caps that every slot must meet before scrypt runs --------------------------------
# A crafted file must not make the reader spend minutes or GiBs: these bound the
# memory of one slot, the work of one slot and the work of all slots of one file.
# Work is counted as N * r * p, in units of roughly 128 bytes mixed by scrypt;
# the defaults cost 2**18, so one file may cost at most 32 default slots.

MIN_LOG2_N = 10
MAX_LOG2_N = 20
MIN_R = 1
MAX_R = 16
MIN_P = 1
MAX_P = 4
MAX_SCRYPT_MEMORY = 256 * 2**20
MAX_SCRYPT_WORK = 2**21
MAX_TOTAL_SCRYPT_WORK = 2**23

# --- keyword limits -------------------------------------------------------------------

MAX_KEYWORD_BYTES = 1024
# A key file's first line is read up to this many bytes; longer lines are refused.
MAX_KEY_FILE_LINE_BYTES = 64 * 1024


def normalize_keyword(keyword: str) -> bytes:
    """Return the keyword as NFC-normalized UTF-8, so equivalent spellings match.

    Refuses non-text, empty, over-long (> MAX_KEYWORD_BYTES) and NUL-containing
    keywords with InvalidKeywordError; the message never contains the keyword.
    """
    if not isinstance(keyword, str):
        raise InvalidKeywordError(f"a keyword must be text (str), not {type(keyword).__name__}")
    try:
        data = unicodedata.normalize("NFC", keyword).encode("utf-8")
    except UnicodeEncodeError:
        # `from None`: the encode error holds the keyword and would print part of it.
        raise InvalidKeywordError("the keyword is not valid Unicode text (lone surrogate)") from None
    if not data:
        raise InvalidKeywordError("the keyword is empty")
    if len(data) > MAX_KEYWORD_BYTES:
        raise InvalidKeywordError(f"the keyword is longer than {MAX_KEYWORD_BYTES} bytes of UTF-8")
    if b"\x00" in data:
        raise InvalidKeywordError("the keyword contains a NUL character")
    return data


def make_slot(
    keyword: str,
    *,
    log2_n: int = DEFAULT_LOG2_N,
    r: int = DEFAULT_R,
    p: int = DEFAULT_P,
) -> KeySlot:
    """Create a slot for one keyword with a fresh random salt.

    The scrypt parameters can be overridden (tests use small ones); they must meet the
    same caps a reader enforces, so a writer never produces a slot a reader refuses.
    """
    _check_params(KDF_SCRYPT, log2_n, r, p)
    return _slot_from_secret(normalize_keyword(keyword), log2_n, r, p)


def make_slots(
    keywords: Iterable[str],
    *,
    log2_n: int = DEFAULT_LOG2_N,
    r: int = DEFAULT_R,
    p: int = DEFAULT_P,
) -> tuple[KeySlot, ...]:
    """Create one slot per keyword; any of the keywords will unlock the file.

    Refuses more than MAX_KEY_SLOTS keywords and keywords that are equal after
    normalization (a duplicate slot would only cost the reader time).
    """
    normalized = [normalize_keyword(keyword) for keyword in keywords]
    if len(normalized) > MAX_KEY_SLOTS:
        raise InvalidKeywordError(f"at most {MAX_KEY_SLOTS} keywords per file, got {len(normalized)}")
    if len(set(normalized)) != len(normalized):
        raise InvalidKeywordError("two of the keywords are the same (after Unicode NFC normalization)")
    _check_params(KDF_SCRYPT, log2_n, r, p)
    _check_total_work(len(normalized) * _work(log2_n, r, p))
    return tuple(_slot_from_secret(secret, log2_n, r, p) for secret in normalized)


def matches(keyword: str, slots: Sequence[KeySlot]) -> bool:
    """Tell whether the keyword reproduces the verifier of any slot.

    Every slot's parameters are checked against the caps before any scrypt runs, so a
    crafted file raises LimitError instead of burning time or memory.
    """
    secret = normalize_keyword(keyword)
    check_slots(slots)
    return any(
        hmac.compare_digest(_scrypt(secret, slot.salt, slot.log2_n, slot.r, slot.p), slot.verifier) for slot in slots
    )


def check_slots(slots: Sequence[KeySlot]) -> None:
    """Raise LimitError unless every slot, and all slots together, are within the caps."""
    if len(slots) > MAX_KEY_SLOTS:
        raise LimitError(f"the file has {len(slots)} keyword slots; at most {MAX_KEY_SLOTS} are allowed")
    for index, slot in enumerate(slots):
        _check_params(slot.kdf, slot.log2_n, slot.r, slot.p, where=f"keyword slot {index}: ")
        if len(slot.salt) != SALT_SIZE or len(slot.verifier) != VERIFIER_SIZE:
            raise MalformedError(
                f"keyword slot {index}: salt must be {SALT_SIZE} bytes and verifier {VERIFIER_SIZE} bytes"
            )
    _check_total_work(sum(_work(slot.log2_n, slot.r, slot.p) for slot in slots))


def read_key_file(path: str | os.PathLike[str]) -> str:
    """Return the first line of a UTF-8 text file, without its line ending.

    Lets a keyword come from a file instead of the command line (where it would show in
    the shell history and process list). A leading UTF-8 byte order mark is dropped.
    """
    try:
        with open(path, "rb") as handle:
            line = handle.readline(MAX_KEY_FILE_LINE_BYTES + 1)
    except OSError as exc:
        raise PsicIOError(f"cannot read key file {os.fsdecode(path)!r}: {exc.strerror or exc}") from None
    if len(line) > MAX_KEY_FILE_LINE_BYTES:
        raise InvalidKeywordError(f"the first line of key file {os.fsdecode(path)!r} is too long")
    line = line.removesuffix(b"\n").removesuffix(b"\r")
    try:
        keyword = line.decode("utf-8-sig")
    except UnicodeDecodeError:
        # `from None`: the decode error holds the file's bytes.
        raise InvalidKeywordError(f"key file {os.fsdecode(path)!r} is not UTF-8 text") from None
    normalize_keyword(keyword)
    return keyword


def _slot_from_secret(secret: bytes, log2_n: int, r: int, p: int) -> KeySlot:
    """Build a slot from an already normalized keyword."""
    salt = secrets.token_bytes(SALT_SIZE)
    verifier = _scrypt(secret, salt, log2_n, r, p)
    return KeySlot(kdf=KDF_SCRYPT, salt=salt, log2_n=log2_n, r=r, p=p, verifier=verifier)


def _check_params(kdf: int, log2_n: int, r: int, p: int, *, where: str = "") -> None:
    """Raise LimitError unless the KDF parameters are within the caps (UnsupportedError for a new KDF)."""
    if kdf != KDF_SCRYPT:
        raise UnsupportedError(f"{where}unknown key derivation function {kdf} (only {KDF_SCRYPT} = scrypt)")
    for name, value, low, high in (
        ("log2_n", log2_n, MIN_LOG2_N, MAX_LOG2_N),
        ("r", r, MIN_R, MAX_R),
        ("p", p, MIN_P, MAX_P),
    ):
        if type(value) is not int or not low <= value <= high:
            raise LimitError(f"{where}scrypt {name}={value!r} is outside {low}..{high}")
    if log2_n >= 16 * r:
        raise LimitError(f"{where}scrypt requires log2_n < 16 * r (log2_n={log2_n}, r={r})")
    if _memory(log2_n, r) > MAX_SCRYPT_MEMORY:
        raise LimitError(f"{where}scrypt would need more than {MAX_SCRYPT_MEMORY // 2**20} MiB")
    if _work(log2_n, r, p) > MAX_SCRYPT_WORK:
        raise LimitError(f"{where}scrypt work N*r*p={_work(log2_n, r, p)} exceeds {MAX_SCRYPT_WORK}")


def _check_total_work(total: int) -> None:
    """Raise LimitError when checking all slots of one file would cost too much."""
    if total > MAX_TOTAL_SCRYPT_WORK:
        raise LimitError(f"the keyword slots together need scrypt work {total} > {MAX_TOTAL_SCRYPT_WORK}")


def _memory(log2_n: int, r: int) -> int:
    """Bytes of scrypt's main table: 128 * r * N."""
    return 128 * r * 2**log2_n


def _work(log2_n: int, r: int, p: int) -> int:
    """Relative scrypt cost N * r * p."""
    return 2**log2_n * r * p


def _scrypt(secret: bytes, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    """The verifier: scrypt over the normalized keyword, VERIFIER_SIZE bytes long."""
    n = 2**log2_n
    # OpenSSL counts the table (128*r*(N+2)) plus the p mixing blocks against maxmem.
    maxmem = 128 * r * (n + p + 2)
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=VERIFIER_SIZE)
