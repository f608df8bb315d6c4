"""Self-certainty for the verl backend, from verl's per-token entropy (docs/architecture.md §5).

verl's actor already computes the entropy ``H_t`` of the policy at every response token
(``calculate_entropy=True`` when it recomputes the old log-probs). The paper's self-certainty
(Eq. 3, ``kl_p_u``) is ``KL(p_t || U) = log V - H_t``, averaged over the rationale tokens, so it
follows from that entropy without touching the logits again. The ``kl_u_p`` variant needs
``logsumexp(z) - mean(z)`` per token, which verl's actor does not return (see docs/verl.md).

The bonus added to a completion's verl reward is ``score(text, gold, cfg, certainty).total -
score(text, gold, cfg).total``: :func:`rewards.score` itself decides the format gate, the
``use_self_certainty`` switch and ``alpha``, so this module holds no reward formula.

Pure functions over token ids and tensors (torch imported lazily), testable without verl;
:mod:`training.verl_backend.verl_trainer` wires them into verl's trainer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shop_env.actions import Action


class UnsupportedVariantError(ValueError):
    """A self-certainty variant that verl's per-token outputs cannot provide."""


@dataclass(frozen=True)
class CertaintyResult:
    """The self-certainty of one completion and the reward it adds.

    Attributes:
        certainty: mean ``log V - H`` over the rationale tokens (0 with none).
        n_rationale_tokens: how many response tokens lie inside the rationale string.
        bonus: what to add to the completion's verl reward (0 when the format is invalid
            or self-certainty is switched off).
    """

    certainty: float
    n_rationale_tokens: int
    bonus: float


def check_temperature(temperature: float | None, rollout_temperature: float) -> None:
    """Raise :class:`UnsupportedVariantError` unless self-certainty is measured at the rollout temperature.

    verl's actor returns the entropy of ``softmax(z / T_rollout)``; a certainty at another
    temperature would need the logits, which it does not return.
    """
    if temperature is not None and abs(temperature - rollout_temperature) > 1e-9:
        raise UnsupportedVariantError(
            f"self_certainty_temperature {temperature:g} is not available on the verl backend: verl's actor "
            f"returns entropies at the rollout temperature ({rollout_temperature:g}); leave "
            "reward.self_certainty_temperature unset (null) or set it to grpo.temperature."
        )


def check_variant(variant: str) -> None:
    """Raise :class:`UnsupportedVariantError` unless ``variant`` is ``kl_p_u``.

    Raises:
        UnsupportedVariantError: ``kl_u_p`` (needs mean logits, which verl does not return)
            or an unknown variant.
    """
    if variant != "kl_p_u":
        raise UnsupportedVariantError(
            f"self_certainty_variant {variant!r} is not available on the verl backend: it derives "
            "self-certainty from verl's per-token entropy, which gives KL(p||U) = log V - H ('kl_p_u') "
            "only; 'kl_u_p' needs logsumexp(z) - mean(z) per token from inside verl's actor "
            "(see docs/verl.md). Use the local backend or self_certainty_variant=kl_p_u."
        )


def rationale_mask(tokenizer: Any, token_ids: Sequence[int]) -> tuple[str, list[bool]]:
    """The decoded completion and which of its tokens lie inside the rationale string
    (:func:`rewards.rationale_mask_for_ids`, the same rule as the local backend)."""
    import rewards

    return rewards.rationale_mask_for_ids(tokenizer, token_ids)


def certainty_from_entropy(entropy: Any, mask: Sequence[bool], vocab_size: int) -> float:
    """Mean of ``log V - H_t`` over the tokens where ``mask`` is True (0 when none).

    Args:
        entropy: per-token entropies of one completion (tensor or sequence of floats), at
            least as long as ``mask``.
        mask: rationale-token mask.
        vocab_size: ``V``, the size of the policy's output distribution (logits' last dim).

    Raises:
        ValueError: ``vocab_size`` < 1 or ``entropy`` shorter than ``mask``.
    """
    import torch

    if vocab_size < 1:
        raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
    values = torch.as_tensor(entropy, dtype=torch.float64).flatten()
    if values.numel() < len(mask):
        raise ValueError(f"entropy has {values.numel()} tokens but the mask has {len(mask)}")
    picked = values[: len(mask)][torch.as_tensor(list(mask), dtype=torch.bool)]
    if picked.numel() == 0:
        return 0.0
    certainty = float(math.log(vocab_size) - picked.mean().item())
    return certainty if math.isfinite(certainty) else 0.0


def certainty_bonus(text: str, gold: Action, config: Any, certainty: float) -> float:
    """What self-certainty adds to a completion's reward under ``config`` (via :func:`rewards.score`)."""
    import rewards

    with_certainty = rewards.score(text, gold, config, self_certainty=certainty).total
    without = rewards.score(text, gold, config).total
    return float(with_certainty - without)


def completion_certainty(
    tokenizer: Any,
    token_ids: Sequence[int],
    entropy: Any,
    gold: Action,
    config: Any,
    vocab_size: int,
) -> CertaintyResult:
    """Self-certainty and reward bonus of one completion from its tokens and verl entropies.

    Args:
        tokenizer: the policy's tokenizer.
        token_ids: the completion's valid response tokens (no padding).
        entropy: verl's per-token entropy for those tokens.
        gold: the gold action.
        config: the run's ``rewards.RewardConfig``.
        vocab_size: the policy's output vocabulary size.
    """
    text, mask = rationale_mask(tokenizer, token_ids)
    certainty = certainty_from_entropy(entropy, mask, vocab_size)
    bonus = certainty_bonus(text, gold, config, certainty) if any(mask) else 0.0
    return CertaintyResult(certainty=certainty, n_rationale_tokens=sum(mask), bonus=bonus)


def batch_certainty(
    tokenizer: Any,
    responses: Sequence[Sequence[int]],
    entropies: Sequence[Any],
    ground_truths: Sequence[Any],
    config: Any,
    vocab_size: int,
) -> tuple[list[CertaintyResult], dict[str, float]]:
    """:func:`completion_certainty` for a batch, plus metrics to log.

    Args:
        responses: each completion's valid response token ids.
        entropies: verl's per-token entropies, one sequence per completion.
        ground_truths: ``reward_model.ground_truth`` of each completion (gold action JSON).
        config: the run's ``rewards.RewardConfig``.
        vocab_size: the policy's output vocabulary size.

    Returns:
        One :class:`CertaintyResult` per completion and ``shop_r1/self_certainty/*`` metrics.

    Raises:
        ValueError: the sequences differ in length, or a ground truth is malformed.
    """
    from training.verl_backend.reward import gold_action

    if not len(responses) == len(entropies) == len(ground_truths):
        raise ValueError(
            f"batch sizes differ: {len(responses)} responses, {len(entropies)} entropies, "
            f"{len(ground_truths)} ground truths"
        )
    results = [
        completion_certainty(tokenizer, ids, entropy, gold_action(gt), config, vocab_size)
        for ids, entropy, gt in zip(responses, entropies, ground_truths, strict=True)
    ]
    n = max(len(results), 1)
    metrics = {
        "shop_r1/self_certainty/mean": sum(r.certainty for r in results) / n,
        "shop_r1/self_certainty/bonus_mean": sum(r.bonus for r in results) / n,
        "shop_r1/self_certainty/rationale_tokens_mean": sum(r.n_rationale_tokens for r in results) / n,
    }
    return results, metrics
