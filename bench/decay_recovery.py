"""What window decay buys and costs the online learner, by decay setting.

Prints a Markdown table and saves ``bench/results/decay_recovery.json``. Two streams per seed,
each scored prequentially (predict, then learn) by every decay setting side by side:

* **flip**: the market flips from momentum to mean reversion after 30,000 outcomes;
  "recovery" is the number of outcomes until the 300-outcome rolling accuracy is back to 95% of
  the 10,000 outcomes before the flip;
* **stationary**: the same market with no flip (what decay costs when nothing changes).

Whole-stream accuracy and log loss are reported for both. The design's spelling (window 1,000
outcomes, decay factor 0.95) is one of the rows, as its half-life.

    python -m bench.decay_recovery
"""

from __future__ import annotations

import time

import numpy as np

from bench.harness import save
from models.decay import half_life_of_window
from models.evaluation import hits, log_loss, outcomes_to_recover, prequential_probabilities
from models.market import MarketSimulator
from models.online import OnlineConfig, OnlineLearner

FLIP, AFTER, WINDOW = 30_000, 8_000, 300
DESIGN = half_life_of_window(1000, 0.95)
DECAYS: dict[str, float | None] = {
    "off": None,
    "half-life 250": 250,
    "half-life 500": 500,
    "half-life 1000": 1000,
    "half-life 2000": 2000,
    "half-life 5000": 5000,
    "window 1000 x 0.95": DESIGN,
}
SEEDS = (1, 2, 3, 4, 5)


def _scored(half_life: float | None, outcomes: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    learner = OnlineLearner(OnlineConfig(decay_half_life=half_life))
    probabilities = prequential_probabilities(learner, outcomes)
    labels = np.array([o["label"] for o in outcomes], dtype=float)
    return probabilities, labels


def run(half_life: float | None, flipping: list[dict], stationary: list[dict]) -> dict:
    """One decay setting on one seed's two streams."""
    probabilities, labels = _scored(half_life, flipping)
    right = hits(probabilities, labels)
    recovery, before = outcomes_to_recover(right, FLIP, window=WINDOW)
    still, still_labels = _scored(half_life, stationary)
    return {
        "accuracy_before_flip": before,
        "accuracy_first_1000_after": float(right[FLIP : FLIP + 1000].mean()),
        "recovery_outcomes": recovery,
        "flip_accuracy": float(right.mean()),
        "flip_log_loss": log_loss(probabilities, labels),
        "stationary_accuracy": float(hits(still, still_labels).mean()),
        "stationary_log_loss": log_loss(still, still_labels),
    }


def main() -> None:
    started = time.time()
    rows: dict[str, list[dict]] = {name: [] for name in DECAYS}
    for seed in SEEDS:
        flipping = MarketSimulator(seed=seed, change_points=[FLIP]).outcomes(FLIP + AFTER)
        stationary = MarketSimulator(seed=seed).outcomes(FLIP + AFTER)
        for name, half_life in DECAYS.items():
            rows[name].append(run(half_life, flipping, stationary))
    baseline = np.mean([r["recovery_outcomes"] for r in rows["off"]])
    print(
        "| decay | half-life | recovery (outcomes) | vs off | acc before flip | acc 1000 after "
        "| flip: acc / log loss | stationary: acc / log loss |"
    )
    print("|---|---|---|---|---|---|---|---|")
    summary = {}
    for name, results in rows.items():
        mean = {k: float(np.mean([r[k] for r in results])) for k in results[0]}
        half_life = DECAYS[name]
        summary[name] = {
            "half_life": half_life,
            **{f"{k}_mean": v for k, v in mean.items()},
            "recovery_ratio_vs_off": mean["recovery_outcomes"] / baseline,
            "per_seed": results,
        }
        print(
            f"| {name} | {'-' if half_life is None else f'{half_life:,.0f}'} | "
            f"{mean['recovery_outcomes']:,.0f} | {mean['recovery_outcomes'] / baseline:.2f} | "
            f"{mean['accuracy_before_flip']:.3f} | {mean['accuracy_first_1000_after']:.3f} | "
            f"{mean['flip_accuracy']:.4f} / {mean['flip_log_loss']:.4f} | "
            f"{mean['stationary_accuracy']:.4f} / {mean['stationary_log_loss']:.4f} |"
        )
    path = save(
        "decay_recovery",
        {
            "seeds": SEEDS,
            "flip_at": FLIP,
            "stream_length": FLIP + AFTER,
            "seconds": round(time.time() - started, 1),
            "results": summary,
        },
    )
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main()
