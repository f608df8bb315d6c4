"""How much exact match a model would gain by learning only *when the shopper leaves*.

On synthetic data every state carries the shopper model's most likely action and its
probability (``meta.oracle_action``, ``meta.oracle_prob``). This benchmark takes a model's
evaluation (``predictions.jsonl``) and, for each threshold ``t``, scores the policy "answer
``terminate`` where the shopper's most likely action is ``terminate`` with probability
>= ``t``, otherwise the model's own answer". The rows show what a perfectly learned leaving
rule is worth on top of the model, and what it costs in click and query exactness (the
issue's bar asks for both to stay at SFT's level)::

    python benchmarks/terminate_frontier.py runs/smol/eval/sft --sessions 'synthetic:800?seed=0'

It prints the usual results table (95% session-bootstrap intervals); ``--json`` writes the
rows. User errors (no predictions file, states without the shopper model's annotations)
print ``error: ...`` and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from agents.evaluation import PREDICTIONS, load_predictions
from rewards.metrics import compute_metrics, markdown_table
from shop_env.actions import Action

#: Thresholds scored by default (probability that the shopper's next action is terminate).
DEFAULT_THRESHOLDS = (0.8, 0.6, 0.5, 0.45, 0.4, 0.35, 0.3, 0.0)
MODEL_ROW = "model's own answers"


def shopper_terminate_probability(sessions: Iterable[Any]) -> dict[tuple[str, int], float]:
    """``{(session_id, step): P(terminate)}`` where the shopper's most likely action is
    ``terminate`` (0.0 where it is another action).

    Raises:
        ValueError: a step without ``meta.oracle_action`` / ``meta.oracle_prob`` (not synthetic data).
    """
    out: dict[tuple[str, int], float] = {}
    for session in sessions:
        for index, step in enumerate(session.steps):
            meta = step.meta or {}
            oracle, prob = meta.get("oracle_action"), meta.get("oracle_prob")
            if not isinstance(oracle, Mapping) or not isinstance(prob, (int, float)):
                raise ValueError(f"session {session.session_id} step {index} has no shopper-model annotation "
                                 "(meta.oracle_action/oracle_prob): the frontier needs synthetic sessions")
            out[(str(session.session_id), index)] = float(prob) if oracle.get("type") == "terminate" else 0.0
    return out


def frontier(records: Mapping[tuple[str, int], Mapping[str, Any]], p_terminate: Mapping[tuple[str, int], float],
             thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> dict[str, dict[str, Any]]:
    """Metrics of the model's answers and of each "terminate where P(terminate) >= t" policy.

    Args:
        records: a model's scored answers (:func:`agents.evaluation.load_predictions`).
        p_terminate: :func:`shopper_terminate_probability` of the same sessions.
        thresholds: the values of ``t``.

    Returns:
        ``{row label: compute_metrics(...)}`` (with session-bootstrap intervals), the model's
        own row first.

    Raises:
        ValueError: a record whose state has no probability (another data set or split).
    """
    missing = [key for key in records if key not in p_terminate]
    if missing:
        raise ValueError(f"{len(missing)} evaluated state(s) are not in the sessions given, e.g. {missing[0]}: "
                         "pass the --sessions the evaluation used")
    keys = list(records)
    golds = [Action.from_dict(records[k]["gold"], field="gold") for k in keys]
    own = [Action.from_dict(records[k]["pred"], field="pred") if records[k].get("pred") else None for k in keys]
    sessions = [k[0] for k in keys]
    rows = {MODEL_ROW: compute_metrics(own, golds, session_ids=sessions)}
    for t in thresholds:
        preds = [Action("terminate") if p_terminate[k] >= t and p_terminate[k] > 0 else pred
                 for k, pred in zip(keys, own, strict=True)]
        rows[f"terminate if P(terminate) >= {t:g}"] = compute_metrics(preds, golds, session_ids=sessions)
    return rows


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/terminate_frontier.py",
        description="Score a model's answers with a perfectly learned leaving rule on top: terminate "
                    "where the synthetic shopper most likely leaves (probability >= t), else the model's answer.",
    )
    parser.add_argument("evaluation", type=Path, help="evaluation directory with predictions.jsonl (e.g. runs/x/eval/sft)")
    parser.add_argument("--sessions", default="synthetic:800?seed=0", metavar="SPEC",
                        help="the synthetic data set the evaluation used (default: %(default)s)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=list(DEFAULT_THRESHOLDS), metavar="T",
                        help="probabilities t to score (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the rows as JSON to PATH")
    return parser


def main(argv: Iterable[str] | None = None) -> int:
    """CLI entry point; returns the exit status (2 on a user error, with ``error: ...`` on stderr)."""
    from shop_env.datasets import load_sessions

    args = build_parser().parse_args(None if argv is None else list(argv))
    try:
        path = args.evaluation / PREDICTIONS
        if not path.is_file():
            raise ValueError(f"{args.evaluation}: no {PREDICTIONS} (not an evaluation directory)")
        rows = frontier(load_predictions(path), shopper_terminate_probability(load_sessions(args.sessions)),
                        args.thresholds)
    except (ValueError, OSError) as err:  # bad spec, unreadable file, other data set
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(markdown_table(rows))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
