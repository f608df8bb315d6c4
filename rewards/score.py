"""The whole Shop-R1 reward of one model output: format gate + self-certainty + action."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rewards.action import action_reward, exact_match, type_match
from rewards.breakdown import RewardBreakdown
from rewards.config import RewardConfig
from rewards.format import check_format
from shop_env.actions import Action

_DEFAULT = RewardConfig()


@dataclass(frozen=True, slots=True)
class ScoredAnswer:
    """Everything one scoring of one answer says: the one record the env, the TRL and
    verl rewards and the evaluator all read.

    Attributes:
        breakdown: the reward, component by component (:class:`RewardBreakdown`).
        action: the predicted action, or None when the answer failed the format.
        exact_match: the prediction equals the gold action (docs/architecture.md §6).
        type_match: the predicted action type equals the gold one.
    """

    breakdown: RewardBreakdown
    action: Action | None
    exact_match: bool
    type_match: bool

    @property
    def valid(self) -> bool:
        """Whether the answer followed the output format (and could be scored)."""
        return self.breakdown.valid

    @property
    def error(self) -> str | None:
        """Why the answer is invalid (the parser's message), else None."""
        return self.breakdown.error


def score(response_text: Any, gold: Action | Mapping[str, Any], config: RewardConfig | None = None,
          self_certainty: Any = None) -> RewardBreakdown:
    """Score one raw model output against the logged action.

    ``total = format_weight * [use_format] + alpha * self_certainty * [use_self_certainty]
    + action_reward``; an output that fails the format (docs/architecture.md §4) gets 0 everywhere and
    ``error`` = the parser's message.

    Args:
        response_text: the raw completion; anything (non-str, huge, lone surrogates) is
            accepted and at worst scores 0.
        gold: the logged action (an :class:`Action`, or its JSON dict).
        config: reward settings (default :class:`RewardConfig`).
        self_certainty: the rationale's self-certainty (float or 0-d tensor), e.g. from
            :func:`rewards.self_certainty`; None, NaN, infinite or non-numeric counts as 0.

    Returns:
        The :class:`RewardBreakdown`, all components finite.

    Raises:
        FormatError: only for a malformed ``gold`` dict (a data error, not model output).
        TypeError: ``gold`` is neither an Action nor a mapping.
    """
    return score_answer(response_text, gold, config, self_certainty).breakdown


def score_answer(response_text: Any, gold: Action | Mapping[str, Any], config: RewardConfig | None = None,
                 self_certainty: Any = None) -> ScoredAnswer:
    """Score one raw model output and say what it predicted and whether that matches.

    Takes the arguments of :func:`score` (which returns this record's ``breakdown``); the
    answer is parsed once, and exact and type match are judged on that same parse.

    Returns:
        The :class:`ScoredAnswer`; ``action`` is None (and both matches False) for an
        answer that fails the format.

    Raises:
        FormatError: only for a malformed ``gold`` dict (a data error, not model output).
        TypeError: ``gold`` is neither an Action nor a mapping.
    """
    config = config or _DEFAULT
    if isinstance(gold, Mapping):
        gold = Action.from_dict(dict(gold), field="gold")
    elif not isinstance(gold, Action):
        raise TypeError(f"gold must be an Action or an action dict, got {type(gold).__name__}")
    response, error = check_format(response_text)
    if response is None:
        return ScoredAnswer(RewardBreakdown(valid=False, error=error), None, False, False)
    pred = response.action
    breakdown = _breakdown(pred, gold, config, self_certainty)
    return ScoredAnswer(breakdown, pred, bool(exact_match(pred, gold, config)), type_match(pred, gold))


def _breakdown(pred: Action, gold: Action, config: RewardConfig, self_certainty: Any) -> RewardBreakdown:
    """The reward of a well-formed prediction."""
    try:
        action = action_reward(pred, gold, config)
    except (RecursionError, MemoryError) as err:  # defensive: a reward must not kill training
        return RewardBreakdown(valid=False, error=f"action reward failed: {type(err).__name__}")
    fmt = config.format_weight if config.use_format else 0.0
    certainty = 0.0
    if config.use_self_certainty:
        certainty = finite_or_zero(config.self_certainty_alpha * finite_or_zero(self_certainty))
    total = fmt + certainty + action.total
    if not math.isfinite(total):  # a huge (finite) self-certainty: the config bounds the rest
        certainty, total = 0.0, fmt + action.total
    return RewardBreakdown(format=fmt, type=action.type, attribute=action.attribute, value=action.value,
                           self_certainty=certainty, total=total, valid=True)


def finite_or_zero(value: Any) -> float:
    """``float(value)`` when that is a finite number, else 0.0 (None, NaN, inf, junk)."""
    if value is None or isinstance(value, (str, bytes)):
        return 0.0
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError, RuntimeError):
        return 0.0
    return number if math.isfinite(number) else 0.0
