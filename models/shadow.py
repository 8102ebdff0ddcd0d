"""Shadow evaluation: a staged batch version is scored on live outcomes next to the champion.

The learner scores every outcome with the staged version (never served in signals) before
learning it, exactly like the active one (prequential), and adds both to the key's
:class:`ShadowTally`. A tally holds sums only, so tallies of every key and partition add up
to the version's live numbers, and the paired differences (champion loss minus staged loss on
the same outcomes) give a one-sided test of "the staged version is better live" without
keeping any outcome (:meth:`ShadowTally.report`). The tally lives in the key's state and is
checkpointed with its applied offset, so a replayed outcome is never counted twice. A key
whose tally is for another version starts a new one when the staged version changes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from scipy.stats import norm

_P_MIN = 1e-15
_P_MAX = 1 - 1e-15


def _log_loss(won: bool, p: float) -> float:
    p = _P_MIN if p < _P_MIN else _P_MAX if p > _P_MAX else p
    return -math.log(p) if won else -math.log(1 - p)


@dataclass
class ShadowTally:
    """Running sums of one staged version's live predictions (and the champion's on the same
    outcomes) for one key, or added up over many."""

    version: str
    n: int = 0
    wins: int = 0
    log_loss: float = 0.0
    brier: float = 0.0
    correct: int = 0
    #: Outcomes the champion scored too (there is one, and it was loaded).
    paired: int = 0
    champion_log_loss: float = 0.0
    champion_brier: float = 0.0
    champion_correct: int = 0
    #: Sums over paired outcomes of (champion loss - staged loss) and of its square.
    difference: float = 0.0
    difference_sq: float = 0.0

    def update(self, won: bool, p_staged: float, p_champion: float | None) -> None:
        """Score one outcome: the staged version's prediction and the champion's (if any)."""
        target = 1.0 if won else 0.0
        loss = _log_loss(won, p_staged)
        self.n += 1
        self.wins += int(won)
        self.log_loss += loss
        self.brier += (p_staged - target) ** 2
        self.correct += int((p_staged > 0.5) == won)
        if p_champion is None:
            return
        champion_loss = _log_loss(won, p_champion)
        self.paired += 1
        self.champion_log_loss += champion_loss
        self.champion_brier += (p_champion - target) ** 2
        self.champion_correct += int((p_champion > 0.5) == won)
        gain = champion_loss - loss
        self.difference += gain
        self.difference_sq += gain * gain

    @classmethod
    def combined(cls, tallies: Iterable[ShadowTally], version: str) -> ShadowTally:
        """The sum of the tallies of ``version`` (others are ignored)."""
        total = cls(version)
        for tally in tallies:
            if tally.version != version:
                continue
            for f in fields(cls):
                if f.name != "version":
                    setattr(total, f.name, getattr(total, f.name) + getattr(tally, f.name))
        return total

    def encode(self) -> dict[str, Any]:
        """Plain data for the key's state."""
        return asdict(self)

    @classmethod
    def decode(cls, doc: Mapping[str, Any]) -> ShadowTally:
        """A tally from :meth:`encode`; ``ValueError`` on anything malformed."""
        if not isinstance(doc, Mapping) or not isinstance(doc.get("version"), str):
            raise ValueError("shadow must be an object with a version")
        values: dict[str, Any] = {"version": doc["version"]}
        for f in fields(cls):
            if f.name == "version":
                continue
            value = doc.get(f.name, 0)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"shadow.{f.name} must be a number")
            if f.type == "int" and (not isinstance(value, int) or value < 0):
                raise ValueError(f"shadow.{f.name} must be a count")
            if not math.isfinite(value):
                raise ValueError(f"shadow.{f.name} must be finite")
            values[f.name] = value
        tally = cls(**values)
        if not tally.paired <= tally.n or not tally.wins <= tally.n:
            raise ValueError("shadow counts are inconsistent")
        return tally

    def report(self, alpha: float = 0.05, margin: float = 0.0) -> dict[str, Any]:
        """The live metrics of the staged version and the champion, and the paired test: the
        mean log-loss improvement (champion - staged; positive: the staged version is better),
        its two-sided ``1 - 2 alpha`` interval and the one-sided p-value of "no better than
        ``margin``" (normal approximation of the mean of the paired differences)."""
        report: dict[str, Any] = {
            "version": self.version,
            "outcomes": self.n,
            "win_rate": self.wins / self.n if self.n else None,
            "staged": _metrics(self.n, self.log_loss, self.brier, self.correct),
            "paired": self.paired,
            "champion": _metrics(
                self.paired, self.champion_log_loss, self.champion_brier, self.champion_correct
            ),
        }
        if self.paired >= 2:
            mean = self.difference / self.paired
            variance = max(self.difference_sq / self.paired - mean * mean, 0.0)
            se = math.sqrt(variance * self.paired / (self.paired - 1) / self.paired)
            z = float(norm.ppf(1.0 - alpha))
            if se == 0:
                p_value = 0.0 if mean > margin else 1.0
            else:
                p_value = float(norm.sf((mean - margin) / se))
            report["improvement"] = {
                "metric": "log_loss",
                "mean": mean,
                "ci_low": mean - z * se,
                "ci_high": mean + z * se,
                "p_value": p_value,
                "margin": margin,
                "alpha": alpha,
                "better": bool(p_value < alpha),
            }
        return report


def _metrics(n: int, log_loss: float, brier: float, correct: int) -> dict[str, float | None]:
    if not n:
        return {"log_loss": None, "brier": None, "accuracy": None}
    return {"log_loss": log_loss / n, "brier": brier / n, "accuracy": correct / n}
