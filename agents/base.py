"""The agent protocol and a base class (spec strings -> agents: :mod:`agents.registry`).

An agent reads env observations (docs/architecture.md §9: ``url``, ``html``, ``history``,
``session_id``, ``step``) and answers raw model-output text in the response format of
docs/architecture.md §4. Answers are text, not :class:`~shop_env.actions.Action` objects, so that the
evaluation scores exactly what a model would emit (format errors included).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

Observation = Mapping[str, Any]


@runtime_checkable
class Agent(Protocol):
    """Anything that answers observations with response text."""

    def act(self, observation: Observation) -> str:
        """Return the response text for one observation."""
        ...

    def act_batch(self, observations: Sequence[Observation]) -> list[str]:
        """Return one response text per observation, in order."""
        ...


class BaseAgent:
    """Base class: subclasses implement :meth:`act`; :meth:`act_batch` maps it."""

    #: A short name used in reports (``metrics.json``, report titles).
    name: str = "agent"

    def act(self, observation: Observation) -> str:  # pragma: no cover - abstract
        """Return the response text for one observation."""
        raise NotImplementedError

    def act_batch(self, observations: Sequence[Observation]) -> list[str]:
        """Return ``[self.act(o) for o in observations]``."""
        return [self.act(observation) for observation in observations]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
