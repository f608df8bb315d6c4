"""OPeRA loader (CC-BY-4.0): real Amazon shopping sessions with rationales and personas.

Reads a local copy of the dataset repository::

    <root>/OPeRA_filtered/action/{train,test}-*.parquet
    <root>/OPeRA_filtered/session/{train,test}/*.parquet   (session_id, user_id, ...)
    <root>/OPeRA_filtered/user/{train,test}/*.parquet      (user_id, survey JSON, ...)
    <root>/OPeRA_full/...                                   (same layout, ``version=full``)

Rows are grouped by ``session_id`` and ordered by ``timestamp``. Vocabulary mapping:
``click`` -> ``click(name=semantic_id)``, ``input`` -> ``type_and_submit(name=semantic_id,
text=input_text)``, ``terminate`` -> ``terminate``, ``scroll`` -> ``scroll`` (type only).
Browser events of the full version (``navigation``, ``tab_activate``) are not page actions:
they are dropped and counted. A hub id (``opera:NEU-HAI/OPeRA``) is loaded with
``datasets.load_dataset`` only when the path does not exist locally.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from shop_env.actions import Action
from shop_env.datasets.tables import TABLE_SUFFIXES, find_tables, iter_table, read_table, split_of_path
from shop_env.sessions import Session, SessionFormatError, SkipReport, Step

ACTION_COLUMNS = ("session_id", "timestamp", "action_type", "simplified_html")
#: Every action column the loader reads (the full version's other columns, e.g. ``page_meta``
#: and ``simplified_html_new_page``, up to 180k characters a row, are never loaded).
READ_COLUMNS = ACTION_COLUMNS + ("action_id", "semantic_id", "input_text", "rationale", "url", "click_type")
TYPE_MAP = {"click": "click", "input": "type_and_submit", "terminate": "terminate", "scroll": "scroll"}
BROWSER_EVENTS = ("navigation", "tab_activate", "tabactivate")
VERSIONS = {"filtered": "OPeRA_filtered", "full": "OPeRA_full"}
#: What a malformed row does (``load_opera(invalid=...)``, ``opera:<root>?invalid=...``).
INVALID_MODES = ("raise", "step", "session")


def load_opera(
    root: str,
    *,
    split: str | None = None,
    version: str = "filtered",
    skip_invalid: bool = False,
    report: SkipReport | None = None,
    invalid: str | None = None,
) -> list[Session]:
    """Load OPeRA sessions from a local copy (or a hub id).

    Args:
        root: folder holding ``OPeRA_filtered/`` and/or ``OPeRA_full/``, or a hub id.
        split: ``train``/``test`` (the dataset's own split files) or None for both.
        version: ``filtered`` (click/input/terminate) or ``full``.
        skip_invalid: count and skip malformed rows instead of raising (``invalid="step"``).
        invalid: what a malformed row does: ``"raise"`` (the default), ``"step"`` (skip that
            row, so its session loses one step) or ``"session"`` (skip the whole session it
            belongs to, as the Customer-R1 loader does: no session with a hole in its
            history; counted in ``report.sessions_skipped``). Overrides ``skip_invalid``.
        report: collects skipped rows and dropped browser events.

    Raises:
        ValueError: unknown version; no action tables found; a missing column (named);
            a malformed row (file, row and field named) unless ``skip_invalid``.
    """
    if version not in VERSIONS:
        raise ValueError(f"unknown OPeRA version {version!r}: expected 'filtered' or 'full'")
    if invalid is None:
        invalid = "step" if skip_invalid else "raise"
    if invalid not in INVALID_MODES:
        raise ValueError(f"unknown OPeRA invalid={invalid!r}: expected one of {', '.join(INVALID_MODES)}")
    report = report if report is not None else SkipReport()
    base = Path(root) / VERSIONS[version]
    if not Path(root).exists():
        return _load_from_hub(root, split, version, invalid, report)
    action_dir = base / "action"
    if not action_dir.is_dir():
        raise ValueError(f"no OPeRA action folder {os.fspath(action_dir)} (expected "
                         f"<root>/{VERSIONS[version]}/action/{{train,test}}-*.parquet)")
    action_files = _tables(action_dir, split)
    if not action_files:
        which = "any split" if split in (None, "all") else f"split {split!r}"
        raise ValueError(f"no OPeRA action tables ({', '.join(TABLE_SUFFIXES)}) for {which} "
                         f"under {os.fspath(action_dir)}")
    users = _user_personas(base / "user", split)
    session_users = _session_users(base / "session", split)

    def rows() -> Iterator[tuple[str, dict[str, Any], str | None]]:
        for path in action_files:
            own = split if split in ("train", "test") else split_of_path(path, action_dir)
            own = own if own in ("train", "test") else None  # the hash rule decides the rest
            for index, row in enumerate(iter_table(path, ACTION_COLUMNS, READ_COLUMNS)):
                yield f"{os.fspath(path)}:row {index}", row, own

    return _build_sessions(rows(), session_users, users, invalid, report)


def _load_from_hub(root: str, split: str | None, version: str, invalid: str, report: SkipReport) -> list[Session]:
    if root.count("/") != 1:
        raise FileNotFoundError(f"OPeRA root {root!r} does not exist (and is not a hub id 'org/name')")
    try:
        from datasets import load_dataset
    except ImportError:
        raise ImportError("loading OPeRA from the hub needs `datasets`: pip install 'shop-r1[train]'") from None
    splits = ["train", "test"] if split in (None, "all") else [split]
    users: dict[str, Any] = {}
    session_users: dict[str, str] = {}
    for name in splits:
        for row in load_dataset(root, f"{version}_session", split=name):
            session_users[str(row["session_id"])] = str(row["user_id"])
        for row in load_dataset(root, f"{version}_user", split=name):
            users[str(row["user_id"])] = _persona(row)

    def rows() -> Iterator[tuple[str, dict[str, Any], str | None]]:
        for name in splits:
            for index, row in enumerate(load_dataset(root, f"{version}_action", split=name)):
                yield f"{root}/{version}_action[{name}]:row {index}", row, name

    return _build_sessions(rows(), session_users, users, invalid, report)


def _tables(folder: Path, split: str | None) -> list[Path]:
    """:func:`find_tables`, with an unreadable folder reported as such (not as 'no tables')."""
    try:
        return find_tables(folder, split)
    except OSError as err:
        where = err.filename if err.filename is not None else os.fspath(folder)
        raise ValueError(f"cannot read OPeRA folder {where}: {err.strerror or err}") from None


def _user_personas(folder: Path, split: str | None) -> dict[str, Any]:
    personas: dict[str, Any] = {}
    for path in _tables(folder, split):
        for row in read_table(path, ("user_id",)):
            if not _missing(row["user_id"]):
                personas[str(row["user_id"])] = _persona(row)
    return personas


def _persona(row: dict[str, Any]) -> dict[str, Any]:
    persona: dict[str, Any] = {}
    for key in ("survey", "interview_transcript_processed"):
        value = row.get(key)
        if isinstance(value, str) and value.strip():
            try:
                persona[key] = json.loads(value)
            except ValueError:
                persona[key] = value
    return persona


def _session_users(folder: Path, split: str | None) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for path in _tables(folder, split):
        for row in read_table(path, ("session_id", "user_id")):
            if not _missing(row["session_id"]) and not _missing(row["user_id"]):
                mapping[str(row["session_id"])] = str(row["user_id"])
    return mapping


def _build_sessions(
    rows: Iterable[tuple[str, dict[str, Any], str | None]],
    session_users: dict[str, str],
    users: dict[str, Any],
    invalid: str,
    report: SkipReport,
) -> list[Session]:
    """Sessions from streamed ``(where, row, split)`` action rows; each session takes the
    published split its first row came from. A row becomes a :class:`Step` as it arrives,
    so only the steps (their pages) are held, never the tables.

    ``invalid`` is ``"raise"``, ``"step"`` or ``"session"`` (see :func:`load_opera`).
    """
    grouped: dict[str, list[tuple[float, str, Step]]] = defaultdict(list)
    own_split: dict[str, str | None] = {}
    broken: set[str] = set()
    for where, row, row_split in rows:
        try:
            item = _row_to_step(where, row)
        except SessionFormatError as err:
            if invalid == "raise":
                raise
            report.add(err)
            if invalid == "session" and not _missing(row.get("session_id")):
                broken.add(_text(row["session_id"]).strip())
            continue
        if item is None:  # a browser event, not a page action
            report.dropped += 1
            continue
        session_id = _text(row["session_id"]).strip()
        grouped[session_id].append((item[0], str(row.get("action_id") or ""), item[1]))
        own_split.setdefault(session_id, row_split)
    sessions = []
    report.sessions_skipped += len(broken)
    for session_id in sorted(set(grouped) - broken):
        steps = [step for _, _, step in sorted(grouped[session_id], key=lambda t: (t[0], t[1]))]
        user = session_users.get(session_id) or _user_from_session_id(session_id)
        sessions.append(Session(session_id, steps, user_id=user, persona=users.get(user or ""), source="opera",
                                split=own_split.get(session_id)))
    return sessions


def _row_to_step(where: str, row: dict[str, Any]) -> tuple[float, Step] | None:
    if _missing(row.get("session_id")) or not _text(row.get("session_id")).strip():
        raise SessionFormatError(where, "session_id", "is missing (null or empty): the row belongs to no session")
    kind = _text(row.get("action_type")).strip().lower()
    if kind in BROWSER_EVENTS:
        return None
    if kind not in TYPE_MAP:
        raise SessionFormatError(where, "action_type", f"unknown OPeRA action type {kind!r}")
    mapped = TYPE_MAP[kind]
    name = _text(row.get("semantic_id"))
    if mapped in ("click", "type_and_submit") and not name:
        raise SessionFormatError(where, "semantic_id", f"a {kind} action needs a semantic_id")
    text = _text(row.get("input_text")) if mapped == "type_and_submit" else ""
    html = row.get("simplified_html")
    if not isinstance(html, str):
        raise SessionFormatError(where, "simplified_html", "must be a string")
    stamp = _timestamp(row.get("timestamp"), where)
    rationale = _text(row.get("rationale")) or None
    meta = {"action_id": _text(row.get("action_id"))} if row.get("action_id") else {}
    if row.get("click_type"):
        meta["click_type"] = _text(row.get("click_type"))
    return stamp, Step(_text(row.get("url")), html, Action(mapped, name if mapped != "scroll" else "", text),
                       rationale, stamp, meta)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value if isinstance(value, str) else str(value)


def _timestamp(value: Any, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    raise SessionFormatError(where, "timestamp", f"cannot read timestamp {value!r}")


def _user_from_session_id(session_id: str) -> str | None:
    # OPeRA session ids are "{user_id}_{start_time}_{end_time}".
    parts = session_id.rsplit("_", 2)
    return parts[0] if len(parts) == 3 else None
