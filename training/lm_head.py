"""The LM head applied only where it is needed, in chunks: SFT loss, rationale logits, GRPO log-probs.

A causal LM's head turns each hidden state into a vocabulary-sized row of logits. Most
positions of a training chat are prompt (a pruned page): their logits are never used,
and on a 49k-token vocabulary they cost more than the rest of a small model. Here the
backbone runs once, the hidden states at the wanted positions are gathered, and the head
runs over them in chunks; under autograd each chunk is recomputed in the backward pass
(activation checkpointing), so no ``[tokens x vocab]`` tensor is ever held.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Positions per LM-head chunk (a 1024 x 49152 chunk of fp32 logits is 200 MB).
DEFAULT_CHUNK = 1024


def backbone_and_head(model: Any) -> tuple[Any, Any]:
    """Return ``(backbone, lm_head)`` of a transformers causal LM (PEFT-wrapped or not).

    Raises:
        TypeError: the model exposes no ``base_model`` backbone or output embeddings.
    """
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    backbone = getattr(inner, inner.base_model_prefix, None) if hasattr(inner, "base_model_prefix") else None
    head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
    if backbone is None or head is None:
        raise TypeError(f"{type(inner).__name__} is not a causal LM with a backbone and an LM head")
    return backbone, head


def supervised_nll(
    model: Any, input_ids: Any, attention_mask: Any, labels: Any, *, chunk_size: int = DEFAULT_CHUNK
) -> tuple[Any, Any, Any]:
    """Summed next-token NLL over the positions whose label is not -100.

    Args:
        model: a causal LM.
        input_ids: ``[batch, seq]`` token ids.
        attention_mask: ``[batch, seq]`` (None: all ones).
        labels: ``[batch, seq]``, unshifted (label ``t`` is the token at ``t``), -100 where
            no loss is wanted.
        chunk_size: positions per LM-head chunk.

    Returns:
        ``(nll_sum, n_tokens, n_correct)``: differentiable summed NLL (float32 scalar), the
        number of supervised tokens and how many of them are the argmax (both tensors).
    """
    import torch

    backbone, head = backbone_and_head(model)
    hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
    targets = labels[:, 1:]
    mask = targets != -100
    picked = hidden[:, :-1][mask]
    wanted = targets[mask]
    total = picked.new_zeros((), dtype=torch.float32)
    correct = torch.zeros((), dtype=torch.long, device=picked.device)
    for start in range(0, picked.size(0), chunk_size):
        h, y = picked[start:start + chunk_size], wanted[start:start + chunk_size]
        if torch.is_grad_enabled():
            part, hits = torch.utils.checkpoint.checkpoint(_chunk_nll, head, h, y, use_reentrant=False)
        else:
            part, hits = _chunk_nll(head, h, y)
        total = total + part
        correct = correct + hits
    if picked.size(0) == 0:
        total = total + hidden.sum() * 0.0  # keep the graph connected for an all-masked batch
    return total, mask.sum(), correct


def _chunk_nll(head: Any, hidden: Any, targets: Any) -> tuple[Any, Any]:
    import torch

    logits = head(hidden).float()
    nll = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
    hits = (logits.detach().argmax(dim=-1) == targets).sum()
    return nll, hits


def hidden_rows_logits(model: Any, input_ids: Any, attention_mask: Any, positions: Any, *,
                       chunk_size: int = DEFAULT_CHUNK) -> Any:
    """Float32 logits at ``positions`` (a ``[batch, seq]`` bool mask) only.

    Runs the backbone once without gradients and the head only over the masked positions.

    Returns:
        A ``[n_positions, vocab]`` float32 tensor in row-major order of the mask.
    """
    import torch

    backbone, head = backbone_and_head(model)
    with torch.no_grad():
        hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        picked = hidden[positions]
        parts = [head(picked[i:i + chunk_size]).float() for i in range(0, picked.size(0), chunk_size)]
    if not parts:
        return hidden.new_zeros((0, head.weight.size(0)), dtype=torch.float32)
    return torch.cat(parts)


@contextmanager
def trl_scores_completions_only() -> Iterator[bool]:
    """While active, TRL's fused LM head scores only the completion positions on CPU too.

    TRL (>= 1.x) computes GRPO's per-token log-probs with a fused, chunked LM head. On a
    Triton device it projects only the positions with a label (the completion tokens);
    elsewhere it projects *every* position, prompt included, so that the tile shapes never
    change (a recompilation concern on compiled backends). On CPU that is ~20x the needed
    LM-head work for a 1,024-token prompt and a 50-token answer: a third of a SmolLM2-135M
    GRPO step. Its torch fallback is exact for any number of rows, so the CPU gets the
    compact path here. Masked positions get log-prob and entropy 0 either way, and the
    values at the scored positions are the same (the tests check both and the gradients).

    The switch is TRL's module-level ``trl.trainer.utils._use_triton``, looked up at call
    time by the fused forward; only that binding is replaced (the kernel keeps its own) and
    it is restored on exit. With a TRL that has no fused head the context does nothing.

    Yields:
        True when the compact path was switched on, False when this TRL has no such switch.
    """
    try:
        from trl.trainer import utils as trl_utils
    except ImportError:
        yield False
        return
    original = getattr(trl_utils, "_use_triton", None)
    if original is None:
        yield False
        return

    def compact_on_cpu(device: Any) -> bool:
        return getattr(device, "type", None) == "cpu" or original(device)

    trl_utils._use_triton = compact_on_cpu
    try:
        yield True
    finally:
        trl_utils._use_triton = original
