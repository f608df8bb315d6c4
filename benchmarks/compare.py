"""Paired comparison of evaluation directories of one split (the library is
:func:`agents.evaluation.compare_predictions`).

Each directory is an evaluation's output (``predictions.jsonl`` inside): a pipeline run's
``eval/<row>/``, ``benchmarks/evaluate.py --out``, or a ``benchmarks/paper.py`` row. Every
directory after the first is compared with the first (the baseline) on the same states::

    python benchmarks/compare.py runs/smol/eval/sft runs/smol/eval/shop-r1 runs/other/eval/shop-r1

It prints a markdown table: each row minus the baseline in percentage points, overall and per
gold action type, with a 95% interval from resampling whole sessions for both rows at once
(``*``: the interval excludes 0). ``--json`` writes the numbers as well.

User errors (a missing directory or predictions file, evaluations of different states) print
``error: ...`` and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agents.evaluation import PREDICTIONS, compare_predictions, load_predictions
from rewards.metrics import paired_table


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/compare.py",
        description="Compare evaluations of one split with a baseline evaluation, state by state "
                    "(paired session bootstrap).",
    )
    parser.add_argument("baseline", type=Path, help="evaluation directory of the baseline (e.g. runs/x/eval/sft)")
    parser.add_argument("others", type=Path, nargs="+", help="evaluation directories compared with the baseline")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also write {directory: comparison} as JSON to PATH")
    return parser


def compare_dirs(baseline: Path, others: Iterable[Path]) -> dict[str, dict[str, Any]]:
    """``{directory: compare_predictions(its predictions, the baseline's)}``.

    Raises:
        ValueError: a directory without ``predictions.jsonl``, or evaluations of different states.
    """
    def records(directory: Path) -> dict:
        path = directory / PREDICTIONS
        if not path.is_file():
            raise ValueError(f"{directory}: no {PREDICTIONS} (not an evaluation directory, or it never started)")
        return load_predictions(path)

    base = records(baseline)
    return {str(other): compare_predictions(records(other), base) for other in others}


def main(argv: Iterable[str] | None = None) -> int:
    """CLI entry point; returns the exit status (2 on a user error, with ``error: ...`` on stderr)."""
    args = build_parser().parse_args(None if argv is None else list(argv))
    try:
        comparisons = compare_dirs(args.baseline, args.others)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(paired_table(comparisons, str(args.baseline)))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(comparisons, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
