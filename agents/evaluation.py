"""Evaluate an agent on the (session, step) states of a split: accuracy tables (paper Tab. 2/3).

The evaluation library the pipeline, the paper runner and ``benchmarks/evaluate.py`` (its
command line) share::

    from agents.evaluation import evaluate
    metrics = evaluate(agent, states, "runs/eval-random")

Each answer is scored with ``rewards.score_answer`` (the env's reward, docs/architecture.md §5) and
appended to ``<out>/predictions.jsonl`` batch by batch, so an interrupted run resumes where it
stopped (``repair=True`` keeps the valid records of a file with a corrupt line in the middle).
At the end it writes ``metrics.json``, ``report.md`` and ``confusion.png``; exact match and
type accuracy come with 95% confidence intervals from a bootstrap over sessions.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import rewards
from agents.base import Agent
from shop_env.actions import ACTION_TYPES, Action

logger = logging.getLogger(__name__)

PREDICTIONS = "predictions.jsonl"
METRICS = "metrics.json"
REPORT = "report.md"
CONFUSION = "confusion.png"
#: The column of the confusion matrix for answers that do not parse.
INVALID = "invalid"
_REWARD_FIELDS = ("format", "type", "attribute", "value", "action", "self_certainty", "total")
#: Where ``repair`` keeps the original of a predictions file it rewrote.
BACKUP_SUFFIX = ".bak"


class PredictionsError(ValueError):
    """A ``predictions.jsonl`` that cannot be resumed: corrupt, or another agent's."""


def evaluate(
    agent: Agent,
    states: Sequence[Any],
    out_dir: str | os.PathLike[str],
    *,
    config: Any = None,
    batch_size: int = 8,
    resume: bool = True,
    progress: bool = True,
    name: str | None = None,
    repair: bool = False,
) -> dict[str, Any]:
    """Run ``agent`` over ``states``, score every answer, and write the evaluation files.

    Args:
        agent: anything with ``act_batch(observations) -> list[str]``.
        states: :class:`shop_env.observations.State` objects (``session_id``, ``step``,
            ``observation``, ``gold``); keys ``(session_id, step)`` must be unique.
        out_dir: where ``predictions.jsonl``, ``metrics.json``, ``report.md`` and
            ``confusion.png`` go (created if missing).
        config: a ``rewards.RewardConfig`` or a dict of its fields (None: defaults).
        batch_size: observations per ``act_batch`` call (and per flush of predictions).
        resume: keep the predictions already in ``predictions.jsonl`` and only run the
            states without one; False starts the file afresh.
        progress: show a tqdm progress bar.
        name: the row label in the report (default: the agent's ``name`` attribute).
        repair: on resume, drop corrupt lines of ``predictions.jsonl`` (the original is
            kept as ``predictions.jsonl.bak``) instead of raising; their states are rerun.

    An agent with ``act_batch_with_certainty(observations, variant)`` (e.g.
    :class:`agents.TransformersAgent`) also supplies each rationale's self-certainty,
    so the reward's alpha term is scored as in training; other agents score it 0.

    Returns:
        The metrics dict also written to ``metrics.json``: ``rewards.metrics.compute_metrics``
        output (n, exact_match, type_accuracy, type_macro_f1, invalid_rate,
        predicted_type_share, per_type, and the session bootstrap's n_sessions,
        exact_match_ci, type_accuracy_ci, ci) plus ``reward`` (mean of each reward
        component), ``confusion`` and ``agent``.

    Raises:
        PredictionsError: (a ValueError) a corrupt (not just truncated) predictions file
            without ``repair``, or one holding another agent's predictions.
        ValueError: ``batch_size < 1``, duplicate state keys, or an agent returning the
            wrong number of answers.
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    config = rewards.RewardConfig.coerce(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keys = [_key(state) for state in states]
    duplicates = [key for key, count in Counter(keys).items() if count > 1]
    if duplicates:
        raise ValueError(f"states have duplicate (session_id, step) keys, e.g. {duplicates[0]}")
    label = name or getattr(agent, "name", type(agent).__name__)
    path = out / PREDICTIONS
    done = _resumed(path, label, states, keys, config, repair=repair) if resume else {}
    if not resume and path.exists():
        path.unlink()
    todo = [state for state, key in zip(states, keys, strict=True) if key not in done]
    bar = tqdm(total=len(states), initial=len(states) - len(todo), disable=not progress,
               desc=f"eval {label}", unit="state")
    with open(path, "a", encoding="utf-8") as handle:
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            answers, certainties = _answers(agent, [state.observation for state in batch], config)
            if len(answers) != len(batch):
                raise ValueError(f"agent returned {len(answers)} answers for {len(batch)} observations")
            for state, text, certainty in zip(batch, answers, certainties, strict=True):
                record = prediction_record(state, text, config, self_certainty=certainty)
                record["agent"] = label
                done[_key(state)] = record
                # ASCII escapes: a model's lone surrogate must not break the UTF-8 file.
                handle.write(json.dumps(record) + "\n")
            handle.flush()  # per batch: a crash loses at most the batch in flight
            bar.update(len(batch))
    bar.close()
    records = [done[key] for key in keys]
    metrics = summarize(records, config)
    metrics["agent"] = repr(agent)
    write_outputs(out, label, metrics)
    return metrics


def _resumed(path: Path, label: str, states: Sequence[Any], keys: list, config: Any,
             *, repair: bool = False) -> dict:
    """Predictions already in ``path`` for these states, re-scored with today's config.

    Re-scoring (cheap: no model involved) keeps metrics right when the reward config or
    the gold data changed since the interrupted run.

    Raises:
        PredictionsError: the file is corrupt (without ``repair``) or holds another
            agent's predictions.
    """
    stored = load_predictions(path, truncate_partial=True, repair=repair)
    others = {r.get("agent") for r in stored.values()} - {None, label}
    if others:
        raise PredictionsError(f"{path} holds predictions of agent {sorted(others)[0]!r}, not {label!r}; "
                               "use another output directory (--out) or start over with --no-resume "
                               "(resume=False)")
    done = {}
    for state, key in zip(states, keys, strict=True):
        record = stored.pop(key, None)
        if record is not None:
            fresh = prediction_record(state, record.get("response"), config,
                                      self_certainty=record.get("self_certainty"))
            done[key] = {**fresh, "agent": label}
    if stored:
        logger.warning("%s: ignoring %d prediction(s) of states not in this evaluation", path, len(stored))
    return done


def _answers(agent: Agent, observations: list, config: Any) -> tuple[list, list]:
    """The agent's answers, with self-certainties where the agent can compute them."""
    scored = getattr(agent, "act_batch_with_certainty", None)
    if config.use_self_certainty and callable(scored):
        pairs = scored(observations, variant=config.self_certainty_variant)
        return [text for text, _ in pairs], [certainty for _, certainty in pairs]
    answers = agent.act_batch(observations)
    return answers, [None] * len(answers)


def prediction_record(state: Any, text: Any, config: Any, *,
                      self_certainty: float | None = None) -> dict[str, Any]:
    """Score one answer: the JSON record written to ``predictions.jsonl``.

    Args:
        state: the :class:`shop_env.observations.State` answered (``session_id``, ``step``, ``gold``).
        text: the agent's answer (anything; a non-string counts as an empty answer).
        config: the ``rewards.RewardConfig`` to score with.
        self_certainty: the rationale's raw self-certainty (from agents that expose
            logits), fed to the reward's alpha term.

    Returns:
        ``session_id, step, gold, response, pred, valid, error, exact_match, type_match,
        self_certainty, reward`` (the breakdown dict), and ``page_type`` where the state's
        ``meta`` names one (synthetic data). Never raises on bad model output: an unparsable
        answer is recorded as invalid with the parse error and zero reward.
    """
    text = text if isinstance(text, str) else ""
    gold: Action = state.gold
    scored = rewards.score_answer(text, gold, config, self_certainty=self_certainty)
    record = {
        "session_id": str(state.session_id),
        "step": int(state.step),
        "gold": gold.to_dict(),
        "response": text,
        "pred": scored.action.to_dict() if scored.action is not None else None,
        "valid": scored.valid,
        "error": scored.error,
        "exact_match": scored.exact_match,
        "type_match": scored.type_match,
        "self_certainty": self_certainty,
        "reward": scored.breakdown.to_dict(),
    }
    page_type = (getattr(state, "meta", None) or {}).get("page_type")
    if page_type:
        record["page_type"] = str(page_type)
    return record


def load_predictions(path: str | os.PathLike[str], *, truncate_partial: bool = False,
                     repair: bool = False) -> dict[tuple[str, int], dict]:
    """Read ``predictions.jsonl`` into ``{(session_id, step): record}``.

    A last line cut short by a crash is dropped (and, with ``truncate_partial``, cut
    from the file so appends start on a clean line). A bad line elsewhere is corruption:
    an error, unless ``repair``, which drops every bad line, keeps the original file as
    ``<path>.bak`` and rewrites ``path`` with the valid records only.

    Raises:
        PredictionsError: (a ValueError) an unparsable line that is not the last one,
            naming ``file:line`` and the ``--repair`` flag, without ``repair``.
    """
    target = Path(path)
    if not target.exists():
        return {}
    data = target.read_bytes()
    *complete, tail = data.split(b"\n")  # ``tail`` is what follows the last newline
    records: dict[tuple[str, int], dict] = {}
    bad: list[int] = []
    for number, raw in enumerate(complete, start=1):
        if not raw.strip():
            continue
        record = _parse_record(raw)
        if record is None:
            bad.append(number)
            continue
        records[(record["session_id"], record["step"])] = record
    if bad and not repair:
        valid = sum(1 for raw in complete if raw.strip()) - len(bad)
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise PredictionsError(
            f"{target}:{bad[0]}: corrupt prediction record{more}; rerun with --repair (repair=True) to keep "
            f"the {valid} valid record(s) and redo only the rest (the original is kept as "
            f"{target.name}{BACKUP_SUFFIX}), or start over with --no-resume")
    if bad:
        backup = target.with_name(target.name + BACKUP_SUFFIX)
        backup.write_bytes(data)
        dropped = set(bad)
        kept = b"".join(raw + b"\n" for number, raw in enumerate(complete, start=1)
                        if raw.strip() and number not in dropped)
        scratch = target.with_name(target.name + ".tmp")
        scratch.write_bytes(kept + tail)
        os.replace(scratch, target)
        logger.warning("%s: dropped %d corrupt record(s) at line(s) %s; original kept as %s", target, len(bad),
                       ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else ""), backup)
        data = kept + tail
    if tail.strip():
        record = _parse_record(tail)
        if record is not None:
            records[(record["session_id"], record["step"])] = record
        else:
            logger.warning("%s:%d: dropping a partial last record (interrupted run)", target, len(complete) + 1)
        if truncate_partial:  # appends must start on a fresh line
            with open(target, "r+b") as handle:
                if record is None:
                    handle.truncate(len(data) - len(tail))
                else:
                    handle.seek(0, os.SEEK_END)
                    handle.write(b"\n")
    return records


def summarize(records: Sequence[Mapping[str, Any]], config: Any = None) -> dict[str, Any]:
    """Metrics of scored records (see :func:`evaluate`'s return value)."""
    from rewards.metrics import compute_metrics

    golds = [Action.from_dict(r["gold"], field="gold") for r in records]
    preds = [Action.from_dict(r["pred"], field="pred") if r.get("pred") else None for r in records]
    metrics = dict(compute_metrics(preds, golds, rewards.RewardConfig.coerce(config),
                                   session_ids=[str(r["session_id"]) for r in records]))
    n = len(records)
    metrics["reward"] = {
        field: (sum(float(r["reward"].get(field) or 0.0) for r in records) / n if n else 0.0)
        for field in _REWARD_FIELDS
    }
    metrics["confusion"] = confusion_counts(golds, preds)
    pages = by_page_type(records)
    if pages:
        metrics["by_page_type"] = pages
    return metrics


def by_page_type(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Exact match and the predicted-type mix per page type, for records that name one.

    Where a model leaves the shop (``terminate`` on results pages, not at checkout) is what
    the overall type mix hides.

    Args:
        records: scored records (:func:`prediction_record`); those without ``page_type`` are
            left out.

    Returns:
        ``{page type: {"n", "exact_match", "type_accuracy", "gold_type_share",
        "predicted_type_share" ({type or "invalid": share})}}`` (fractions, like
        :func:`summarize`'s), sorted by page type; empty when no record names a page type.
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        if record.get("page_type"):
            groups.setdefault(str(record["page_type"]), []).append(record)
    out: dict[str, dict[str, Any]] = {}
    for page, group in sorted(groups.items()):
        n = len(group)
        predicted = Counter(str((r.get("pred") or {}).get("type", "invalid")) for r in group)
        gold = Counter(str(r["gold"]["type"]) for r in group)
        out[page] = {
            "n": n,
            "exact_match": sum(bool(r.get("exact_match")) for r in group) / n,
            "type_accuracy": sum(bool(r.get("type_match")) for r in group) / n,
            "gold_type_share": {kind: c / n for kind, c in sorted(gold.items())},
            "predicted_type_share": {kind: c / n for kind, c in sorted(predicted.items())},
        }
    return out


def page_type_table(pages: Mapping[str, Mapping[str, Any]]) -> str:
    """A markdown table of :func:`by_page_type` (empty string for no page types)."""
    if not pages:
        return ""
    kinds = sorted({k for row in pages.values() for k in (*row["gold_type_share"], *row["predicted_type_share"])})
    head = "| Page | States | Exact | Type acc | " + " | ".join(f"{k}: logged / answered" for k in kinds) + " |"
    lines = [head, "|---|" + "---:|" * (3 + len(kinds))]
    for page, row in pages.items():
        mix = " | ".join(f"{100 * row['gold_type_share'].get(k, 0.0):.0f}% / "
                         f"{100 * row['predicted_type_share'].get(k, 0.0):.0f}%" for k in kinds)
        lines.append(f"| {page} | {row['n']} | {100 * row['exact_match']:.1f} | {100 * row['type_accuracy']:.1f} "
                     f"| {mix} |")
    return "\n".join(lines) + "\n"


def compare_predictions(records: Mapping[tuple[str, int], Mapping[str, Any]],
                        baseline: Mapping[tuple[str, int], Mapping[str, Any]]) -> dict[str, Any]:
    """Paired differences of two agents' scored answers on the same states.

    Takes two ``{(session_id, step): record}`` maps as :func:`load_predictions` returns
    (an evaluation directory's ``predictions.jsonl``). Differences are ``records`` minus
    ``baseline`` with a session-paired bootstrap interval
    (:func:`rewards.metrics.paired_difference`), for all states and per gold action type.

    Returns:
        ``{"exact_match": diff, "type_accuracy": diff, "per_type": {gold type:
        {"exact_match": diff, "type_accuracy": diff}}}``, each ``diff`` a
        :func:`~rewards.metrics.paired_difference` dict.

    Raises:
        ValueError: the two maps do not cover the same states (they were evaluated on
            different splits or one evaluation is unfinished), their logged (gold) actions
            differ (different data), or either is empty.
    """
    from rewards.metrics import paired_difference

    if not records or not baseline:
        raise ValueError("nothing to compare: an evaluation has no predictions")
    if records.keys() != baseline.keys():
        only_a, only_b = len(records.keys() - baseline.keys()), len(baseline.keys() - records.keys())
        raise ValueError(f"the evaluations cover different states ({only_a} only in the first, {only_b} only "
                         "in the baseline): compare runs of one split, finished")
    keys = sorted(baseline)
    mismatched = [key for key in keys if records[key].get("gold") != baseline[key].get("gold")]
    if mismatched:
        session, step = mismatched[0]
        raise ValueError(f"the evaluations disagree on the logged action of {len(mismatched)} state(s), e.g. "
                         f"session {session} step {step}: they were run on different data")

    def diffs(subset: list[tuple[str, int]]) -> dict[str, Any]:
        sessions = [str(key[0]) for key in subset]
        return {field: paired_difference([float(bool(records[k][flag])) for k in subset],
                                         [float(bool(baseline[k][flag])) for k in subset], sessions)
                for field, flag in (("exact_match", "exact_match"), ("type_accuracy", "type_match"))}

    out = diffs(keys)
    by_type: dict[str, list[tuple[str, int]]] = {}
    for key in keys:
        by_type.setdefault(str(baseline[key]["gold"]["type"]), []).append(key)
    out["per_type"] = {kind: diffs(subset) for kind, subset in by_type.items()}
    return out


def confusion_counts(golds: Sequence[Action], preds: Sequence[Action | None]) -> dict[str, dict[str, int]]:
    """``{gold_type: {predicted_type_or_"invalid": count}}`` over the gold types seen."""
    table: dict[str, dict[str, int]] = {}
    for gold, pred in zip(golds, preds, strict=True):
        row = table.setdefault(gold.type, {})
        column = pred.type if pred is not None else INVALID
        row[column] = row.get(column, 0) + 1
    return table


def plot_confusion(confusion: Mapping[str, Mapping[str, int]], path: str | os.PathLike[str], title: str = "") -> Path:
    """Draw gold type (rows) against predicted type (columns, invalid last) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [t for t in ACTION_TYPES if t in confusion] + sorted(set(confusion) - set(ACTION_TYPES))
    seen = {column for row in confusion.values() for column in row}
    columns = [t for t in ACTION_TYPES if t in seen or t in confusion] + [INVALID]
    counts = [[confusion.get(r, {}).get(c, 0) for c in columns] for r in rows]
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(columns), 1.2 + 0.8 * max(len(rows), 1)))
    ax.imshow(counts if rows else [[0] * len(columns)], cmap="Blues", aspect="auto")
    ax.set_xticks(range(len(columns)), columns, rotation=20)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("predicted type")
    ax.set_ylabel("gold type")
    ax.set_title(title or "action-type confusion")
    peak = max((v for row in counts for v in row), default=0)
    for i, row in enumerate(counts):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center",
                    color="white" if peak and value > peak / 2 else "black")
    fig.tight_layout()
    target = Path(path)
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def write_outputs(out: Path, label: str, metrics: Mapping[str, Any]) -> None:
    """Write ``metrics.json``, ``report.md`` and ``confusion.png`` into ``out``."""
    from rewards.metrics import ci_note, markdown_table

    (out / METRICS).write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    plot_confusion(metrics["confusion"], out / CONFUSION, title=f"{label}: action-type confusion")
    reward = metrics["reward"]
    lines = [
        f"# Evaluation: {label}",
        "",
        f"Agent: `{metrics.get('agent', label)}`; states: {metrics.get('n', 0)}"
        + (f" from {metrics['n_sessions']} sessions." if "n_sessions" in metrics else "."),
        "",
        markdown_table({label: dict(metrics)}).rstrip(),
        "",
        *([note, ""] if (note := ci_note({label: metrics})) else []),
        "Mean reward components (docs/architecture.md §5):",
        "",
        "| " + " | ".join(_REWARD_FIELDS) + " |",
        "|" + "---|" * len(_REWARD_FIELDS),
        "| " + " | ".join(f"{reward[f]:.4g}" for f in _REWARD_FIELDS) + " |",
        "",
        f"![action-type confusion]({CONFUSION})",
        "",
    ]
    if metrics.get("by_page_type"):
        lines += ["By page type (where the data names one): each type's share among the logged actions and "
                  "among the answers.", "", page_type_table(metrics["by_page_type"])]
    (out / REPORT).write_text("\n".join(lines), encoding="utf-8")


def _parse_record(raw: bytes) -> dict | None:
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    ok = (isinstance(record, dict) and isinstance(record.get("session_id"), str)
          and isinstance(record.get("step"), int) and isinstance(record.get("gold"), dict)
          and isinstance(record.get("reward"), dict))
    return record if ok else None


def _key(state: Any) -> tuple[str, int]:
    return (str(state.session_id), int(state.step))
