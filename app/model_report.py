"""Readable reports of model versions: ``models show V`` and ``models compare A B``.

Both read only a version's metadata (no model is loaded): its family and parameters, data
window, holdout and cross-validation metrics, trading metrics with their intervals, the gate's
verdict, tuning, warm start, tracking run, and its explanation (importance and mean |SHAP|);
``models show`` adds the live (shadow) metrics of a staged version next to the holdout ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

#: Holdout metrics in report order.
METRICS = ("log_loss", "roc_auc", "brier", "accuracy")
#: Trading metrics in report order.
TRADING = ("trades", "win_rate", "mean_r", "sharpe", "max_drawdown", "profit_factor")


def _when(ms: Any) -> str:
    if not isinstance(ms, int | float):
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def _interval(trading: dict[str, Any], name: str) -> str:
    bounds = (trading.get("intervals") or {}).get(name)
    if not bounds:
        return ""
    return f" [{_number(bounds[0], 3)}, {_number(bounds[1], 3)}]"


def summary_rows(
    metadata: dict[str, Any], live: dict[str, Any] | None = None
) -> Iterator[tuple[str, str]]:
    """(label, value) lines describing a version, in report order; ``live``: its shadow
    report (:meth:`models.shadow.ShadowTally.report`), shown next to the holdout."""
    model = metadata.get("model") or {}
    window = metadata.get("window") or {}
    rows = metadata.get("rows") or {}
    gate = metadata.get("gate")
    yield "family", str(metadata.get("family", "xgboost"))
    yield "rounds", _number(model.get("rounds"))
    yield "created", str(metadata.get("created_at", "-"))
    yield "window from", _when(window.get("first_ts"))
    yield "window to", _when(window.get("last_ts"))
    yield "window rows", _number(window.get("rows"))
    for part in ("train", "validation", "holdout", "purged"):
        yield f"  {part} rows", _number(rows.get(part))
    yield "source", str(metadata.get("source", "-"))
    yield "parent", str(metadata.get("parent_version") or "-")
    yield "reason", str(metadata.get("reason") or "-")
    if gate is None:
        yield "gate", "-"
    else:
        yield "gate", "passed" if gate.get("promote") else "rejected"
        yield (
            "  improvement",
            f"{_number(gate.get('improvement'), 5)} ({gate.get('primary_metric')})",
        )
        yield "  p value", _number(gate.get("p_value"))
    holdout = metadata.get("holdout_metrics") or {}
    for name in METRICS:
        yield f"holdout {name}", _number(holdout.get(name))
        if live is not None and name in (live.get("staged") or {}):
            champion = (live.get("champion") or {}).get(name)
            yield (
                f"live {name}",
                _number(live["staged"][name])
                + ("" if champion is None else f" (champion {_number(champion)})"),
            )
    if live is not None:
        yield from _live_rows(live)
    trading = holdout.get("trading") or {}
    if trading:
        level = (trading.get("intervals") or {}).get("level")
        yield (
            "trading",
            f"taken at p >= {trading.get('threshold')}"
            + (f", {100 * level:.0f}% bootstrap intervals" if level else ""),
        )
        for name in TRADING:
            yield f"  {name}", _number(trading.get(name)) + _interval(trading, name)
    yield from _training_rows(metadata)
    folds = (metadata.get("cross_validation") or {}).get("summary") or {}
    for name in ("log_loss", "base_log_loss", "roc_auc"):
        if name in folds:
            yield f"cv {name}", f"{_number(folds[name]['mean'])} ± {_number(folds[name]['std'])}"
    explanation = metadata.get("explanation") or {}
    shares = (explanation.get("importance") or {}).get("shares") or {}
    shap = explanation.get("mean_abs_shap") or {}
    kind = (explanation.get("importance") or {}).get("kind", "importance")
    for name in sorted(shares, key=lambda f: -(shap.get(f) or shares.get(f) or 0.0)):
        yield (
            f"feature {name}",
            f"{kind} {_number(shares[name], 3)}, mean |SHAP| {_number(shap.get(name))}",
        )
    parameters = (metadata.get("model") or {}).get("parameters") or {}
    for name in sorted(parameters):
        yield f"param {name}", str(parameters[name])


def _live_rows(live: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """The shadow evaluation's counts and paired test."""
    yield (
        "live outcomes",
        f"{_number(live.get('outcomes'))} ({_number(live.get('paired'))} also scored by "
        "the champion)",
    )
    improvement = live.get("improvement")
    if improvement:
        yield (
            "  live improvement",
            f"{_number(improvement['mean'], 5)} log loss "
            f"[{_number(improvement['ci_low'], 5)}, {_number(improvement['ci_high'], 5)}]",
        )
        yield "  live p value", _number(improvement["p_value"])
        yield "  live verdict", "better" if improvement["better"] else "not shown better"


def _training_rows(metadata: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Tuning, warm start and the tracking run."""
    tuning = metadata.get("tuning")
    if tuning:
        counts = tuning.get("trials") or {}
        best = tuning.get("best") or {}
        yield (
            "tuning",
            f"{counts.get('total', 0)} trials ({counts.get('pruned', 0)} pruned), "
            + ("best adopted" if tuning.get("adopted") else "defaults kept"),
        )
        yield (
            "  tuning cv log_loss",
            (
                f"{_number(best.get('cv_log_loss'))} (defaults "
                f"{_number((tuning.get('baseline') or {}).get('cv_log_loss'))})"
            ),
        )
    warm = metadata.get("warm_start")
    if warm:
        yield (
            "warm start",
            f"from {warm.get('from_version')} ({_number(warm.get('initial_rounds'))} rounds)"
            if warm.get("used")
            else f"no: {warm.get('reason')}",
        )
    tracking = metadata.get("tracking")
    if tracking:
        yield "tracking", str(tracking.get("run_id") or tracking.get("error") or "-")


def render_show(
    version: str, role: str, metadata: dict[str, Any], live: dict[str, Any] | None = None
) -> str:
    """``models show V``: one line per fact (``live``: the shadow report, if any)."""
    lines = [f"version {version} ({role})"]
    lines += [f"  {label:<28} {value}" for label, value in summary_rows(metadata, live)]
    return "\n".join(lines)


def compare_rows(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(label, value of A, value of B) for every label either version has, A's order first."""
    left, right = dict(summary_rows(a)), dict(summary_rows(b))
    labels = list(left) + [label for label in right if label not in left]
    return [(label, left.get(label, "-"), right.get(label, "-")) for label in labels]


def render_compare(a: tuple[str, str, dict[str, Any]], b: tuple[str, str, dict[str, Any]]) -> str:
    """``models compare A B``: the two versions side by side; ``*`` marks lines that differ."""
    rows = compare_rows(a[2], b[2])
    width = max([28, *(len(value) for _, value, _ in rows)])
    lines = [f"  {'':<28} {f'{a[0]} ({a[1]})':<{width}}  {b[0]} ({b[1]})"]
    for label, left, right in rows:
        mark = "*" if left != right else " "
        lines.append(f"{mark} {label:<28} {left:<{width}}  {right}")
    note = (
        "holdout metrics are each version's own holdout: compare them only when the windows "
        "match; * marks lines that differ"
    )
    return "\n".join([*lines, "", note])
