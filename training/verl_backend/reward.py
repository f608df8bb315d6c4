"""verl reward entry point: ``compute_score`` for ``reward.custom_reward_function``.

verl calls ``compute_score(data_source, solution_str, ground_truth, extra_info, **reward_kwargs)``
once per completion. This module only adapts that call to :func:`rewards.score` (docs/architecture.md §5):
there is no second implementation of the reward here. The reward config comes from the row
(``extra_info["reward_config"]``, written by :mod:`training.verl_backend.export`) and is
overridden key by key by RewardConfig fields given as ``reward_kwargs`` on the command line.

Self-certainty needs the policy's logits, which a reward function never sees; it is added
later by the trainer (:mod:`training.verl_backend.certainty`), so ``self_certainty`` here is 0.
This module imports neither verl nor torch.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from shop_env.actions import Action, FormatError

#: Breakdown keys logged per completion, besides ``score`` (verl averages numeric ones).
BREAKDOWN_KEYS = ("format", "type", "attribute", "value", "self_certainty", "total")


class GroundTruthError(ValueError):
    """A row whose ``reward_model.ground_truth`` is not a gold action (a data bug, not model output)."""


def reward_config_fields() -> tuple[str, ...]:
    """Names of the :class:`rewards.RewardConfig` fields (the keys accepted as reward kwargs)."""
    from rewards import RewardConfig

    return tuple(f.name for f in dataclasses.fields(RewardConfig))


def resolve_reward_config(extra_info: Mapping[str, Any] | None, overrides: Mapping[str, Any] | None = None) -> Any:
    """Build the :class:`rewards.RewardConfig` for one row.

    Args:
        extra_info: the row's ``extra_info``; its ``reward_config`` (a dict, or a JSON string)
            is the base. Missing or None gives the defaults.
        overrides: extra keyword arguments of the call; those named like RewardConfig fields
            replace the row's values (verl passes ``reward_kwargs`` this way). Others are ignored,
            since verl adds its own (``reward_router_address``, ...).

    Returns:
        The RewardConfig.

    Raises:
        ValueError: ``reward_config`` is not a mapping / JSON object, or holds an unknown key
            or a bad value (the message names it).
    """
    from rewards import RewardConfig

    base: Any = (extra_info or {}).get("reward_config") if isinstance(extra_info, Mapping) else None
    if isinstance(base, str):
        try:
            base = json.loads(base)
        except json.JSONDecodeError as err:
            raise ValueError(f"extra_info.reward_config is not valid JSON: {err.msg}") from None
    if base is None:
        base = {}
    if not isinstance(base, Mapping):
        raise ValueError(f"extra_info.reward_config must be a mapping, got {type(base).__name__}")
    # Arrow struct columns come back with every field; a None means "not set".
    values = {k: v for k, v in base.items() if v is not None}
    known = reward_config_fields()
    for key, value in (overrides or {}).items():
        if key in known and value is not None:
            values[key] = value
    return RewardConfig.from_dict(values)


def gold_action(ground_truth: Any) -> Action:
    """Parse ``reward_model.ground_truth`` (the gold action as JSON text or a dict).

    Raises:
        GroundTruthError: not an action object (the message says why).
    """
    try:
        return Action.parse(ground_truth, field="ground_truth")
    except FormatError as err:
        raise GroundTruthError(str(err)) from None


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Score one completion with the Shop-R1 reward; verl's custom reward function.

    Args:
        data_source: the row's ``data_source`` (``shop_r1/<source>``); only used in errors.
        solution_str: the decoded completion (model output; anything, never raises on it).
        ground_truth: the gold action as JSON text (``reward_model.ground_truth``).
        extra_info: the row's ``extra_info``; ``reward_config`` holds the reward settings.
        **kwargs: RewardConfig fields overriding the row's (verl ``reward_kwargs``); other
            keys verl adds are ignored.

    Returns:
        ``{"score": total, "format", "type", "attribute", "value", "self_certainty", "total",
        "valid": 1.0 | 0.0, "acc": exact-match 1.0 | 0.0, "type_match": 1.0 | 0.0,
        "error": parse error or ""}``; ``score`` is what verl optimises.

    Raises:
        GroundTruthError: the row's gold action is malformed (names ``data_source`` and index).
        ValueError: the row's reward config is malformed.
    """
    import rewards

    try:
        gold = gold_action(ground_truth)
    except GroundTruthError as err:
        index = extra_info.get("index") if isinstance(extra_info, Mapping) else None
        raise GroundTruthError(f"{data_source} row {index}: {err}") from None
    config = resolve_reward_config(extra_info, kwargs)
    text = solution_str if isinstance(solution_str, str) else ""
    scored = rewards.score_answer(text, gold, config)
    breakdown = scored.breakdown
    out: dict[str, Any] = {"score": float(breakdown.total)}
    for key in BREAKDOWN_KEYS:
        out[key] = float(getattr(breakdown, key))
    out["valid"] = 1.0 if breakdown.valid else 0.0
    out["acc"] = 1.0 if scored.exact_match else 0.0  # verl's name for exact match
    out["type_match"] = 1.0 if scored.type_match else 0.0
    # A string, never None: verl skips string columns when averaging, but not None.
    out["error"] = str(breakdown.error or "")
    return out

