"""Prints the chaos results (``bench/results/chaos.json``, written by ``make chaos``) as Markdown.

``python -m bench.chaos_table``
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "chaos.json"


def render(rows: list[dict]) -> str:
    """One table row per scenario and engine."""
    lines = [
        "| scenario | engine | events injected | outcomes | lost | duplicated | "
        "max \\|weight diff\\| | requests | unanswered | non-finite scores | worker exits | "
        "dead letters |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        letters = ", ".join(f"{k} {v}" for k, v in sorted(row["dead_letters"].items()))
        lines.append(
            f"| {row['scenario']} | {row['engine']} | {row['events']} | {row['outcomes']:,} | "
            f"{row['lost']} | {row['duplicated']} | {row['max_weight_diff']:g} | "
            f"{row['requests']:,} | {row['unanswered']} | {row['non_finite_scores']} | "
            f"{row['worker_exits']} | {letters} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(json.loads(RESULTS.read_text())))
