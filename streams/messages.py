"""The wire form of every topic's messages, as msgspec structs: the source of the JSON Schemas.

Each struct is one message as it travels: its fields, their types and bounds, and its
``schema_version``. :mod:`streams.schemas` generates the published JSON Schemas
(``docs/schemas/``) from them; the encoders write ``schema_version`` from them; the tests
validate every message the end-to-end run sees against them.

Compatibility rule (``docs/messages.md``): without a ``schema_version`` bump, a message may only
gain *optional* fields (consumers ignore fields they do not know) and documentation. Removing
or renaming a field, changing a type, a bound or an enum, or making a field required is a
breaking change: bump the version (``tests/unit/test_schemas.py`` fails otherwise).

Inputs (outcomes, signal requests) may leave ``schema_version`` out; a worker refuses a version
newer than its own. Model keys and features are deployment settings (``model.key_field``,
``model.features``), so the published schemas leave ``features`` an object of numbers;
``streamlearn schemas`` writes the schemas of one deployment, with its features required.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Final, Literal

import msgspec
from msgspec import Meta

from models.blend import SignalStatus
from models.store import VERSION_PATTERN

#: Timestamps are epoch milliseconds that fit a signed 64-bit integer (Kafka's and Java's).
MAX_TS = 2**63 - 1

EpochMs = Annotated[int, Meta(ge=0, le=MAX_TS, description="epoch milliseconds")]
Text = Annotated[str, Meta(min_length=1)]
VersionName = Annotated[str, Meta(pattern=f"^{VERSION_PATTERN.pattern}$")]
Probability = Annotated[float, Meta(ge=0.0, le=1.0)]
Count = Annotated[int, Meta(ge=0)]

#: What kind of rule a dead letter broke (its ``kind`` field and the metrics' ``reason``
#: label: a short, fixed vocabulary, unlike the reason's text).
LETTER_KINDS: Final = (
    "empty",  # no value
    "too_large",  # the value or key is over its limit
    "not_json",  # not a JSON object
    "key_mismatch",  # the record key is not the message's model key
    "invalid",  # a field breaks the contract
    "duplicate",  # the outcome_id was learned already
    "non_finite",  # learning it would make the model non-finite
    "key_limit",  # a new key in a partition that holds limits.max_keys_per_partition
    "misrouted",  # a request on a partition other than its key's outcomes (see docs/clients.md)
    "internal_error",  # a bug, caught so that it costs one record
)

# Literal[tuple] is Literal[*tuple]: the schemas' enums come from the same constants.
SIGNAL_STATUS = Literal[tuple(status.value for status in SignalStatus)]  # type: ignore[valid-type]
LETTER_KIND = Literal[LETTER_KINDS]  # type: ignore[valid-type]


class Message(msgspec.Struct, kw_only=True, omit_defaults=False):
    """Base of every wire message: its schema version is a class constant."""

    VERSION: ClassVar[int] = 1


class TradeOutcomeMessage(Message, kw_only=True):
    """A closed trade, as an outcome producer sends it to ``trade-outcomes`` (record key: the
    model key)."""

    schema_version: Annotated[int, Meta(ge=1, le=1)] | None = None
    outcome_id: Annotated[str, Meta(min_length=1, description="unique per model key")]
    key: Annotated[str, Meta(min_length=1, description="e.g. the symbol")]
    ts: EpochMs
    features: Annotated[
        dict[str, float],
        Meta(description="every configured feature (model.features), each finite"),
    ]
    label: Annotated[Literal[0, 1], Meta(description="1: the trade won, 0: it lost")]
    realized_rr: Annotated[float | None, Meta(description="realised reward/risk")] = None


class SignalRequestMessage(Message, kw_only=True):
    """A request to score a prospective trade, sent to ``signal-requests`` (record key: the
    model key)."""

    schema_version: Annotated[int, Meta(ge=1, le=1)] | None = None
    request_id: Annotated[str, Meta(min_length=1, description="the signal carries it back")]
    key: Text
    ts: EpochMs
    features: Annotated[
        dict[str, float],
        Meta(description="every configured feature (model.features), each finite"),
    ]
    deadline_ms: Annotated[
        EpochMs | None,
        Meta(
            description="epoch ms after which the request is not worth scoring: it is answered "
            "with status expired and no score"
        ),
    ] = None


class SignalMessage(Message, kw_only=True):
    """A scored request on ``signals`` (record key: the model key)."""

    schema_version: Literal[1]
    request_id: Text
    key: Text
    model_key: Text
    ts: EpochMs
    score: Probability | None
    p_batch: Probability | None
    p_online: Probability | None
    w_batch: Annotated[float, Meta(description="weight of p_batch in score")]
    w_online: Annotated[float, Meta(description="weight of p_online in score")]
    batch_version: VersionName | None
    online_updates: Count
    status: SIGNAL_STATUS
    reason: str | None
    scored_at: EpochMs
    degraded: str | None
    explanation: Annotated[
        dict[str, float] | None,
        Meta(
            description="with signal.explain: the batch model's largest contributions to the "
            "log-odds of p_batch, feature -> value (SHAP for trees); absent otherwise"
        ),
    ] = None


class DeadLetterMessage(Message, kw_only=True):
    """A refused input record on ``<topic>.dlq``: the original bytes, the reason, the source."""

    schema_version: Literal[1]
    reason: Annotated[str, Meta(max_length=1000)]
    kind: LETTER_KIND
    source_topic: Text
    source_partition: Count
    source_offset: Count
    original_key_b64: str | None
    original_value_b64: str | None
    original_value_text: str | None
    original_size: Count | None
    original_key_size: Count | None
    original_copied: bool
    original_prefix_b64: str | None
    original_key_prefix_b64: str | None
    failed_at: EpochMs


class DriftAlertMessage(Message, kw_only=True):
    """A drift episode opening (``alert``) or clearing (``recovery``) on ``drift-alerts``."""

    schema_version: Literal[1]
    alert_id: Text
    event: Literal["alert", "recovery"]
    ts: EpochMs
    key: Text
    kind: Literal["concept", "data", "prediction", "label"]
    source: str | None
    detector: str
    statistic: float
    threshold: float
    window: float
    model_version: VersionName | None
    severity: Literal["info", "warning", "critical"]
    action: Literal["retrain_scheduled", "none"]
    episode: Text
    at_outcome: Count
    details: dict[str, Any]


class ModelUpdateMessage(Message, kw_only=True):
    """A registry change on ``model-updates``."""

    schema_version: Literal[1]
    update_id: Text
    event: Literal["activated", "rolled_back", "staged", "rejected", "failed"]
    version: VersionName | None
    by: Text
    reason: str
    at: EpochMs
    previous: VersionName | None = None
    parent: VersionName | None = None
    gate: dict[str, Any] | None = None
    requests: Annotated[
        list[str] | None, Meta(description="failed: the retrain requests it was serving")
    ] = None


class RetrainRequestMessage(Message, kw_only=True):
    """A request to retrain the batch model, on ``retrain-requests``."""

    schema_version: Annotated[int, Meta(ge=1, le=1)] | None = None
    request_id: Text
    requested_by: Text
    reason: Text
    ts: EpochMs
    window_outcomes: Annotated[int, Meta(ge=100, le=MAX_TS)] | None = None
    window_days: Annotated[float, Meta(gt=0, le=1e6)] | None = None
    force: bool = False


#: Every message, by the name of its schema file (``docs/schemas/<name>.json``).
MESSAGES: dict[str, type[Message]] = {
    "trade-outcome": TradeOutcomeMessage,
    "signal-request": SignalRequestMessage,
    "signal": SignalMessage,
    "dead-letter": DeadLetterMessage,
    "drift-alert": DriftAlertMessage,
    "model-update": ModelUpdateMessage,
    "retrain-request": RetrainRequestMessage,
}

#: The inputs: ``schema_version`` optional, a newer one refused.
INPUTS = ("trade-outcome", "signal-request", "retrain-request")


def version_of(name: str) -> int:
    """The current ``schema_version`` of message ``name``."""
    return MESSAGES[name].VERSION
