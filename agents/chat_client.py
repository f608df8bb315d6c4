"""One client for OpenAI-compatible ``POST {base_url}/chat/completions`` endpoints (stdlib only).

Used by :class:`agents.openai_agent.OpenAICompatibleAgent` and
:class:`training.rationale_writers.OpenAIRationaleWriter`. It works with a vLLM server, a Bedrock
gateway or a hosted API:

* the API key is read from an environment variable at each attempt and sent as
  ``Authorization: Bearer``; it is never stored, logged, or put in reprs or exceptions
  (error bodies that echo it are scrubbed);
* 408, 409, 425, 429, 5xx, timeouts, connection errors and truncated bodies are retried
  with exponential backoff and jitter; a ``Retry-After`` header (seconds or HTTP date) is
  honoured up to ``backoff_max``;
* other 4xx, redirects (which would carry the key to another URL), malformed replies and
  replies over ``max_reply_bytes`` fail at once with :class:`ChatRequestError`;
* each attempt has a wall-clock ``deadline`` (connect, headers and body together), so a
  server that drips bytes just inside ``timeout`` cannot hold a request; an attempt past
  its deadline is retried like a timeout;
* error bodies are read only up to :data:`ERROR_BODY_BYTES`, redacted as a whole (and a
  key cut off at the end of what was read is scrubbed too), and only a short prefix
  (:data:`SHOWN_BODY_CHARS`) is ever shown.

It is thread-safe: one client may serve many threads at once.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import math
import os
import random
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import timezone
from typing import Any

logger = logging.getLogger(__name__)

#: HTTP statuses worth another attempt (timeouts, conflicts, rate limits, server errors).
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
#: Default cap on a reply body (a chat completion is kilobytes; this leaves room for long ones).
MAX_REPLY_BYTES = 8 << 20
#: How much of an error body is read (then redacted as a whole, then cut for display).
ERROR_BODY_BYTES = 64 << 10
#: At most this many characters of a (redacted) body appear in an error message.
SHOWN_BODY_CHARS = 200
#: Without an explicit ``deadline``, one attempt may last this many ``timeout`` periods.
DEADLINE_TIMEOUTS = 4.0


class ChatRequestError(RuntimeError):
    """A chat request that failed for good; the message names the cause, never the API key.

    Attributes:
        status: the last HTTP status, or None (connection error, timeout, malformed reply).
        attempts: how many attempts were made.
    """

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts


class ChatCompletionsClient:
    """A retrying client for one OpenAI-compatible chat-completions endpoint.

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1`` (http or https); requests
            go to ``{base_url}/chat/completions`` (a query string, e.g. ``?api-version=``,
            is kept after the path).
        api_key_env: environment variable holding the API key, read at each attempt; when
            None, empty, unset or blank, no ``Authorization`` header is sent (local servers).
        timeout: seconds per attempt (connect and each read).
        deadline: wall-clock seconds one attempt may take in all (connect, headers, body);
            default ``DEADLINE_TIMEOUTS * timeout``.
        max_reply_bytes: the largest reply body accepted (default :data:`MAX_REPLY_BYTES`).
        max_retries: retries after the first attempt on retryable failures.
        backoff_base: first backoff in seconds (doubles per retry, with jitter).
        backoff_max: cap of one backoff sleep and of an honoured ``Retry-After``.

    Attributes:
        stats: counters ``requests`` (attempts sent), ``retries`` and ``failures``
            (requests that failed for good), updated under a lock.

    Raises:
        ValueError: a base URL that is not an ASCII http(s) URL with a host, or a
            non-positive timeout, deadline or reply cap, negative retries or negative backoff.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        deadline: float | None = None,
        max_reply_bytes: int = MAX_REPLY_BYTES,
    ) -> None:
        self.endpoint = _endpoint(base_url)
        if not timeout > 0 or max_retries < 0 or not backoff_base >= 0 or not backoff_max >= 0:
            raise ValueError("timeout must be > 0, and max_retries, backoff_base and backoff_max >= 0")
        if deadline is not None and not (deadline > 0 and math.isfinite(deadline)):
            raise ValueError(f"deadline must be a finite number of seconds > 0, got {deadline!r}")
        if isinstance(max_reply_bytes, bool) or not isinstance(max_reply_bytes, int) or max_reply_bytes < 1:
            raise ValueError(f"max_reply_bytes must be an int >= 1, got {max_reply_bytes!r}")
        self.deadline = None if deadline is None else float(deadline)
        self.max_reply_bytes = max_reply_bytes
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.stats = {"requests": 0, "retries": 0, "failures": 0}
        self._stats_lock = threading.Lock()
        # Our own opener so that redirects are refused: following one would resend the key.
        self._opener = urllib.request.build_opener(_RefuseRedirects, _DeadlineHTTPHandler, _DeadlineHTTPSHandler)

    def __repr__(self) -> str:  # names where the key comes from, never the key
        return f"ChatCompletionsClient(base_url={self.base_url!r}, api_key_env={self.api_key_env!r})"

    def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str,
        temperature: float = 0.0,
        max_tokens: int = 512,
        extra_body: Mapping[str, Any] | None = None,
    ) -> str:
        """Send one chat request, retrying as the class describes; return the reply text.

        Args:
            messages: the chat messages (``{"role": ..., "content": ...}``).
            model: the model name sent to the server.
            temperature: sampling temperature sent to the server.
            max_tokens: completion token limit sent to the server.
            extra_body: more JSON fields merged into the request (they win over the above).

        Returns:
            ``choices[0].message.content`` of the reply (``""`` when the server sent null).

        Raises:
            ChatRequestError: retries ran out, a non-retryable HTTP error or redirect, a
                malformed reply, or an API key that cannot go in a header.
            ValueError: a request body that is not JSON (non-finite numbers, odd types).
        """
        body = {"model": model, "messages": list(messages), "temperature": temperature,
                "max_tokens": max_tokens, **(extra_body or {})}
        try:
            # ASCII escapes survive lone surrogates scraped from pages.
            data = json.dumps(body, ensure_ascii=True, allow_nan=False).encode("ascii")
        except (TypeError, ValueError) as err:
            raise ValueError(f"chat request body is not JSON-serializable: {err}") from None
        try:
            return self._send_with_retries(data)
        except ChatRequestError:
            with self._stats_lock:
                self.stats["failures"] += 1
            raise

    def retry_delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Return the seconds to sleep before retry ``attempt + 1`` (attempt counts from 0).

        A server's ``Retry-After`` wins (capped at ``backoff_max``); otherwise the delay is
        drawn from ``[c/2, c]`` with ``c = min(backoff_max, backoff_base * 2**attempt)``,
        so concurrent workers do not retry in step.
        """
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.backoff_max)
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** min(attempt, 64))
        return random.uniform(ceiling / 2, ceiling)

    def _send_with_retries(self, data: bytes) -> str:
        attempts = max(0, self.max_retries) + 1  # the setting may have been changed since __init__
        for attempt in range(attempts):
            with self._stats_lock:
                self.stats["requests"] += 1
                self.stats["retries"] += attempt > 0
            try:
                return self._send_once(data, attempt + 1)
            except _Retryable as err:
                if attempt + 1 == attempts:
                    plural = "s" if attempts != 1 else ""
                    raise ChatRequestError(f"{err} (gave up after {attempts} attempt{plural})",
                                           status=err.status, attempts=attempts) from None
                delay = self.retry_delay(attempt, err.retry_after)
                logger.warning("chat request to %s: %s; retry %d/%d in %.2fs",
                               self.endpoint, err, attempt + 1, self.max_retries, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def attempt_deadline(self) -> float:
        """Wall-clock seconds one attempt may take (``deadline``, else a multiple of ``timeout``)."""
        return self.deadline if self.deadline is not None else DEADLINE_TIMEOUTS * self.timeout

    def _send_once(self, data: bytes, attempt: int) -> str:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = self._api_key(attempt)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(self.endpoint, data=data, headers=headers, method="POST")
        seconds = self.attempt_deadline()
        deadline = request.shop_r1_deadline = _Deadline(seconds)
        late = f"no complete reply within the {seconds:g}s deadline"
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                raw = _read_capped(response, self.max_reply_bytes, attempt)
        except urllib.error.HTTPError as err:
            detail = _error_body(err, key)
            if deadline.expired:
                raise _Retryable(late) from None
            if err.code in RETRY_STATUSES:
                retry_after = parse_retry_after(err.headers.get("Retry-After") if err.headers else None)
                raise _Retryable(f"HTTP {err.code}{detail}", err.code, retry_after) from None
            raise ChatRequestError(f"HTTP {err.code}{detail}", status=err.code, attempts=attempt) from None
        except urllib.error.URLError as err:
            if deadline.expired:
                raise _Retryable(late) from None
            reason = _redact(str(err.reason), key)
            if isinstance(err.reason, ssl.SSLCertVerificationError):  # will not fix itself
                raise ChatRequestError(f"TLS error: {reason}", attempts=attempt) from None
            raise _Retryable(f"connection error: {reason}") from None
        except TimeoutError:  # socket.timeout is an alias since 3.10
            raise _Retryable(late if deadline.expired else f"timed out after {self.timeout:g}s") from None
        except (OSError, http.client.HTTPException) as err:  # resets, truncated bodies, bad status lines
            raise _Retryable(late if deadline.expired else f"connection error: {type(err).__name__}") from None
        finally:
            deadline.cancel()
        if deadline.expired:  # a body without a length, cut short when the deadline struck
            raise _Retryable(late)
        return _reply_text(raw, key, attempt)

    def _api_key(self, attempt: int) -> str:
        key = os.environ.get(self.api_key_env, "").strip() if self.api_key_env else ""
        # http.client would reject such a header with the key itself in the message.
        if key and not (key.isascii() and key.isprintable() and " " not in key):
            raise ChatRequestError(f"the API key in ${self.api_key_env} has characters an HTTP header cannot carry "
                                   "(non-ASCII, whitespace or control characters)", attempts=attempt)
        return key


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Return the seconds a ``Retry-After`` header value asks to wait, or None.

    Args:
        value: the header value, in seconds (``"120"``) or an HTTP date; None when absent.
        now: the current Unix time for the HTTP-date form (default: ``time.time()``).

    Returns:
        A finite number of seconds >= 0 (a past date gives 0), or None when the value is
        missing or unreadable.
    """
    if not value or not isinstance(value, str):
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:  # the HTTP-date form
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # "-0000" means UTC with unknown origin (RFC 5322)
            when = when.replace(tzinfo=timezone.utc)
        try:
            seconds = when.timestamp() - (time.time() if now is None else now)
        except (OverflowError, ValueError, OSError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


class ClientSetting:
    """A class attribute that reads and writes one attribute of the owner's ``client``.

    Lets a class that wraps a :class:`ChatCompletionsClient` keep its own public setting
    names (``agent.timeout``, ``writer.max_backoff``) while the client stays the single
    place that holds them, so changing one after construction still takes effect.

    Args:
        name: the attribute of :class:`ChatCompletionsClient` to forward to.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, owner: Any, owner_type: type | None = None) -> Any:
        return self if owner is None else getattr(owner.client, self.name)

    def __set__(self, owner: Any, value: Any) -> None:
        setattr(owner.client, self.name, value)


class _Retryable(Exception):
    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


def _endpoint(base_url: str) -> str:
    problem = ""
    if not isinstance(base_url, str):
        problem = "not a string"
    elif not base_url.isascii() or any(ch.isspace() or not ch.isprintable() for ch in base_url):
        problem = "non-ASCII, whitespace or control characters (percent-encode them)"
    else:
        parts = urllib.parse.urlsplit(base_url)
        try:
            parts.port  # noqa: B018 - raises ValueError on a non-numeric or out-of-range port
        except ValueError:
            problem = "a bad port"
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problem = "no http(s) scheme or no host"
    if problem:
        raise ValueError(f"base_url must be an http(s) URL like http://127.0.0.1:8000/v1, got {base_url!r} ({problem})")
    path = parts.path.rstrip("/") + "/chat/completions"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


class _Deadline:
    """One attempt's wall-clock deadline: when it strikes, its sockets are shut down.

    The connections of an attempt register their socket (see :class:`_DeadlineHTTPHandler`);
    shutting a socket down wakes any read blocked on it, however slowly the server drips.
    """

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._lock = threading.Lock()
        self._sockets: list[Any] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: Any) -> Any:
        with self._lock:
            expired = self.expired
            if not expired:
                self._sockets.append(sock)
        if expired:
            _shut(sock)
        return sock

    def cancel(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._sockets.clear()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut(sock)


def _shut(sock: Any) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


def _watched(base: type[http.client.HTTPConnection], deadline: _Deadline | None) -> Any:
    """A connection factory for ``base`` whose sockets ``deadline`` watches (from the connect on)."""
    def connect(*args: Any, **kwargs: Any) -> http.client.HTTPConnection:
        connection = base(*args, **kwargs)
        if deadline is not None:
            create = connection._create_connection
            connection._create_connection = lambda *a, **k: deadline.watch(create(*a, **k))
        return connection
    return connect


class _DeadlineHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_watched(http.client.HTTPConnection, getattr(req, "shop_r1_deadline", None)), req)


class _DeadlineHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> Any:
        options: dict[str, Any] = {"context": self._context}
        if hasattr(self, "_check_hostname"):  # Python < 3.12
            options["check_hostname"] = self._check_hostname
        return self.do_open(_watched(http.client.HTTPSConnection, getattr(req, "shop_r1_deadline", None)),
                            req, **options)


def _read_capped(response: Any, limit: int, attempt: int) -> bytes:
    """The reply body, or :class:`ChatRequestError` when it is over ``limit`` bytes."""
    too_big = f"reply body is larger than the {limit:,}-byte cap (max_reply_bytes)"
    length = response.headers.get("Content-Length") if response.headers else None
    if length and length.strip().isdigit() and int(length) > limit:
        raise ChatRequestError(f"{too_big}: Content-Length {int(length):,}", status=response.status,
                               attempts=attempt)
    raw = response.read(limit + 1)
    if len(raw) > limit:
        raise ChatRequestError(too_big, status=response.status, attempts=attempt)
    if getattr(response, "length", None):  # read(n) returns a short body without raising
        raise http.client.IncompleteRead(raw, response.length)
    return raw


def _reply_text(raw: bytes, key: str, attempt: int) -> str:
    try:
        data = json.loads(raw.decode("utf-8"))
        content = data["choices"][0]["message"]["content"]
    except (UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError):
        # Redact the whole reply (at most max_reply_bytes) before cutting it for display.
        shown = _redact(raw.decode("utf-8", "replace"), key)[:80]
        raise ChatRequestError(f"malformed reply (no choices[0].message.content): {shown!r}",
                               status=200, attempts=attempt) from None
    if content is None:
        return ""
    if not isinstance(content, str):
        raise ChatRequestError(f"malformed reply: message.content is {type(content).__name__}, not a string",
                               status=200, attempts=attempt)
    return content


def _error_body(err: urllib.error.HTTPError, key: str) -> str:
    try:
        raw = err.read(ERROR_BODY_BYTES)
    except Exception:  # noqa: BLE001 - a broken (or deadline-cut) error body must not mask the status
        return ""
    # Redact all of what was read, then cut: a cut can never leave part of the key behind;
    # a key cut off by the read limit itself is scrubbed as a partial key at the end.
    text = _redact(raw.decode("utf-8", "replace"), key, cut=len(raw) >= ERROR_BODY_BYTES)
    text = " ".join(text.split())[:SHOWN_BODY_CHARS]
    return f": {text}" if text else ""


def _redact(text: str, key: str, cut: bool = False) -> str:
    """``text`` with every form of ``key`` replaced by ``***``.

    A server may echo request headers in its error body; never let the key through,
    neither as sent nor JSON-escaped (e.g. "/" as "\\/"). With ``cut`` (``text`` is the
    start of something longer), a start of the key at the very end is scrubbed too.
    """
    if not key:
        return text
    forms = {key, json.dumps(key)[1:-1], key.replace("/", "\\/")}
    for form in forms:
        text = text.replace(form, "***")
    if cut:
        for form in forms:
            for size in range(min(len(form) - 1, len(text)), 2, -1):
                if text.endswith(form[:size]):
                    text = text[:-size] + "***"
                    break
    return text
