"""Dataset loaders: ``load_sessions(source, split=None)`` for every supported source.

Sources (docs/architecture.md §3):

* ``path/to/file.jsonl`` (or ``jsonl:path``): the canonical format;
* ``synthetic:N[?seed=S]``: N sessions from the simulated shop (generated once, cached);
* ``opera:<root>[?version=full][&invalid=session]``: OPeRA from a local copy (or a hub id);
* ``shopcart:<path>[?context_offset=K]``: Shop-CART (context + action per step).

Splits: OPeRA uses the dataset's own train/test files; every other source assigns sessions
to ``train``/``test`` by a hash of the session id (:func:`shop_env.sessions.select_split`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from shop_env.datasets.source import Source, parse_source, reject_unknown, take_int
from shop_env.sessions import Session, SkipReport, iter_jsonl, select_split

__all__ = ["DEFAULT_SOURCE", "Source", "load_sessions", "parse_source"]

#: The embedded default data set: 200 simulated sessions, seed 0.
DEFAULT_SOURCE = "synthetic:200?seed=0"


def load_sessions(
    source: str | os.PathLike[str] | Sequence[Session] | None = None,
    split: str | None = None,
    *,
    skip_invalid: bool = False,
    report: SkipReport | None = None,
    progress: bool = False,
) -> list[Session]:
    """Load sessions from a source string, a path, or a list of sessions.

    Args:
        source: see the module docstring; None means :data:`DEFAULT_SOURCE`.
        split: ``train``, ``test``, ``all`` or None (every session).
        skip_invalid: count malformed records in ``report`` and skip them instead of raising.
        report: receives the skip counts (a fresh one if None).
        progress: show a progress bar where generation takes a while.

    Returns:
        The sessions, in a deterministic order.

    Raises:
        ValueError: unknown scheme/option/split, a directory given as a JSONL file, or a
            malformed record (file, line/row and field named; e.g. a lone surrogate, a
            click without a name, a duplicate session id) unless ``skip_invalid``.
        FileNotFoundError: a path that does not exist.
        OSError: a file that cannot be read (e.g. permission denied).
    """
    report = report if report is not None else SkipReport()
    if source is None:
        source = DEFAULT_SOURCE
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str):
        sessions = list(source)
        bad = [type(s).__name__ for s in sessions if not isinstance(s, Session)]
        if bad:
            raise TypeError(f"a session list must hold Session objects, got {bad[0]}")
        return select_split(sessions, split)
    parsed = parse_source(source)
    options = dict(parsed.options)
    if parsed.scheme == "synthetic":
        from shop_env.datasets.synthetic_source import load_synthetic

        try:
            count = int(parsed.target)
        except ValueError:
            raise ValueError(f"synthetic source needs a session count, e.g. 'synthetic:200', got {source!r}") from None
        seed = take_int(options, "seed", 0, source)
        reject_unknown(options, source, ("seed",))
        return select_split(load_synthetic(count, seed, progress=progress), split)
    if parsed.scheme == "opera":
        from shop_env.datasets.opera import load_opera

        version = options.pop("version", "filtered")
        invalid = options.pop("invalid", None)
        reject_unknown(options, source, ("version", "invalid"))
        if split not in (None, "all", "train", "test"):
            raise ValueError(f"unknown split {split!r}: expected 'train', 'test', 'all' or None")
        return load_opera(parsed.target, split=split, version=version, skip_invalid=skip_invalid, report=report,
                          invalid=invalid)
    if parsed.scheme == "shopcart":
        from shop_env.datasets.shopcart import load_shopcart

        offset = take_int(options, "context_offset", 1, source)
        reject_unknown(options, source, ("context_offset",))
        sessions = load_shopcart(parsed.target, context_offset=offset, skip_invalid=skip_invalid, report=report)
        return select_split(sessions, split)
    reject_unknown(options, source, ())
    path = Path(parsed.target)
    if not path.exists():
        raise FileNotFoundError(f"data file {os.fspath(path)!r} does not exist")
    if path.is_dir():
        raise ValueError(f"data source {os.fspath(path)!r} is a directory, not a .jsonl file "
                         "(an OPeRA copy is read with opera:<root>, Shop-CART with shopcart:<file>)")
    return select_split(iter_jsonl(path, skip_invalid=skip_invalid, report=report), split)
