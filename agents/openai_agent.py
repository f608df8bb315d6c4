"""An agent behind any OpenAI-compatible chat endpoint, using only the standard library.

Works with a vLLM server (``vllm serve``), a Bedrock gateway or a hosted API: it POSTs
``{base_url}/chat/completions``. Requests run on a thread pool bounded by
``concurrency``; 429, 408, 5xx, connection errors and timeouts are retried with
exponential backoff and jitter (``Retry-After`` honoured). A request that still fails
yields ``""`` (scored as an invalid answer) and a logged error, so one bad request never
stops an evaluation. The API key is read from an environment variable at request time;
it is never stored on the agent, logged, or put in exceptions or reprs.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agents.base import BaseAgent, Observation

logger = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class RequestFailed(RuntimeError):
    """One chat request that failed for good (message carries no secret)."""


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
        backoff_base: first backoff in seconds (doubles per retry, with jitter).
        backoff_max: cap of one backoff sleep and of an honoured ``Retry-After``.
        extra_body: more JSON fields merged into every request (e.g. ``top_p``).

    Raises:
        ValueError: a base URL that is not http(s), or non-positive limits.
    """

    name = "openai"

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
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"base_url must be an http(s) URL like http://127.0.0.1:8000/v1, got {base_url!r}")
        if concurrency < 1 or timeout <= 0 or max_retries < 0:
            raise ValueError("concurrency must be >= 1, timeout > 0 and max_retries >= 0")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.endpoint = self.base_url + "/chat/completions"
        self.api_key_env = api_key_env
        self.concurrency = int(concurrency)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.context = context
        self.max_prompt_tokens = max_prompt_tokens
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.extra_body = dict(extra_body or {})
        self.stats = {"requests": 0, "retries": 0, "failures": 0}
        self._stats_lock = threading.Lock()

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

        return build_messages(observation, context=self.context, max_prompt_tokens=self.max_prompt_tokens)

    def complete(self, messages: list[dict[str, str]]) -> str:
        """Send one chat request with retries; return the reply text, or ``""`` on failure."""
        try:
            return self._complete_or_raise(messages)
        except RequestFailed as err:
            with self._stats_lock:
                self.stats["failures"] += 1
            logger.error("chat request to %s failed: %s", self.endpoint, err)
            return ""

    def _complete_or_raise(self, messages: list[dict[str, str]]) -> str:
        body = {"model": self.model, "messages": messages, "temperature": self.temperature,
                "max_tokens": self.max_tokens, **self.extra_body}
        data = json.dumps(body).encode("ascii")  # ASCII escapes survive lone surrogates in pages
        for attempt in range(self.max_retries + 1):
            with self._stats_lock:
                self.stats["requests"] += 1
                self.stats["retries"] += attempt > 0
            try:
                return self._post_once(data)
            except _Retryable as err:
                if attempt == self.max_retries:
                    raise RequestFailed(f"{err} (gave up after {attempt + 1} attempts)") from None
                delay = self._backoff(attempt, err.retry_after)
                logger.warning("chat request to %s: %s; retry %d/%d in %.2fs",
                               self.endpoint, err, attempt + 1, self.max_retries, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _post_once(self, data: bytes) -> str:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env, "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(self.endpoint, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            detail = _redact(_read_error_body(err), key)
            if err.code in _RETRY_STATUSES:
                raise _Retryable(f"HTTP {err.code}{detail}", _retry_after(err.headers)) from None
            raise RequestFailed(f"HTTP {err.code}{detail}") from None
        except urllib.error.URLError as err:
            raise _Retryable(f"connection error: {_redact(str(err.reason), key)}") from None
        except TimeoutError:  # socket.timeout is an alias since 3.10
            raise _Retryable(f"timed out after {self.timeout:g}s") from None
        except (OSError, http.client.HTTPException) as err:  # resets, truncated bodies, bad status lines
            raise _Retryable(f"connection error: {type(err).__name__}") from None
        return _reply_text(raw)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.backoff_max)
        # Full exponential backoff with jitter, so concurrent workers do not retry in step.
        ceiling = min(self.backoff_max, self.backoff_base * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _reply_text(raw: bytes) -> str:
    try:
        data = json.loads(raw.decode("utf-8"))
        content = data["choices"][0]["message"]["content"]
    except (UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError):
        raise RequestFailed(f"malformed reply (no choices[0].message.content): {raw[:80]!r}") from None
    if content is None:
        return ""
    if not isinstance(content, str):
        raise RequestFailed(f"malformed reply: message.content is {type(content).__name__}, not a string")
    return content


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:  # the HTTP-date form
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _read_error_body(err: urllib.error.HTTPError) -> str:
    try:
        text = err.read(300).decode("utf-8", "replace").strip()
    except Exception:  # noqa: BLE001 - a broken error body must not mask the status
        return ""
    return f": {' '.join(text.split())[:200]}" if text else ""


def _redact(text: str, key: str) -> str:
    # A server may echo request headers in its error body; never let the key through.
    return text.replace(key, "***") if key else text
