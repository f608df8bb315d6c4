"""``python -m shop_env.datasets SOURCE``: load a data source, report it, optionally convert it.

Examples::

    python -m shop_env.datasets synthetic:200 --split test
    python -m shop_env.datasets opera:/data/OPeRA --skip-invalid --out data/opera.jsonl
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from shop_env.datasets import DEFAULT_SOURCE, load_sessions
from shop_env.sessions import SkipReport, write_jsonl


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m shop_env.datasets",
        description="Load shopping sessions from a source string, print statistics and optionally "
        "write them as canonical JSONL.",
    )
    parser.add_argument("source", nargs="?", default=DEFAULT_SOURCE,
                        help="file.jsonl | synthetic:N[?seed=S] | opera:<root>[?version=full] | "
                        f"shopcart:<path>[?context_offset=K] (default: {DEFAULT_SOURCE})")
    parser.add_argument("--split", choices=["train", "test", "all"], default=None,
                        help="keep one split (default: every session)")
    parser.add_argument("--skip-invalid", action="store_true",
                        help="skip malformed records (counted and reported) instead of stopping at the first")
    parser.add_argument("--out", help="write the loaded sessions to this canonical .jsonl file")
    args = parser.parse_args(argv)
    report = SkipReport()
    try:
        sessions = load_sessions(args.source, args.split, skip_invalid=args.skip_invalid, report=report,
                                 progress=True)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    types = Counter(step.action.type for s in sessions for step in s.steps)
    steps = sum(types.values())
    print(f"{len(sessions)} sessions, {steps} steps from {args.source} (split: {args.split or 'all'})")
    for kind, count in types.most_common():
        print(f"  {kind:<16} {count:>7}  {count / max(steps, 1):6.1%}")
    if report.skipped or report.dropped:
        print(f"{report.summary()}; dropped by design: {report.dropped}")
    if args.out:
        write_jsonl(sessions, args.out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
