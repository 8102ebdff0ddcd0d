"""The contract every batch-model family keeps: fit with early stopping, predict in batches,
save and load in the library's own format, explain, describe.

A family is stateless (:class:`ModelFamily`); what it fits or loads is a :class:`FittedModel`.
The retrainer, the gate, the store and the scorer only ever see these two, so a new family is
one module with ``@register_family`` (:mod:`models.families.registry`) and passes the same
contract suite (``tests/unit/test_families.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from models.extras import MissingExtraError, optional_module

#: ``progress(round, validation_log_loss)``, called now and then by long fits.
Progress = Callable[[int, float], None]


class FamilyUnavailableError(MissingExtraError):
    """The family's library is not installed (the message names the extra to install)."""


class ModelLoadError(ValueError):
    """Stored bytes are not a valid model of the family."""


@dataclass(frozen=True)
class FitData:
    """Rows to fit or validate on: a float64 matrix (columns in feature order), 0/1 labels and
    optional sample weights."""

    matrix: np.ndarray
    labels: np.ndarray
    weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.matrix.ndim != 2 or len(self.matrix) != len(self.labels):
            raise ValueError("FitData needs a 2-D matrix with one label per row")


@dataclass(frozen=True)
class FitConfig:
    """The knobs every family understands (each maps them to its own parameter names), plus
    ``params``: the family's own parameters, which override the mapped ones."""

    rounds: int = 400  # most boosting rounds (iterations); exactly this many without validation
    early_stopping_rounds: int = 30
    learning_rate: float = 0.08
    max_depth: int = 4
    subsample: float = 0.8
    colsample: float = 0.8
    min_child_weight: float = 5.0
    max_bin: int = 128
    balance_classes: bool = False  # weight the positive class by negatives / positives
    threads: int = 0  # 0 = all cores
    seed: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)

    def positive_weight(self, labels: np.ndarray) -> float:
        """negatives / positives when ``balance_classes``, else 1."""
        positives = float(np.sum(labels))
        if not self.balance_classes or positives == 0:
            return 1.0
        return (len(labels) - positives) / positives


class FittedModel(ABC):
    """A trained model of one family: what the scorer, the gate and the store use.

    ``params``: the library's parameters it was fitted with (empty for a loaded model);
    ``threads``: how many threads its predictions use (scorers use 1).
    """

    #: The registered name of the family that made it.
    family: ClassVar[str]

    def __init__(self, params: Mapping[str, Any] | None = None, threads: int = 1) -> None:
        self.params = dict(params or {})
        self.threads = threads

    @property
    @abstractmethod
    def rounds(self) -> int:
        """Boosting rounds (iterations) the model uses; 1 for a linear model."""

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        """Win probabilities (float64, one per row) for a batch of rows."""
        if matrix.shape[0] == 0:
            return np.empty(0)
        return self._probabilities(matrix)

    @abstractmethod
    def _probabilities(self, matrix: np.ndarray) -> np.ndarray:
        """:meth:`predict_proba` of at least one row."""

    @abstractmethod
    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Per-row additive contributions to the log-odds: one column per feature, then the
        bias; each row sums to the logit of the prediction (SHAP values for trees)."""

    @abstractmethod
    def importance(self) -> tuple[str, np.ndarray]:
        """(kind, one non-negative number per feature) of global feature importance."""

    @abstractmethod
    def to_bytes(self) -> bytes:
        """The model in its library's native format (never pickle)."""

    def describe(self) -> dict[str, Any]:
        """Rounds and parameters, as stored in a version's metadata (next to its family)."""
        return {"rounds": self.rounds, "parameters": self.params}


class ModelFamily(ABC):
    """A kind of batch model: how to fit one and how to load a stored one."""

    name: ClassVar[str]
    #: How people name it in messages.
    title: ClassVar[str]
    #: The package extra that installs its library (None: always installed).
    extra: ClassVar[str | None] = None
    #: The importable module of its library.
    library: ClassVar[str]
    #: The artifact's file name in a version and its format name in the metadata.
    model_file: ClassVar[str]
    model_format: ClassVar[str]
    #: Whether :meth:`continue_fit` can add rounds to a fitted model (a warm start).
    continues_training: ClassVar[bool] = False

    def module(self) -> ModuleType:
        """The family's library, or :class:`FamilyUnavailableError` naming the extra."""
        return optional_module(
            self.library, f"model family {self.name!r}", self.extra, FamilyUnavailableError
        )

    @abstractmethod
    def fit(
        self,
        train: FitData,
        valid: FitData | None,
        config: FitConfig,
        progress: Progress | None = None,
    ) -> FittedModel:
        """Fit on ``train``; with ``valid``, stop early on its log loss and keep the best
        round; without, fit exactly ``config.rounds`` rounds."""

    def continue_fit(
        self,
        start: FittedModel,
        train: FitData,
        valid: FitData | None,
        config: FitConfig,
        progress: Progress | None = None,
    ) -> FittedModel:
        """Like :meth:`fit`, but add rounds to ``start`` (a model of this family) instead of
        starting from nothing; only families with ``continues_training``."""
        raise NotImplementedError(f"{self.title} cannot continue training a model")

    @abstractmethod
    def load(self, data: bytes, threads: int = 1) -> FittedModel:
        """A stored model back; :class:`ModelLoadError` if the bytes are not one."""


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)), clipped away from 0 and 1."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-15, 1 - 1e-15)
    return np.log(p) - np.log1p(-p)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (libraries write pages)."""
    text = str(exc)
    return text.splitlines()[0][:300] if text else type(exc).__name__
