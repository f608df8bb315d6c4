"""agents.chat_client.ChatCompletionsClient against a real HTTP server on loopback (no mocked client).

``ChatServer`` and ``Reply`` (tests/chat_server.py) are shared with the tests of the client's users
(test_openai_agent.py, test_rationale_writers.py, test_campaign_client.py).
"""

from __future__ import annotations

import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.chat_client import ChatCompletionsClient, ChatRequestError, parse_retry_after
from tests.chat_server import MESSAGES, SECRET, ChatServer, Reply, ask, chat, client_for

pytestmark = pytest.mark.usefixtures("api_key")

# --- requests ----------------------------------------------------------------------------


def test_request_carries_model_messages_settings_extra_body_and_bearer_key(serve) -> None:
    server = serve(Reply(body=chat("fine")))
    client = client_for(server)
    answer = ask(client, temperature=0.6, max_tokens=77, extra_body={"top_p": 0.9, "max_tokens": 5})
    assert answer == "fine"
    (request,) = server.requests
    assert request["method"] == "POST" and request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["body"] == {"model": "test-model", "messages": MESSAGES, "temperature": 0.6,
                               "max_tokens": 5, "top_p": 0.9}  # extra_body wins
    assert client.stats == {"requests": 1, "retries": 0, "failures": 0}


def test_base_url_query_string_stays_after_the_path(serve) -> None:
    server = serve()
    client = ChatCompletionsClient(server.base_url + "/?api-version=2024-06-01", api_key_env=None)
    assert ask(client) == "page"
    assert server.requests[0]["path"] == "/v1/chat/completions?api-version=2024-06-01"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_no_key_sends_no_authorization(serve, monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("SHOP_R1_TEST_KEY")
    else:
        monkeypatch.setenv("SHOP_R1_TEST_KEY", value)
    server = serve()
    assert ask(client_for(server)) == "page"
    assert "Authorization" not in server.requests[0]["headers"]


def test_key_is_read_at_each_request_and_stripped(serve, monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve()
    client = client_for(server)
    monkeypatch.setenv("SHOP_R1_TEST_KEY", "sk-rotated\n")
    ask(client)
    assert server.requests[0]["headers"]["Authorization"] == "Bearer sk-rotated"


@pytest.mark.parametrize("bad_key", ["sk-a\r\nX-Injected: 1", "sk-\u00e9t\u00e9", "sk a"])
def test_a_key_no_header_can_carry_fails_without_showing_it(serve, monkeypatch, bad_key: str) -> None:
    monkeypatch.setenv("SHOP_R1_TEST_KEY", bad_key)
    server = serve()
    with pytest.raises(ChatRequestError, match=r"\$SHOP_R1_TEST_KEY") as info:
        ask(client_for(server))
    assert bad_key not in str(info.value) and "sk" not in str(info.value).replace("SHOP", "")
    assert server.requests == []


def test_non_ascii_and_lone_surrogates_are_sent(serve) -> None:
    server = serve()
    client = client_for(server)
    assert client.complete([{"role": "user", "content": "Zelt für 2 € \ud800"}], model="m") == "Zelt für 2 € \ud800"


@pytest.mark.parametrize("extra_body", [{"top_p": math.nan}, {"stop": object()}])
def test_a_body_that_is_not_json_is_a_value_error_before_any_request(serve, extra_body: dict) -> None:
    server = serve()
    with pytest.raises(ValueError, match="JSON"):
        ask(client_for(server), extra_body=extra_body)
    assert server.requests == []


def test_is_safe_to_share_between_threads(serve) -> None:
    server = serve(Reply(503, body="{}"), Reply(delay=0.02))
    client = client_for(server)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda i: client.complete([{"role": "user", "content": str(i)}], model="m"),
                                range(40)))
    assert answers == [str(i) for i in range(40)]
    assert client.stats == {"requests": 41, "retries": 1, "failures": 0}
    assert server.max_in_flight > 1


# --- retries -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried(serve, status: int) -> None:
    server = serve(Reply(status, body='{"error": "later"}'), Reply(body=chat("ok")))
    client = client_for(server)
    assert ask(client) == "ok"
    assert len(server.requests) == 2
    assert client.stats == {"requests": 2, "retries": 1, "failures": 0}


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_client_errors_fail_at_once(serve, status: int) -> None:
    server = serve(Reply(status, body='{"error": "bad\\n  request"}'))
    client = client_for(server)
    with pytest.raises(ChatRequestError) as info:
        ask(client)
    assert str(info.value) == f'HTTP {status}: {{"error": "bad\\n request"}}'
    assert (info.value.status, info.value.attempts) == (status, 1)
    assert len(server.requests) == 1
    assert client.stats == {"requests": 1, "retries": 0, "failures": 1}


def test_retries_run_out_with_a_clear_error(serve, caplog: pytest.LogCaptureFixture) -> None:
    server = serve(Reply(503, body="overloaded"))
    client = client_for(server, max_retries=2)
    with caplog.at_level(logging.WARNING), pytest.raises(ChatRequestError) as info:
        ask(client)
    assert str(info.value) == "HTTP 503: overloaded (gave up after 3 attempts)"
    assert (info.value.status, info.value.attempts) == (503, 3)
    assert len(server.requests) == 3
    assert "retry 1/2" in caplog.text and "retry 2/2" in caplog.text
    assert client.stats == {"requests": 3, "retries": 2, "failures": 1}


def test_no_retries_means_one_attempt(serve) -> None:
    server = serve(Reply(500, body=""))
    with pytest.raises(ChatRequestError, match=r"^HTTP 500 \(gave up after 1 attempt\)$"):
        ask(client_for(server, max_retries=0))
    assert len(server.requests) == 1


def test_retry_after_is_honoured(serve) -> None:
    server = serve(Reply(429, body="{}", headers={"Retry-After": "1"}), Reply(body=chat("ok")))
    client = client_for(server, backoff_max=5.0)
    started = time.monotonic()
    assert ask(client) == "ok"
    assert time.monotonic() - started >= 0.9  # waited as told, not the 0.01 s backoff


def test_retry_after_is_capped_at_backoff_max(serve) -> None:
    server = serve(Reply(503, body="{}", headers={"Retry-After": "3600"}), Reply(body=chat("ok")))
    started = time.monotonic()
    assert ask(client_for(server, backoff_max=0.05)) == "ok"
    assert time.monotonic() - started < 30


def test_unreadable_retry_after_falls_back_to_backoff(serve) -> None:
    server = serve(Reply(503, body="{}", headers={"Retry-After": "nan"}), Reply(body=chat("ok")))
    assert ask(client_for(server)) == "ok"


def test_timeout_is_retried(serve) -> None:
    server = serve(Reply(delay=1.0, body=chat("late")), Reply(body=chat("ok")))
    assert ask(client_for(server, timeout=0.3)) == "ok"
    assert len(server.requests) == 2


def test_truncated_body_is_retried(serve) -> None:
    server = serve(Reply(body=chat("cut"), truncate=True), Reply(body=chat("ok")))
    assert ask(client_for(server)) == "ok"
    assert len(server.requests) == 2


def test_hang_up_without_answer_is_retried(serve) -> None:
    server = serve(Reply(hang_up=True), Reply(body=chat("ok")))
    assert ask(client_for(server)) == "ok"
    assert len(server.requests) == 2


def test_unreachable_server_gives_up() -> None:
    with ChatServer() as server:
        url = server.base_url  # a port nobody listens on any more
    client = ChatCompletionsClient(url, max_retries=1, backoff_base=0.01, timeout=2)
    with pytest.raises(ChatRequestError, match=r"^connection error: .*\(gave up after 2 attempts\)$") as info:
        ask(client)
    assert (info.value.status, info.value.attempts) == (None, 2)


def test_redirects_are_refused_so_the_key_stays_put(serve) -> None:
    elsewhere = serve()
    server = serve(Reply(302, body="", headers={"Location": elsewhere.base_url + "/chat/completions"}))
    with pytest.raises(ChatRequestError, match="HTTP 302") as info:
        ask(client_for(server))
    assert info.value.status == 302
    assert elsewhere.requests == [] and len(server.requests) == 1


# --- replies -----------------------------------------------------------------------------


def test_null_content_is_an_empty_answer(serve) -> None:
    assert ask(client_for(serve(Reply(body=chat(None))))) == ""


@pytest.mark.parametrize("body", ["this is not json", b"\xff\xfe{}", "[]", '{"choices": []}',
                                  '{"choices": [{"message": {}}]}', chat(["a", "list"]), chat(3)])
def test_malformed_replies_fail_at_once(serve, body: str | bytes) -> None:
    server = serve(Reply(body=body))
    client = client_for(server)
    with pytest.raises(ChatRequestError, match="malformed reply") as info:
        ask(client)
    assert info.value.status == 200
    assert len(server.requests) == 1  # a garbled 200 is not retried
    assert client.stats["failures"] == 1


# --- the key never leaks -----------------------------------------------------------------


@pytest.mark.parametrize("reply", [
    Reply(500, body='{"error": "boom; you sent {auth}"}'),
    Reply(500, body='{"error": "Bearer ' + SECRET.replace("/", "\\/") + '"}'),  # JSON-escaped: "\/"
    Reply(400, body="x" * 185 + "{auth}"),  # the key straddles the cut of the shown body
    Reply(200, body="not json but {auth}"),
])
def test_the_key_never_reaches_errors_logs_or_reprs(serve, caplog, reply: Reply) -> None:
    server = serve(reply)
    client = client_for(server, max_retries=1)
    with caplog.at_level(logging.DEBUG), pytest.raises(ChatRequestError) as info:
        ask(client)
    shown = str(info.value) + caplog.text + repr(client) + str(vars(client))
    assert SECRET[:6] not in shown and SECRET.replace("/", "\\/")[:6] not in shown
    assert "***" in str(info.value)  # redacted, not just cut off


# --- construction, delays, Retry-After ------------------------------------------------------


@pytest.mark.parametrize("url", ["ftp://host/v1", "127.0.0.1:8000", "", "http://", "http://host:port/v1",
                                 "http://ho st/v1", "http://host/v1\n", "http://hôst/v1", None])
def test_bad_base_url_is_rejected(url: object) -> None:
    with pytest.raises(ValueError, match="base_url"):
        ChatCompletionsClient(url)  # type: ignore[arg-type]


@pytest.mark.parametrize("options", [{"timeout": 0}, {"timeout": math.nan}, {"max_retries": -1},
                                     {"backoff_base": -1}, {"backoff_max": math.nan}])
def test_bad_limits_are_rejected(options: dict) -> None:
    with pytest.raises(ValueError, match="timeout"):
        ChatCompletionsClient("http://127.0.0.1:8000/v1", **options)


def test_repr_names_the_variable_not_the_key() -> None:
    client = ChatCompletionsClient("http://127.0.0.1:8000/v1/", api_key_env="SHOP_R1_TEST_KEY")
    assert repr(client) == "ChatCompletionsClient(base_url='http://127.0.0.1:8000/v1', api_key_env='SHOP_R1_TEST_KEY')"
    assert client.endpoint == "http://127.0.0.1:8000/v1/chat/completions"


@given(attempt=st.integers(0, 10_000), base=st.floats(0, 100), cap=st.floats(0, 100),
       retry_after=st.none() | st.floats(-1e9, 1e9))
def test_retry_delay_stays_within_its_bounds(attempt: int, base: float, cap: float, retry_after: float | None) -> None:
    client = ChatCompletionsClient("http://127.0.0.1:8000/v1", backoff_base=base, backoff_max=cap)
    delay = client.retry_delay(attempt, retry_after)
    assert 0.0 <= delay <= cap
    if retry_after is not None:
        assert delay == min(max(retry_after, 0.0), cap)
    else:
        ceiling = min(cap, base * 2.0 ** min(attempt, 64))
        assert ceiling / 2 <= delay <= ceiling


def test_parse_retry_after_forms() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30.0)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0
    for unreadable in (None, "", "soon", "nan", "inf", "Fri, 99 Foo 2024 25:61:00 GMT"):
        assert parse_retry_after(unreadable) is None


@given(st.text(max_size=60))
def test_parse_retry_after_never_raises(value: str) -> None:
    seconds = parse_retry_after(value)
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)
