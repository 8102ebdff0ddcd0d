"""Readable reports of model versions: ``models show V`` and ``models compare A B``.

Both read only a version's metadata (no model is loaded): its family and parameters, data
window, holdout and cross-validation metrics, trading metrics with their intervals, the gate's
verdict, and its explanation (importance and mean |SHAP|).
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


def summary_rows(metadata: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(label, value) lines describing a version, in report order."""
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


def render_show(version: str, role: str, metadata: dict[str, Any]) -> str:
    """``models show V``: one line per fact."""
    lines = [f"version {version} ({role})"]
    lines += [f"  {label:<28} {value}" for label, value in summary_rows(metadata)]
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
