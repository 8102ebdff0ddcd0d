"""Typed settings for every streamlearn process.

Layers, lowest first: the defaults declared here < an optional YAML file (``--config`` or
``STREAMLEARN_CONFIG``) < the environment (``STREAMLEARN_<GROUP>__<FIELD>``, plus the
conventional ``KAFKA_BOOTSTRAP_SERVERS`` and ``REDIS_URL``). Settings are validated once, at
start-up; an invalid value raises :class:`SettingsError` whose message is one line naming the
setting, its environment variable, and what is wrong with it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

ENV_PREFIX = "STREAMLEARN_"
CONFIG_FILE_ENV = "STREAMLEARN_CONFIG"
#: Variables with the prefix that are not settings (test-only switches, the config file).
NOT_SETTINGS = {CONFIG_FILE_ENV, "STREAMLEARN_FAILPOINTS", "STREAMLEARN_TEST_INFRA"}
ENV_ALIASES = {
    "KAFKA_BOOTSTRAP_SERVERS": ("kafka", "bootstrap_servers"),
    "REDIS_URL": ("redis", "url"),
}

#: Features of the synthetic market (see ``models.market``); a deployment lists its own.
DEFAULT_FEATURES = (
    "ret_1",
    "ret_5",
    "ret_20",
    "rsi_14",
    "vol_20",
    "volume_z",
    "spread_bps",
    "hour_sin",
)


class SettingsError(ValueError):
    """A setting is missing, unknown or invalid; the message is a single line."""


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _none_words(value: Any) -> Any:
    """Let the environment say "no value" for optional settings."""
    if isinstance(value, str) and value.strip().lower() in {"", "none", "null", "off"}:
        return None
    return value


def _json_object(value: Any) -> Any:
    """Let the environment give a mapping as a JSON object."""
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValueError(f"must be a JSON object: {exc}") from None
    return value


class KafkaSettings(_Group):
    """Where the broker is and how this process joins its consumer group."""

    bootstrap_servers: str | None = Field(
        default=None, description="host:port[,host:port]; unset = start the embedded broker"
    )
    consumer_group: str = Field(
        default="streamlearn", min_length=1, description="Kafka consumer group (and Faust app id)"
    )
    session_timeout_s: float = Field(
        default=10.0, gt=0, description="group session timeout; a dead worker is replaced after it"
    )
    heartbeat_interval_s: float = Field(default=1.0, gt=0, description="group heartbeat")
    fetch_max_wait_ms: int = Field(
        default=10,
        ge=1,
        le=1500,
        description="longest a fetch waits for data (latency on the embedded broker)",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="how every Kafka client connects (TLS and/or SASL)"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="SCRAM-SHA-512", description="SASL mechanism (with SASL_PLAINTEXT / SASL_SSL)"
    )
    sasl_username: str | None = Field(default=None, description="SASL user")
    sasl_password: SecretStr | None = Field(
        default=None, description="SASL password (never logged or shown)"
    )
    ssl_cafile: Path | None = Field(
        default=None, description="CA bundle (PEM) the broker's certificate is checked against"
    )
    ssl_certfile: Path | None = Field(
        default=None, description="client certificate (PEM), for brokers that require mTLS"
    )
    ssl_keyfile: Path | None = Field(default=None, description="the client certificate's key")
    ssl_check_hostname: bool = Field(
        default=True, description="check the broker's certificate names the host dialled"
    )

    _none = field_validator(
        "bootstrap_servers",
        "sasl_username",
        "sasl_password",
        "ssl_cafile",
        "ssl_certfile",
        "ssl_keyfile",
        mode="before",
    )(_none_words)

    @model_validator(mode="after")
    def _security_is_complete(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL_") and not (
            self.sasl_username and self.sasl_password
        ):
            raise ValueError(f"{self.security_protocol} needs sasl_username and sasl_password")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together")
        return self


class RedisSettings(_Group):
    """Where state lives; every key is prefixed by ``namespace``."""

    url: str | None = Field(
        default=None,
        description="redis://host:port/db, rediss://... (TLS) or unix://path; unset = embedded",
    )
    username: str | None = Field(default=None, description="ACL user (Redis 6+); unset = default")
    password: SecretStr | None = Field(
        default=None, description="password of the user (never logged or shown)"
    )
    ssl_cafile: Path | None = Field(
        default=None, description="CA bundle (PEM) the server's certificate is checked against"
    )
    ssl_certfile: Path | None = Field(
        default=None, description="client certificate (PEM), for servers that require mTLS"
    )
    ssl_keyfile: Path | None = Field(default=None, description="the client certificate's key")
    ssl_check_hostname: bool = Field(
        default=True, description="check the server's certificate names the host dialled"
    )
    cluster: bool = Field(
        default=False,
        description="url names one node of a Redis Cluster (state shards over its slots)",
    )
    namespace: str = Field(
        default="streamlearn",
        min_length=1,
        pattern=r"^[A-Za-z0-9_.\-]+$",
        description="prefix of every Redis key (one per deployment)",
    )
    timeout_s: float = Field(
        default=2.0, gt=0, description="socket timeout of Redis calls (an outage is seen by then)"
    )
    max_outage_s: float = Field(
        default=600.0,
        gt=0,
        description="a worker keeps scoring through a Redis outage this long, then exits",
    )

    _none = field_validator(
        "url", "username", "password", "ssl_cafile", "ssl_certfile", "ssl_keyfile", mode="before"
    )(_none_words)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str | None) -> str | None:
        if url is not None and url.split("://", 1)[0] not in REDIS_SCHEMES:
            schemes = ", ".join(f"{scheme}://" for scheme in REDIS_SCHEMES)
            raise ValueError(f"must start with one of {schemes}")
        return url

    @model_validator(mode="after")
    def _security_is_consistent(self) -> RedisSettings:
        if self.url and self.password and url_password(self.url):
            raise ValueError("give the password in url or in password, not both")
        tls_files = (self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile)
        if any(tls_files) and not (self.url or "").startswith("rediss://"):
            raise ValueError("ssl_cafile / ssl_certfile / ssl_keyfile need a rediss:// url")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together")
        if self.cluster and (self.url or "").startswith("unix://"):
            raise ValueError("cluster needs a redis:// or rediss:// url (cluster nodes are TCP)")
        return self

    @property
    def secured(self) -> bool:
        """Whether any credential or TLS setting is given (the embedded Redis has none)."""
        return bool(self.username or self.password or self.ssl_cafile or self.ssl_certfile)


#: URL schemes redis-py connects with.
REDIS_SCHEMES = ("redis", "rediss", "unix")


class TopicSettings(_Group):
    """Topic names and sizes; inputs and signals share one partition count (co-partitioned)."""

    outcomes: str = Field(default="trade-outcomes", description="closed trades (input)")
    requests: str = Field(default="signal-requests", description="requests to score (input)")
    signals: str = Field(default="signals", description="scored signals (output)")
    model_updates: str = Field(
        default="model-updates", description="registry changes (1 partition; workers follow it)"
    )
    retrain_requests: str = Field(
        default="retrain-requests", description="requests to retrain (1 partition)"
    )
    drift_alerts: str = Field(
        default="drift-alerts", description="drift alerts and recoveries for ops (1 partition)"
    )
    dead_letter_suffix: str = Field(
        default=".dlq", min_length=1, description="dead-letter topic = input topic + suffix"
    )
    partitions: int = Field(
        default=4, ge=1, le=10_000, description="partitions of the keyed topics (control topics: 1)"
    )
    replication_factor: int = Field(default=1, ge=1, description="replicas of created topics")
    outcomes_retention_days: float | None = Field(
        default=90.0,
        gt=0,
        description="retention set when the outcomes topic is created: longer than any retrain "
        "window (docs/deploy.md); unset = the broker's default (7 days on Apache Kafka)",
    )

    _none = field_validator("outcomes_retention_days", mode="before")(_none_words)

    @model_validator(mode="after")
    def _distinct(self) -> TopicSettings:
        names = [
            self.outcomes,
            self.requests,
            self.signals,
            self.model_updates,
            self.retrain_requests,
        ]
        if len(set(names)) != len(names):
            raise ValueError(f"topic names must be distinct, got {names}")
        return self

    def dead_letter(self, topic: str) -> str:
        """Name of the dead-letter topic of an input topic."""
        return f"{topic}{self.dead_letter_suffix}"


class ModelSettings(_Group):
    """What a model sees: its key and its features, in this order."""

    key_field: str | None = Field(
        default=None,
        description="message field naming the model key; unset = one global model",
    )
    features: tuple[str, ...] = Field(
        default=DEFAULT_FEATURES,
        min_length=1,
        description="features every message must carry (comma-separated in the environment)",
    )

    _none = field_validator("key_field", mode="before")(_none_words)

    @field_validator("features", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("features")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("feature names must be unique")
        return value


class LimitSettings(_Group):
    """Bounds on input values and sizes: what is beyond them goes to the dead-letter topic."""

    max_abs_feature: float = Field(
        default=1e12,
        gt=0,
        description="largest |feature| accepted; squares stay far below float overflow (1e308)",
    )
    max_key_bytes: int = Field(
        default=1024,
        ge=16,
        description="longest record key and id/key field (bytes); signals copy them",
    )
    max_value_bytes: int = Field(
        default=262_144, ge=1024, description="largest input record value (bytes)"
    )
    max_message_bytes: int = Field(
        default=1_000_000,
        ge=16_384,
        description="largest record the broker accepts; dead letters are cut to fit it",
    )
    max_request_age_ms: int | None = Field(
        default=None,
        ge=1,
        description="signal requests older than this (ms since their ts) when scored are "
        "answered 'expired' without a score; unset = only a request's own deadline_ms",
    )
    max_keys_per_partition: int = Field(
        default=10_000,
        ge=1,
        description="model keys one partition may hold; a new key's outcome beyond it is a dead "
        "letter (cost per key: docs/deploy.md)",
    )

    _none = field_validator("max_request_age_ms", mode="before")(_none_words)


class OnlineSettings(_Group):
    """The River ``StandardScaler | LogisticRegression`` learner and its window decay."""

    learning_rate: float = Field(default=0.01, gt=0, description="SGD learning rate")
    decay_half_life: float | None = Field(
        default=None, gt=0, description="outcomes after which an old trade weighs half; unset=off"
    )
    window_size: int | None = Field(
        default=None,
        ge=1,
        description="decay window in outcomes (with decay_factor; instead of decay_half_life)",
    )
    decay_factor: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="weight of an outcome one window old (k windows: decay_factor^k); 1 = off",
    )
    weight_by_rr: bool = Field(default=False, description="weight each outcome by |realized_rr|")
    max_sample_weight: float = Field(
        default=5.0, gt=0, description="cap of the |realized_rr| weight"
    )
    min_updates: int = Field(
        default=50, ge=0, description="online updates before its score is blended in"
    )
    dedupe_window: int = Field(
        default=1000,
        ge=0,
        le=100_000,
        description="outcome_ids remembered per key; a repeat is not learned (0 = off)",
    )

    _none = field_validator("decay_half_life", "window_size", "decay_factor", mode="before")(
        _none_words
    )

    @model_validator(mode="after")
    def _one_decay_spelling(self) -> OnlineSettings:
        if (self.window_size is None) != (self.decay_factor is None):
            raise ValueError("window_size and decay_factor go together")
        if self.window_size is not None and self.decay_half_life is not None:
            raise ValueError(
                "give the decay as decay_half_life or as window_size + decay_factor, not both"
            )
        return self


class BlendSettings(_Group):
    """``score = w_batch * p_batch + w_online * p_online``: weights fixed or fitted per key, or
    a logistic meta-learner per key (stacked)."""

    mode: Literal["fixed", "optimized", "stacked"] = Field(
        default="fixed",
        description=(
            "fixed: w_batch / w_online for every key; optimized: per key, w_batch refitted "
            "every refit_every outcomes to minimise log loss over the last window outcomes; "
            "stacked: per key, an online logistic regression on the two parts scores"
        ),
    )
    w_batch: float = Field(default=0.8, ge=0, le=1, description="weight of p(batch XGBoost)")
    w_online: float = Field(
        default=0.2, ge=0, le=1, description="weight of p(online River); the two sum to 1"
    )
    window: int = Field(
        default=500, ge=10, le=100_000, description="optimized: outcomes a key's fit looks at"
    )
    refit_every: int = Field(default=100, ge=1, description="optimized: outcomes between refits")
    prior_outcomes: int = Field(
        default=100,
        ge=0,
        description="optimized: pseudo-outcomes voting for w_batch (shrinks small windows)",
    )
    stack_inputs: Literal["interaction", "logits", "probabilities", "both"] = Field(
        default="interaction",
        description=(
            "stacked: the meta-learner's inputs: the parts' log-odds and their product "
            "(interaction), log-odds, probabilities, or log-odds and probabilities (both)"
        ),
    )
    stack_learning_rate: float = Field(
        default=0.01, gt=0, le=1, description="stacked: the meta-learner's SGD learning rate"
    )
    stack_min_outcomes: int = Field(
        default=100,
        ge=0,
        description="stacked: outcomes the meta-learner learns before it replaces the fixed blend",
    )

    start: Literal["configured", "fitted"] = Field(
        default="configured",
        description=(
            "what a blend starts from: configured: w_batch / w_online; fitted: the active batch "
            "version's blend fitted at retrain time (metadata blend; versions without one use "
            "the configured): the fixed mode's weights, optimized's prior, stacked's start"
        ),
    )

    @model_validator(mode="after")
    def _sum_to_one(self) -> BlendSettings:
        if not math.isclose(self.w_batch + self.w_online, 1.0, abs_tol=1e-9):
            raise ValueError(f"w_batch + w_online must be 1, got {self.w_batch} + {self.w_online}")
        return self


class CheckpointSettings(_Group):
    """How often learner state and applied offsets are committed to Redis."""

    every_outcomes: int = Field(
        default=1000, ge=1, description="checkpoint after this many outcomes..."
    )
    interval_ms: int = Field(default=1000, ge=10, description="...or after this long")


class BatchSettings(_Group):
    """Where versioned XGBoost models live and how workers follow the active one."""

    store: str = Field(
        default="model-store",
        min_length=1,
        description="where versioned batch models and the registry journal live: a directory "
        "(one host) or s3://bucket/prefix (every host; AWS credentials from the usual chain)",
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="S3 API endpoint of a non-AWS store (MinIO, Ceph, ...)"
    )
    s3_region: str | None = Field(default=None, description="S3 region (unset: boto3's default)")
    poll_interval_s: float = Field(
        default=1.0, gt=0, description="how often workers check the active-version pointer"
    )
    predict_threads: int = Field(default=1, ge=1, description="XGBoost threads for scoring")
    load_wait_s: float = Field(
        default=2.0,
        gt=0,
        description="longest scoring waits for a newly active version to load; then it scores "
        "with the model held (flagged degraded) while the load goes on",
    )

    _none = field_validator("s3_endpoint_url", "s3_region", mode="before")(_none_words)

    @field_validator("store")
    @classmethod
    def _known_store(cls, store: str) -> str:
        if "://" in store and not store.startswith("s3://"):
            raise ValueError("must be a directory or an s3://bucket/prefix URL")
        if store.startswith("s3://") and not store[len("s3://") :].split("/", 1)[0]:
            raise ValueError("an s3:// store names a bucket: s3://bucket/prefix")
        return store

    @property
    def shared(self) -> bool:
        """Whether the store is one every host can read (an object store)."""
        return self.store.startswith("s3://")


#: Each model family's tuning search space, in its library's parameter names (what
#: ``retrain.search_spaces`` starts from; a family given there replaces its space whole).
DEFAULT_SEARCH_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "xgboost": {
        "max_depth": {"type": "int", "low": 2, "high": 8},
        "eta": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
        "min_child_weight": {"type": "float", "low": 1.0, "high": 50.0, "log": True},
        "subsample": {"type": "float", "low": 0.5, "high": 1.0},
        "colsample_bytree": {"type": "float", "low": 0.5, "high": 1.0},
        "lambda": {"type": "float", "low": 0.01, "high": 10.0, "log": True},
    },
    "lightgbm": {
        "max_depth": {"type": "int", "low": 2, "high": 8},
        "num_leaves": {"type": "int", "low": 3, "high": 63, "log": True},
        "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
        "min_child_samples": {"type": "int", "low": 5, "high": 200, "log": True},
        "feature_fraction": {"type": "float", "low": 0.5, "high": 1.0},
        "lambda_l2": {"type": "float", "low": 0.01, "high": 10.0, "log": True},
    },
    "catboost": {
        "depth": {"type": "int", "low": 3, "high": 8},
        "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
        "l2_leaf_reg": {"type": "float", "low": 0.1, "high": 30.0, "log": True},
        "rsm": {"type": "float", "low": 0.5, "high": 1.0},
    },
    "logistic": {
        "C": {"type": "float", "low": 0.001, "high": 100.0, "log": True},
    },
}


class SearchDimension(_Group):
    """One tuned parameter: a float or int range (``log``: sampled on a log scale), or
    ``categorical`` choices."""

    type: Literal["float", "int", "categorical"] = "float"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[float | int | str | bool] | None = None

    @model_validator(mode="after")
    def _range(self) -> SearchDimension:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical dimension needs choices")
        elif self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(f"a {self.type} dimension needs low < high")
        elif self.log and self.low <= 0:
            raise ValueError("a log-scale dimension needs low > 0")
        return self


def default_search_spaces() -> dict[str, dict[str, SearchDimension]]:
    """:data:`DEFAULT_SEARCH_SPACES` as validated dimensions (what a family not given in
    ``retrain.search_spaces`` searches)."""
    return {
        name: {p: SearchDimension(**spec) for p, spec in space.items()}
        for name, space in DEFAULT_SEARCH_SPACES.items()
    }


class RetrainSettings(_Group):
    """The retrainer: window, split, gate and promotion of challenger batch models."""

    window_outcomes: int | None = Field(
        default=50_000, ge=100, description="train on the newest N outcomes (unset: all)"
    )
    window_days: float | None = Field(
        default=None, gt=0, description="or on the last D days of outcomes (by message ts)"
    )
    source_file: Path | None = Field(
        default=None, description="read outcomes from this CSV/Parquet instead of the topic"
    )
    promotion_mode: Literal["auto", "manual"] = Field(
        default="auto", description="auto: a passing challenger goes active; manual: staged"
    )
    primary_metric: Literal["log_loss", "brier", "roc_auc", "accuracy"] = Field(
        default="log_loss", description="metric the gate decides on"
    )
    margin: float = Field(default=0.0, ge=0, description="required improvement on it")
    alpha: float = Field(
        default=0.05, gt=0, lt=0.5, description="one-sided significance of the paired bootstrap"
    )
    bootstrap_resamples: int = Field(default=1000, ge=100, description="bootstrap resamples")
    validation_fraction: float = Field(
        default=0.15, gt=0, lt=0.5, description="newest-but-one share for early stopping"
    )
    holdout_fraction: float = Field(
        default=0.15, gt=0, lt=0.5, description="newest share, scored by the gate"
    )
    purge_s: float = Field(
        default=60.0,
        ge=0,
        description=(
            "rows closing this long before the validation, holdout or a test fold are not "
            "trained on: set it to the longest holding time of a trade"
        ),
    )
    embargo_s: float = Field(
        default=0.0,
        ge=0,
        description="rows closing this long after a test fold are not trained on (purged_kfold)",
    )
    cv_folds: int = Field(
        default=0,
        ge=0,
        le=20,
        description=(
            "walk-forward cross-validation folds before the holdout, their metrics in the "
            "version's metadata (0 = none: each fold is one more fit)"
        ),
    )
    cv_scheme: Literal["walk_forward", "purged_kfold"] = Field(
        default="walk_forward",
        description=(
            "walk_forward: train on the past only; purged_kfold: also on the future, "
            "purged and embargoed (only for a stationary market)"
        ),
    )
    balance_classes: bool = Field(
        default=False, description="set scale_pos_weight = negatives/positives"
    )
    weight_by_rr: bool = Field(default=False, description="weight rows by |realized_rr|")
    family: Literal["xgboost", "lightgbm", "catboost", "logistic"] = Field(
        default="xgboost",
        description=(
            "batch model family; lightgbm and catboost need their extras "
            "(pip install 'streamlearn[lightgbm]'); logistic is the scikit-learn baseline"
        ),
    )
    params: dict[str, float | int | bool | str] = Field(
        default_factory=dict,
        description=(
            "the family's own parameters, in its library's names (JSON in the environment); "
            "they override the knobs below"
        ),
    )
    tuning: Literal["off", "trials", "time"] = Field(
        default="off",
        description=(
            "Optuna tuning before each retrain (extra streamlearn[tuning]): trials runs "
            "tuning_trials trials, time as many as fit in tuning_time_s"
        ),
    )
    tuning_trials: int = Field(default=20, ge=1, le=10_000, description="trials of a study")
    tuning_time_s: float = Field(
        default=600.0, gt=0, description="a study's time budget (tuning = time)"
    )
    tuning_folds: int = Field(
        default=3, ge=2, le=10, description="walk-forward folds each trial is scored on"
    )
    search_spaces: dict[str, dict[str, SearchDimension]] = Field(
        default_factory=default_search_spaces,
        description=(
            "per family, the parameters tuning searches, in the library's names: "
            '{"xgboost": {"eta": {"type": "float", "low": 0.01, "high": 0.3, "log": true}}} '
            "(JSON in the environment); a family given replaces its default space"
        ),
    )
    shadow_min_outcomes: int = Field(
        default=0,
        ge=0,
        description=(
            "a staged version is scored live in the shadow by the learners; with N > 0, "
            "models promote needs N outcomes scored by it and the champion and a log loss "
            "significantly better (alpha, margin) than the champion's on them; 0 = only shown"
        ),
    )
    warm_start: bool = Field(
        default=False,
        description=(
            "continue the champion's boosting (XGBoost) when its window overlaps the new one "
            "and its features match; recorded in metadata.warm_start"
        ),
    )
    num_boost_round: int = Field(default=400, ge=1, description="max boosting rounds")
    max_depth: int = Field(default=4, ge=1, le=16, description="tree depth")
    eta: float = Field(default=0.08, gt=0, le=1, description="learning rate")
    threads: int = Field(default=0, ge=0, description="XGBoost threads (0 = all cores)")
    cooldown_s: float = Field(
        default=300.0, ge=0, description="requests this soon after a retrain are dropped"
    )
    blend_folds: int = Field(
        default=4,
        ge=0,
        le=20,
        description=(
            "walk-forward folds the new version's blend is fitted on (its metadata blend; "
            "blend.start = fitted uses it); 0 = no fit"
        ),
    )
    keep_versions: int = Field(
        default=10, ge=1, description="newest versions kept (plus every version ever active)"
    )
    poll_interval_s: float = Field(default=1.0, gt=0, description="request polling interval")
    leader_lease_s: float = Field(
        default=60.0,
        ge=2,
        description=(
            "the leader's lease, renewed every quarter of it: a dead leader's standby takes "
            "over after at most this long"
        ),
    )
    metrics_port: int = Field(
        default=6067,
        ge=0,
        le=65535,
        description="port of the retrainer's Prometheus /metrics (on web.host); 0 = off",
    )
    schedule: str | None = Field(
        default=None,
        description=(
            "retrain on a schedule: a cron expression in UTC (0 2 * * *, @daily, @weekly, "
            "@monthly) or an interval (30s, 15m, 6h, 1d); requested_by 'schedule'; unset = off"
        ),
    )
    every_outcomes: int | None = Field(
        default=None,
        ge=1,
        description=(
            "retrain once this many new outcomes arrived since the last retrain; "
            "requested_by 'volume'; unset = off"
        ),
    )
    trigger_check_s: float = Field(
        default=5.0, gt=0, description="how often the schedule and the outcome count are checked"
    )

    _none = field_validator(
        "window_outcomes", "window_days", "source_file", "schedule", "every_outcomes", mode="before"
    )(_none_words)
    _json = field_validator("params", "search_spaces", mode="before")(_json_object)

    @field_validator("search_spaces", mode="after")
    @classmethod
    def _every_family(
        cls, value: dict[str, dict[str, SearchDimension]]
    ) -> dict[str, dict[str, SearchDimension]]:
        unknown = sorted(set(value) - set(DEFAULT_SEARCH_SPACES))
        if unknown:
            raise ValueError(f"unknown model families {unknown}")
        return {**default_search_spaces(), **value}

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "purge_rows" in data:
            raise ValueError(
                "purge_rows was replaced by purge_s: the purge is a time (seconds), "
                "the longest holding time of a trade"
            )
        return data


def _split_words(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class DriftSettings(_Group):
    """Drift detection per model key: what is watched, thresholds, and what an alert does."""

    enabled: bool = Field(default=True, description="watch drift and publish alerts")
    kinds: tuple[Literal["concept", "data", "label", "prediction"], ...] = Field(
        default=("concept", "data", "label", "prediction"), description="what is watched"
    )
    concept_sources: tuple[Literal["batch", "online", "blend"], ...] = Field(
        default=("batch", "online", "blend"), description="error streams watched"
    )
    alert_sources: tuple[Literal["batch", "online", "blend"], ...] = Field(
        default=("batch",), description="error streams that raise concept alerts"
    )
    detector: Literal["adwin", "page_hinkley", "kswin"] = Field(
        default="adwin", description="River detector on the error streams"
    )
    adwin_delta: float = Field(default=0.002, gt=0, lt=1, description="ADWIN confidence")
    min_degradation: float = Field(
        default=0.05, gt=0, lt=1, description="error-rate rise over baseline that is an alert"
    )
    recovery_tolerance: float = Field(
        default=0.02, ge=0, lt=1, description="back within this of the baseline = recovered"
    )
    cooldown_outcomes: int = Field(
        default=5000, ge=0, description="no new alert of a kind this soon after a recovery"
    )
    replay_window: int = Field(
        default=5000, ge=100, description="recent errors kept to restore a detector"
    )
    check_every: int = Field(default=500, ge=10, description="outcomes between PSI/label checks")
    psi_alert: float = Field(default=0.25, gt=0, description="PSI that is data drift")
    psi_borderline: float = Field(default=0.1, gt=0, description="PSI from which a KS test decides")
    ks_alpha: float = Field(default=0.01, gt=0, lt=1, description="KS significance")
    label_alpha: float = Field(default=0.001, gt=0, lt=1, description="binomial test level")
    label_min_shift: float = Field(default=0.05, gt=0, lt=1, description="win-rate shift")
    retrain_on: tuple[Literal["concept", "data", "label", "prediction"], ...] = Field(
        default=("concept",), description="alert kinds that request a retrain"
    )
    retrain_delay_outcomes: int = Field(
        default=2000, ge=0, description="outcomes after an alert before the request"
    )
    retrain_min_window: int = Field(
        default=2000, ge=100, description="smallest training window a drift retrain asks for"
    )
    retrain_dedupe_s: float = Field(
        default=900.0, gt=0, description="one drift retrain per this many seconds, all keys"
    )

    _words = field_validator(
        "kinds", "concept_sources", "alert_sources", "retrain_on", mode="before"
    )(_split_words)

    @model_validator(mode="after")
    def _consistent(self) -> DriftSettings:
        if not set(self.alert_sources) <= set(self.concept_sources):
            raise ValueError("alert_sources must be among concept_sources")
        if self.psi_borderline >= self.psi_alert:
            raise ValueError("psi_borderline must be below psi_alert")
        return self


class ProcessingSettings(_Group):
    """How records are consumed, and the micro-batch sizes."""

    engine: Literal["aiokafka", "faust"] = Field(
        default="aiokafka",
        description=(
            "aiokafka: one aiokafka consumer, whole fetches as micro-batches (fast); "
            "faust: Faust stream agents (old names batch/agents are accepted)"
        ),
    )

    @field_validator("engine", mode="before")
    @classmethod
    def _renamed(cls, value: Any) -> Any:
        # The engines were called "batch" (a word that also names the XGBoost model and the
        # micro-batches) and "agents" until 0.x; configurations that say so keep working.
        return {"batch": "aiokafka", "agents": "faust"}.get(value, value)

    learn_batch: int = Field(default=500, ge=1, description="max outcomes per micro-batch")
    score_batch: int = Field(default=500, ge=1, description="max requests per micro-batch")
    max_wait_ms: int = Field(
        default=5, ge=1, description="max wait to fill a micro-batch (latency bound)"
    )
    shutdown_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="a stop (SIGTERM/SIGINT) that has not finished by then exits anyway (code 1)",
    )


class WebSettings(_Group):
    """The worker's HTTP views (health, status, Prometheus metrics)."""

    enabled: bool = Field(default=True, description="serve /health, /status, /metrics")
    host: str = Field(default="127.0.0.1", description="bind address")
    port: int = Field(default=6066, ge=0, le=65535, description="port")
    status_token: SecretStr | None = Field(
        default=None,
        description="bearer token /status requires (Authorization: Bearer ...); unset = open",
    )
    status_page_size: int = Field(
        default=100, ge=1, le=10_000, description="keys per /status page unless ?limit= says"
    )
    metrics_top_keys: int = Field(
        default=10,
        ge=0,
        le=1000,
        description="keys with per-key series on /metrics (those with the most outcomes)",
    )

    _none = field_validator("status_token", mode="before")(_none_words)


class WebhookSettings(_Group):
    """One place ``streamlearn notify`` sends to, and what it wants to hear."""

    name: str = Field(min_length=1, description="how logs and metrics name this webhook")
    url: SecretStr = Field(description="where to POST (a secret: Slack webhook URLs are)")
    format: Literal["slack", "json"] = Field(
        default="json", description="slack: {text, blocks}; json: the notice as a JSON object"
    )
    min_severity: Literal["info", "warning", "critical"] = Field(
        default="info", description="send notices of at least this severity"
    )
    kinds: tuple[str, ...] = Field(
        default=(),
        description="only these kinds (concept, data, prediction, label, model); empty = all",
    )
    events: tuple[str, ...] = Field(
        default=(),
        description=(
            "only these events (alert, recovery, activated, rolled_back, staged, rejected, "
            "failed); empty = all"
        ),
    )


class NotifySettings(_Group):
    """``streamlearn notify``: drift alerts, recoveries and model updates to webhooks."""

    webhooks: tuple[WebhookSettings, ...] = Field(
        default=(),
        description=(
            "where notices go: a YAML list, or JSON in the environment "
            '([{"name": "ops", "url": "https://hooks.slack.com/...", "format": "slack"}])'
        ),
    )
    timeout_s: float = Field(default=5.0, gt=0, description="one POST's timeout")
    max_attempts: int = Field(
        default=8,
        ge=1,
        description="tries per notice and webhook (backoff 1 s doubling to 60 s), then given up",
    )
    poll_interval_s: float = Field(default=0.5, gt=0, description="topic polling interval")
    dedupe_ttl_s: float = Field(
        default=7 * 86400.0,
        gt=0,
        description="how long a delivered notice id is remembered (a repeat is not re-sent)",
    )
    metrics_port: int = Field(
        default=6068,
        ge=0,
        le=65535,
        description="port of the notifier's Prometheus /metrics (on web.host); 0 = off",
    )

    @field_validator("webhooks", mode="before")
    @classmethod
    def _json(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else ()
            except json.JSONDecodeError as exc:
                raise ValueError(f"webhooks must be a JSON list of objects: {exc}") from None
        return value


class DashboardSettings(_Group):
    """``streamlearn dashboard``: the live page of a deployment (docs/operations.md)."""

    host: str = Field(default="127.0.0.1", description="bind address (0.0.0.0 in a container)")
    port: int = Field(default=6069, ge=0, le=65535, description="port (0: any free one)")
    interval_s: float = Field(
        default=2.0, ge=0.2, le=3600, description="how often the deployment is read and drawn"
    )
    history_points: int = Field(
        default=900, ge=10, le=100_000, description="samples kept per series (900 x 2 s = 30 min)"
    )
    top_keys: int = Field(
        default=10, ge=1, le=1000, description="keys with their own series (the busiest)"
    )
    events: int = Field(
        default=200, ge=1, le=100_000, description="drift alerts and model updates kept"
    )
    signals_per_partition: int = Field(
        default=2000,
        ge=1,
        description="newest signals per partition read per sample for the latency quantiles",
    )
    token: SecretStr | None = Field(
        default=None,
        description="token the page and its API require (?token=... or a bearer); unset = open",
    )

    _none = field_validator("token", mode="before")(_none_words)


class SignalSettings(_Group):
    """What a signal carries beyond its score and parts."""

    explain: bool = Field(
        default=False,
        description=(
            "add the batch model's largest contributions to each signal (explanation: "
            "feature -> log-odds; SHAP for trees): costs a contributions pass per batch"
        ),
    )
    explain_top: int = Field(
        default=3, ge=1, le=50, description="contributions per signal (signal.explain)"
    )


class TrackingSettings(_Group):
    """Experiment tracking of retrains in MLflow (extra streamlearn[tracking]); off by default."""

    mlflow_uri: str | None = Field(
        default=None,
        description=(
            "MLflow tracking URI (sqlite:///mlflow.db, a directory, http://mlflow:5000); "
            "unset = no tracking"
        ),
    )
    experiment: str = Field(
        default="streamlearn", min_length=1, description="MLflow experiment of the retrains"
    )
    artifact_location: str | None = Field(
        default=None,
        description=(
            "where a new experiment stores run artifacts (s3://..., a directory); unset: next "
            "to a sqlite database (<its folder>/mlruns), else the server's default"
        ),
    )

    _none = field_validator("mlflow_uri", "artifact_location", mode="before")(_none_words)


class LogSettings(_Group):
    """Structured (JSON lines) logs on stderr; quiet by default."""

    level: str = Field(
        default="WARNING",
        pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$",
        description="DEBUG, INFO, WARNING, ERROR or CRITICAL",
    )

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class Settings(_Group):
    """All settings of one streamlearn deployment."""

    kafka: KafkaSettings = KafkaSettings()
    redis: RedisSettings = RedisSettings()
    topics: TopicSettings = TopicSettings()
    model: ModelSettings = ModelSettings()
    limits: LimitSettings = LimitSettings()
    online: OnlineSettings = OnlineSettings()
    blend: BlendSettings = BlendSettings()
    checkpoint: CheckpointSettings = CheckpointSettings()
    batch: BatchSettings = BatchSettings()
    retrain: RetrainSettings = RetrainSettings()
    drift: DriftSettings = DriftSettings()
    processing: ProcessingSettings = ProcessingSettings()
    web: WebSettings = WebSettings()
    notify: NotifySettings = NotifySettings()
    dashboard: DashboardSettings = DashboardSettings()
    signal: SignalSettings = SignalSettings()
    tracking: TrackingSettings = TrackingSettings()
    log: LogSettings = LogSettings()

    def with_overrides(self, **groups: Mapping[str, Any]) -> Settings:
        """Copy with some fields of some groups replaced, validated like the original."""
        data = self.model_dump()
        for group, values in groups.items():
            data[group] = {**data[group], **values}
        return _validate(data)

    def redacted(self) -> dict[str, Any]:
        """The settings as plain data with secrets (passwords, also in URLs) masked."""
        data = self.model_dump(mode="json")
        for group, field in URL_SETTINGS:
            data[group][field] = mask_url_password(data[group][field])
        return data

    def secrets(self) -> tuple[str, ...]:
        """Every secret value these settings hold (for log redaction): the ``SecretStr``
        settings and passwords written inside URLs."""
        found = {_reveal(self._at(group, name)) for group, name in SECRET_SETTINGS}
        found |= {url_password(self._at(group, name)) for group, name in URL_SETTINGS}
        found |= {hook.url.get_secret_value() for hook in self.notify.webhooks}
        return tuple(secret for secret in found if secret)

    def revealed_dump(self) -> dict[str, Any]:
        """The settings as plain data with the secrets in clear: only for handing the exact
        settings to a child process (``model_dump`` masks them)."""
        data = self.model_dump(mode="json")
        for group, name in SECRET_SETTINGS:
            data[group][name] = _reveal(self._at(group, name))
        for shown, hook in zip(data["notify"]["webhooks"], self.notify.webhooks, strict=True):
            shown["url"] = hook.url.get_secret_value()
        return data

    def _at(self, group: str, name: str) -> Any:
        return getattr(getattr(self, group), name)


def revealed(group: BaseModel, names: Iterable[str]) -> dict[str, Any]:
    """Some fields of a settings group, secrets in clear (to build a client from them)."""
    return {name: _reveal(getattr(group, name)) for name in names}


def _reveal(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


#: Settings holding URLs, which may carry a password (``scheme://user:password@host``).
URL_SETTINGS = (("redis", "url"), ("kafka", "bootstrap_servers"), ("tracking", "mlflow_uri"))
#: Every setting typed ``SecretStr``: never shown, found from the types (not listed by hand).
SECRET_SETTINGS = tuple(
    (group, name)
    for group, group_field in Settings.model_fields.items()
    for name, field in group_field.annotation.model_fields.items()
    if SecretStr in (field.annotation, *get_args(field.annotation))
)


def url_password(url: str | None) -> str | None:
    """The password inside a URL's user info, if any."""
    if not url or "://" not in url:
        return None
    authority = url.split("://", 1)[1].split("/", 1)[0]
    if "@" not in authority:
        return None
    creds = authority.rsplit("@", 1)[0]
    return creds.split(":", 1)[1] if ":" in creds else None


def mask_url_password(url: str | None) -> str | None:
    """``url`` with the password in its user info replaced by ``***`` (user name kept)."""
    password = url_password(url)
    if url is None or password is None:
        return url
    scheme, rest = url.split("://", 1)
    authority, slash, path = rest.partition("/")
    creds, host = authority.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}{slash}{path}"


def env_name(location: tuple[str, ...]) -> str:
    """The environment variable that sets the setting at ``location``."""
    for alias, target in ENV_ALIASES.items():
        if target == location:
            return alias
    return ENV_PREFIX + "__".join(part.upper() for part in location)


def load_settings(
    config_file: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build the settings from defaults, an optional YAML file and the environment."""
    env = os.environ if environ is None else environ
    path = config_file or env.get(CONFIG_FILE_ENV)
    data: dict[str, Any] = {}
    if path:
        data = _read_yaml(Path(path))
    _deep_merge(data, _from_environment(env))
    return _validate(data)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise SettingsError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise SettingsError(f"config file {path} is not valid YAML: {first}") from None
    if not isinstance(loaded, dict):
        raise SettingsError(f"config file {path} must hold a mapping of setting groups")
    return loaded


def _from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, value in env.items():
        if name in ENV_ALIASES:
            group, field = ENV_ALIASES[name]
            data.setdefault(group, {})[field] = value
        elif name.startswith(ENV_PREFIX) and name not in NOT_SETTINGS:
            parts = name[len(ENV_PREFIX) :].lower().split("__")
            if len(parts) != 2 or not all(parts):
                raise SettingsError(
                    f"{name}: environment settings are named {ENV_PREFIX}<GROUP>__<FIELD>"
                )
            data.setdefault(parts[0], {})[parts[1]] = value
    return data


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value


def _validate(data: Mapping[str, Any]) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        location = tuple(str(part) for part in error["loc"])
        where = ".".join(location) or "settings"
        shown = error.get("input")
        if location in URL_SETTINGS and isinstance(shown, str):
            shown = mask_url_password(shown)
        secret = location in SECRET_SETTINGS
        got = "" if isinstance(shown, Mapping) or secret else f" (got {shown!r})"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        raise SettingsError(
            f"invalid setting {where} [{env_name(location)}]: {message}{got}"
        ) from None
