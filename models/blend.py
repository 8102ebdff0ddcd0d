"""Blending the batch and online probabilities into one signal, with explicit cold starts."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from models.stacking import MetaLearner


class SignalStatus(StrEnum):
    """Which parts made a score; anything but ``OK`` is a cold start, said out loud."""

    OK = "ok"
    BATCH_ONLY = "batch_only"
    ONLINE_ONLY = "online_only"
    NO_MODEL = "no_model"


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
    """Applies the configured weights and the cold-start rules.

    * no batch model -> online only (weights 0 / 1);
    * fewer than ``min_updates`` online updates -> batch only (weights 1 / 0);
    * neither -> ``no_model`` with no score.

    >>> blender = Blender(w_batch=0.8, w_online=0.2, min_updates=10)
    >>> blender.blend(p_batch=0.6, p_online=0.4, online_updates=10).score
    0.56
    >>> blender.blend(p_batch=None, p_online=0.4, online_updates=3).status
    <SignalStatus.NO_MODEL: 'no_model'>
    """

    def __init__(self, w_batch: float, w_online: float, min_updates: int) -> None:
        self.w_batch = w_batch
        self.w_online = w_online
        self.min_updates = min_updates

    def blend(
        self,
        p_batch: float | None,
        p_online: float | None,
        online_updates: int,
        w_batch: float | None = None,
        stack: MetaLearner | None = None,
    ) -> Blend:
        """Combine the available parts into a :class:`Blend`; ``w_batch`` is the key's fitted
        batch weight (``optimized`` mode) when it has one, else the configured weight applies;
        ``stack`` is the key's meta-learner (``stacked`` mode), which scores once it is ready.

        A part that is not a finite probability counts as missing: a signal never says ``ok``
        with a made-up or non-finite score.
        """
        if p_batch is not None and not 0.0 <= p_batch <= 1.0:  # False for NaN too
            p_batch = None
        if p_online is not None and not 0.0 <= p_online <= 1.0:
            p_online = None
        online_ready = p_online is not None and online_updates >= self.min_updates
        if p_batch is not None and online_ready:
            if stack is not None and stack.ready:
                w_b, w_o = stack.part_weights()
                score = stack.score(p_batch, p_online)
                return Blend(score, p_batch, p_online, w_b, w_o, SignalStatus.OK, None)
            if w_batch is None:
                w_b, w_o = self.w_batch, self.w_online
            else:
                w_b, w_o = w_batch, 1.0 - w_batch
            score = w_b * p_batch + w_o * p_online
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
