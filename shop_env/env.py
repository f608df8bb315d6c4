"""``ShopReplay-v0``: logged shopping sessions replayed as a Gymnasium environment (docs/architecture.md §9).

An episode is one logged session. At each step the agent sees the page the human saw
(plus the session so far, see :mod:`shop_env.observations`) and answers with a model response
(docs/architecture.md §4 JSON). The env scores it against the human's logged action with
:func:`rewards.score` and then moves to the human's next page whatever the agent did
(replay, not simulation). The episode terminates after the session's last step.
"""

from __future__ import annotations

import operator
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium
from gymnasium import spaces
from gymnasium.spaces.utils import flatdim, flatten, flatten_space, unflatten
from gymnasium.vector.utils.shared_memory import create_shared_memory

import rewards
from shop_env.actions import Action
from shop_env.observations import ObservationBuilder, check_context, check_max_history, max_steps
from shop_env.sessions import Session, select_split
from shop_env.webpage.reader import page_element_names

# Characters that ``AnyText.sample()`` draws from: printable ASCII is enough to exercise
# the parser with junk; real agents send JSON.
_SAMPLE_CHARSET = "".join(chr(c) for c in range(32, 127))
_RESET_OPTIONS = ("session_id", "session_index")
# Observation builders kept (least recently used dropped): bounds the memory that cached
# history JSON takes while making repeated episodes of the same sessions cheap.
_KEPT_BUILDERS = 64


class AnyText(spaces.Text):
    """A ``Text`` space that contains *every* Python string (any length, any charset).

    ``sample()`` draws short printable-ASCII strings (up to ``sample_max_length``
    characters), so sampling never allocates much. ``max_length`` and ``character_set``
    describe sampling only; :meth:`contains` accepts any ``str``. Not flattenable to a
    fixed-size array.
    """

    def __init__(self, sample_max_length: int = 32, *, seed: int | None = None) -> None:
        super().__init__(max_length=sample_max_length, min_length=0, charset=_SAMPLE_CHARSET, seed=seed)

    def contains(self, x: Any) -> bool:
        """True for any ``str``."""
        return isinstance(x, str)

    @property
    def is_np_flattenable(self) -> bool:
        """Unbounded strings do not flatten to a fixed-size array."""
        return False

    def __repr__(self) -> str:
        return f"AnyText(sample_max_length={self.max_length})"

    def __eq__(self, other: object, /) -> bool:
        return isinstance(other, AnyText) and self.max_length == other.max_length


def _not_fixed_size(space: AnyText, *args: Any, **kwargs: Any) -> Any:
    raise TypeError(
        f"{space!r} holds strings of any length, which have no fixed-size array form. For an async "
        "vector env pass vector_kwargs={'shared_memory': False} to gymnasium.make_vec; use the "
        "strings themselves (e.g. shop_env.prompt.build_messages) instead of flattening them."
    )


# Gymnasium's Text handlers would silently cut or garble unbounded strings (shared memory
# and flattening assume max_length); refuse clearly instead.
for _handler in (create_shared_memory, flatdim, flatten, flatten_space, unflatten):
    _handler.register(AnyText)(_not_fixed_size)




def _load_sessions(sessions: Any, split: str | None) -> tuple[list[Session], str]:
    """Resolve the ``sessions`` kwarg into a list and a description for error messages."""
    if sessions is None:
        from shop_env.datasets import DEFAULT_SOURCE, load_sessions

        return load_sessions(DEFAULT_SOURCE, split), DEFAULT_SOURCE
    if isinstance(sessions, (str, os.PathLike)):
        from shop_env.datasets import load_sessions

        return load_sessions(sessions, split), os.fspath(sessions)
    if isinstance(sessions, Sequence) and not isinstance(sessions, (bytes, bytearray)):
        for i, session in enumerate(sessions):
            if not isinstance(session, Session):
                raise TypeError(f"sessions[{i}] must be a Session, got {type(session).__name__}")
        return select_split(sessions, split), f"a list of {len(sessions)} sessions"
    raise TypeError(
        "sessions must be a source string (path.jsonl, synthetic:N, opera:<root>, shopcart:<path>), "
        f"a path or a list of Session, got {type(sessions).__name__}"
    )


class ShopReplayEnv(gymnasium.Env[dict[str, Any], str]):
    """Replays logged shopping sessions; rewards predicting the human's next action.

    ## Description

    One episode is one logged session. At each step the agent sees the page the human saw
    (and what came before) and answers, as text, what the human does next; the env scores the
    answer against the logged action and moves on to the next logged page whatever the
    answer was (a replay, not a simulation of the shop).

    ## Action space

    The model's raw response text (:class:`AnyText`): a JSON object with a first-person
    ``rationale`` and an ``action`` -- ``{"type": "click", "name": ...}``,
    ``{"type": "type_and_submit", "name": ..., "text": ...}`` or ``{"type": "terminate"}``
    (docs/architecture.md §4). Text that breaks the format is a valid action that earns 0;
    a non-string action is treated the same way, never raised on.

    ## Observation space

    A :class:`gymnasium.spaces.Dict` of text fields ``url``, ``html`` (the simplified page),
    ``history`` (JSON string of earlier pages and actions), ``session_id``, and ``step``
    (int): see :mod:`shop_env.observations`.

    ## Rewards

    ``rewards.score_answer`` under ``reward``: the format reward, the rationale's
    self-certainty (0 here: the env has no model logits; training adds it) and the
    hierarchical action reward with difficulty-aware scaling (DARS), or the binary reward
    (docs/architecture.md §5). ``info`` from :meth:`step`: ``session_id``, ``step`` (the
    step scored), ``gold_action`` (dict), ``reward_breakdown`` (dict), ``exact_match``,
    ``type_match``, ``parse_error`` (None or why the response is invalid) and
    ``candidates`` (element names on the page the action was taken on). ``info`` from
    :meth:`reset`: ``session_id``, ``step``, ``n_steps``, ``candidates`` (current page).

    ## Episode end

    ``terminated`` is True after the session's last logged action is scored; ``truncated``
    is always False. :meth:`reset` picks a session with the env's RNG (``seed``), or the
    one named by ``options={"session_id": ...}`` (or ``{"session_index": ...}``).

    ## Arguments

    * ``sessions``: a ``shop_env.load_sessions`` source string or path, or a list of
      :class:`~shop_env.sessions.Session`; None loads the bundled synthetic set
      (``shop_env.datasets.DEFAULT_SOURCE``).
    * ``split``: ``"train"``, ``"test"`` or None/``"all"``.
    * ``context``: ``"whole-session"`` (history carries every past page) or
      ``"latest-step"`` (history carries past URLs and actions only).
    * ``reward``: a ``rewards.RewardConfig``, a dict of its fields, or None (defaults).
    * ``max_history``: keep only the last N past steps in the history (None keeps all).
    * ``render_mode``: ``"ansi"`` or None.

    ## Registered configurations

    ``gym.make("ShopReplay-v0", **arguments)`` after ``import shop_env``; the defaults
    above apply. Every registered id passes ``gymnasium.utils.env_checker.check_env``.

    Raises:
        ValueError: unknown context or split, bad max_history or render mode, an empty
            split, a session without steps, duplicate session ids, bad reward fields.
        TypeError: ``sessions`` or ``reward`` of the wrong type.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        sessions: str | os.PathLike[str] | Sequence[Session] | None = None,
        split: str | None = None,
        context: str = "whole-session",
        reward: rewards.RewardConfig | Mapping[str, Any] | None = None,
        max_history: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.context = check_context(context)
        self.max_history = check_max_history(max_history)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unknown render_mode {render_mode!r}: expected 'ansi' or None")
        self.render_mode = render_mode
        self.reward_config = rewards.RewardConfig.coerce(reward)
        loaded, described = _load_sessions(sessions, split)
        if not loaded:
            raise ValueError(f"no sessions to replay in {described} (split={split!r})")
        self.sessions: list[Session] = list(loaded)
        self._index_of: dict[str, int] = {}
        for i, session in enumerate(self.sessions):
            if not session.steps:
                raise ValueError(f"session {session.session_id!r} has no steps")
            if session.session_id in self._index_of:
                raise ValueError(f"duplicate session_id {session.session_id!r} in {described}")
            self._index_of[session.session_id] = i
        self.observation_space = spaces.Dict(
            {
                "url": AnyText(),
                "html": AnyText(),
                "history": AnyText(),
                "session_id": AnyText(),
                "step": spaces.Discrete(max_steps(self.sessions) + 1),
            }
        )
        self.action_space = AnyText(sample_max_length=64)
        # Per session (kept for the same recent sessions): its observation builder and the
        # element names of each page, filled lazily.
        self._builders: OrderedDict[int, ObservationBuilder] = OrderedDict()
        self._page_names: dict[int, list[tuple[str, ...] | None]] = {}
        self._session_index: int | None = None
        self._builder: ObservationBuilder | None = None
        self._step = 0
        self._last: dict[str, Any] | None = None

    # -- episode ------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start replaying a session.

        Args:
            seed: seeds the random choice of session (same seed, same episode).
            options: ``{"session_id": str}`` or ``{"session_index": int}`` picks the
                session; otherwise one is drawn with the env's RNG.

        Returns:
            ``(observation, info)``.

        Raises:
            ValueError: an unknown option, both options, an unknown session id or an
                index out of range.
        """
        super().reset(seed=seed)
        index = self._pick_session(options or {})
        self._session_index = index
        self._builder = self._builder_for(index)
        self._step = 0
        self._last = None
        info = {
            "session_id": self.sessions[index].session_id,
            "step": 0,
            "n_steps": len(self._builder),
            "candidates": list(self._page_candidates(index, 0)),
        }
        return self._builder.observation(0), info

    def _pick_session(self, options: Mapping[str, Any]) -> int:
        if not isinstance(options, Mapping):
            raise ValueError(f"options must be a dict, got {type(options).__name__}")
        unknown = sorted(set(options) - set(_RESET_OPTIONS), key=str)
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}: expected one of {', '.join(_RESET_OPTIONS)}")
        if "session_id" in options and "session_index" in options:
            raise ValueError("pass either session_id or session_index, not both")
        if "session_id" in options:
            sid = options["session_id"]
            if not isinstance(sid, str) or sid not in self._index_of:
                raise ValueError(f"unknown session_id {sid!r} ({len(self.sessions)} sessions loaded)")
            return self._index_of[sid]
        if "session_index" in options:
            index = options["session_index"]
            if isinstance(index, bool) or not hasattr(index, "__index__"):
                raise ValueError(f"session_index must be an int, got {type(index).__name__}")
            index = operator.index(index)
            if not 0 <= index < len(self.sessions):
                raise ValueError(f"session_index {index} is out of range 0..{len(self.sessions) - 1}")
            return index
        return int(self.np_random.integers(len(self.sessions)))

    def step(self, action: str) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Score ``action`` (the model's response text) against the logged action, then advance.

        Never raises on the content of ``action``: an invalid response earns 0 and its
        reason is ``info["parse_error"]``.

        Returns:
            ``(observation, reward, terminated, truncated, info)``; ``terminated`` after
            the session's last step, ``truncated`` is always False.

        Raises:
            RuntimeError: :meth:`reset` was not called, or the episode is over.
        """
        if self._builder is None or self._session_index is None:
            raise RuntimeError("call reset() before step()")
        if self._step >= len(self._builder):
            raise RuntimeError("the episode is over (session replayed to its end); call reset()")
        session = self.sessions[self._session_index]
        index = self._step
        gold = session.steps[index].action
        if isinstance(action, str):
            scored = rewards.score_answer(action, gold, self.reward_config)
            breakdown, pred, parse_error = scored.breakdown.to_dict(), scored.action, scored.error
        else:  # a non-text action is a malformed response, not a crash
            parse_error = f"action must be a string (the model's response text), got {type(action).__name__}"
            scored = rewards.score_answer("", gold, self.reward_config)
            breakdown = scored.breakdown.to_dict()
            breakdown["error"] = parse_error
            pred = None
        self._step += 1
        terminated = self._step >= len(self._builder)
        info = {
            "session_id": session.session_id,
            "step": index,
            "gold_action": gold.to_dict(),
            "reward_breakdown": breakdown,
            "exact_match": scored.exact_match,
            "type_match": scored.type_match,
            "parse_error": parse_error,
            "candidates": list(self._page_candidates(self._session_index, index)),
        }
        reward = float(breakdown["total"])
        self._last = {"action": pred, "parse_error": parse_error, "reward": reward, "gold": gold}
        return self._builder.observation(self._step), reward, terminated, False, info

    def score_response(
        self, text: str, gold: Action, self_certainty: float | None = None
    ) -> rewards.RewardBreakdown:
        """The reward of a response against a gold action under this env's ``RewardConfig``.

        The single source of truth for rewards: GRPO and evaluation call this too.

        Args:
            text: the raw model response.
            gold: the logged action.
            self_certainty: the rationale's self-certainty, if computed by the caller.

        Returns:
            A ``rewards.RewardBreakdown`` (never raises on bad text).
        """
        return rewards.score(text, gold, self.reward_config, self_certainty=self_certainty)

    def _builder_for(self, index: int) -> ObservationBuilder:
        """The session's observation builder; recent ones are kept so that replaying a
        session again reuses its serialised history entries."""
        builder = self._builders.pop(index, None)
        if builder is None:
            builder = ObservationBuilder(self.sessions[index], self.context, self.max_history)
        self._builders[index] = builder
        while len(self._builders) > _KEPT_BUILDERS:
            evicted, _ = self._builders.popitem(last=False)
            self._page_names.pop(evicted, None)
        return builder

    def _page_candidates(self, session_index: int, step_index: int) -> tuple[str, ...]:
        steps = self.sessions[session_index].steps
        cache = self._page_names.setdefault(session_index, [None] * len(steps))
        names = cache[step_index]
        if names is None:
            names = cache[step_index] = tuple(page_element_names(steps[step_index].html))
        return names

    # -- rendering ----------------------------------------------------------------------

    def render(self) -> str | None:
        """In ``"ansi"`` mode a short text view of the current state; otherwise None."""
        if self.render_mode != "ansi":
            return None
        if self._builder is None or self._session_index is None:
            return "ShopReplay-v0: not started (call reset())\n"
        session = self.sessions[self._session_index]
        n_steps = len(session.steps)
        lines = [f"session {session.session_id}  step {self._step}/{n_steps}"]
        if self._step < n_steps:
            step = session.steps[self._step]
            page = " ".join(step.html.split())
            lines.append(f"url: {step.url}")
            lines.append(f"page: {page[:200]}{'...' if len(page) > 200 else ''}")
        else:
            lines.append("session over")
        if self._last is not None:
            pred = self._last["action"]
            said = pred.to_json() if pred is not None else f"invalid ({self._last['parse_error']})"
            lines.append(f"agent: {said[:200]}")
            lines.append(f"human: {self._last['gold'].to_json()}  reward: {self._last['reward']:.3f}")
        return "\n".join(lines) + "\n"


__all__ = ["AnyText", "ShopReplayEnv"]
