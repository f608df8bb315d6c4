"""A local Hugging Face causal LM as an agent: chat template, batched left-padded generation.

torch and transformers are imported when an agent is built, never when ``agents`` is
imported. :meth:`TransformersAgent.generate` also returns the per-token logits of each
completion, which the self-certainty reward (docs/architecture.md §5) needs.

Every prompt starts with the same system turn (~250 of a 1,024-token SmolLM2 prompt), so by
default the agent runs that shared token prefix through the model once, keeps its key/value
cache, and prefills only each prompt's own tokens: rows are laid out as
``prefix + padding + suffix`` with the padding masked out, and position ids follow the mask, so
each row sees exactly the positions it would see alone (greedy answers are unchanged; logits
agree to float rounding). ``benchmarks/eval_throughput.py`` measures the gain.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agents.base import BaseAgent, Observation
from agents.prefill import (
    agreement,
    cache_keyword,
    common_prefix_length,
    prefill,
    starts_with,
    supports_prefill,
)


@dataclass
class Generation:
    """The output of :meth:`TransformersAgent.generate`, one entry per observation.

    Attributes:
        texts: decoded completions (special tokens removed).
        token_ids: the completion token ids (1-D tensors, up to and including EOS).
        logits: per completion a ``[len(token_ids[i]), vocab]`` float tensor of the
            logits each token was chosen from, or None when not requested.
        prompts: the prompt strings fed to the model (after the chat template).
        certainties: per completion the rationale self-certainty, when requested.
    """

    texts: list[str]
    token_ids: list[Any]
    logits: list[Any] | None
    prompts: list[str]
    certainties: list[float] | None = None


class TransformersAgent(BaseAgent):
    """Generates answers with a local causal LM and its chat template.

    Args:
        model_or_path: a loaded ``PreTrainedModel``, or a local directory / hub id
            loaded with ``AutoModelForCausalLM.from_pretrained``.
        tokenizer: the tokenizer (loaded from ``model_or_path`` when None; required when
            a model object is given).
        temperature: 0 means greedy decoding; otherwise sampling at this temperature.
        top_p: nucleus sampling threshold (sampling only).
        max_new_tokens: completion length limit.
        batch_size: observations per ``generate`` call.
        device: torch device string; default: the model's device, or cuda if available
            for a model this agent loads.
        context: ``"whole-session"`` or ``"latest-step"`` (see ``shop_env.prompt``); None: the
            ``prompt_settings.json`` saved with a model directory, else whole-session.
        max_prompt_tokens: prompt token budget (older pages dropped first); None: the saved
            setting of a model directory, else no budget. An explicit value that differs
            from the saved one is used, with a warning.
        page_format: ``"compact"`` or ``"html"`` (:mod:`shop_env.webpage.compact`); None: the
            saved setting of a model directory, else compact.
        seed: seeds torch before sampling, for reproducible sampled answers.
        share_prefix: prefill the token prefix that the prompts of one ``generate`` call share
            (the system turn) once and reuse its key/value cache for all their batches (module
            docstring); False, or a model ``agents.prefill.supports_prefill`` turns down,
            prefills every prompt whole, left-padded. The cache lives for one call only, so a
            model trained between calls is never answered from stale keys.

    Raises:
        ValueError: a model object without a tokenizer, or invalid settings.
    """

    name = "hf"

    def __init__(
        self,
        model_or_path: Any,
        tokenizer: Any = None,
        *,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        batch_size: int = 8,
        device: str | None = None,
        context: str | None = None,
        max_prompt_tokens: int | None = None,
        page_format: str | None = None,
        seed: int = 0,
        share_prefix: bool = True,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if temperature < 0 or not 0 < top_p <= 1 or max_new_tokens < 1 or batch_size < 1:
            raise ValueError("need temperature >= 0, 0 < top_p <= 1, max_new_tokens >= 1, batch_size >= 1")
        if isinstance(model_or_path, str):
            self.source = model_or_path
            tokenizer = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(model_or_path)
            model = AutoModelForCausalLM.from_pretrained(model_or_path)
            device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        else:
            if tokenizer is None:
                raise ValueError("TransformersAgent needs tokenizer=... when given a model object")
            self.source = type(model_or_path).__name__
            model = model_or_path
        if device is not None:
            model = model.to(device)
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.tokenizer = tokenizer
        # Left padding so every row's completion starts at the same position.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = int(batch_size)
        from shop_env.prompt_settings import resolve_prompt_settings

        prompt = resolve_prompt_settings(model_or_path, context=context, max_prompt_tokens=max_prompt_tokens,
                                         page_format=page_format)
        self.context = prompt.context
        self.max_prompt_tokens = prompt.max_prompt_tokens
        self.page_format = prompt.page_format
        self.seed = int(seed)
        self.share_prefix = bool(share_prefix) and supports_prefill(self.model)

    def __repr__(self) -> str:
        return f"TransformersAgent({self.source!r}, temperature={self.temperature}, device={str(self.device)!r})"

    def prompt(self, observation: Observation) -> str:
        """The chat-templated prompt string for one observation."""
        from shop_env.prompt import build_messages

        messages = build_messages(observation, context=self.context, tokenizer=self.tokenizer,
                                  max_prompt_tokens=self.max_prompt_tokens, page_format=self.page_format)
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def act(self, observation: Observation) -> str:
        """Return the model's answer for one observation."""
        return self.act_batch([observation])[0]

    def act_batch(self, observations: Sequence[Observation]) -> list[str]:
        """Return the model's answers, generated ``batch_size`` at a time."""
        return self.generate(observations, return_logits=False).texts

    def act_batch_with_certainty(
        self, observations: Sequence[Observation], variant: str = "kl_p_u"
    ) -> list[tuple[str, float]]:
        """Answers plus each answer's rationale self-certainty (docs/architecture.md §5).

        ``agents.evaluation`` uses this, when an agent has it, to score the
        self-certainty reward component. A completion without a rationale scores 0.

        Returns:
            ``(text, self_certainty)`` per observation, in order.
        """
        out = self.generate(observations, return_logits=False, certainty_variant=variant)
        return list(zip(out.texts, out.certainties, strict=True))

    def generate(
        self, observations: Sequence[Observation], return_logits: bool = True, certainty_variant: str | None = None
    ) -> Generation:
        """Generate one completion per observation.

        Args:
            observations: env observations.
            return_logits: also return each completion's per-token logits (on CPU,
                float32), e.g. for ``rewards.self_certainty``.
            certainty_variant: also compute each rationale's self-certainty with this
                variant (``"kl_p_u"``/``"kl_u_p"``) on the model's device, without
                copying logits to the CPU.

        Returns:
            A :class:`Generation` with entries in the order of ``observations``.
        """
        prompts = [self.prompt(observation) for observation in observations]
        out = Generation(texts=[], token_ids=[], logits=[] if return_logits else None, prompts=prompts,
                         certainties=[] if certainty_variant else None)
        prefix = _PrefixCache()
        for start in range(0, len(prompts), self.batch_size):
            self._generate_batch(prompts[start:start + self.batch_size], return_logits, certainty_variant, out, prefix)
        return out

    def _generate_batch(self, prompts: list[str], return_logits: bool, variant: str | None, out: Generation,
                        prefix: _PrefixCache) -> None:
        import torch

        # The chat template already wrote any BOS token; do not add another.
        rows = self.tokenizer(prompts, add_special_tokens=False)["input_ids"]
        inputs = self._shared_prefix_inputs(rows, prefix) if self.share_prefix else None
        if inputs is None:  # pad the rows already tokenized (left: padding_side is set in __init__)
            encoded = self.tokenizer.pad({"input_ids": rows}, return_tensors="pt")
            inputs = {key: value.to(self.device) for key, value in encoded.items()}
        sampling = self.temperature > 0
        options: dict[str, Any] = {"do_sample": sampling}
        if sampling:
            torch.manual_seed(self.seed)
            options.update(temperature=self.temperature, top_p=self.top_p)
        else:
            options.update(temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            result = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
                return_dict_in_generate=True,
                output_logits=return_logits or variant is not None,
                **options,
            )
        completions = result.sequences[:, inputs["input_ids"].shape[1]:].cpu()
        # [batch, new tokens, vocab], still on the model's device.
        logits = torch.stack(result.logits, dim=1) if (return_logits or variant) else None
        for row, ids in enumerate(completions):
            length = _completion_length(ids, self.tokenizer.eos_token_id)
            ids = ids[:length]
            out.token_ids.append(ids)
            out.texts.append(self.tokenizer.decode(ids, skip_special_tokens=True))
            if variant is not None:
                out.certainties.append(completion_certainty(self.tokenizer, ids, logits[row, :length], variant))
            if return_logits:
                out.logits.append(logits[row, :length].float().cpu().clone())

    def _shared_prefix_inputs(self, rows: list[list[int]], held: _PrefixCache) -> dict[str, Any] | None:
        """``generate`` inputs that reuse the cached key/values of the rows' shared prefix.

        Returns None (prefill whole prompts) when the rows share fewer than
        ``MIN_SHARED_PREFIX`` tokens. ``held`` is kept while every row starts with its prefix;
        otherwise the prefix the rows share with it (else among themselves) is prefilled once
        and held instead, so one-row batches settle on the system turn after two prompts.
        """
        import torch

        if held.ids is None or not all(starts_with(row, held.ids) for row in rows):
            length = common_prefix_length(rows)
            if held.ids is not None:
                with_held = min(length, agreement(rows[0], held.ids))
                length = with_held if with_held >= MIN_SHARED_PREFIX else length
            if length < MIN_SHARED_PREFIX:
                return None
            shared = rows[0][:length]
            held.ids, held.cache = tuple(shared), prefill(self.model, torch.tensor([shared], device=self.device))
        prefix, cache = held.ids, held.cache
        suffixes = [row[len(prefix):] for row in rows]
        width = max(map(len, suffixes))
        pad = self.tokenizer.pad_token_id
        # prefix, then padding, then the row's own tokens: the completion starts at one column
        # for every row, the prefix cache is the same for every row, and generate derives
        # position ids from the mask's cumulative sum, so masked padding shifts nothing.
        input_ids = [list(prefix) + [pad] * (width - len(s)) + s for s in suffixes]
        mask = [[1] * len(prefix) + [0] * (width - len(s)) + [1] * len(s) for s in suffixes]
        batch_cache = copy.deepcopy(cache)  # generate appends to the cache it is given
        batch_cache.batch_repeat_interleave(len(rows))
        return {
            "input_ids": torch.tensor(input_ids, device=self.device),
            "attention_mask": torch.tensor(mask, device=self.device),
            cache_keyword(self.model): batch_cache,
        }


@dataclass
class _PrefixCache:
    """A token prefix and the key/value cache of one row holding it (None until prefilled)."""

    ids: tuple[int, ...] | None = None
    cache: Any = None


# Below this many shared tokens, copying and repeating a cache costs more than it saves.
MIN_SHARED_PREFIX = 16


def completion_certainty(tokenizer: Any, ids: Any, logits: Any, variant: str = "kl_p_u") -> float:
    """Mean self-certainty over the rationale tokens of one completion (0 if none).

    Args:
        tokenizer: decodes ``ids`` (special tokens skipped, as in the agent's texts).
        ids: the completion token ids, ``[tokens]``.
        logits: their logits, ``[tokens, vocab]``.
        variant: ``"kl_p_u"`` or ``"kl_u_p"``.
    """
    from rewards import rationale_mask_for_ids, self_certainty

    _, mask = rationale_mask_for_ids(tokenizer, [int(i) for i in ids])
    if not any(mask):
        return 0.0
    return float(self_certainty(logits[None], [mask], variant)[0])


def _completion_length(ids: Any, eos_token_id: Any) -> int:
    """Tokens up to and including the first EOS (padding after it is not the model's)."""
    eos = set(eos_token_id if isinstance(eos_token_id, (list, tuple)) else [eos_token_id]) - {None}
    for index, token in enumerate(ids.tolist()):
        if token in eos:
            return index + 1
    return len(ids)
