"""OpenAICompatibleAgent against a real HTTP server on loopback (no mocked client).

Transport behaviour (retries, Retry-After, timeouts, redaction) is tested once, on the
client itself, in test_chat_client.py; here: what the agent adds on top of it.
"""

from __future__ import annotations

import logging

import pytest

from agents import OpenAICompatibleAgent, make_agent
from agents.openai_agent import RequestFailed
from shop_env.actions import parse_response
from tests.chat_server import MESSAGES, SECRET, ChatServer, Reply, chat

ANSWER = '{"rationale": "I want the tent.", "action": {"type": "click", "name": "results.tent"}}'


pytestmark = pytest.mark.usefixtures("api_key")


def agent_for(server: ChatServer, **kwargs) -> OpenAICompatibleAgent:
    options = {"api_key_env": "SHOP_R1_TEST_KEY", "backoff_base": 0.01, "timeout": 5.0, "max_retries": 3}
    options.update(kwargs)
    return OpenAICompatibleAgent("test-model", server.base_url, **options)


def test_success_sends_model_messages_settings_and_bearer_key(serve) -> None:
    server = serve(Reply(body=chat(ANSWER)))
    agent = agent_for(server, temperature=0.6, max_tokens=77, extra_body={"top_p": 0.5})
    assert agent.complete(MESSAGES) == ANSWER
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert request["body"] == {"model": "test-model", "messages": MESSAGES, "temperature": 0.6,
                               "max_tokens": 77, "top_p": 0.5}


def test_no_key_in_env_sends_no_authorization(serve, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOP_R1_TEST_KEY")
    server = serve(Reply(body=chat(ANSWER)))
    assert agent_for(server).complete(MESSAGES) == ANSWER
    assert "Authorization" not in server.requests[0]["headers"]


def test_429_then_success_is_counted_in_stats(serve) -> None:
    server = serve(Reply(429, body='{"error": "slow down"}'), Reply(body=chat(ANSWER)))
    agent = agent_for(server)
    assert agent.complete(MESSAGES) == ANSWER
    assert len(server.requests) == 2
    assert agent.stats == {"requests": 2, "retries": 1, "failures": 0}


def test_malformed_reply_is_an_empty_answer_not_a_crash(serve, caplog: pytest.LogCaptureFixture) -> None:
    server = serve(Reply(body="this is not json"))
    with caplog.at_level(logging.WARNING):
        assert agent_for(server).complete(MESSAGES) == ""
    assert "malformed reply" in caplog.text
    assert len(server.requests) == 1  # a garbled 200 is not retried


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


@pytest.mark.parametrize("options", [{"concurrency": 0}, {"timeout": 0}, {"max_retries": -1},
                                     {"extra_body": {"stop": object()}}, {"extra_body": {"top_p": float("nan")}}])
def test_bad_limits_and_extra_body_are_rejected(options: dict) -> None:
    with pytest.raises(ValueError):
        OpenAICompatibleAgent("m", "http://127.0.0.1:8000/v1", **options)


def test_connection_settings_forward_to_the_client(serve) -> None:
    server = serve(Reply(503, body="{}"))
    agent = agent_for(server)
    assert (agent.base_url, agent.endpoint) == (server.base_url, server.base_url + "/chat/completions")
    assert (agent.timeout, agent.backoff_base, agent.api_key_env) == (5.0, 0.01, "SHOP_R1_TEST_KEY")
    agent.max_retries = 0  # changed after construction: still takes effect
    assert agent.client.max_retries == 0
    assert agent.complete(MESSAGES) == ""
    assert len(server.requests) == 1
    assert agent.stats is agent.client.stats and agent.stats["failures"] == 1


def test_request_failed_is_the_client_error() -> None:
    from agents import ChatRequestError

    assert RequestFailed is ChatRequestError and issubclass(RequestFailed, RuntimeError)
