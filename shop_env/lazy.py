"""Lazy package exports: names loaded from their module on first access (PEP 562).

``shop_env`` and ``agents`` export names whose modules pull in heavy dependencies (lxml,
torch) that a plain ``import`` must not load. :func:`lazy_exports` builds the module-level
``__getattr__`` and ``__dir__`` for such a package from one ``name -> module`` table.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, names: Mapping[str, str], eager: list[str]) -> tuple[Callable[[str], Any],
                                                                                  Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` for lazily loaded ``names``.

    Args:
        package: the package's ``__name__`` (for the error message).
        names: exported name -> the module that defines it.
        eager: the names the package defines itself (listed by ``dir()``).

    Returns:
        ``(__getattr__, __dir__)``: assign both at module level.
    """
    table = dict(names)

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted(set(eager) | set(table))

    return __getattr__, __dir__
