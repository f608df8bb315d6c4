"""Evaluation metrics (DESIGN §6) and the paper's results-table layout (Tab. 2/3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rewards.action import exact_match, type_match
from rewards.config import RewardConfig
from shop_env.actions import ACTION_TYPES, Action


def compute_metrics(predictions: Sequence[Action | None], golds: Sequence[Action],
                    config: RewardConfig | None = None, strict_text: bool = False) -> dict[str, Any]:
    """Accuracy metrics of predictions against logged actions.

    Args:
        predictions: one per gold; None marks an invalid (unparseable) output, which
            counts as a wrong prediction, not as a class of its own.
        golds: the logged actions.
        config: supplies the exact-match ROUGE threshold.
        strict_text: exact match demands equal normalised typed text.

    Returns:
        ``{"n", "exact_match", "type_accuracy", "type_macro_f1", "invalid_rate",
        "per_type": {gold type: {"n", "exact_match", "type_accuracy"}}}``; rates are
        fractions in [0, 1] (0.0 when n == 0). Macro-F1 averages the per-class F1 over
        the gold types present.

    Raises:
        ValueError: the two sequences differ in length.
    """
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions for {len(golds)} gold actions")
    n = len(golds)
    exact = [exact_match(p, g, config, strict_text=strict_text) for p, g in zip(predictions, golds, strict=True)]
    typed = [type_match(p, g) for p, g in zip(predictions, golds, strict=True)]
    invalid = sum(p is None for p in predictions)
    classes = _ordered_types({g.type for g in golds})
    per_type = {}
    for kind in classes:
        idx = [i for i, g in enumerate(golds) if g.type == kind]
        per_type[kind] = {
            "n": len(idx),
            "exact_match": _rate(sum(exact[i] for i in idx), len(idx)),
            "type_accuracy": _rate(sum(typed[i] for i in idx), len(idx)),
        }
    return {
        "n": n,
        "exact_match": _rate(sum(exact), n),
        "type_accuracy": _rate(sum(typed), n),
        "type_macro_f1": _macro_f1(predictions, golds, classes),
        "invalid_rate": _rate(invalid, n),
        "per_type": per_type,
    }


def _macro_f1(predictions: Sequence[Action | None], golds: Sequence[Action], classes: list[str]) -> float:
    if not classes:
        return 0.0
    pred_types = [p.type if isinstance(p, Action) else None for p in predictions]
    scores = []
    for kind in classes:
        tp = sum(pt == kind and g.type == kind for pt, g in zip(pred_types, golds, strict=True))
        predicted = sum(pt == kind for pt in pred_types)
        actual = sum(g.type == kind for g in golds)
        # F1 = 2TP / (predicted + actual); equals 2PR/(P+R) and is 0 when TP == 0.
        scores.append(2 * tp / (predicted + actual) if tp else 0.0)
    return sum(scores) / len(scores)


def _rate(count: int, total: int) -> float:
    return count / total if total else 0.0


def _ordered_types(kinds: set[str] | Sequence[str]) -> list[str]:
    """Canonical action types first, in ACTION_TYPES order, then any others sorted."""
    kinds = set(kinds)
    return [k for k in ACTION_TYPES if k in kinds] + sorted(kinds - set(ACTION_TYPES))


_TYPE_LABELS = {"click": "Click", "type_and_submit": "Type & submit", "terminate": "Terminate",
                "scroll": "Scroll"}


def markdown_table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """Render metrics dicts as the paper's results table (Tab. 2 overall + Tab. 3 per type).

    Args:
        rows: model/agent name -> a :func:`compute_metrics` dict (missing keys render as
            "–").

    Returns:
        A GitHub Markdown table: Model | Exact | Type acc | Type F1 | then, per action type
        present in any row, "<type> exact" and "<type> type"; values are percentages with
        2 decimals.
    """
    kinds = _ordered_types({k for m in rows.values() for k in (m.get("per_type") or {})})
    header = ["Model", "Exact", "Type acc", "Type F1"]
    for kind in kinds:
        label = _TYPE_LABELS.get(kind, kind)
        header += [f"{label} exact", f"{label} type"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for name, metrics in rows.items():
        per_type = metrics.get("per_type") or {}
        cells = [_escape(str(name)), _pct(metrics.get("exact_match")), _pct(metrics.get("type_accuracy")),
                 _pct(metrics.get("type_macro_f1"))]
        for kind in kinds:
            entry = per_type.get(kind) or {}
            cells += [_pct(entry.get("exact_match")), _pct(entry.get("type_accuracy"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _pct(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return "–"
    return f"{100 * value:.2f}"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
