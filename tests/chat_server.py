"""A scripted OpenAI-style chat server on loopback, and helpers, for the chat-client tests.

A real HTTP server (``http.server`` on 127.0.0.1, an ephemeral port), not a mock: the
client's retries, timeouts, size caps and key redaction are tested against real sockets.
The ``serve`` and ``api_key`` fixtures that start it live in ``conftest.py``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from agents.chat_client import ChatCompletionsClient

SECRET = "sk-test/Zq9-very+secret-key"  # "/" so a JSON echo of it reads "\/"
MESSAGES = [{"role": "system", "content": "answer"}, {"role": "user", "content": "page"}]


@dataclass
class Reply:
    """One scripted server reply."""

    status: int = 200
    body: str | bytes | None = None  # None: a chat completion whose content is the server's answer()
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hang_up: bool = False  # close the connection without answering
    truncate: bool = False  # promise more bytes than are sent, then hang up
    drip: float = 0.0  # seconds between the body's bytes (a server that drips just inside the timeout)


def echo_last_message(body: dict) -> str:
    return body["messages"][-1]["content"]


def chat(content: object) -> str:
    """A chat-completions reply body with ``content``."""
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]})


class _LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # the default backlog of 5 drops concurrent connects (1 s SYN retry)


class ChatServer:
    """A scripted OpenAI-style chat server on 127.0.0.1 that records every request.

    Replies follow ``script`` in order; then ``default`` repeats (when None, the script's
    last reply repeats; an empty script means ``Reply()``). A reply without a body answers
    with ``answer(request_json)`` as the message content (default: echo the last message).
    A body containing ``{auth}`` gets the request's Authorization header pasted in, like
    a server that echoes request headers in its errors.
    """

    def __init__(self, script: list[Reply] | None = None, default: Reply | None = None,
                 answer: Callable[[dict], str] = echo_last_message) -> None:
        self.script = list(script or [])
        self.default = default or (self.script[-1] if self.script else Reply())
        self.answer = answer
        self.requests: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw) if raw else None
                with server.lock:
                    server.requests.append({"method": self.command, "path": self.path,
                                            "headers": dict(self.headers), "body": body})
                    reply = server.script.pop(0) if server.script else server.default
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                self._counted = True
                try:
                    self._answer(reply, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)
                finally:
                    self._leave()

            def _leave(self) -> None:
                # Leave the in-flight count BEFORE the reply goes out: a client that gets its
                # answer may send its next request before this handler's finally runs, which
                # made the count overshoot the client's real concurrency.
                if getattr(self, "_counted", False):
                    self._counted = False
                    with server.lock:
                        server.in_flight -= 1

            do_GET = do_POST  # a followed redirect would arrive as GET

            def _answer(self, reply: Reply, body: dict | None) -> None:
                time.sleep(reply.delay)
                self._leave()
                if reply.hang_up:
                    self.close_connection = True
                    return
                payload = reply.body if reply.body is not None else chat(server.answer(body))
                if isinstance(payload, str):
                    payload = payload.replace("{auth}", self.headers.get("Authorization", "")).encode()
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                extra = 50 if reply.truncate else 0
                self.close_connection = self.close_connection or reply.truncate
                self.send_header("Content-Length", str(len(payload) + extra))
                self.end_headers()
                if reply.drip:
                    for i in range(len(payload)):
                        self.wfile.write(payload[i : i + 1])
                        self.wfile.flush()
                        time.sleep(reply.drip)
                else:
                    self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = _LoopbackServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        # A short poll interval so shutdown() returns quickly.
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> ChatServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def client_for(server: ChatServer, **kwargs) -> ChatCompletionsClient:
    options = {"api_key_env": "SHOP_R1_TEST_KEY", "backoff_base": 0.01, "backoff_max": 0.05,
               "timeout": 5.0, "max_retries": 3}
    options.update(kwargs)
    return ChatCompletionsClient(server.base_url, **options)


def ask(client: ChatCompletionsClient, **kwargs) -> str:
    return client.complete(MESSAGES, **{"model": "test-model", **kwargs})
