"""Parsing of data-source strings such as ``synthetic:200?seed=0`` or ``opera:/data/OPeRA``."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

KNOWN_SCHEMES = ("synthetic", "opera", "shopcart", "jsonl")


@dataclass(frozen=True)
class Source:
    """A parsed source string: ``scheme:target?key=value&...``.

    ``scheme`` is ``jsonl`` for a bare path.
    """

    scheme: str
    target: str
    options: dict[str, str] = field(default_factory=dict)


def parse_source(text: str) -> Source:
    """Parse a source string.

    Raises:
        ValueError: an empty string, an unknown scheme, or a malformed query.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("data source must be a non-empty string such as 'synthetic:200' or 'data/x.jsonl'")
    text = text.strip()
    scheme, sep, rest = text.partition(":")
    # "C:\\data" style drive letters and plain paths are JSONL files.
    if not sep or len(scheme) == 1 or "/" in scheme or "\\" in scheme or "." in scheme:
        return Source("jsonl", text)
    if scheme not in KNOWN_SCHEMES:
        raise ValueError(
            f"unknown data source scheme {scheme!r} in {text!r}: expected one of "
            f"{', '.join(s + ':' for s in KNOWN_SCHEMES)} or a path to a .jsonl file"
        )
    target, _, query = rest.partition("?")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError as err:
        raise ValueError(f"malformed options {query!r} in data source {text!r}: {err}") from None
    return Source(scheme, target, options)


def take_int(options: dict[str, str], key: str, default: int, source: str) -> int:
    """Pop an integer option, with a clear error on a non-integer value."""
    value = options.pop(key, None)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"option {key}={value!r} of data source {source!r} must be an integer") from None


def reject_unknown(options: dict[str, str], source: str, allowed: tuple[str, ...]) -> None:
    """Raise if options remain that the loader does not understand."""
    if options:
        raise ValueError(
            f"unknown option(s) {', '.join(sorted(options))} in data source {source!r}; "
            f"allowed: {', '.join(allowed) or 'none'}"
        )
