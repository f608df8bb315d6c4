"""CLI: simulate shopping sessions and write them as canonical JSONL.

Example::

    python -m shop_env.synthetic --sessions 2000 --seed 0 --out data/synthetic.jsonl
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence

from shop_env.sessions import Session, select_split, write_jsonl
from shop_env.synthetic.generate import generate_sessions, oracle_ceiling


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m shop_env.synthetic``."""
    parser = argparse.ArgumentParser(
        prog="python -m shop_env.synthetic",
        description=(
            "Simulate shoppers on a generated web shop and write their sessions as canonical "
            "JSONL (one session per line). Each step stores the PRUNED page the shopper saw, the "
            "action taken (click / type_and_submit / terminate) with a first-person rationale, and "
            "meta.oracle_action / meta.oracle_prob: the shopper model's most likely action and its "
            "probability. The mean oracle_prob over the test split is the ceiling on exact-match "
            "accuracy. Session i depends only on (seed, i): a smaller run is a prefix of a larger one."
        ),
        epilog="After writing, prints sessions per split, action-type shares and the test-split oracle ceiling.",
    )
    parser.add_argument("--sessions", type=int, default=200, metavar="N",
                        help="number of sessions to simulate (default: 200)")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="run seed; session ids are syn-s<S>-<index> (default: 0)")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="output .jsonl path (parent folders are created; written atomically)")
    parser.add_argument("--keep-raw", action="store_true",
                        help="also store each raw page in meta.raw_html (hundreds of KB per step)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def summarize(sessions: Sequence[Session]) -> str:
    """A short report: sessions/steps per split, action-type shares, test oracle ceiling."""
    lines = []
    for split in ("train", "test"):
        part = select_split(sessions, split)
        lines.append(f"{split}: {len(part)} sessions, {sum(len(s.steps) for s in part)} steps")
    types = Counter(step.action.type for s in sessions for step in s.steps)
    total = sum(types.values()) or 1
    shares = ", ".join(f"{kind} {count / total:.1%}" for kind, count in types.most_common())
    lines.append(f"action types: {shares}")
    ceiling = oracle_ceiling(select_split(sessions, "test"))
    lines.append(f"oracle ceiling (test split, expected exact match = mean oracle_prob): {ceiling:.4f}")
    lines.append("(python -m shop_env.datasets FILE prints lengths, endings, typed text and the measured ceiling)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.sessions < 0:
        print(f"error: --sessions must be >= 0, got {args.sessions}", file=sys.stderr)
        return 2
    sessions = generate_sessions(args.sessions, args.seed, keep_raw=args.keep_raw, progress=not args.no_progress)
    count = write_jsonl(sessions, args.out)
    print(f"wrote {count} sessions to {args.out}")
    print(summarize(sessions))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
