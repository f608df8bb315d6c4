"""Where the rationale is in a raw completion: its characters, then its tokens.

Self-certainty is averaged over the tokens whose characters lie inside the JSON string
value of ``rationale`` (docs/architecture.md §5). These helpers find that value's character span in the
raw text (after an optional code fence, as the parser sees it) and turn a tokenizer's
offset mapping into a token mask.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from json.decoder import scanstring
from typing import Any

from shop_env.actions import strip_code_fence

_WS = " \t\n\r"
_DECODER = json.JSONDecoder()


def rationale_char_span(text: str) -> tuple[int, int] | None:
    """Character offsets of the rationale's JSON string value contents in ``text``.

    ``text[start:end]`` is the raw (still JSON-escaped) contents between the quotes of the
    ``"rationale"`` value; with duplicate keys, the last one (the one ``json.loads``
    keeps).

    Args:
        text: a raw model completion, optionally wrapped in one Markdown code fence.

    Returns:
        ``(start, end)``, or None when the body is not exactly one JSON object with a
        string ``rationale`` (never raises).
    """
    if not isinstance(text, str):
        return None
    try:
        body = strip_code_fence(text)
        if not body.startswith("{"):
            return None
        # Only whitespace and a fence opener (no "{") can precede the body.
        base = text.find(body)
        span = _scan_object(body)
    except (ValueError, RecursionError, IndexError):
        return None
    if span is None:
        return None
    return base + span[0], base + span[1]


def _scan_object(body: str) -> tuple[int, int] | None:
    """Walk the top-level object of ``body``; return the last rationale string's span."""
    end = len(body)
    i = _skip_ws(body, 1)
    found: tuple[int, int] | None = None
    rationale_is_string = False
    if i < end and body[i] == "}":
        return None
    while True:
        if i >= end or body[i] != '"':
            return None
        key, i = scanstring(body, i + 1)
        i = _skip_ws(body, i)
        if i >= end or body[i] != ":":
            return None
        i = _skip_ws(body, i + 1)
        if i < end and body[i] == '"':
            _, value_end = scanstring(body, i + 1)
            if key == "rationale":
                found, rationale_is_string = (i + 1, value_end - 1), True
        else:
            _, value_end = _DECODER.raw_decode(body, i)
            if key == "rationale":
                rationale_is_string = False
        i = _skip_ws(body, value_end)
        if i < end and body[i] == ",":
            i = _skip_ws(body, i + 1)
            continue
        if i < end and body[i] == "}":
            break
        return None
    if _skip_ws(body, i + 1) != end:
        return None
    return found if rationale_is_string else None


def _skip_ws(text: str, i: int) -> int:
    end = len(text)
    while i < end and text[i] in _WS:
        i += 1
    return i


def rationale_token_mask(offsets: Sequence[Sequence[int]], span: tuple[int, int] | None) -> list[bool]:
    """Mark the tokens whose characters overlap the rationale span.

    Args:
        offsets: per token ``(start, end)`` character offsets into the same text the span
            refers to (a fast tokenizer's ``offset_mapping``); empty ranges (special
            tokens, ``(0, 0)``) are never selected.
        span: from :func:`rationale_char_span`; None selects nothing.

    Returns:
        One bool per token: True iff ``[start, end)`` overlaps ``[span_start, span_end)``.
    """
    if span is None:
        return [False] * len(offsets)
    lo, hi = span
    return [end > start and start < hi and end > lo for start, end in offsets]


def token_char_offsets(tokenizer: Any, token_ids: Sequence[int]) -> tuple[str, list[tuple[int, int]]]:
    """Decode ``token_ids`` (special tokens skipped, as trainers and verl's reward manager do) and give each token its character span.

    The text equals ``tokenizer.decode(token_ids, skip_special_tokens=True)`` (what
    ``compute_score`` scored). Fast path: decode each token alone and check that the pieces
    join to that text (true for byte-level BPE on UTF-8-complete tokens); otherwise fall back
    to decoding every prefix, which is exact for any tokenizer.

    Returns:
        ``(text, offsets)``: ``offsets[i] = (start, end)`` characters of token ``i`` in
        ``text`` (empty spans for special tokens).
    """
    ids = [int(i) for i in token_ids]
    text = tokenizer.decode(ids, skip_special_tokens=True)
    pieces = [tokenizer.decode([i], skip_special_tokens=True) for i in ids]
    if "".join(pieces) != text:
        prefixes = tokenizer.batch_decode([ids[: n + 1] for n in range(len(ids))], skip_special_tokens=True)
        pieces = []
        done = 0
        for prefix in prefixes:
            # A prefix ending inside a multi-byte character decodes with a replacement char;
            # its length can overshoot, so clamp to the final text.
            end = min(max(len(prefix), done), len(text))
            pieces.append(text[done:end])
            done = end
    offsets = []
    start = 0
    for piece in pieces:
        offsets.append((start, start + len(piece)))
        start += len(piece)
    return text, offsets


def rationale_mask_for_ids(tokenizer: Any, token_ids: Sequence[int]) -> tuple[str, list[bool]]:
    """The decoded completion and which of its tokens lie inside the rationale string.

    Uses :func:`rewards.rationale_char_span` and :func:`rewards.rationale_token_mask`, the
    same rule as the local backend. No rationale (or unparsable output): all False.
    """
    text, offsets = token_char_offsets(tokenizer, token_ids)
    span = rationale_char_span(text)
    if span is None:
        return text, [False] * len(offsets)
    return text, list(rationale_token_mask(offsets, span))
