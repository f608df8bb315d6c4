"""Sessions and steps, and streaming JSONL read/write of the canonical format (docs/architecture.md §3).

A malformed record raises :class:`SessionFormatError` naming the file, line and field;
with ``skip_invalid=True`` it is counted in a :class:`SkipReport` instead.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shop_env.actions import Action, FormatError


class SessionFormatError(ValueError):
    """A session record that does not follow the canonical format.

    Attributes:
        where: ``file:line`` (or ``file:row``) of the record.
        field: the dotted path of the offending field, e.g. ``steps[3].action.type``.
    """

    def __init__(self, where: str, field: str, message: str) -> None:
        super().__init__(f"{where}: field {field!r}: {message}")
        self.where = where
        self.field = field


@dataclass
class Step:
    """One logged step: the page the user saw *before* acting, and the action taken.

    ``meta`` holds data kept outside the observation (for synthetic sessions, the shopper
    model's most likely next action and its probability).
    """

    url: str
    html: str
    action: Action
    rationale: str | None = None
    timestamp: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the canonical JSON object of this step."""
        out: dict[str, Any] = {
            "url": self.url,
            "html": self.html,
            "action": self.action.to_dict(),
            "rationale": self.rationale,
            "timestamp": self.timestamp,
        }
        if self.meta:
            out["meta"] = self.meta
        return out


@dataclass
class Session:
    """One logged shopping session.

    ``split`` is the data set's own split (``"train"``/``"test"``) when the source publishes
    one (OPeRA); None leaves the assignment to the hash rule of :func:`split_of`.
    """

    session_id: str
    steps: list[Step]
    user_id: str | None = None
    persona: Any = None
    source: str = "jsonl"
    split: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the canonical JSON object of this session (``split`` only when set)."""
        out = {
            "session_id": self.session_id,
            "user_id": self.user_id,
            "source": self.source,
            "persona": self.persona,
            "steps": [step.to_dict() for step in self.steps],
        }
        if self.split is not None:
            out["split"] = self.split
        return out


@dataclass
class SkipReport:
    """Counts records skipped under ``skip_invalid`` and keeps the first few reasons."""

    skipped: int = 0
    reasons: list[str] = field(default_factory=list)
    #: records left out by design rather than for being malformed (e.g. browser events)
    dropped: int = 0
    #: whole sessions left out because one of their records was malformed (``invalid=session``)
    sessions_skipped: int = 0
    max_reasons: int = 20

    def add(self, error: Exception) -> None:
        """Record one skipped record."""
        self.skipped += 1
        if len(self.reasons) < self.max_reasons:
            self.reasons.append(str(error))

    def summary(self) -> str:
        """One line for logs: how many were skipped and the first reason."""
        if not self.skipped:
            return "no invalid records"
        sessions = f" and {self.sessions_skipped} session(s) holding them" if self.sessions_skipped else ""
        return f"skipped {self.skipped} invalid record(s){sessions}; first: {self.reasons[0]}"


def session_from_dict(data: Any, where: str, source: str = "jsonl") -> Session:
    """Validate one canonical session object and build a :class:`Session`.

    Args:
        data: the decoded JSON object.
        where: ``file:line`` used in error messages.
        source: the default ``source`` when the record has none.

    Raises:
        SessionFormatError: naming ``where`` and the offending field.
    """
    if not isinstance(data, dict):
        raise SessionFormatError(where, "<record>", "must be a JSON object")
    bad = lone_surrogate_field(data)
    if bad is not None:
        raise SessionFormatError(where, bad, "holds a lone UTF-16 surrogate (e.g. \\ud800), which is not "
                                 "valid Unicode and cannot be written as UTF-8")
    sid = data.get("session_id")
    if not isinstance(sid, (str, int)) or isinstance(sid, bool) or str(sid) == "":
        raise SessionFormatError(where, "session_id", "must be a non-empty string")
    user = data.get("user_id")
    if user is not None and not isinstance(user, (str, int)):
        raise SessionFormatError(where, "user_id", "must be a string or null")
    steps_raw = data.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise SessionFormatError(where, "steps", "must be a non-empty list")
    steps = [_step_from_dict(raw, where, f"steps[{i}]") for i, raw in enumerate(steps_raw)]
    src = data.get("source", source)
    own_split = data.get("split")
    if own_split not in (None, "train", "test"):
        raise SessionFormatError(where, "split", f"must be 'train', 'test' or null, got {own_split!r}")
    return Session(
        session_id=str(sid),
        steps=steps,
        user_id=None if user is None else str(user),
        persona=data.get("persona"),
        source=src if isinstance(src, str) else source,
        split=own_split,
    )


_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate_field(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (value or key) in ``value`` holding a lone
    surrogate, or None. JSON escapes such as ``"\\ud800"`` decode to one; the canonical
    format is UTF-8, which cannot encode it."""
    if isinstance(value, str):
        return (path or "<value>") if _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _SURROGATE.search(key):
                return here
            found = lone_surrogate_field(item, here)
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = lone_surrogate_field(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _step_from_dict(raw: Any, where: str, path: str) -> Step:
    if not isinstance(raw, dict):
        raise SessionFormatError(where, path, "must be a JSON object")
    for key in ("url", "html"):
        if not isinstance(raw.get(key, ""), str):
            raise SessionFormatError(where, f"{path}.{key}", "must be a string")
    try:
        action = Action.from_dict(raw.get("action"), field=f"{path}.action")
    except FormatError as err:
        field_name = str(err).split(" ", 1)[0]
        raise SessionFormatError(where, field_name, str(err)) from None
    if action.type in ("click", "type_and_submit") and not action.name.strip():
        # A model may answer an empty name (valid format, never a match); a logged action may not.
        raise SessionFormatError(where, f"{path}.action.name",
                                 f"a logged {action.type} action needs the target element's name")
    rationale = raw.get("rationale")
    if rationale is not None and not isinstance(rationale, str):
        raise SessionFormatError(where, f"{path}.rationale", "must be a string or null")
    stamp = raw.get("timestamp")
    if stamp is not None:
        if isinstance(stamp, bool) or not isinstance(stamp, (int, float)) or not math.isfinite(stamp):
            raise SessionFormatError(where, f"{path}.timestamp", "must be a finite number or null")
        stamp = float(stamp)
    meta = raw.get("meta") or {}
    if not isinstance(meta, dict):
        raise SessionFormatError(where, f"{path}.meta", "must be an object")
    return Step(raw.get("url", ""), raw.get("html", ""), action, rationale, stamp, meta)


def iter_jsonl(
    path: str | os.PathLike[str],
    *,
    skip_invalid: bool = False,
    report: SkipReport | None = None,
) -> Iterator[Session]:
    """Stream sessions from a canonical JSONL file, one record per line.

    Blank lines are ignored. Lines are decoded as strict UTF-8.

    Args:
        path: the ``.jsonl`` file.
        skip_invalid: count and skip malformed records instead of raising.
        report: where skipped records are counted (a new one if None).

    Raises:
        FileNotFoundError: the file does not exist.
        SessionFormatError: a malformed record (unless ``skip_invalid``).
    """
    report = report if report is not None else SkipReport()
    name = os.fspath(path)
    seen: dict[str, int] = {}  # session id -> line of its first record
    with open(name, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            where = f"{name}:{number}"
            try:
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise SessionFormatError(where, "<line>", f"invalid UTF-8 at byte {err.start}") from None
                try:
                    data = json.loads(text)
                except (ValueError, RecursionError) as err:
                    raise SessionFormatError(where, "<line>", f"invalid JSON ({err})") from None
                session = session_from_dict(data, where)
                if session.session_id in seen:
                    raise SessionFormatError(
                        where, "session_id", f"duplicate session id {session.session_id!r} (first at line "
                        f"{seen[session.session_id]}; ids are compared as strings, so 1 and \"1\" are the same)")
                seen[session.session_id] = number
                yield session
            except SessionFormatError as err:
                if not skip_invalid:
                    raise
                report.add(err)


def read_jsonl(
    path: str | os.PathLike[str], *, skip_invalid: bool = False, report: SkipReport | None = None
) -> list[Session]:
    """Read every session of a canonical JSONL file (see :func:`iter_jsonl`)."""
    return list(iter_jsonl(path, skip_invalid=skip_invalid, report=report))


def write_jsonl(sessions: Iterable[Session], path: str | os.PathLike[str]) -> int:
    """Write sessions as canonical JSONL atomically (temp file, then rename).

    Returns:
        The number of sessions written.

    Raises:
        ValueError: a session holds a string with a lone surrogate (named; nothing is
            written). Loaders reject such records, so this only concerns sessions built
            in code.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
    count = 0
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            for session in sessions:
                record = session.to_dict()
                try:
                    line = json.dumps(record, ensure_ascii=False) + "\n"
                    handle.write(line)
                except UnicodeEncodeError:
                    bad = lone_surrogate_field(record) or "<record>"
                    raise ValueError(f"session {session.session_id!r}: field {bad!r} holds a lone UTF-16 "
                                     f"surrogate, which cannot be written as UTF-8") from None
                count += 1
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return count


def split_of(session_id: str, test_fraction: float = 0.2) -> str:
    """Deterministic train/test assignment of a session by a hash of its id."""
    digest = hashlib.sha1(session_id.encode("utf-8")).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2**64 < test_fraction else "train"


def session_split(session: Session, test_fraction: float = 0.2) -> str:
    """The split of a session: the data set's own (``session.split``) when it has one, else
    the hash of its id (:func:`split_of`). The one rule training, export, env and evaluation use."""
    return session.split if session.split is not None else split_of(session.session_id, test_fraction)


def split_rule(sessions: Iterable[Session], test_fraction: float = 0.2) -> str:
    """Says which rule :func:`session_split` applies to ``sessions``, for reports."""
    own = {s.split is not None for s in sessions}
    if own == {True}:
        return "the data set's own train/test split"
    hashed = f"a hash of the session id (test fraction {test_fraction:g})"
    return hashed if own != {True, False} else f"the data set's own split where given, else {hashed}"


#: The split names :func:`select_split` (and every ``--split``/``eval.split``) accepts.
SPLIT_CHOICES: tuple[str, ...] = ("train", "test", "all")


def select_split(sessions: Iterable[Session], split: str | None, test_fraction: float = 0.2) -> list[Session]:
    """Keep the sessions of ``split`` (``train``, ``test`` or None/``all`` for every one),
    by :func:`session_split`.

    Raises:
        ValueError: an unknown split name.
    """
    if split in (None, "all"):
        return list(sessions)
    if split not in SPLIT_CHOICES:
        raise ValueError(f"unknown split {split!r}: expected one of {', '.join(map(repr, SPLIT_CHOICES))} or None")
    return [s for s in sessions if session_split(s, test_fraction) == split]
