"""Shop-CART loader: sessions logged as (context, action) pairs per step.

Accepted layouts (JSON array, JSON object with a ``sessions`` list, or JSON lines):

* one record per session: ``{"session_id", "user_id"?, "steps" | "actions": [step, ...]}``;
* one record per step: ``{"session_id", "step" | "timestamp", "context", "action", ...}``.

A step carries ``context`` (the page HTML, also read from ``html``/``page``), an ``action``
(an object with ``type``/``action_type``, ``name``/``target``/``semantic_id``,
``text``/``value``/``input_text``), and optional ``rationale``/``timestamp``.

Alignment. Public reports say a Shop-CART step's context is the page *after* its action.
``context_offset`` sets which context an action is paired with: the page for action ``i`` is
the context of step ``i - context_offset``. The default ``1`` pairs each action with the page
before it (the previous step's context); the first action then has no logged page and gets an
empty one. ``context_offset=0`` takes each record's own context as is.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from shop_env.actions import Action, FormatError
from shop_env.sessions import Session, SessionFormatError, SkipReport, Step, lone_surrogate_field

TYPE_ALIASES = {
    "click": "click",
    "type_and_submit": "type_and_submit",
    "type": "type_and_submit",
    "input": "type_and_submit",
    "search": "type_and_submit",
    "terminate": "terminate",
    "stop": "terminate",
    "end": "terminate",
    "scroll": "scroll",
}


def load_shopcart(
    path: str,
    *,
    context_offset: int = 1,
    skip_invalid: bool = False,
    report: SkipReport | None = None,
) -> list[Session]:
    """Load Shop-CART sessions from a JSON / JSON-lines file.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a negative ``context_offset``; malformed records (file, record and field
            named) unless ``skip_invalid``.
    """
    if context_offset < 0:
        raise ValueError(f"context_offset must be >= 0, got {context_offset}")
    report = report if report is not None else SkipReport()
    records = _read_records(Path(path))
    sessions: list[Session] = []
    per_step: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    first_at: dict[str, str] = {}  # session id -> where its session record is
    for where, record in records:
        try:
            if isinstance(record, _Broken):
                raise SessionFormatError(where, "<line>", f"invalid JSON ({record.reason})")
            if not isinstance(record, dict):
                raise SessionFormatError(where, "<record>", "must be a JSON object")
            bad = lone_surrogate_field(record)
            if bad is not None:
                raise SessionFormatError(where, bad, "holds a lone UTF-16 surrogate, which is not valid Unicode")
            steps_raw = record.get("steps", record.get("actions"))
            if steps_raw is None:
                if "session_id" not in record:
                    raise SessionFormatError(where, "session_id", "is missing")
                per_step[str(record["session_id"])].append((where, record))
                continue
            session = _session(where, record, steps_raw, context_offset)
            if session.session_id in first_at:
                raise SessionFormatError(where, "session_id", f"duplicate session id {session.session_id!r} "
                                         f"(first at {first_at[session.session_id]})")
            first_at[session.session_id] = where
            sessions.append(session)
        except SessionFormatError as err:
            if not skip_invalid:
                raise
            report.add(err)
    for session_id, items in per_step.items():
        items.sort(key=lambda item: _order_key(item[1]))
        where = items[0][0]
        try:
            if session_id in first_at:
                raise SessionFormatError(where, "session_id", f"per-step records of session {session_id!r}, "
                                         f"which already has a session record at {first_at[session_id]}")
            sessions.append(_session(where, {"session_id": session_id, "user_id": items[0][1].get("user_id")},
                                     [rec for _, rec in items], context_offset))
        except SessionFormatError as err:
            if not skip_invalid:
                raise
            report.add(err)
    return sessions


def _read_records(path: Path) -> list[tuple[str, Any]]:
    name = os.fspath(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SessionFormatError(name, "<file>", f"invalid UTF-8 at byte {err.start}") from None
    stripped = text.lstrip()
    if stripped.startswith("[") or (stripped.startswith("{") and path.suffix == ".json"):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as err:
            raise SessionFormatError(name, "<file>", f"invalid JSON ({err})") from None
        if isinstance(data, dict):
            data = data.get("sessions", [data])
        if not isinstance(data, list):
            raise SessionFormatError(name, "sessions", "must be a list")
        return [(f"{name}:record {i}", rec) for i, rec in enumerate(data)]
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                records.append((f"{name}:{number}", json.loads(line)))
            except (ValueError, RecursionError) as err:
                records.append((f"{name}:{number}", _Broken(str(err))))
    return records


class _Broken:
    """A JSON-lines line that failed to parse; reported when the record is validated."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _order_key(record: dict[str, Any]) -> tuple[float, float]:
    def num(value: Any) -> float:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0

    return num(record.get("step", record.get("step_index"))), num(record.get("timestamp"))


def _session(where: str, record: dict[str, Any], steps_raw: Any, offset: int) -> Session:
    session_id = record.get("session_id")
    if session_id in (None, ""):
        raise SessionFormatError(where, "session_id", "is missing")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise SessionFormatError(where, "steps", "must be a non-empty list")
    contexts: list[str] = []
    parsed: list[tuple[Action, dict[str, Any]]] = []
    for i, raw in enumerate(steps_raw):
        if not isinstance(raw, dict):
            raise SessionFormatError(where, f"steps[{i}]", "must be a JSON object")
        context = raw.get("context", raw.get("html", raw.get("page", "")))
        if not isinstance(context, str):
            raise SessionFormatError(where, f"steps[{i}].context", "must be a string")
        contexts.append(context)
        parsed.append((_action(where, f"steps[{i}].action", raw.get("action")), raw))
    steps = []
    for i, (action, raw) in enumerate(parsed):
        html = contexts[i - offset] if i - offset >= 0 else ""
        stamp = raw.get("timestamp")
        stamp = float(stamp) if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) else None
        rationale = raw.get("rationale")
        steps.append(Step(str(raw.get("url", "")), html, action,
                          rationale if isinstance(rationale, str) else None, stamp))
    user = record.get("user_id")
    return Session(str(session_id), steps, user_id=None if user is None else str(user),
                   persona=record.get("persona"), source="shopcart")


def _action(where: str, field: str, raw: Any) -> Action:
    if isinstance(raw, str):  # some dumps store the action as a JSON string
        try:
            raw = json.loads(raw)
        except ValueError:
            raise SessionFormatError(where, field, f"not a JSON action: {raw[:60]!r}") from None
    if not isinstance(raw, dict):
        raise SessionFormatError(where, field, "must be an object")
    kind = str(raw.get("type", raw.get("action_type", ""))).strip().lower()
    if kind not in TYPE_ALIASES:
        raise SessionFormatError(where, f"{field}.type", f"unknown action type {kind!r}")
    data = {
        "type": TYPE_ALIASES[kind],
        "name": _first(raw, ("name", "target", "semantic_id", "element")),
        "text": _first(raw, ("text", "value", "input_text", "query")),
    }
    if data["type"] in ("click", "type_and_submit") and not data["name"].strip():
        raise SessionFormatError(where, f"{field}.name", f"a logged {data['type']} action needs the target "
                                 "element's name (name/target/semantic_id/element)")
    try:
        return Action.from_dict(data, field=field)
    except FormatError as err:
        raise SessionFormatError(where, field, str(err)) from None


def _first(raw: dict[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = raw.get(key)
        if value not in (None, ""):
            return str(value)
    return ""
