"""Shop-R1 environment: logged shopping sessions replayed as ``ShopReplay-v0``.

Importing this package registers ``ShopReplay-v0`` with Gymnasium. It never imports
torch. ``load_sessions`` and ``prune_html`` are loaded lazily on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gymnasium

from shop_env.actions import ACTION_TYPES, Action, FormatError, Response, parse_response
from shop_env.lazy import lazy_exports
from shop_env.sessions import Session, SessionFormatError, SkipReport, Step

if TYPE_CHECKING:  # editors and type checkers see the lazy names
    from shop_env.datasets import load_sessions
    from shop_env.env import ShopReplayEnv
    from shop_env.webpage.prune import Element, PrunedPage, prune_html

__all__ = [
    "ACTION_TYPES",
    "Action",
    "Element",
    "FormatError",
    "PrunedPage",
    "Response",
    "Session",
    "SessionFormatError",
    "ShopReplayEnv",
    "SkipReport",
    "Step",
    "load_sessions",
    "parse_response",
    "prune_html",
]

ENV_ID = "ShopReplay-v0"

_LAZY = {
    "load_sessions": "shop_env.datasets",
    "prune_html": "shop_env.webpage.prune",
    "PrunedPage": "shop_env.webpage.prune",
    "Element": "shop_env.webpage.prune",
    "ShopReplayEnv": "shop_env.env",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, [n for n in __all__ if n not in _LAZY] + ["ENV_ID"])


if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="shop_env.env:ShopReplayEnv")
