"""Prefilling a prompt's key/value cache once where several generated rows share it.

Two places generate many rows from prompts that overlap:

* evaluation (:class:`agents.TransformersAgent`): every prompt opens with the same system turn;
  the agent prefills that token prefix once (:func:`prefill`, :func:`common_prefix_length`);
* GRPO rollouts: TRL repeats each prompt ``num_generations`` times in one ``generate`` call;
  :func:`sharing_repeated_prompts` makes such calls prefill each distinct prompt once and give
  every copy the same cache (:func:`generate_sharing_repeated_rows`).

Either way a row's keys and values are the ones it would get alone (to float rounding), so
greedy answers and seeded samples are the ones whole-prompt prefill gives, but for a logit tie
broken the other way by rounding (the prefill draws no random numbers).
torch and transformers are imported inside the functions.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any


def cache_keyword(model: Any) -> str:
    """The keyword a model's ``forward``/``generate`` take the key/value cache by.

    ``cache`` from transformers 5.25 on (``past_key_values`` is deprecated there), else
    ``past_key_values``. A PEFT wrapper is looked through to the model it wraps.
    """
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(inner.forward).parameters else "past_key_values"


def supports_prefill(model: Any) -> bool:
    """Whether :func:`prefill` can serve ``model``: a decoder-only LM whose ``forward`` takes a
    key/value cache and ``logits_to_keep`` (state-space models and encoder-decoders do not)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    forward = getattr(inner, "forward", None)
    if forward is None or getattr(getattr(inner, "config", None), "is_encoder_decoder", False):
        return False
    parameters = inspect.signature(forward).parameters
    return "logits_to_keep" in parameters and ("cache" in parameters or "past_key_values" in parameters)


def prefill(model: Any, input_ids: Any, attention_mask: Any = None) -> Any:
    """Run ``input_ids`` ``[rows, tokens]`` through ``model`` and return their key/value cache.

    Args:
        model: a transformers causal LM (PEFT-wrapped or not: adapters apply).
        input_ids: token ids on the model's device.
        attention_mask: 0 at left padding (position ids then follow the mask, as
            ``generate`` derives them); None: no padding.

    Returns:
        A ``transformers.DynamicCache`` holding every position of ``input_ids``.
    """
    import torch
    from transformers import DynamicCache

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:  # the config tells it which layers slide; older transformers (< 4.56) take none
        cache = DynamicCache(config=inner.config)
    except TypeError:
        cache = DynamicCache()
    options: dict[str, Any] = {"use_cache": True, "logits_to_keep": 1, cache_keyword(model): cache}
    if attention_mask is not None:
        options["attention_mask"] = attention_mask
        options["position_ids"] = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        model(input_ids=input_ids, **options)
    return cache


def common_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """Tokens every row starts with, leaving each row at least one token of its own."""
    return min(min(len(row) for row in rows) - 1, *(agreement(row, rows[0]) for row in rows))


def agreement(row: Sequence[int], prefix: Sequence[int]) -> int:
    """How many leading tokens ``row`` and ``prefix`` have in common."""
    length = 0
    for a, b in zip(row, prefix, strict=False):  # lengths differ by design
        if a != b:
            break
        length += 1
    return length


def starts_with(row: Sequence[int], prefix: Sequence[int]) -> bool:
    """Whether ``row`` begins with ``prefix`` and has at least one token after it."""
    return len(row) > len(prefix) and agreement(row, prefix) == len(prefix)


def repeated_row_groups(input_ids: Any, attention_mask: Any = None) -> list[int] | None:
    """For each row, the index of the first row of its run of identical consecutive rows.

    Returns None when no two consecutive rows are identical (ids and mask), i.e. when
    nothing would be saved.
    """
    import torch

    firsts = [0]
    for row in range(1, input_ids.size(0)):
        same = torch.equal(input_ids[row], input_ids[firsts[-1]]) and (
            attention_mask is None or torch.equal(attention_mask[row], attention_mask[firsts[-1]]))
        firsts.append(firsts[-1] if same else row)
    return firsts if len(set(firsts)) < len(firsts) else None


def generate_sharing_repeated_rows(generate: Callable[..., Any], model: Any, input_ids: Any = None,
                                   attention_mask: Any = None, **kwargs: Any) -> Any:
    """Call ``generate`` with each run of identical prompt rows prefilled once.

    Args:
        generate: the model's own ``generate`` (bound).
        model: the model (for :func:`prefill`).
        input_ids, attention_mask: the left-padded prompts, as ``generate`` takes them.
        kwargs: passed on to ``generate``.

    Returns:
        What ``generate`` returns. Calls that bring their own cache, no ``input_ids``, prompts
        of one token or no repeated rows, and models :func:`supports_prefill` turns down, go
        through unchanged.
    """
    import torch

    firsts = None
    if supports_prefill(model) and input_ids is not None and input_ids.dim() == 2 and input_ids.size(1) > 1 and not any(
            kwargs.get(name) is not None for name in ("cache", "past_key_values")):
        firsts = repeated_row_groups(input_ids, attention_mask)
    if firsts is None:
        return generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
    unique = sorted(set(firsts))
    mask = attention_mask[unique, :-1] if attention_mask is not None else None
    # Every position but the last: generate needs one uncached token to start from.
    cache = prefill(model, input_ids[unique, :-1], mask)
    slot = {row: index for index, row in enumerate(unique)}
    cache.batch_select_indices(torch.tensor([slot[first] for first in firsts], device=input_ids.device))
    return generate(input_ids=input_ids, attention_mask=attention_mask, **{cache_keyword(model): cache}, **kwargs)


@contextmanager
def sharing_repeated_prompts(model: Any) -> Iterator[Any]:
    """While open, ``model.generate`` prefills each run of identical prompt rows once.

    The wrapper is set on the instance (as TRL calls ``generate`` on the model object it
    trains) and removed on exit unless something else has replaced it since.
    """
    original = model.generate
    own = vars(model).get("generate")  # an instance-level wrapper installed before this one

    def generate(*args: Any, **kwargs: Any) -> Any:
        if len(args) > 1 or (args and "input_ids" in kwargs):
            return original(*args, **kwargs)
        if args:  # input_ids given by position
            kwargs["input_ids"] = args[0]
        return generate_sharing_repeated_rows(original, model, **kwargs)

    model.generate = generate
    try:
        yield model
    finally:
        if vars(model).get("generate") is generate:
            if own is None:
                del model.generate
            else:
                model.generate = own
