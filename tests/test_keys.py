"""Tests of psic.keys: keyword slots, caps against crafted files, key files."""

from __future__ import annotations

import dataclasses
import traceback

import pytest

from psic import keys
from psic.errors import InvalidKeywordError, LimitError, MalformedError, PsicIOError, UnsupportedError
from psic.format import MAX_KEY_SLOTS, KeySlot

# Cheapest parameters the caps allow: keeps every scrypt call well under a millisecond.
FAST = {"log2_n": 10, "r": 1, "p": 1}


def fast_slot(keyword: str) -> KeySlot:
    return keys.make_slot(keyword, **FAST)


def shown(error: BaseException) -> str:
    """Everything a traceback of the error would print (message, chained errors)."""
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def test_slot_round_trip_with_default_parameters() -> None:
    slot = keys.make_slot("correct horse battery staple")
    assert (slot.kdf, slot.log2_n, slot.r, slot.p) == (1, keys.DEFAULT_LOG2_N, keys.DEFAULT_R, keys.DEFAULT_P)
    assert len(slot.salt) == 16 and len(slot.verifier) == 32
    assert keys.matches("correct horse battery staple", [slot])


def test_slot_round_trip_with_small_parameters() -> None:
    slot = fast_slot("open sesame")
    assert (slot.log2_n, slot.r, slot.p) == (10, 1, 1)
    assert keys.matches("open sesame", [slot])


@pytest.mark.parametrize("guess", ["open sesame!", "Open sesame", "open sesam", " open sesame"])
def test_wrong_keyword_fails(guess: str) -> None:
    assert not keys.matches(guess, [fast_slot("open sesame")])


def test_no_slots_match_nothing() -> None:
    assert not keys.matches("anything", [])


def test_nfc_equivalent_spellings_match() -> None:
    composed, decomposed = "caf\u00e9 cr\u00e8me", "cafe\u0301 cre\u0300me"
    assert composed != decomposed
    assert keys.normalize_keyword(composed) == keys.normalize_keyword(decomposed)
    assert keys.matches(decomposed, [fast_slot(composed)])
    assert keys.matches(composed, [fast_slot(decomposed)])


def test_each_slot_has_a_distinct_random_salt() -> None:
    first, second = fast_slot("same words"), fast_slot("same words")
    assert first.salt != second.salt
    assert first.verifier != second.verifier
    salts = {slot.salt for slot in keys.make_slots([f"keyword {i}" for i in range(8)], **FAST)}
    assert len(salts) == 8


def test_any_of_several_slots_unlocks() -> None:
    slots = keys.make_slots(["alpha keyword", "beta keyword", "gamma keyword"], **FAST)
    assert isinstance(slots, tuple) and len(slots) == 3
    for keyword in ("alpha keyword", "beta keyword", "gamma keyword"):
        assert keys.matches(keyword, slots)
    assert not keys.matches("delta keyword", slots)


def test_make_slots_accepts_the_maximum_and_refuses_more() -> None:
    assert len(keys.make_slots([f"k{i}" for i in range(MAX_KEY_SLOTS)], **FAST)) == MAX_KEY_SLOTS
    with pytest.raises(InvalidKeywordError):
        keys.make_slots([f"k{i}" for i in range(MAX_KEY_SLOTS + 1)], **FAST)


def test_make_slots_refuses_duplicates_after_normalization() -> None:
    keywords = ["caf\u00e9 secret", "other", "cafe\u0301 secret"]
    with pytest.raises(InvalidKeywordError) as info:
        keys.make_slots(keywords, **FAST)
    assert "secret" not in shown(info.value)


@pytest.mark.parametrize(
    "changes",
    [
        {"log2_n": 21},
        {"log2_n": 9},
        {"log2_n": 255},
        {"r": 0},
        {"r": 17},
        {"p": 0},
        {"p": 5},
        {"log2_n": 16, "r": 1},  # scrypt needs N < 2**(16 r)
        {"log2_n": 20, "r": 4},  # 512 MiB of memory
        {"log2_n": 19, "r": 4, "p": 2},  # within memory, too much work
    ],
)
def test_caps_refuse_crafted_slot_before_running_scrypt(
    changes: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    good = fast_slot("keyword")
    crafted = dataclasses.replace(good, **changes)

    def no_scrypt(*args: object) -> bytes:
        raise AssertionError("scrypt ran before the caps were checked")

    monkeypatch.setattr(keys, "_scrypt", no_scrypt)
    with pytest.raises(LimitError):
        keys.matches("keyword", [good, crafted])


def test_caps_refuse_too_much_work_over_all_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each slot alone is allowed (2**21 work, 256 MiB), sixteen of them together are not.
    expensive = dataclasses.replace(fast_slot("keyword"), log2_n=20, r=2)
    keys.check_slots([expensive])
    monkeypatch.setattr(keys, "_scrypt", lambda *args: pytest.fail("scrypt ran"))
    with pytest.raises(LimitError):
        keys.matches("keyword", [expensive] * MAX_KEY_SLOTS)


def test_caps_refuse_too_many_slots() -> None:
    with pytest.raises(LimitError):
        keys.matches("keyword", [fast_slot("keyword")] * (MAX_KEY_SLOTS + 1))


def test_unknown_kdf_is_unsupported() -> None:
    with pytest.raises(UnsupportedError):
        keys.matches("keyword", [dataclasses.replace(fast_slot("keyword"), kdf=2)])


@pytest.mark.parametrize("field, value", [("salt", b"\0" * 15), ("verifier", b"\0" * 31)])
def test_wrong_field_sizes_are_malformed(field: str, value: bytes) -> None:
    with pytest.raises(MalformedError):
        keys.matches("keyword", [dataclasses.replace(fast_slot("keyword"), **{field: value})])


@pytest.mark.parametrize("changes", [{"log2_n": 25}, {"r": 0}, {"p": 9}, {"log2_n": 20, "r": 16}])
def test_make_slot_overrides_meet_the_same_caps(changes: dict[str, int]) -> None:
    with pytest.raises(LimitError):
        keys.make_slot("keyword", **{**FAST, **changes})
    with pytest.raises(LimitError):
        keys.make_slots(["keyword"], **{**FAST, **changes})


def test_make_slots_refuses_slot_sets_a_reader_would_refuse() -> None:
    with pytest.raises(LimitError):
        keys.make_slots([f"k{i}" for i in range(MAX_KEY_SLOTS)], log2_n=20, r=2, p=1)


@pytest.mark.parametrize("keyword", ["", "\x00", "pass\x00word", "x" * 1025, "\u00e9" * 513, "pass\ud800word"])
def test_unusable_keywords_are_refused(keyword: str) -> None:
    with pytest.raises(InvalidKeywordError):
        keys.normalize_keyword(keyword)
    with pytest.raises(InvalidKeywordError):
        keys.make_slot(keyword, **FAST)
    with pytest.raises(InvalidKeywordError):
        keys.matches(keyword, [fast_slot("keyword")])


@pytest.mark.parametrize("keyword", [None, b"bytes keyword", 12345, ["list"]])
def test_non_text_keywords_are_refused(keyword: object) -> None:
    with pytest.raises(InvalidKeywordError):
        keys.normalize_keyword(keyword)  # type: ignore[arg-type]


def test_longest_keyword_is_accepted() -> None:
    assert len(keys.normalize_keyword("x" * 1024)) == 1024
    assert len(keys.normalize_keyword("\u00e9" * 512)) == 1024


@pytest.mark.parametrize(
    "keyword",
    ["hunter2secret\x00tail", "hunter2secret" * 100, "hunter2secret\ud800"],
)
def test_error_messages_never_contain_the_keyword(keyword: str) -> None:
    with pytest.raises(InvalidKeywordError) as info:
        keys.make_slot(keyword, **FAST)
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in repr(info.value)
    assert "hunter2" not in shown(info.value)


def test_slot_repr_does_not_contain_the_keyword() -> None:
    assert "hunter2" not in repr(fast_slot("hunter2secret"))


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"plain keyword\n", "plain keyword"),
        (b"windows keyword\r\n", "windows keyword"),
        (b"no newline", "no newline"),
        (b"first line\nsecond line\n", "first line"),
        (b"first line\r\nsecond line\r\n", "first line"),
        (b"  spaces kept  \n", "  spaces kept  "),
        ("caf\u00e9 \u2603\n".encode(), "caf\u00e9 \u2603"),
        (b"\xef\xbb\xbfwith bom\r\n", "with bom"),
    ],
)
def test_read_key_file(tmp_path, content: bytes, expected: str) -> None:
    path = tmp_path / "key.txt"
    path.write_bytes(content)
    assert keys.read_key_file(path) == expected
    assert keys.read_key_file(str(path)) == expected


def test_read_key_file_missing_is_io_error(tmp_path) -> None:
    with pytest.raises(PsicIOError):
        keys.read_key_file(tmp_path / "absent.txt")
    with pytest.raises(PsicIOError):
        keys.read_key_file(tmp_path)  # a directory


@pytest.mark.parametrize(
    "content",
    [b"hunter2secret\xff\xfe\n", b"\n", b"", b"hunter2secret\x00\n", b"hunter2secret" * 6000],
)
def test_read_key_file_refuses_unusable_content_without_showing_it(tmp_path, content: bytes) -> None:
    path = tmp_path / "key.txt"
    path.write_bytes(content)
    with pytest.raises(InvalidKeywordError) as info:
        keys.read_key_file(path)
    assert "hunter2" not in shown(info.value)
