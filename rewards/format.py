"""Format reward: is the model output one well-formed response (docs/architecture.md §4)?"""

from __future__ import annotations

from typing import Any

from shop_env.actions import Response, parse_response


def check_format(text: Any) -> tuple[Response | None, str | None]:
    """Parse a model output without raising.

    Args:
        text: anything a model (or a buggy caller) produced.

    Returns:
        ``(response, None)`` when valid, else ``(None, message)`` saying what is wrong.
    """
    try:
        return parse_response(text), None
    except ValueError as err:  # FormatError, and anything json lets through
        return None, str(err) or type(err).__name__
    except (RecursionError, MemoryError, TypeError) as err:  # defensive: never crash a run
        return None, f"response could not be parsed: {type(err).__name__}"
