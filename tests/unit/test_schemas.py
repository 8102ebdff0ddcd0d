"""The JSON Schemas: generated from the message structs, current on disk, compatible with their
version's baseline, and matching the documented examples and what the encoders write."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import msgspec
import orjson
import pytest
from jsonschema import Draft202012Validator

from models.blend import Blender
from models.drift.alerts import AlertEvent
from models.drift.monitor import RetrainNeed
from streams import schemas
from streams.alerts import alert_message, drift_retrain_message
from streams.contracts import ContractSpec, decode_request, encode_dead_letter, encode_signal
from streams.messages import EpochMs, Message, SignalMessage
from streams.model_updates import model_update
from streams.retrain_requests import retrain_request

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "messages.md"

#: Which schema a section of docs/messages.md documents (by the first topic in its heading).
SECTIONS = {
    "trade-outcomes": "trade-outcome",
    "signal-requests": "signal-request",
    "signals": "signal",
    "trade-outcomes.dlq": "dead-letter",
    "model-updates": "model-update",
    "retrain-requests": "retrain-request",
    "drift-alerts": "drift-alert",
}


def validator(name: str) -> Draft202012Validator:
    schema = schemas.all_schemas()[name]
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def errors(name: str, message: Any) -> list[str]:
    return [error.message for error in validator(name).iter_errors(message)]


def test_schema_files_are_current_and_compatible_with_their_versions():
    assert schemas.stale() == [], "run: python -m streams.schemas"


def test_every_schema_is_a_valid_draft_2020_12_schema_with_its_version():
    for name, message in schemas.MESSAGES.items():
        schema = schemas.all_schemas()[name]
        Draft202012Validator.check_schema(schema)
        assert schema["x-schema-version"] == message.VERSION
        assert "schema_version" in schema["properties"]


def documented_examples() -> list[tuple[str, dict]]:
    examples = []
    for section in re.split(r"^## ", DOCS.read_text(), flags=re.MULTILINE)[1:]:
        heading = section.splitlines()[0]
        topic = re.search(r"`([^`]+)`", heading)
        if topic is None or topic.group(1) not in SECTIONS:
            continue
        for block in re.findall(r"```json\n(.*?)```", section, flags=re.DOTALL):
            examples.append((SECTIONS[topic.group(1)], json.loads(block)))
    return examples


def test_every_documented_example_validates_against_its_schema():
    examples = documented_examples()
    assert {name for name, _ in examples} == set(schemas.MESSAGES)
    for name, example in examples:
        assert errors(name, example) == [], (name, example)
        properties = schemas.all_schemas()[name]["properties"]
        assert set(example) <= set(properties), (name, set(example) - set(properties))


def test_what_the_encoders_write_validates_and_names_only_schema_fields():
    spec = ContractSpec(features=("a",))
    request = decode_request(
        orjson.dumps({"request_id": "r", "key": "k", "ts": 5, "features": {"a": 1.0}}),
        b"global",
        spec,
    )
    blender = Blender(0.8, 0.2, 1)
    version = "20261122T015447138656Z-0ef6f7ba"
    event = AlertEvent("alert", "concept", "batch", "ADWIN", 0.4, 0.3, 160.0, "warning",
                       "retrain_scheduled", 10, "e1", {"metric": "error"})  # fmt: skip
    need = RetrainNeed("e1", "concept", 900, "x")
    written = [
        ("signal", encode_signal(request, blender.blend(0.6, 0.4, 3), version, 3, 9)),
        ("signal", encode_signal(request, blender.blend(None, None, 0), None, 0, 9)),
        ("dead-letter", encode_dead_letter(b"\xff", b"k", "bad", "t", 0, 1, 2, kind="invalid")),
        ("dead-letter", encode_dead_letter(None, None, "empty", "t", 0, 1, 2, kind="empty")),
        ("drift-alert", orjson.dumps(alert_message(event, "global", version, 7))),
        ("drift-alert", orjson.dumps(alert_message(event, "global", None, 7))),
        ("retrain-request", orjson.dumps(retrain_request("ops", "weekly", 500, None, True))),
        ("retrain-request", orjson.dumps(drift_retrain_message(need, "k", 1))),
        ("model-update", orjson.dumps(model_update("activated", version, "cli", "y"))),
        ("model-update", orjson.dumps(model_update("failed", None, "cli", "x", requests=["a"]))),
    ]  # fmt: skip
    for name, value in written:
        message = orjson.loads(value)
        assert errors(name, message) == [], (name, message)
        assert set(message) <= set(schemas.all_schemas()[name]["properties"]), name
        assert message["schema_version"] == schemas.MESSAGES[name].VERSION


def test_an_expired_signal_validates():
    spec = ContractSpec(features=("a",))
    request = decode_request(
        orjson.dumps(
            {"request_id": "r", "key": "k", "ts": 5, "features": {"a": 1.0}, "deadline_ms": 6}
        ),
        b"global",
        spec,
    )
    from models.blend import Blend, SignalStatus

    expired = Blend(None, None, None, 0.0, 0.0, SignalStatus.EXPIRED, "deadline passed")
    assert errors("signal", orjson.loads(encode_signal(request, expired, None, 0, 9))) == []


def test_schemas_refuse_what_the_contract_refuses():
    good = {"outcome_id": "o", "key": "k", "ts": 1, "features": {"a": 1.0}, "label": 1}
    assert errors("trade-outcome", good) == []
    assert errors("trade-outcome", {**good, "label": 2})
    assert errors("trade-outcome", {**good, "ts": -1})
    assert errors("trade-outcome", {**good, "outcome_id": ""})
    assert errors("trade-outcome", {**good, "features": {"a": "1"}})
    assert errors("trade-outcome", {**good, "schema_version": 2})
    assert errors("signal-request", {"request_id": "r", "key": "k", "ts": 1, "features": {}}) == []
    bad_version = {"request_id": "r", "key": "k", "ts": 1, "features": {}, "deadline_ms": -5}
    assert errors("signal-request", bad_version)


def test_deployment_schemas_require_the_configured_features_and_key_field():
    deployed = schemas.deployment_schemas(("a", "b"), "symbol", 100.0)
    schema = deployed["trade-outcome"]
    check = Draft202012Validator(schema)
    good = {"outcome_id": "o", "key": "k", "symbol": "S", "ts": 1,
            "features": {"a": 1.0, "b": 2.0}, "label": 0}  # fmt: skip
    assert list(check.iter_errors(good)) == []
    assert list(check.iter_errors({**good, "features": {"a": 1.0}}))  # b missing
    assert list(check.iter_errors({**good, "features": {"a": 1.0, "b": 101.0}}))  # over bound
    assert list(check.iter_errors({k: v for k, v in good.items() if k != "symbol"}))
    # The published (generic) schema is untouched.
    assert "symbol" not in schemas.all_schemas()["trade-outcome"]["properties"]


# --- the compatibility rule ---------------------------------------------------------------


class _Signal(Message, kw_only=True):
    """A stand-in for an edited SignalMessage (same version 1)."""

    VERSION: ClassVar[int] = 1


def edited(**fields: Any) -> dict:
    """The signal schema after replacing / adding ``fields`` (name -> annotation, default)."""
    current = [
        (f.name, f.type, f.default) if f.default is not msgspec.NODEFAULT else (f.name, f.type)
        for f in msgspec.structs.fields(SignalMessage)
    ]
    changed = {item[0]: item for item in current}
    for name, spec in fields.items():
        if spec is None:
            changed.pop(name)
        else:
            changed[name] = (name, *spec)
    struct = msgspec.defstruct(
        "SignalMessage", list(changed.values()), bases=(_Signal,), kw_only=True
    )
    struct.__doc__ = SignalMessage.__doc__
    return schemas.schema_of(struct)


def baseline() -> dict:
    path = schemas.version_file(schemas.DOCS_DIR, "signal", SignalMessage.VERSION)
    return json.loads(path.read_text())


def test_the_unchanged_contract_is_compatible_with_its_baseline():
    assert schemas.breaking_changes(baseline(), edited()) == []


def test_a_new_optional_field_needs_no_version_bump():
    assert schemas.breaking_changes(baseline(), edited(note=(str | None, None))) == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"score": None}, r"score: removed"),  # a field removed (or renamed)
        ({"scored_at": (str,)}, r"scored_at"),  # a type changed
        ({"online_updates": (Annotated[int, msgspec.Meta(ge=1)],)}, r"online_updates"),
        ({"status": (Literal["ok", "no_model"],)}, r"status"),  # an enum narrowed
        ({"tenant": (str,)}, r"'tenant' became required"),  # a new required field
        ({"degraded": (str | None, None)}, r"'degraded' is no longer required"),
        ({"ts": (EpochMs | None,)}, r"ts"),
    ],
)
def test_a_breaking_change_without_a_version_bump_fails(fields, expected):
    changes = schemas.breaking_changes(baseline(), edited(**fields))
    assert changes, "the checker missed a breaking change"
    assert any(re.search(expected, change) for change in changes), changes


def test_stale_reports_a_breaking_change_made_without_a_bump(tmp_path, monkeypatch):
    schemas.main(["--dir", str(tmp_path)])
    assert schemas.stale(tmp_path) == []
    broken = dict(schemas.MESSAGES)
    struct = msgspec.defstruct(
        "SignalMessage",
        [(f.name, f.type) for f in msgspec.structs.fields(SignalMessage) if f.name != "score"],
        bases=(_Signal,),
        kw_only=True,
    )
    broken["signal"] = struct
    monkeypatch.setattr(schemas, "MESSAGES", broken)
    problems = schemas.stale(tmp_path)
    assert any("score: removed" in p and "schema_version bump" in p for p in problems), problems
    assert schemas.main(["--dir", str(tmp_path)]) == 1  # regenerating refuses too
    # With the version bumped, the new version gets its own baseline and all is current again.
    monkeypatch.setattr(struct, "VERSION", 2, raising=False)
    assert schemas.main(["--dir", str(tmp_path)]) == 0
    assert schemas.version_file(tmp_path, "signal", 2).exists()
    assert schemas.version_file(tmp_path, "signal", 1).exists()  # history is kept
    assert schemas.stale(tmp_path) == []
