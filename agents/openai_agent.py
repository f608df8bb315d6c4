"""An agent behind any OpenAI-compatible chat endpoint, using only the standard library.

Works with a vLLM server (``vllm serve``), a Bedrock gateway or a hosted API: it POSTs
``{base_url}/chat/completions`` through :class:`agents.chat_client.ChatCompletionsClient`.
Requests run on a thread pool bounded by ``concurrency``; 429, 408, 5xx, connection
errors and timeouts are retried with exponential backoff and jitter (``Retry-After``
honoured). A request that still fails
yields ``""`` (scored as an invalid answer) and a logged error, so one bad request never
stops an evaluation. The API key is read from an environment variable at request time;
it is never stored on the agent, logged, or put in exceptions or reprs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agents.base import BaseAgent, Observation
from agents.chat_client import ChatCompletionsClient, ChatRequestError, ClientSetting

logger = logging.getLogger(__name__)

#: The error a chat request fails with for good (kept under its first name).
RequestFailed = ChatRequestError


class OpenAICompatibleAgent(BaseAgent):
    """Chat-completions agent for OpenAI-compatible servers (stdlib urllib + threads).

    Args:
        model: the model name sent in each request.
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1`` (http or https).
        api_key_env: environment variable holding the API key; when unset or empty no
            ``Authorization`` header is sent (fine for a local vLLM server).
        concurrency: most requests in flight at once.
        timeout: seconds per request (connect and each read).
        max_retries: retries after the first attempt on retryable failures.
        temperature: sampling temperature sent to the server.
        max_tokens: completion token limit sent to the server.
        context: prompt context, ``"whole-session"`` or ``"latest-step"``.
        max_prompt_tokens: prompt budget passed to ``shop_env.prompt.build_messages``.
        page_format: ``"compact"`` or ``"html"`` (:mod:`shop_env.webpage.compact`).
        backoff_base: first backoff in seconds (doubles per retry, with jitter).
        backoff_max: cap of one backoff sleep and of an honoured ``Retry-After``.
        extra_body: more JSON fields merged into every request (e.g. ``top_p``).

    Attributes:
        client: the :class:`~agents.chat_client.ChatCompletionsClient` that sends requests;
            ``base_url``, ``endpoint``, ``api_key_env``, ``timeout``, ``max_retries``,
            ``backoff_base``, ``backoff_max`` and ``stats`` (``requests``, ``retries``,
            ``failures``) read and write its attributes.

    Raises:
        ValueError: a base URL that is not http(s), non-positive limits, or an
            ``extra_body`` that is not JSON-serializable.
    """

    name = "openai"

    # Connection settings live on ``self.client`` (one place); these names forward to it.
    base_url = ClientSetting("base_url")
    endpoint = ClientSetting("endpoint")
    api_key_env = ClientSetting("api_key_env")
    timeout = ClientSetting("timeout")
    max_retries = ClientSetting("max_retries")
    backoff_base = ClientSetting("backoff_base")
    backoff_max = ClientSetting("backoff_max")
    stats = ClientSetting("stats")

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 5,
        temperature: float = 0.0,
        max_tokens: int = 512,
        context: str = "whole-session",
        max_prompt_tokens: int | None = None,
        page_format: str = "compact",
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.client = ChatCompletionsClient(base_url, api_key_env=api_key_env, timeout=timeout,
                                            max_retries=max_retries, backoff_base=backoff_base,
                                            backoff_max=backoff_max)
        self.model = model
        self.concurrency = int(concurrency)
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.context = context
        self.max_prompt_tokens = max_prompt_tokens
        self.page_format = page_format
        self.extra_body = dict(extra_body or {})
        try:  # fail here, not on every request of an evaluation
            json.dumps(self.extra_body, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ValueError(f"extra_body must be JSON-serializable: {err}") from None

    def __repr__(self) -> str:
        return f"OpenAICompatibleAgent(model={self.model!r}, base_url={self.base_url!r}, api_key_env={self.api_key_env!r})"

    def act(self, observation: Observation) -> str:
        """Return the model's answer for one observation (``""`` if the request failed)."""
        return self.complete(self.messages(observation))

    def act_batch(self, observations: Sequence[Observation]) -> list[str]:
        """Answer observations concurrently (at most ``concurrency`` requests at once), in order."""
        if not observations:
            return []
        prompts = [self.messages(observation) for observation in observations]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts))) as pool:
            return list(pool.map(self.complete, prompts))

    def messages(self, observation: Observation) -> list[dict[str, str]]:
        """The chat messages for an observation (``shop_env.prompt.build_messages``)."""
        from shop_env.prompt import build_messages

        return build_messages(observation, context=self.context, max_prompt_tokens=self.max_prompt_tokens,
                              page_format=self.page_format)

    def complete(self, messages: list[dict[str, str]]) -> str:
        """Send one chat request with retries; return the reply text, or ``""`` on failure.

        The failure is logged (never with the API key) and counted in ``stats["failures"]``.
        """
        try:
            return self.client.complete(messages, model=self.model, temperature=self.temperature,
                                        max_tokens=self.max_tokens, extra_body=self.extra_body)
        except ChatRequestError as err:
            logger.error("chat request to %s failed: %s", self.endpoint, err)
            return ""
