"""Global batches on any number of devices, and what they cost in memory (docs/architecture.md §10).

A preset's ``sft.batch_size`` and ``grpo.batch_size`` are the paper's *global* batch: the
sequences (SFT) or completions (GRPO) behind one optimizer step, summed over every
process. :func:`resolve_batch` turns one into what each process runs: a per-device
micro-batch and the gradient accumulation that makes up the rest, for the world size
``accelerate launch`` / ``torchrun`` announce in ``WORLD_SIZE`` (or one given to
``--dry-run``). :func:`estimate_memory` says what one device holds for a given micro-batch,
so a preset can be checked against a GPU before anything is rented.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class BatchPlan:
    """How one global batch is split: ``global_batch == per_device * accumulation * world_size``."""

    global_batch: int
    per_device: int
    accumulation: int
    world_size: int

    def describe(self) -> str:
        """One line for ``--dry-run``: ``64 = 1 per device x 8 accumulation x 8 devices``."""
        return (f"{self.global_batch} = {self.per_device} per device x {self.accumulation} accumulation "
                f"x {self.world_size} device{'s' if self.world_size != 1 else ''}")


def world_size() -> int:
    """The number of training processes (``WORLD_SIZE``, set by accelerate/torchrun; else 1).

    Raises:
        ValueError: ``WORLD_SIZE`` is set but not a positive integer.
    """
    raw = os.environ.get("WORLD_SIZE", "1").strip() or "1"
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"WORLD_SIZE must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"WORLD_SIZE must be a positive integer, got {raw!r}")
    return value


def resolve_batch(global_batch: int, micro_batch: int | None, n_devices: int, *, key: str = "batch_size",
                  multiple_of: int = 1) -> BatchPlan:
    """Split ``global_batch`` over ``n_devices`` with per-device micro-batches of ``micro_batch``.

    Args:
        global_batch: sequences (or completions) per optimizer step, over all devices.
        micro_batch: per-device batch of one forward/backward; None: as large as possible
            (``global_batch / n_devices``, no accumulation).
        n_devices: the world size.
        key: the config key named in errors (e.g. ``"sft.batch_size"``).
        multiple_of: the global batch must also be a multiple of this (GRPO: the group size).

    Returns:
        The :class:`BatchPlan`.

    Raises:
        ValueError: a value < 1, or a global batch that the devices and micro-batch cannot
            divide exactly (the message says which values would).
    """
    for name, value in (("global batch", global_batch), ("world size", n_devices), ("micro-batch", micro_batch)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{key}: {name} must be an integer >= 1, got {value!r}")
    if global_batch % multiple_of:
        raise ValueError(f"{key}={global_batch} must be a multiple of {multiple_of}")
    if global_batch % n_devices:
        raise ValueError(f"{key}={global_batch} cannot be split evenly over {n_devices} devices")
    per_device_total = global_batch // n_devices
    micro = per_device_total if micro_batch is None else micro_batch
    if per_device_total % micro:
        divisors = [d for d in range(1, per_device_total + 1) if per_device_total % d == 0]
        raise ValueError(f"{key}={global_batch} over {n_devices} devices is {per_device_total} per device, "
                         f"which micro-batches of {micro} do not divide; use one of {divisors}")
    return BatchPlan(global_batch, micro, per_device_total // micro, n_devices)


def generation_steps(plan: BatchPlan, num_generations: int) -> int:
    """Micro-steps fed by one rollout generation: the fewest that hold whole groups.

    TRL's ``steps_per_generation``: one generation call per device makes
    ``plan.per_device * generation_steps`` completions, and over all devices that is a
    multiple of ``num_generations`` (GRPO's group). Small steps keep the KV cache of a
    generation call small; the optimizer step still sees ``plan.global_batch`` completions.
    """
    return num_generations // math.gcd(num_generations, plan.per_device * plan.world_size)


@dataclass(frozen=True)
class Architecture:
    """The sizes of a decoder-only transformer that memory depends on."""

    n_params: float
    n_layers: int
    hidden: int
    intermediate: int
    n_heads: int
    n_kv_heads: int
    vocab: int

    @classmethod
    def from_config(cls, config: object) -> Architecture:
        """From a ``transformers`` config (Llama/Qwen2-style attribute names).

        Raises:
            AttributeError: the config lacks one of the sizes.
        """
        hidden, layers = int(config.hidden_size), int(config.num_hidden_layers)
        inter, vocab = int(config.intermediate_size), int(config.vocab_size)
        heads = int(config.num_attention_heads)
        kv = int(getattr(config, "num_key_value_heads", None) or heads)
        head_dim = hidden // heads
        per_layer = hidden * head_dim * (2 * heads + 2 * kv) + 3 * hidden * inter
        tied = bool(getattr(config, "tie_word_embeddings", False))
        params = layers * per_layer + vocab * hidden * (1 if tied else 2)
        return cls(float(params), layers, hidden, inter, heads, kv, vocab)


#: Architectures of the models the presets name, so that ``--dry-run`` estimates memory
#: without downloading a config (values from the models' published ``config.json``).
KNOWN_ARCHITECTURES: dict[str, Architecture] = {
    "Qwen/Qwen2.5-3B-Instruct": Architecture(3.09e9, 36, 2048, 11008, 16, 2, 151936),
    "Qwen/Qwen2.5-1.5B-Instruct": Architecture(1.54e9, 28, 1536, 8960, 12, 2, 151936),
    "Qwen/Qwen2.5-7B-Instruct": Architecture(7.62e9, 28, 3584, 18944, 28, 4, 152064),
    "smollm2-135m": Architecture(1.35e8, 30, 576, 1536, 9, 3, 49152),
}

_GIB = 1024 ** 3


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one device holds at the peak of a training step, by kind (see :func:`estimate_memory`)."""

    weights: float
    gradients: float
    optimizer: float
    reference: float
    activations: float
    logits: float
    kv_cache: float

    @property
    def total(self) -> float:
        """The sum of all parts, in bytes."""
        return (self.weights + self.gradients + self.optimizer + self.reference + self.activations
                + self.logits + self.kv_cache)

    def rows(self) -> list[tuple[str, float]]:
        """``(part, GiB)`` pairs, the total last."""
        parts = [("weights (fp32 master)", self.weights), ("gradients (fp32)", self.gradients),
                 ("AdamW moments (fp32)", self.optimizer), ("reference model (bf16)", self.reference),
                 ("activations", self.activations), ("LM-head logits (fp32)", self.logits),
                 ("KV cache (generation)", self.kv_cache)]
        return [(name, value / _GIB) for name, value in parts] + [("total", self.total / _GIB)]

    def describe(self) -> str:
        """One line: ``total 61.2 GiB (weights 11.5, gradients 11.5, ...)``."""
        inner = ", ".join(f"{name.split(' ')[0]} {gib:.1f}" for name, gib in self.rows()[:-1] if gib >= 0.05)
        return f"{self.total / _GIB:.1f} GiB per device ({inner})"


def estimate_memory(arch: Architecture, *, seq_tokens: int, micro_batch: int, gradient_checkpointing: bool,
                    supervised_tokens: int, reference_model: bool = False, generation_tokens: int = 0,
                    generation_batch: int = 0, shards: int = 1) -> MemoryEstimate:
    """The peak memory of one device in one training step (an estimate, within ~20%).

    Assumes what this toolkit runs: fp32 master weights and gradients with bf16 autocast,
    AdamW (two fp32 moments), bf16 activations, memory-efficient attention (no
    ``seq x seq`` matrix), and LM-head logits only at the ``supervised_tokens`` positions
    (SFT's supervised-only head, GRPO's completion tokens), in fp32 with their softmax.

    Args:
        arch: the model sizes.
        seq_tokens: tokens of the longest sequence (prompt + answer).
        micro_batch: sequences per forward/backward on the device.
        gradient_checkpointing: keep one hidden state per layer and recompute the rest.
        supervised_tokens: positions per sequence whose logits are computed.
        reference_model: a frozen bf16 copy for the KL term (GRPO with ``kl_beta > 0``).
        generation_tokens, generation_batch: KV cache of rollouts generated on the device
            (sequence length and count); 0 for SFT.
        shards: devices the weights, gradients and optimizer are sharded over (FSDP/ZeRO-3);
            1 for plain data parallelism, which replicates them.

    Returns:
        A :class:`MemoryEstimate`.
    """
    params = arch.n_params
    weights, grads, adam = 4 * params / shards, 4 * params / shards, 8 * params / shards
    reference = 2 * params if reference_model else 0.0
    tokens = seq_tokens * micro_batch
    if gradient_checkpointing:
        # one bf16 hidden state per layer boundary, plus one layer's working set recomputed
        kept = arch.n_layers * tokens * arch.hidden * 2
        working = tokens * (8 * arch.hidden + 3 * arch.intermediate) * 2
        activations = kept + working
    else:
        # per layer: attention inputs/outputs (~8 hidden-wide tensors) and the MLP's (~3 wide)
        activations = arch.n_layers * tokens * (8 * arch.hidden + 3 * arch.intermediate) * 2
    logits = 2 * supervised_tokens * micro_batch * arch.vocab * 4  # logits + log-softmax, fp32
    head_dim = arch.hidden // arch.n_heads
    kv_cache = 2 * arch.n_layers * arch.n_kv_heads * head_dim * 2 * generation_tokens * generation_batch
    return MemoryEstimate(weights, grads, adam, reference, activations, logits, float(kv_cache))


def architecture_of(model: str) -> Architecture | None:
    """The sizes of ``model``: a known preset model, or a local directory's ``config.json``; else None."""
    if model in KNOWN_ARCHITECTURES:
        return KNOWN_ARCHITECTURES[model]
    path = os.path.join(os.path.expanduser(model), "config.json")
    if not os.path.isfile(path):
        return None
    try:
        from transformers import AutoConfig

        return Architecture.from_config(AutoConfig.from_pretrained(os.path.dirname(path)))
    except (OSError, ValueError, AttributeError, ImportError):
        return None

