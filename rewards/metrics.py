"""Evaluation metrics (docs/architecture.md §6) and the paper's results-table layout (Tab. 2/3).

Exact match and type accuracy carry 95% confidence intervals from a bootstrap over
*sessions* (:func:`bootstrap_ci`): the states of one session share a shopper and a page
history, so resampling states one by one would understate the uncertainty.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from rewards.action import exact_match, type_match
from rewards.config import RewardConfig
from shop_env.actions import ACTION_TYPES, Action

#: Bootstrap settings used by :func:`compute_metrics` (recorded in its ``ci`` entry).
CI_LEVEL = 0.95
CI_RESAMPLES = 1000
CI_SEED = 0
#: The ``predicted_type_share`` key of answers that do not parse.
INVALID = "invalid"


def bootstrap_ci(values: Sequence[float] | np.ndarray, session_ids: Sequence[Hashable] | None = None, *,
                 n_resamples: int = CI_RESAMPLES, seed: int = CI_SEED,
                 level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of per-state values, by session.

    Each resample draws as many sessions as there are, with replacement, and takes the
    mean over all states of the drawn sessions (the same ratio as the point estimate:
    a long session weighs by its states). With ``session_ids`` None every state is its own
    session (the plain state bootstrap, which is too narrow when a session's states are
    correlated).

    The draws are ``numpy.random.default_rng(seed).integers(0, S, size=(n_resamples, S))``
    over the S sessions in order of first appearance, so a seed fixes the result. The
    bounds are the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles (numpy's default
    linear interpolation) of the resample means, widened to the point estimate in the
    rare case a skewed resample distribution leaves it outside. All-equal values give
    the degenerate interval ``(v, v)``; no values give ``(0.0, 0.0)`` (the rates' own
    convention for n == 0).

    Args:
        values: one number per state (e.g. 0/1 exact-match flags).
        session_ids: one per value: the session each state belongs to.
        n_resamples: bootstrap resamples (>= 1).
        seed: the random generator's seed.
        level: coverage in (0, 1).

    Returns:
        ``(low, high)`` as floats.

    Raises:
        ValueError: lengths differ, ``values`` is not 1-D, ``n_resamples < 1`` or
            ``level`` outside (0, 1).
    """
    data = np.asarray(values, dtype=float)
    if data.ndim != 1:
        raise ValueError(f"values must be one number per state, got shape {data.shape}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if session_ids is None:
        groups = np.arange(data.size)
    else:
        if len(session_ids) != data.size:
            raise ValueError(f"{len(session_ids)} session ids for {data.size} values")
        first: dict[Hashable, int] = {}
        groups = np.fromiter((first.setdefault(s, len(first)) for s in session_ids), dtype=np.int64,
                             count=data.size)
    if data.size == 0:
        return (0.0, 0.0)
    point = float(data.mean())
    if np.all(data == data[0]):
        return (float(data[0]), float(data[0]))
    n_groups = int(groups.max()) + 1
    sums = np.bincount(groups, weights=data, minlength=n_groups)
    counts = np.bincount(groups, minlength=n_groups).astype(float)
    draws = np.random.default_rng(seed).integers(0, n_groups, size=(n_resamples, n_groups))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return (min(float(low), point), max(float(high), point))


def paired_difference(values: Sequence[float] | np.ndarray, baseline: Sequence[float] | np.ndarray,
                      session_ids: Sequence[Hashable] | None = None, *, n_resamples: int = CI_RESAMPLES,
                      seed: int = CI_SEED, level: float = CI_LEVEL) -> dict[str, Any]:
    """The mean difference of two agents' per-state scores on the same states, with a paired interval.

    Two rows' own intervals overlapping says little when both answered the same states:
    their errors are correlated. The paired bootstrap resamples whole sessions once for
    both rows, which is :func:`bootstrap_ci` of the per-state differences (the mean of
    differences is the difference of means over the same states).

    Args:
        values: one score per state for the compared agent (e.g. 0/1 exact-match flags).
        baseline: the baseline agent's score on the same states, in the same order.
        session_ids: one per state; None treats every state as its own session.
        n_resamples, seed, level: as in :func:`bootstrap_ci`.

    Returns:
        ``{"diff": mean(values - baseline), "ci": [low, high], "n": states,
        "n_sessions": sessions, "resolved": the interval excludes 0}``; fractions, not percent.

    Raises:
        ValueError: the two score lists (or the session ids) differ in length, or a bad
            bootstrap setting.
    """
    a = np.asarray(values, dtype=float)
    b = np.asarray(baseline, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired scores need the same states: {a.size} values against {b.size} baseline values")
    diff = a - b
    low, high = bootstrap_ci(diff, session_ids, n_resamples=n_resamples, seed=seed, level=level)
    sessions = diff.size if session_ids is None else len(set(session_ids))
    return {"diff": float(diff.mean()) if diff.size else 0.0, "ci": [low, high], "n": int(diff.size),
            "n_sessions": int(sessions), "resolved": bool(low > 0.0 or high < 0.0)}


def compute_metrics(predictions: Sequence[Action | None], golds: Sequence[Action],
                    config: RewardConfig | None = None, strict_text: bool = False,
                    session_ids: Sequence[Hashable] | None = None) -> dict[str, Any]:
    """Accuracy metrics of predictions against logged actions.

    Args:
        predictions: one per gold; None marks an invalid (unparseable) output, which
            counts as a wrong prediction, not as a class of its own.
        golds: the logged actions.
        config: supplies the exact-match ROUGE threshold.
        strict_text: exact match demands equal normalised typed text.
        session_ids: one per gold, the session of each state; given, the result also
            carries 95% session-bootstrap intervals (:func:`bootstrap_ci`, 1000
            resamples, seed 0).

    Returns:
        ``{"n", "exact_match", "type_accuracy", "type_macro_f1", "invalid_rate",
        "predicted_type_share": {type or "invalid": fraction of all predictions},
        "per_type": {gold type: {"n", "exact_match", "type_accuracy"}}}``; rates are
        fractions in [0, 1] (0.0 when n == 0). Macro-F1 averages the per-class F1 over
        the gold types present. ``predicted_type_share`` lists every action type of
        :data:`~shop_env.actions.ACTION_TYPES` and ``"invalid"`` (then any other predicted
        type) and sums to 1 when n > 0. With ``session_ids`` also ``"n_sessions"``,
        ``"exact_match_ci"`` and ``"type_accuracy_ci"`` (``[low, high]``) and ``"ci"``
        (``{"level", "resamples", "seed", "unit": "session"}``).

    Raises:
        ValueError: the sequences differ in length.
    """
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions for {len(golds)} gold actions")
    if session_ids is not None and len(session_ids) != len(golds):
        raise ValueError(f"{len(session_ids)} session ids for {len(golds)} gold actions")
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
    metrics: dict[str, Any] = {
        "n": n,
        "exact_match": _rate(sum(exact), n),
        "type_accuracy": _rate(sum(typed), n),
        "type_macro_f1": _macro_f1(predictions, golds, classes),
        "invalid_rate": _rate(invalid, n),
        "predicted_type_share": _type_share(predictions),
        "per_type": per_type,
    }
    if session_ids is not None:
        ids = list(session_ids)
        metrics["n_sessions"] = len(set(ids))
        metrics["exact_match_ci"] = list(bootstrap_ci([float(e) for e in exact], ids))
        metrics["type_accuracy_ci"] = list(bootstrap_ci([float(t) for t in typed], ids))
        metrics["ci"] = {"level": CI_LEVEL, "resamples": CI_RESAMPLES, "seed": CI_SEED, "unit": "session"}
    return metrics


def _type_share(predictions: Sequence[Action | None]) -> dict[str, float]:
    counts: dict[str, int] = {kind: 0 for kind in ACTION_TYPES}
    counts[INVALID] = 0
    for pred in predictions:
        kind = pred.type if isinstance(pred, Action) else INVALID
        counts[kind] = counts.get(kind, 0) + 1
    return {kind: _rate(count, len(predictions)) for kind, count in counts.items()}


def predicted_type_share(metrics: Mapping[str, Any]) -> dict[str, float] | None:
    """The share of each predicted type (and ``"invalid"``) among a metrics dict's predictions.

    Reads ``predicted_type_share`` when present, else derives it from the
    ``confusion`` table (``{gold: {predicted or "invalid": count}}``) that
    ``agents.evaluation`` writes, so older metrics files work too.

    Returns:
        Type -> fraction of all predictions, or None when neither field is there (or there
        are no predictions).
    """
    share = metrics.get("predicted_type_share")
    if isinstance(share, Mapping):
        return {str(k): float(v) for k, v in share.items() if _is_number(v)}
    confusion = metrics.get("confusion")
    if not isinstance(confusion, Mapping):
        return None
    counts: dict[str, float] = {}
    for row in confusion.values():
        if isinstance(row, Mapping):
            for kind, count in row.items():
                if _is_number(count):
                    counts[str(kind)] = counts.get(str(kind), 0) + count
    total = sum(counts.values())
    if not total:
        return None
    return {kind: count / total for kind, count in counts.items()}


def terminate_share(metrics: Mapping[str, Any]) -> float | None:
    """Fraction of a row's predictions (valid or not) whose type is ``terminate``."""
    share = predicted_type_share(metrics)
    return None if share is None else share.get("terminate", 0.0)


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

#: An extra table column: header and a function of the row's metrics dict giving a fraction.
Column = tuple[str, Callable[[Mapping[str, Any]], Any]]


def markdown_table(rows: Mapping[str, Mapping[str, Any]], extra: Sequence[Column] = ()) -> str:
    """Render metrics dicts as the paper's results table (Tab. 2 overall + Tab. 3 per type).

    Args:
        rows: model/agent name -> a :func:`compute_metrics` dict (missing keys render as
            "–").
        extra: more percentage columns, placed after "Type F1": ``(header, fn)`` where
            ``fn(metrics)`` returns a fraction (or None for "–").

    Returns:
        A GitHub Markdown table: Model | Exact | Type acc | Type F1 | extra columns |
        States (when any row has ``n``) | Sessions (when any row has ``n_sessions``) | then,
        per action type present in any row, "<type> exact" and "<type> type". Values are
        percentages with 2 decimals; an Exact or Type acc value with its interval
        (``exact_match_ci`` / ``type_accuracy_ci``) reads ``12.3 [8.1, 16.9]`` (1 decimal:
        the interval shows what the digits beyond are worth).
    """
    kinds = _ordered_types({k for m in rows.values() for k in (m.get("per_type") or {})})
    counts = [(label, key) for label, key in (("States", "n"), ("Sessions", "n_sessions"))
              if any(key in m for m in rows.values())]
    header = ["Model", "Exact", "Type acc", "Type F1"] + [label for label, _ in extra]
    header += [label for label, _ in counts]
    for kind in kinds:
        label = _TYPE_LABELS.get(kind, kind)
        header += [f"{label} exact", f"{label} type"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for name, metrics in rows.items():
        per_type = metrics.get("per_type") or {}
        cells = [_escape(str(name)), _with_ci(metrics, "exact_match"), _with_ci(metrics, "type_accuracy"),
                 _pct(metrics.get("type_macro_f1"))]
        cells += [_pct(_safe(fn, metrics)) for _, fn in extra]
        cells += [_count(metrics.get(key)) for _, key in counts]
        for kind in kinds:
            entry = per_type.get(kind) or {}
            cells += [_pct(entry.get("exact_match")), _pct(entry.get("type_accuracy"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def ci_note(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """A sentence saying what the table's intervals are ("" when no row has any)."""
    with_ci = [m for m in rows.values() if _interval(m.get("exact_match_ci")) or _interval(m.get("type_accuracy_ci"))]
    if not with_ci:
        return ""
    ci = with_ci[0].get("ci") if isinstance(with_ci[0].get("ci"), Mapping) else {}
    level = ci.get("level", CI_LEVEL)
    resamples = ci.get("resamples", CI_RESAMPLES)
    return (f"Exact and Type acc: percent, with a {100 * level:g}% bootstrap confidence interval "
            f"[low, high] from {resamples} resamples of whole sessions (the states of a session "
            "are not independent); States and Sessions: how many were evaluated.")


def paired_table(comparisons: Mapping[str, Mapping[str, Any]], baseline: str) -> str:
    """Markdown table of paired differences against ``baseline`` (rows from :func:`paired_difference`).

    ``comparisons`` maps a row label to ``{"exact_match": ..., "type_accuracy": ...,
    "per_type": {gold type: {"exact_match": ...}}}`` as ``agents.evaluation.compare_predictions``
    returns. Cells read ``+3.2 [0.8, 5.9]``: percentage points, 95% interval; a ``*``
    marks an interval that excludes 0. "" when there is nothing to compare.
    """
    if not comparisons:
        return ""
    kinds = _ordered_types({k for c in comparisons.values() for k in (c.get("per_type") or {})})
    header = ["Model", f"Exact Δ vs {_escape(baseline)}", "Type acc Δ", "States", "Sessions"]
    header += [f"{_TYPE_LABELS.get(kind, kind)} exact Δ" for kind in kinds]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for label, comparison in comparisons.items():
        exact = comparison.get("exact_match") or {}
        cells = [_escape(label), _delta(exact), _delta(comparison.get("type_accuracy") or {}),
                 _count(exact.get("n")), _count(exact.get("n_sessions"))]
        per_type = comparison.get("per_type") or {}
        cells += [_delta((per_type.get(kind) or {}).get("exact_match") or {}) for kind in kinds]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def paired_section(comparisons: Mapping[str, Mapping[str, Any]], baseline: str) -> list[str]:
    """Report lines of a "Versus <baseline>, paired" section: heading, what the cells mean, the
    :func:`paired_table`; ``[]`` when there is nothing to compare."""
    if not comparisons:
        return []
    n = _count((next(iter(comparisons.values())).get("exact_match") or {}).get("n"))
    return [f"## Versus {baseline}, paired", "",
            f"Each row minus {baseline} on the same {n} states, in percentage points, with a 95% interval from "
            "resampling whole sessions for both rows at once (tighter than comparing the rows' own intervals, "
            "whose errors are correlated); `*`: the interval excludes 0.", "",
            paired_table(comparisons, baseline)]


def _delta(entry: Mapping[str, Any]) -> str:
    diff, interval = entry.get("diff"), _interval(entry.get("ci"))
    if not _is_number(diff) or interval is None:
        return "–"
    low, high = interval
    mark = "*" if low > 0.0 or high < 0.0 else ""
    return f"{100 * diff:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]{mark}"


def _with_ci(metrics: Mapping[str, Any], key: str) -> str:
    value = metrics.get(key)
    interval = _interval(metrics.get(f"{key}_ci"))
    if interval is None or _pct(value) == "–":
        return _pct(value)
    low, high = interval
    return f"{100 * value:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def _interval(value: Any) -> tuple[float, float] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_number(v) and v == v for v in value):
        return (float(value[0]), float(value[1]))
    return None


def _safe(fn: Callable[[Mapping[str, Any]], Any], metrics: Mapping[str, Any]) -> Any:
    try:
        return fn(metrics)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def _count(value: Any) -> str:
    return str(value) if _is_number(value) and float(value).is_integer() else "–"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _pct(value: Any) -> str:
    if not _is_number(value) or value != value:
        return "–"
    return f"{100 * value:.2f}"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
