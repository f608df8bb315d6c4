"""Self-certainty of the rationale tokens from the policy's logits (docs/architecture.md §5).

``kl_p_u`` (paper Eq. 3) is KL(p || U) = log V - H(p); ``kl_u_p`` (Kang et al.) is
KL(U || p) = logsumexp(z) - mean(z) - log V. Both are averaged over the masked
(rationale) tokens of each row. Only masked positions are gathered, ``chunk_size`` of
them at a time, so memory holds a few ``[chunk_size, V]`` float32 slices and never the
``[tokens, V]`` softmax. torch is imported on first call: ``import rewards`` stays light.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rewards.config import SELF_CERTAINTY_VARIANTS

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: Token positions per chunk: 64 x a 152k vocabulary is ~39 MB per float32 slice.
DEFAULT_CHUNK_TOKENS = 64


def self_certainty(logits: Any, mask: Any, variant: str = "kl_p_u",
                   chunk_size: int = DEFAULT_CHUNK_TOKENS, temperature: float = 1.0) -> torch.Tensor:
    """Mean self-certainty of the masked tokens of each row.

    Math runs in float32 whatever the input dtype, without autograd (the result is a
    reward, never differentiated), on the logits' device.

    Args:
        logits: ``[batch, tokens, vocab]`` next-token logits (any float dtype; a tensor
            or anything ``torch.as_tensor`` accepts). ``-inf`` entries (filtered
            vocabulary) are allowed: they have probability 0 (``kl_u_p`` is then +inf).
        mask: ``[batch, tokens]``, nonzero/True at the rationale tokens.
        variant: ``"kl_p_u"`` or ``"kl_u_p"``.
        chunk_size: masked positions processed at once; bounds extra memory to a few
            ``chunk_size x vocab`` float32 tensors.
        temperature: measure ``softmax(logits / temperature)`` (the distribution tokens
            were sampled from; ``RewardConfig.self_certainty_temperature``).

    Returns:
        float32 tensor ``[batch]``; 0 for a row without masked tokens.

    Raises:
        ValueError: wrong shapes, empty vocabulary, unknown variant, chunk_size < 1 or a
            temperature that is not a finite number > 0.
    """
    import torch

    if variant not in SELF_CERTAINTY_VARIANTS:
        raise ValueError(f"self_certainty variant must be one of {', '.join(SELF_CERTAINTY_VARIANTS)}, "
                         f"got {variant!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
            math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    logits = torch.as_tensor(logits)
    if logits.dim() != 3:
        raise ValueError(f"logits must be [batch, tokens, vocab], got shape {tuple(logits.shape)}")
    batch, tokens, vocab = logits.shape
    if vocab < 1:
        raise ValueError("logits have an empty vocabulary dimension")
    mask = torch.as_tensor(mask, device=logits.device)
    if tuple(mask.shape) != (batch, tokens):
        raise ValueError(f"mask must be [batch, tokens] = {(batch, tokens)}, got {tuple(mask.shape)}")

    with torch.no_grad():
        rows, cols = (mask != 0).nonzero(as_tuple=True)
        per_token = torch.empty(rows.numel(), dtype=torch.float32, device=logits.device)
        log_vocab = math.log(vocab)
        for start in range(0, rows.numel(), chunk_size):
            stop = start + chunk_size
            # Advanced indexing copies just these positions: [chunk, vocab].
            z = logits[rows[start:stop], cols[start:stop]].to(torch.float32)
            if temperature != 1.0:
                z = z / temperature
            per_token[start:stop] = _kl_p_u(z, log_vocab) if variant == "kl_p_u" else _kl_u_p(z, log_vocab)
            del z
        sums = torch.zeros(batch, dtype=torch.float32, device=logits.device)
        sums.index_add_(0, rows, per_token)
        counts = torch.bincount(rows, minlength=batch).to(torch.float32)
        return torch.where(counts > 0, sums / counts.clamp(min=1.0), torch.zeros_like(sums))


def _kl_p_u(z: torch.Tensor, log_vocab: float) -> torch.Tensor:
    import torch

    # log V - H(p) = log V + sum p log p; xlogy makes p = 0 (from -inf logits) contribute 0.
    p = torch.softmax(z, dim=-1)
    return log_vocab + torch.special.xlogy(p, p).sum(dim=-1)


def _kl_u_p(z: torch.Tensor, log_vocab: float) -> torch.Tensor:
    import torch

    return torch.logsumexp(z, dim=-1) - z.mean(dim=-1) - log_vocab


def self_certainty_from_entropy(entropy: Any, mask: Any, vocab_size: int) -> torch.Tensor:
    """``kl_p_u`` self-certainty from per-token entropies (e.g. verl's ``entropys``).

    KL(p || U) = log V - H(p), averaged over the masked tokens of each row; equal to
    ``self_certainty(logits, mask, "kl_p_u")`` when ``entropy`` is H(softmax(logits)).

    Args:
        entropy: ``[batch, tokens]`` entropies in nats.
        mask: ``[batch, tokens]``, nonzero/True at the rationale tokens.
        vocab_size: V, the size of the distribution the entropies were taken over.

    Returns:
        float32 tensor ``[batch]``; 0 for a row without masked tokens.

    Raises:
        ValueError: shapes differ, are not 2-D, or ``vocab_size`` < 1.
    """
    import torch

    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
        raise ValueError(f"vocab_size must be a positive int, got {vocab_size!r}")
    entropy = torch.as_tensor(entropy)
    mask = torch.as_tensor(mask, device=entropy.device)
    if entropy.dim() != 2 or tuple(mask.shape) != tuple(entropy.shape):
        raise ValueError(f"entropy and mask must both be [batch, tokens], got {tuple(entropy.shape)} "
                         f"and {tuple(mask.shape)}")
    with torch.no_grad():
        keep = (mask != 0).to(torch.float32)
        values = (math.log(vocab_size) - entropy.to(torch.float32)) * keep
        # Zero out entropies at unmasked positions even if they are NaN/inf padding.
        values = torch.where(keep > 0, values, torch.zeros_like(values))
        counts = keep.sum(dim=-1)
        return torch.where(counts > 0, values.sum(dim=-1) / counts.clamp(min=1.0), torch.zeros_like(counts))
