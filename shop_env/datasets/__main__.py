"""``python -m shop_env.datasets SOURCE``: load a data source, report it, optionally convert it.

The report gives the action mix, session lengths, the share of sessions ending in
``terminate``, what typed text is (search, refined search, filter, ...) and, for synthetic
data, the oracle ceiling: the oracle agent's exact match on the test split, and with
``--observable-ceiling`` the observable one: the ``bayes`` agent's, which sees only the session
so far (minutes). User errors (a bad source, a missing, unreadable or malformed file) print
``error: ...`` and exit 2.

Examples::

    python -m shop_env.datasets synthetic:200 --split test
    python -m shop_env.datasets synthetic:800?seed=0 --observable-ceiling
    python -m shop_env.datasets opera:/data/OPeRA --skip-invalid --out data/opera.jsonl
"""

from __future__ import annotations

import argparse
import sys

from shop_env.datasets import DEFAULT_SOURCE, load_sessions
from shop_env.datasets.stats import compute_stats, format_stats
from shop_env.sessions import SkipReport, write_jsonl
from shop_env.synthetic.posterior import DEFAULT_SAMPLES_PER_CATEGORY


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
    parser.add_argument("--no-oracle", action="store_true",
                        help="skip the oracle ceiling (exact match of the oracle agent on the test split)")
    parser.add_argument("--observable-ceiling", type=int, nargs="?", const=DEFAULT_SAMPLES_PER_CATEGORY, default=0,
                        metavar="DRAWS",
                        help="also compute the observable ceiling (the bayes agent's exact match on the test "
                        "split; synthetic data) with DRAWS intents drawn per category "
                        f"(default when given: {DEFAULT_SAMPLES_PER_CATEGORY}; a few minutes for 150 sessions)")
    args = parser.parse_args(argv)
    if args.observable_ceiling < 0:
        print("error: --observable-ceiling needs a number of draws >= 1", file=sys.stderr)
        return 2
    report = SkipReport()
    try:
        sessions = load_sessions(args.source, args.split, skip_invalid=args.skip_invalid, report=report,
                                 progress=True)
    except (ValueError, OSError) as err:  # bad source, malformed record, missing/unreadable path
        print(f"error: {_describe(err)}", file=sys.stderr)
        return 2
    stats = compute_stats(sessions, oracle=not args.no_oracle, observable_samples=args.observable_ceiling,
                          progress=True)
    print(f"{stats.sessions} sessions, {stats.steps} steps from {args.source} (split: {args.split or 'all'})")
    print(format_stats(stats))
    if report.skipped or report.dropped:
        print(f"{report.summary()}; dropped by design: {report.dropped}")
    if args.out:
        try:
            write_jsonl(sessions, args.out)
        except (ValueError, OSError) as err:
            print(f"error: cannot write {args.out!r}: {_describe(err)}", file=sys.stderr)
            return 2
        print(f"wrote {args.out}")
    return 0


def _describe(err: BaseException) -> str:
    """An error message; OS errors name the path and the reason (``[Errno 13]`` dropped)."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return str(err)

if __name__ == "__main__":
    sys.exit(main())
