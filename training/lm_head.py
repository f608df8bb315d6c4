"""The LM head applied only where it is needed, in chunks: SFT loss and rationale logits.

A causal LM's head turns each hidden state into a vocabulary-sized row of logits. Most
positions of a training chat are prompt (a pruned page): their logits are never used,
and on a 49k-token vocabulary they cost more than the rest of a small model. Here the
backbone runs once, the hidden states at the wanted positions are gathered, and the head
runs over them in chunks; under autograd each chunk is recomputed in the backward pass
(activation checkpointing), so no ``[tokens x vocab]`` tensor is ever held.
"""

from __future__ import annotations

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
