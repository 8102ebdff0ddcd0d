"""The live (shadow) metrics of a staged version, added up over every key's stored state.

The learner keeps one :class:`~models.shadow.ShadowTally` per key in the key's state
(checkpointed with its applied offset); this reads them all, as ``streamlearn status`` reads
the states, and adds up those of one version.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from app.composition import redis_connection
from app.status import learner_state
from config import Settings
from models.codec import StateCodecError, shadow_of
from models.shadow import ShadowTally

log = logging.getLogger(__name__)


def live_report(settings: Settings, version: str) -> dict[str, Any] | None:
    """``version``'s shadow report at the gate's alpha and margin, or None when no outcome
    was scored with it (or there is no Redis to read the learner's state from)."""
    redis = redis_connection(settings)
    if redis is None:
        return None
    tallies = []
    for snapshot in asyncio.run(learner_state(settings, redis)).values():
        for key, blob in snapshot.states.items():
            try:
                tally = shadow_of(blob)
            except StateCodecError as exc:  # a corrupt key is quarantined by its worker
                log.warning("state not readable", extra={"key": key, "error": str(exc)})
                continue
            if tally is not None:
                tallies.append(tally)
    total = ShadowTally.combined(tallies, version)
    if total.n == 0:
        return None
    return total.report(settings.retrain.alpha, settings.retrain.margin)
