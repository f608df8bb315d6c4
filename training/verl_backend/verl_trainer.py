"""verl trainer with the Shop-R1 self-certainty reward (needs verl, Ray and TransferQueue).

:class:`ShopR1Trainer` is verl's synchronous V1 PPO trainer, registered through verl's own
extension point (``verl.trainer.ppo.v1.register_trainer``) as ``trainer.v1.trainer_mode=
shop_r1_sync``. verl recomputes the old log-probs with ``calculate_entropy=True`` before the
advantage; right after that step this trainer reads each completion's per-token entropy,
turns it into self-certainty over the rationale tokens (:mod:`training.verl_backend.certainty`)
and adds the bonus to the completion's ``rm_scores`` at its last token, where the rule reward
already sits. GRPO then normalises the hybrid reward within each group as usual.

verl looks the trainer up by name inside its Ray ``TaskRunner`` actor, so the registration
must run in that process: :func:`setup_worker` is the Ray ``worker_process_setup_hook`` that
the launcher sets (``+ray_kwargs.ray_init.runtime_env.worker_process_setup_hook``).

Limits (docs/verl.md): overrides ``_compute_old_log_prob``, a private method of verl 0.9's
trainer; with ``algorithm.rollout_correction.bypass_mode`` verl computes no entropy, and the
``kl_u_p`` variant needs values verl's actor does not return; both fail at start-up.
"""

from __future__ import annotations

from typing import Any

import torch
import transfer_queue as tq
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
from verl.utils import tensordict_utils as tu
from verl.utils.config import omega_conf_to_dataclass

from training.verl_backend.certainty import batch_certainty, check_variant
from training.verl_backend.overrides import TRAINER_MODE
from training.verl_backend.reward import resolve_reward_config


def setup_worker() -> None:
    """Ray ``worker_process_setup_hook``: importing this module registers :data:`TRAINER_MODE`."""


def run_config_reward(config: Any) -> Any:
    """The run's RewardConfig: defaults overridden by ``reward.custom_reward_function.reward_kwargs``."""
    kwargs = config.reward.custom_reward_function.get("reward_kwargs", None) or {}
    return resolve_reward_config(None, dict(kwargs))


def _as_list(values: Any) -> list[Any]:
    """Normalise a non-tensor TransferQueue field (numpy array, NonTensorStack, list) to a list."""
    if hasattr(values, "tolist"):
        return list(values.tolist())
    return list(values)


def _rows(tensor: torch.Tensor) -> list[torch.Tensor]:
    """Per-completion rows of a jagged (nested) or padded response tensor."""
    return list(tensor.unbind(0))


@register_trainer(TRAINER_MODE)
class ShopR1Trainer(PPOTrainerSync):
    """verl's sync PPO/GRPO trainer plus the rationale self-certainty term of Shop-R1.

    Raises:
        UnsupportedVariantError: at construction, for ``self_certainty_variant=kl_u_p``.
        ValueError: at construction, self-certainty on while verl's bypass mode (no entropy
            recomputation) is on.
    """

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.shop_r1_reward = run_config_reward(config)
        cfg = self.shop_r1_reward
        self.shop_r1_certainty_on = bool(cfg.use_self_certainty and cfg.self_certainty_alpha > 0)
        if self.shop_r1_certainty_on:
            check_variant(cfg.self_certainty_variant)
            rollout_corr = config.algorithm.get("rollout_correction", None)
            if rollout_corr and rollout_corr.get("bypass_mode", False):
                raise ValueError(
                    "Shop-R1 self-certainty needs verl to recompute log-probs with entropy; "
                    "algorithm.rollout_correction.bypass_mode=True skips that. Turn bypass mode off "
                    "or set reward use_self_certainty=false."
                )
        self.shop_r1_vocab_size: int | None = None

    def _init_tokenizer(self) -> None:
        super()._init_tokenizer()
        # V of log V - H is the size of the policy's logits (the model config, not the tokenizer).
        model_config = omega_conf_to_dataclass(self.config.actor_rollout_ref.model)
        self.shop_r1_vocab_size = int(model_config.hf_config.vocab_size)

    def _compute_old_log_prob(self, batch: Any, metrics: dict) -> Any:
        batch = super()._compute_old_log_prob(batch, metrics=metrics)
        if self.shop_r1_certainty_on:
            self._add_self_certainty(batch, metrics)
        return batch

    def _add_self_certainty(self, batch: Any, metrics: dict) -> None:
        """Add alpha * self-certainty (via rewards.score) to each completion's rm_scores."""
        fields = ["responses", "entropy", "rm_scores", "reward_model"]
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=fields)
        rm_scores, certainty_metrics = self_certainty_scores(
            data, self.tokenizer, self.shop_r1_reward, self.shop_r1_vocab_size or 1
        )
        tq.kv_batch_put(
            keys=batch.keys, partition_id=batch.partition_id, fields=tu.get_tensordict({"rm_scores": rm_scores})
        )
        metrics.update(certainty_metrics)


def self_certainty_scores(data: Any, tokenizer: Any, reward_config: Any, vocab_size: int) -> tuple[Any, dict]:
    """New ``rm_scores`` with each completion's self-certainty bonus added on its last token.

    Args:
        data: a TensorDict with ``responses``, ``entropy`` and ``rm_scores`` (jagged per
            completion, as verl keeps them in TransferQueue) and non-tensor ``reward_model``.
        tokenizer, reward_config, vocab_size: see :func:`~training.verl_backend.certainty.batch_certainty`.

    Returns:
        ``(rm_scores, metrics)``: a jagged tensor shaped like the input ``rm_scores``.
    """
    responses = [row.tolist() for row in _rows(data["responses"])]
    entropies = _rows(data["entropy"])
    scores = _rows(data["rm_scores"])
    truths = [item["ground_truth"] for item in _as_list(data["reward_model"])]
    results, metrics = batch_certainty(tokenizer, responses, entropies, truths, reward_config, vocab_size)
    updated = []
    for row, result in zip(scores, results, strict=True):
        row = row.clone()
        if row.numel():
            row[-1] += result.bonus  # the rule reward sits on the last response token
        updated.append(row)
    return torch.nested.as_nested_tensor(updated, layout=torch.jagged), metrics
