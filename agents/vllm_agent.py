"""An agent on the offline vLLM engine (``vllm.LLM``), behind the ``vllm`` extra.

vLLM is imported when the agent is built; without it, construction raises ImportError
telling how to install it. For a vLLM *server*, use ``openai:MODEL@URL`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.base import BaseAgent, Observation

INSTALL_HINT = "VLLMAgent needs vLLM: pip install 'shop-r1[vllm]' (a CUDA machine is required)"


class VLLMAgent(BaseAgent):
    """Batched chat generation with ``vllm.LLM`` (one engine, all prompts in one call).

    Args:
        model: a local model directory or hub id for ``vllm.LLM``.
        temperature: 0 is greedy.
        top_p: nucleus sampling threshold.
        max_new_tokens: completion length limit.
        context: ``"whole-session"`` or ``"latest-step"``.
        max_prompt_tokens: prompt token budget, or None.
        page_format: ``"compact"`` or ``"html"`` (:mod:`shop_env.webpage.compact`).
        seed: sampling seed.
        **engine_kwargs: passed to ``vllm.LLM`` (e.g. ``tensor_parallel_size``).

    Raises:
        ImportError: vLLM is not installed (the message says ``pip install 'shop-r1[vllm]'``).
    """

    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        context: str = "whole-session",
        max_prompt_tokens: int | None = None,
        page_format: str = "compact",
        seed: int = 0,
        **engine_kwargs: Any,
    ) -> None:
        try:
            import vllm
        except ImportError as err:
            raise ImportError(INSTALL_HINT) from err
        self.model = model
        self.context = context
        self.max_prompt_tokens = max_prompt_tokens
        self.page_format = page_format
        self.llm = vllm.LLM(model=model, seed=seed, **engine_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.sampling = vllm.SamplingParams(
            temperature=temperature, top_p=top_p if temperature > 0 else 1.0,
            max_tokens=max_new_tokens, seed=seed,
        )

    def __repr__(self) -> str:
        return f"VLLMAgent({self.model!r})"

    def act(self, observation: Observation) -> str:
        """Return the model's answer for one observation."""
        return self.act_batch([observation])[0]

    def act_batch(self, observations: Sequence[Observation]) -> list[str]:
        """Return the answers for all observations (vLLM batches internally)."""
        from shop_env.prompt import build_messages

        conversations = [
            build_messages(o, context=self.context, tokenizer=self.tokenizer, max_prompt_tokens=self.max_prompt_tokens,
                           page_format=self.page_format)
            for o in observations
        ]
        outputs = self.llm.chat(conversations, self.sampling, use_tqdm=False)
        return [output.outputs[0].text if output.outputs else "" for output in outputs]
