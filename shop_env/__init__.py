"""Shop-R1 environment: logged shopping sessions replayed as ``ShopReplay-v0``.

Importing this package registers ``ShopReplay-v0`` with Gymnasium. It never imports
torch. ``load_sessions`` and ``prune_html`` are loaded lazily on first use.
"""

from __future__ import annotations

from typing import Any

import gymnasium

from shop_env.actions import ACTION_TYPES, Action, FormatError, Response, parse_response
from shop_env.sessions import Session, SessionFormatError, SkipReport, Step

__all__ = [
    "ACTION_TYPES",
    "Action",
    "FormatError",
    "Response",
    "Session",
    "SessionFormatError",
    "SkipReport",
    "Step",
    "load_sessions",
    "parse_response",
    "prune_html",
]

ENV_ID = "ShopReplay-v0"

_LAZY = {
    "load_sessions": "shop_env.datasets",
    "prune_html": "shop_env.html",
    "PrunedPage": "shop_env.html",
    "Element": "shop_env.html",
    "ShopReplayEnv": "shop_env.env",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'shop_env' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="shop_env.env:ShopReplayEnv")
