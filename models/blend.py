"""Blending the batch and online probabilities into one signal, with explicit cold starts."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from models.version_blend import VersionBlend


class SignalStatus(StrEnum):
    """Which parts made a score; anything but ``OK`` is a cold start, said out loud."""

    OK = "ok"
    BATCH_ONLY = "batch_only"
    ONLINE_ONLY = "online_only"
    NO_MODEL = "no_model"
    EXPIRED = "expired"  # the request was past its deadline: not scored


class FittedBlend(Protocol):
    """A key's own blend, learned from the outcomes both parts scored: fitted weights
    (``optimized``, :class:`~models.blend_weights.BlendWindow`) or a meta-learner (``stacked``,
    :class:`~models.stacking.MetaLearner`)."""

    def mix(self, p_batch: float, p_online: float) -> tuple[float, float, float] | None:
        """``(score, w_batch, w_online)``, or None while nothing is fitted yet (the configured
        weights apply)."""
        ...

    def observe(
        self, p_batch: float, p_online: float, won: bool, start: VersionBlend | None = None
    ) -> None:
        """Learn from one outcome both parts scored (after it was scored); ``start``: the
        active version's fitted blend to start from (``blend.start = fitted``), else None."""
        ...


class BlendFit(Protocol):
    """How keys fit their own blend (a mode's config); None in the ``fixed`` mode."""

    def fresh(self) -> FittedBlend:
        """A key's fitted blend that has learned nothing yet."""
        ...


class Blend(NamedTuple):
    """A blended score and its parts.

    ``score == w_batch * p_batch + w_online * p_online`` where a missing part has weight 0
    (except a ready ``stacked`` meta-learner's score, whose weights are each part's share of
    its input weights; see :mod:`models.stacking`); ``score`` is ``None`` (never a made-up
    number) when no model could score. A NamedTuple (immutable, and half the construction cost
    of a frozen dataclass): one is made per signal.
    """

    score: float | None
    p_batch: float | None
    p_online: float | None
    w_batch: float
    w_online: float
    status: SignalStatus
    reason: str | None


class Blender:
    """Applies the configured weights (or, with ``start = "fitted"``, the active batch
    version's fitted ones) and the cold-start rules.

    * no batch model -> online only (weights 0 / 1);
    * fewer than ``min_updates`` online updates -> batch only (weights 1 / 0);
    * neither -> ``no_model`` with no score.

    >>> blender = Blender(w_batch=0.8, w_online=0.2, min_updates=10)
    >>> blender.blend(p_batch=0.6, p_online=0.4, online_updates=10).score
    0.56
    >>> blender.blend(p_batch=None, p_online=0.4, online_updates=3).status
    <SignalStatus.NO_MODEL: 'no_model'>
    """

    def __init__(
        self, w_batch: float, w_online: float, min_updates: int, start: str = "configured"
    ) -> None:
        if start not in ("configured", "fitted"):
            raise ValueError(f"start must be configured or fitted, got {start!r}")
        self.w_batch = w_batch
        self.w_online = w_online
        self.min_updates = min_updates
        self.start = start

    def start_for(self, fitted: VersionBlend | None) -> VersionBlend | None:
        """What blends start from while a batch version with the ``fitted`` blend is active:
        that blend when ``start`` is ``fitted``, else None (the configured weights)."""
        return fitted if self.start == "fitted" else None

    def blend(
        self,
        p_batch: float | None,
        p_online: float | None,
        online_updates: int,
        fitted: FittedBlend | None = None,
        start: VersionBlend | None = None,
    ) -> Blend:
        """Combine the available parts into a :class:`Blend`: with the key's ``fitted`` blend
        when it has fitted something, else with the ``start`` weights (:meth:`start_for`), else
        with the configured weights.

        A part that is not a finite probability counts as missing: a signal never says ``ok``
        with a made-up or non-finite score.
        """
        if p_batch is not None and not 0.0 <= p_batch <= 1.0:  # False for NaN too
            p_batch = None
        if p_online is not None and not 0.0 <= p_online <= 1.0:
            p_online = None
        online_ready = p_online is not None and online_updates >= self.min_updates
        if p_batch is not None and online_ready:
            mixed = None if fitted is None else fitted.mix(p_batch, p_online)
            if mixed is None:
                if start is None:
                    w_b, w_o = self.w_batch, self.w_online
                else:
                    w_b, w_o = start.w_batch, start.w_online
                score = w_b * p_batch + w_o * p_online
            else:
                score, w_b, w_o = mixed
            return Blend(score, p_batch, p_online, w_b, w_o, SignalStatus.OK, None)
        online_reason = (
            f"online model has {online_updates} updates < min_updates {self.min_updates}"
        )
        if p_batch is not None:
            return Blend(p_batch, p_batch, None, 1.0, 0.0, SignalStatus.BATCH_ONLY, online_reason)
        if online_ready:
            return Blend(
                p_online,
                None,
                p_online,
                0.0,
                1.0,
                SignalStatus.ONLINE_ONLY,
                "no active batch model",
            )
        return Blend(
            None,
            None,
            None,
            0.0,
            0.0,
            SignalStatus.NO_MODEL,
            f"no active batch model and {online_reason}",
        )
