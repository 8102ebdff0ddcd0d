"""Dead-letter replay's pure parts: reading letters back, fixes, and the verdict per letter."""

from __future__ import annotations

import orjson
import pytest

from app.dlq import DeadLetterCommandError, Fixes, format_letter, judge, parse_letter
from streams.client.records import outcome_record
from streams.contracts import ContractSpec, encode_dead_letter

SPEC = ContractSpec(features=("a", "b"), key_field="key")
GOOD = {"outcome_id": "o1", "key": "K", "ts": 5, "features": {"a": 1.0, "b": 2.0}, "label": 1}


def letter_of(message: dict, reason: str = "bad", kind: str = "invalid", offset: int = 0):
    raw = orjson.dumps(message)
    value = encode_dead_letter(raw, b"K", reason, "trade-outcomes", 1, 9, 1000, kind=kind)
    return parse_letter("trade-outcomes.dlq", 0, offset, value), raw


def test_a_letter_gives_back_its_exact_original_and_reads_as_one_line():
    letter, raw = letter_of(GOOD, "feature 'b' is missing")
    assert letter.id == "trade-outcomes.dlq:0:0"
    assert letter.original() == (b"K", raw)
    line = format_letter(letter)
    assert "invalid" in line and "trade-outcomes/1@9" in line and "feature 'b' is missing" in line
    assert "\n" not in line


def test_fixes_rename_fields_and_features_and_set_values():
    fixes = Fixes.parse(["bb=b", "sym=key"], ["label=0", "note=hello"])
    broken = {**GOOD, "features": {"a": 1.0, "bb": 2.0}, "sym": "K"}
    del broken["key"]
    fixed = fixes.apply(broken)
    assert fixed["features"] == {"a": 1.0, "b": 2.0}
    assert fixed["key"] == "K" and fixed["label"] == 0 and fixed["note"] == "hello"
    with pytest.raises(DeadLetterCommandError, match="NAME=VALUE"):
        Fixes.parse(["nothing"], [])


def test_judge_replays_only_what_the_contract_now_accepts():
    missing = {**GOOD, "features": {"a": 1.0, "bb": 2.0}}
    letter, _ = letter_of(missing)
    still = judge(letter, letter.original(), Fixes(), outcome_record, SPEC)
    assert still.action == "invalid" and "feature 'b' is missing" in still.detail
    fixed = judge(letter, letter.original(), Fixes({"bb": "b"}), outcome_record, SPEC)
    assert fixed.action == "replay" and fixed.key == b"K"
    assert orjson.loads(fixed.value)["features"] == {"a": 1.0, "b": 2.0}
    duplicate, _ = letter_of(GOOD, kind="duplicate")
    assert judge(duplicate, duplicate.original(), Fixes(), outcome_record, SPEC).action == "skipped"
    not_json = parse_letter(
        "t.dlq", 0, 1, encode_dead_letter(b"{no", b"K", "x", "t", 0, 1, 2, kind="not_json")
    )
    assert judge(not_json, not_json.original(), Fixes(), outcome_record, SPEC).action == "invalid"
    gone = judge(letter, None, Fixes(), outcome_record, SPEC)
    assert gone.action == "invalid" and "no longer" in gone.detail
