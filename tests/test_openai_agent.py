"""OpenAICompatibleAgent against a real HTTP server on loopback (no mocked client)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agents import OpenAICompatibleAgent, make_agent
from shop_env.actions import parse_response

SECRET = "sk-test-Zq9-very-secret-key"
MESSAGES = [{"role": "system", "content": "answer"}, {"role": "user", "content": "page"}]
ANSWER = '{"rationale": "I want the tent.", "action": {"type": "click", "name": "results.tent"}}'


@dataclass
class Reply:
    """One scripted server reply."""

    status: int = 200
    body: str | None = None  # None: a valid chat completion echoing the last user message
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class ChatServer:
    """A scripted OpenAI-style chat server; the last reply repeats once the script runs out."""

    def __init__(self, script: list[Reply]) -> None:
        self.script = list(script)
        self.requests: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    reply = server.script.pop(0) if len(server.script) > 1 else server.script[0]
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    time.sleep(reply.delay)
                    text = reply.body
                    if text is None:
                        content = body["messages"][-1]["content"]
                        text = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]})
                    elif "{auth}" in text:  # a server that echoes request headers in errors
                        text = text.replace("{auth}", self.headers.get("Authorization", ""))
                    payload = text.encode()
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Type", "application/json")
                    # X-Truncate: promise more bytes than are sent, then hang up.
                    extra = 50 if "X-Truncate" in reply.headers else 0
                    self.close_connection = self.close_connection or bool(extra)
                    self.send_header("Content-Length", str(len(payload) + extra))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator:
    servers: list[ChatServer] = []

    def start(*script: Reply) -> ChatServer:
        server = ChatServer(list(script) or [Reply()])
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_R1_TEST_KEY", SECRET)


def agent_for(server: ChatServer, **kwargs) -> OpenAICompatibleAgent:
    options = {"api_key_env": "SHOP_R1_TEST_KEY", "backoff_base": 0.01, "timeout": 5.0, "max_retries": 3}
    options.update(kwargs)
    return OpenAICompatibleAgent("test-model", server.base_url, **options)


def chat(content: str) -> str:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]})


def test_success_sends_model_messages_and_bearer_key(serve) -> None:
    server = serve(Reply(body=chat(ANSWER)))
    agent = agent_for(server, temperature=0.6, max_tokens=77)
    assert agent.complete(MESSAGES) == ANSWER
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert request["body"]["model"] == "test-model"
    assert request["body"]["messages"] == MESSAGES
    assert request["body"]["temperature"] == 0.6 and request["body"]["max_tokens"] == 77


def test_no_key_in_env_sends_no_authorization(serve, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOP_R1_TEST_KEY")
    server = serve(Reply(body=chat(ANSWER)))
    assert agent_for(server).complete(MESSAGES) == ANSWER
    assert "Authorization" not in server.requests[0]["headers"]


def test_429_then_success_honours_retry_after(serve) -> None:
    server = serve(Reply(429, body='{"error": "slow down"}', headers={"Retry-After": "1"}), Reply(body=chat(ANSWER)))
    agent = agent_for(server)
    started = time.monotonic()
    assert agent.complete(MESSAGES) == ANSWER
    assert time.monotonic() - started >= 0.9  # waited as told, not the 0.01 s backoff
    assert len(server.requests) == 2
    assert agent.stats == {"requests": 2, "retries": 1, "failures": 0}


def test_timeout_is_retried(serve) -> None:
    server = serve(Reply(delay=1.0, body=chat("late")), Reply(body=chat(ANSWER)))
    agent = agent_for(server, timeout=0.3)
    assert agent.complete(MESSAGES) == ANSWER
    assert len(server.requests) == 2


def test_malformed_reply_is_an_empty_answer_not_a_crash(serve, caplog: pytest.LogCaptureFixture) -> None:
    server = serve(Reply(body="this is not json"))
    with caplog.at_level(logging.WARNING):
        assert agent_for(server).complete(MESSAGES) == ""
    assert "malformed reply" in caplog.text
    assert len(server.requests) == 1  # a garbled 200 is not retried


def test_missing_choices_is_malformed(serve) -> None:
    server = serve(Reply(body='{"choices": []}'))
    assert agent_for(server).complete(MESSAGES) == ""


def test_500s_exhaust_retries_and_never_leak_the_key(serve, caplog: pytest.LogCaptureFixture) -> None:
    server = serve(Reply(500, body='{"error": "boom; you sent {auth}"}'))
    agent = agent_for(server, max_retries=2)
    with caplog.at_level(logging.DEBUG):
        assert agent.complete(MESSAGES) == ""
    assert len(server.requests) == 3
    assert agent.stats["failures"] == 1
    assert "HTTP 500" in caplog.text and "gave up after 3 attempts" in caplog.text
    assert "***" in caplog.text  # the echoed key was redacted
    assert SECRET not in caplog.text
    assert SECRET not in repr(agent) and SECRET not in str(vars(agent))


def test_client_error_is_not_retried(serve) -> None:
    server = serve(Reply(400, body='{"error": "bad request"}'))
    assert agent_for(server).complete(MESSAGES) == ""
    assert len(server.requests) == 1


def test_unreachable_server_yields_empty_answer() -> None:
    agent = OpenAICompatibleAgent("m", "http://127.0.0.1:9/v1", max_retries=1, backoff_base=0.01, timeout=1)
    assert agent.complete(MESSAGES) == ""


def test_act_batch_keeps_order_and_concurrency_limit(serve) -> None:
    server = serve(Reply(delay=0.15))  # echoes the prompt's last user message
    agent = agent_for(server, concurrency=2)
    observations = [
        {"url": f"https://shop.example/p{i}", "html": f"<p>page {i}</p>", "history": "[]",
         "session_id": "s", "step": i}
        for i in range(6)
    ]
    answers = agent.act_batch(observations)
    assert [f"page {i}" in answer for i, answer in enumerate(answers)] == [True] * 6
    assert server.max_in_flight == 2


def test_make_agent_parses_openai_spec(serve) -> None:
    server = serve(Reply(body=chat(ANSWER)))
    agent = make_agent(f"openai:test-model@{server.base_url}", api_key_env="SHOP_R1_TEST_KEY")
    observation = {"url": "https://shop.example/", "html": "<p>hi</p>", "history": "[]", "session_id": "s", "step": 0}
    assert parse_response(agent.act(observation)).action.name == "results.tent"
    assert server.requests[0]["body"]["model"] == "test-model"


@pytest.mark.parametrize("url", ["ftp://host/v1", "127.0.0.1:8000", ""])
def test_bad_base_url_is_rejected(url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        OpenAICompatibleAgent("m", url)


def test_truncated_body_is_retried(serve) -> None:
    # Content-Length promises more than is sent: http.client raises IncompleteRead.
    server = serve(Reply(body=chat(ANSWER), headers={"X-Truncate": "1"}), Reply(body=chat(ANSWER)))
    agent = agent_for(server)
    assert agent.complete(MESSAGES) == ANSWER
    assert len(server.requests) == 2


def test_non_ascii_and_lone_surrogates_in_prompts_are_sent(serve) -> None:
    server = serve()  # echoes the last user message
    assert agent_for(server).complete([{"role": "user", "content": "Zelt für 2 € \ud800"}]) == "Zelt für 2 € \ud800"
