"""Observations of logged sessions, and the (session, step) states built from them (docs/architecture.md §8-9).

This module is the one place that turns a :class:`~shop_env.sessions.Session` into what an
agent sees. :class:`~shop_env.env.ShopReplayEnv` builds its observations through
:class:`ObservationBuilder`, and :func:`build_states` uses the same builder, so GRPO prompts,
evaluation and the env agree byte for byte.

An observation is a dict of five entries:

* ``url`` (str): the URL of the current page (``""`` after the last step).
* ``html`` (str): the simplified current page (``""`` after the last step).
* ``history`` (str): a JSON array of the past steps, oldest first, each an object
  ``{"url": str, "html": str | null, "action": {"type": ..., "name": ..., "text": ...},
  "rationale": str | null}`` (the logged rationale of that step, which whole-session prompts
  show as the assistant's earlier answer).
  ``html`` is the page the user saw before that action under ``context="whole-session"``
  and ``null`` under ``context="latest-step"`` (only the current page is shown; past
  actions are kept). ``max_history`` keeps only the last N past steps. It is a string so
  that a Gymnasium ``Text`` space can hold it; decode it with :func:`parse_history`.
* ``session_id`` (str).
* ``step`` (int): the index of the current step, ``len(session.steps)`` after the last one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shop_env.actions import Action
from shop_env.sessions import Session

#: The prompt contexts of the paper's Tab. 5.
CONTEXTS: tuple[str, ...] = ("whole-session", "latest-step")
#: The keys of every observation, in order.
OBSERVATION_KEYS: tuple[str, ...] = ("url", "html", "history", "session_id", "step")


def check_context(context: Any) -> str:
    """Return ``context`` if it is one of :data:`CONTEXTS`.

    Raises:
        ValueError: an unknown context, naming the accepted ones.
    """
    if context not in CONTEXTS:
        raise ValueError(f"unknown context {context!r}: expected one of {', '.join(CONTEXTS)}")
    return context


def check_max_history(max_history: Any) -> int | None:
    """Return ``max_history`` if it is None or a non-negative int.

    Raises:
        ValueError: a negative number or a value that is not an int.
    """
    if max_history is None:
        return None
    if isinstance(max_history, bool) or not isinstance(max_history, int) or max_history < 0:
        raise ValueError(f"max_history must be None or an int >= 0, got {max_history!r}")
    return max_history


class ObservationBuilder:
    """Builds the observations of one session, caching each past step's JSON entry.

    Caching matters: under ``whole-session`` the history repeats every earlier page, so
    re-serialising it on each step would cost O(pages) JSON encoding per step.

    Args:
        session: the session to replay; must have at least one step.
        context: ``"whole-session"`` or ``"latest-step"``.
        max_history: keep only the last N past steps (None keeps all).

    Raises:
        ValueError: an unknown context, a bad ``max_history`` or a session without steps.
    """

    def __init__(self, session: Session, context: str = "whole-session", max_history: int | None = None) -> None:
        self.session = session
        self.context = check_context(context)
        self.max_history = check_max_history(max_history)
        if not session.steps:
            raise ValueError(f"session {session.session_id!r} has no steps")
        self._entries: list[str | None] = [None] * len(session.steps)

    def __len__(self) -> int:
        return len(self.session.steps)

    def _entry(self, index: int) -> str:
        cached = self._entries[index]
        if cached is None:
            step = self.session.steps[index]
            html = step.html if self.context == "whole-session" else None
            entry = {"url": step.url, "html": html, "action": step.action.to_dict(), "rationale": step.rationale}
            cached = self._entries[index] = json.dumps(entry, ensure_ascii=False)
        return cached

    def history(self, index: int) -> str:
        """The ``history`` JSON string of the observation at step ``index``."""
        start = 0 if self.max_history is None else max(0, index - self.max_history)
        return "[" + ",".join(self._entry(i) for i in range(start, index)) + "]"

    def observation(self, index: int) -> dict[str, Any]:
        """A fresh observation dict for step ``index`` (0 .. ``len(steps)``; the last is final).

        Raises:
            IndexError: ``index`` outside ``0 .. len(steps)``.
        """
        n_steps = len(self.session.steps)
        if not 0 <= index <= n_steps:
            raise IndexError(f"step {index} is outside session {self.session.session_id!r} (0..{n_steps})")
        if index < n_steps:
            step = self.session.steps[index]
            url, html = step.url, step.html
        else:  # after the last action there is no next page
            url, html = "", ""
        return {
            "url": url,
            "html": html,
            "history": self.history(index),
            "session_id": self.session.session_id,
            "step": index,
        }


def build_observation(
    session: Session, index: int, context: str = "whole-session", max_history: int | None = None
) -> dict[str, Any]:
    """The observation of ``session`` at step ``index`` (see the module docstring).

    Raises:
        ValueError: an unknown context or bad ``max_history``.
        IndexError: ``index`` outside ``0 .. len(session.steps)``.
    """
    return ObservationBuilder(session, context, max_history).observation(index)


def parse_history(history: str) -> list[dict[str, Any]]:
    """Decode an observation's ``history`` string into a list of entry dicts.

    Raises:
        ValueError: ``history`` is not a JSON array of objects.
    """
    try:
        entries = json.loads(history)
    except (TypeError, ValueError, RecursionError) as err:
        raise ValueError(f"observation history is not a JSON array: {err}") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError("observation history must be a JSON array of objects")
    return entries


@dataclass
class State:
    """One (session, step) state of a split: what the agent sees and what the human did.

    Attributes:
        session_id: the session's id.
        step: the step index within the session.
        observation: the env's observation at this step (see the module docstring).
        gold: the logged human action.
        rationale: the logged rationale, if any.
        meta: a copy of the step's ``meta`` (e.g. ``oracle_action`` for synthetic data).
    """

    session_id: str
    step: int
    observation: dict[str, Any]
    gold: Action
    rationale: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``gold`` as an action dict)."""
        return {
            "session_id": self.session_id,
            "step": self.step,
            "observation": dict(self.observation),
            "gold": self.gold.to_dict(),
            "rationale": self.rationale,
            "meta": dict(self.meta),
        }


def build_states(
    sessions: Iterable[Session], context: str = "whole-session", max_history: int | None = None
) -> list[State]:
    """Every (session, step) state of ``sessions``, in session then step order.

    Args:
        sessions: the sessions of a split (e.g. from ``shop_env.load_sessions``).
        context: ``"whole-session"`` or ``"latest-step"``.
        max_history: keep only the last N past steps in each history (None keeps all).

    Returns:
        One :class:`State` per logged step; the observation equals the env's.

    Raises:
        ValueError: an unknown context, a bad ``max_history`` or a session without steps.
    """
    check_context(context)
    check_max_history(max_history)
    states: list[State] = []
    for session in sessions:
        builder = ObservationBuilder(session, context, max_history)
        for index, step in enumerate(session.steps):
            states.append(
                State(
                    session_id=session.session_id,
                    step=index,
                    observation=builder.observation(index),
                    gold=step.action,
                    rationale=step.rationale,
                    meta=dict(step.meta),
                )
            )
    return states


def max_steps(sessions: Sequence[Session]) -> int:
    """The length of the longest session (0 for none)."""
    return max((len(s.steps) for s in sessions), default=0)
