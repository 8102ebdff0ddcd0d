"""How fast the online learner recovers after a regime flip, by decay half-life.

Prints a Markdown table and saves ``bench/results/decay_recovery.json``. For each seed the
market flips from momentum to mean reversion after 30,000 outcomes; "recovery" is the number of
outcomes until the 300-outcome rolling accuracy is back to 95% of the 10,000 outcomes before the
flip. Every half-life runs on the same streams, so the ratio against decay-off is side by side.

    python -m bench.decay_recovery
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np

from models.evaluation import outcomes_to_recover, prequential_hits
from models.market import MarketSimulator
from models.online import OnlineConfig, OnlineLearner

FLIP, AFTER, WINDOW = 30_000, 8_000, 300
HALF_LIVES = (None, 250, 500, 1000, 2000)
SEEDS = (1, 2, 3, 4, 5)
RESULTS = Path(__file__).parent / "results" / "decay_recovery.json"


def run(half_life: float | None, outcomes: list[dict]) -> dict[str, float]:
    hits = prequential_hits(OnlineLearner(OnlineConfig(decay_half_life=half_life)), outcomes)
    recovery, before = outcomes_to_recover(hits, FLIP, window=WINDOW)
    return {
        "accuracy_before_flip": before,
        "accuracy_first_1000_after": float(hits[FLIP : FLIP + 1000].mean()),
        "recovery_outcomes": recovery,
    }


def main() -> None:
    started = time.time()
    rows: dict[str, list[dict[str, float]]] = {str(h): [] for h in HALF_LIVES}
    for seed in SEEDS:
        outcomes = MarketSimulator(seed=seed, change_points=[FLIP]).outcomes(FLIP + AFTER)
        for half_life in HALF_LIVES:
            rows[str(half_life)].append(run(half_life, outcomes))
    baseline = np.mean([r["recovery_outcomes"] for r in rows["None"]])
    print(
        "| half-life | recovery (mean outcomes) | vs decay off | acc before flip | "
        "acc first 1000 after |"
    )
    print("|---|---|---|---|---|")
    summary = {}
    for name, results in rows.items():
        recovery = float(np.mean([r["recovery_outcomes"] for r in results]))
        before = float(np.mean([r["accuracy_before_flip"] for r in results]))
        after = float(np.mean([r["accuracy_first_1000_after"] for r in results]))
        summary[name] = {
            "recovery_outcomes_mean": recovery,
            "ratio_vs_off": recovery / baseline,
            "accuracy_before_flip": before,
            "accuracy_first_1000_after": after,
            "per_seed": results,
        }
        label = "off" if name == "None" else name
        print(
            f"| {label} | {recovery:,.0f} | {recovery / baseline:.2f} | {before:.3f} | "
            f"{after:.3f} |"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "decay_recovery",
                "seeds": SEEDS,
                "flip_at": FLIP,
                "machine": platform.platform(),
                "seconds": round(time.time() - started, 1),
                "results": summary,
            },
            indent=2,
        )
    )
    print(f"\nsaved {RESULTS}")


if __name__ == "__main__":
    main()
