"""The shared ending of the measuring benchmark CLIs: run, print a table, keep the JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def measure_and_report(measure: Callable[[], dict[str, Any]], table: Callable[[dict[str, Any]], str],
                       out: str | None) -> int:
    """Run ``measure``, print ``table`` of its results and write them as JSON to ``out``.

    Args:
        measure: takes nothing, returns the results dict.
        table: renders the results as markdown.
        out: the JSON file to write (parents created); None writes nothing.

    Returns:
        The exit status: 0, or 2 after an ``error: …`` line on stderr when ``measure`` raised
        ``ValueError`` (a bad setting), ``ImportError`` (a missing extra) or ``OSError``.
    """
    try:
        results = measure()
    except (ValueError, ImportError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(table(results))
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0
