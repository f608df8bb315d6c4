"""Actions, model responses and the strict response parser (docs/architecture.md §3-4).

This module has no third-party dependencies: everything else builds on it, and the
reward functions call :func:`parse_response` on arbitrary model output, so it must be
cheap, total (raises only :class:`FormatError`) and never evaluate what it reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The canonical action types a model may emit.
CANONICAL_ACTION_TYPES: tuple[str, ...] = ("click", "type_and_submit", "terminate")
#: Every accepted type: ``scroll`` is type-only, for datasets that log it.
ACTION_TYPES: tuple[str, ...] = CANONICAL_ACTION_TYPES + ("scroll",)

# The info string of an opening code fence (```json): a language tag, nothing else.
_FENCE_INFO = re.compile(r"[A-Za-z0-9_-]*")


class FormatError(ValueError):
    """A model response (or action record) that does not follow the output format."""


@dataclass(frozen=True, slots=True)
class Action:
    """One user action.

    Attributes:
        type: one of :data:`ACTION_TYPES`.
        name: the target element's semantic name (``click``/``type_and_submit``).
        text: the text typed (``type_and_submit``).
    """

    type: str
    name: str = ""
    text: str = ""

    def to_dict(self) -> dict[str, str]:
        """Return the JSON form: ``type`` always, ``name``/``text`` where the type uses them."""
        out = {"type": self.type}
        if self.type in ("click", "type_and_submit"):
            out["name"] = self.name
        if self.type == "type_and_submit":
            out["text"] = self.text
        return out

    def to_json(self) -> str:
        """Return :meth:`to_dict` as compact JSON."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Any, *, field: str = "action") -> Action:
        """Build an action from a JSON object.

        Args:
            data: a mapping with ``type`` and optional string ``name``/``text``.
            field: the field path used in error messages.

        Raises:
            FormatError: ``data`` is not an object, the type is unknown, or
                ``name``/``text`` is present but not a string.
        """
        if not isinstance(data, dict):
            raise FormatError(f"{field} must be a JSON object, got {_json_type(data)}")
        kind = data.get("type")
        if not isinstance(kind, str):
            raise FormatError(f"{field}.type must be a string, got {_json_type(kind)}")
        kind = _plain(kind)
        if kind not in ACTION_TYPES:
            raise FormatError(
                f"{field}.type {_clip(kind)!r} is not in the action space: "
                f"{', '.join(CANONICAL_ACTION_TYPES)} (scroll is accepted as type-only)"
            )
        values = {}
        for key in ("name", "text"):
            value = data.get(key, "")
            if not isinstance(value, str):
                raise FormatError(f"{field}.{key} must be a string, got {_json_type(value)}")
            values[key] = _plain(value)
        return cls(kind, values["name"], values["text"])

    @classmethod
    def parse(cls, value: Any, *, field: str = "action") -> Action:
        """Read a stored action record: an :class:`Action`, its JSON text, or its dict.

        The one reader for gold actions as datasets, GRPO rows and verl parquet store
        them. Keys whose value is None are dropped first (Arrow structs hand back None
        for absent fields).

        Args:
            value: the record.
            field: the field path used in error messages.

        Returns:
            The action.

        Raises:
            FormatError: not JSON, not an object, or not a valid action (the message says which).
        """
        if isinstance(value, cls):
            return value
        data = value
        if isinstance(value, (str, bytes)):
            try:
                data = json.loads(value)
            except ValueError as err:
                raise FormatError(f"{field} is not JSON: {err} in {_clip(str(value), 80)!r}") from None
        if isinstance(data, Mapping):
            data = {key: item for key, item in data.items() if item is not None}
        return cls.from_dict(data, field=field)


@dataclass(frozen=True, slots=True)
class Response:
    """A parsed model answer: a first-person rationale and the predicted action."""

    rationale: str
    action: Action

    def to_json(self) -> str:
        """Return the response in the model output format of docs/architecture.md §4."""
        return json.dumps(
            {"rationale": self.rationale, "action": self.action.to_dict()}, ensure_ascii=False
        )


def strip_code_fence(text: str) -> str:
    """Strip surrounding whitespace and at most one surrounding Markdown code fence."""
    # Plain string work, not one big regex: a fenced run of whitespace made the regex
    # backtrack quadratically, and this runs on every (possibly megabyte) model output.
    text = text.strip()
    if len(text) < 6 or not (text.startswith("```") and text.endswith("```")):
        return text
    inner = text[3:-3]
    first_line, newline, rest = inner.partition("\n")
    if newline and _FENCE_INFO.fullmatch(first_line.strip()):
        return rest.strip()
    tag = _FENCE_INFO.match(inner).group()  # "```json{...}```" on one line
    return inner[len(tag):].strip()


def parse_response(text: str) -> Response:
    """Parse a model response into a :class:`Response`.

    Valid iff, after stripping whitespace and at most one surrounding Markdown code fence,
    ``text`` is exactly one JSON object with a string ``rationale`` and an object
    ``action`` whose ``type`` is in the action space; ``name`` and ``text``, where
    present, are strings. Empty ``name``/``text`` are valid format.

    Args:
        text: the raw model output.

    Returns:
        The parsed response.

    Raises:
        FormatError: with a message saying what is wrong. Never any other exception.
    """
    if not isinstance(text, str):
        raise FormatError(f"response must be a string, got {type(text).__name__}")
    # An exact str: a subclass's own strip()/startswith() (which may raise) never run.
    body = strip_code_fence(_plain(text))
    if not body:
        raise FormatError("response is empty")
    if body[0] != "{":
        raise FormatError(f"response must be one JSON object starting with '{{', got {_clip(body)!r}")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as err:
        raise FormatError(f"response is not valid JSON: {err.msg} at char {err.pos}") from None
    except RecursionError:
        raise FormatError("response is not valid JSON: nested too deeply") from None
    except ValueError as err:  # e.g. numbers too long to convert
        raise FormatError(f"response is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise FormatError(f"response must be a JSON object, got {_json_type(data)}")
    rationale = data.get("rationale")
    if not isinstance(rationale, str):
        raise FormatError(
            "response.rationale is missing"
            if "rationale" not in data
            else f"response.rationale must be a string, got {_json_type(rationale)}"
        )
    if "action" not in data:
        raise FormatError("response.action is missing")
    return Response(rationale, Action.from_dict(data["action"], field="action"))


def _plain(text: str) -> str:
    """``text`` as an exact ``str`` (a copy of a subclass, whose methods are never called)."""
    return text if type(text) is str else str.__str__(text)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(value), type(value).__name__)


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
