"""Adversarial-campaign regressions of agents.chat_client (key leaks, deadline, reply cap)."""

from __future__ import annotations

import logging
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.chat_client import ERROR_BODY_BYTES, SHOWN_BODY_CHARS, ChatCompletionsClient, ChatRequestError
from benchmarks import fuzz
from tests.chat_server import SECRET, Reply, ask, chat, client_for

pytestmark = pytest.mark.usefixtures("api_key")


@pytest.mark.parametrize("status", [400, 500, 200])
@pytest.mark.parametrize("limit", [4096, ERROR_BODY_BYTES])  # the old read limit, and the new one
@pytest.mark.parametrize("shift", [-len("Bearer ") - len(SECRET) - 3, -len("Bearer ") - 10, -len("Bearer ") - 1, -3, 0])
def test_a_key_straddling_the_read_limit_never_leaks(serve, caplog, status: int, limit: int, shift: int) -> None:
    # Bodies were read up to 4,096 bytes and redacted after: a key cut by that limit escaped.
    server = serve(Reply(status, body="x" * (limit + shift) + "{auth}" + "y" * 50))
    client = client_for(server, max_retries=1)
    with caplog.at_level(logging.DEBUG), pytest.raises(ChatRequestError) as info:
        ask(client)
    shown = str(info.value) + caplog.text
    assert not fuzz.key_leaks(shown, SECRET)
    assert len(str(info.value)) < SHOWN_BODY_CHARS + 200  # only a short prefix of the body


def test_a_dripping_server_is_cut_at_the_deadline(serve) -> None:
    # One byte every 0.3 s keeps each read inside timeout=1.0: only a wall-clock deadline ends it.
    server = serve(Reply(200, body=chat("x" * 200), drip=0.3))
    client = client_for(server, timeout=1.0, deadline=1.0, max_retries=1)
    started = time.monotonic()
    with pytest.raises(ChatRequestError, match="deadline") as info:
        ask(client)
    assert time.monotonic() - started < 6.0  # two attempts of 1 s each, plus slack
    assert info.value.attempts == 2


def test_the_default_deadline_is_a_few_timeouts() -> None:
    client = ChatCompletionsClient("http://127.0.0.1:9/v1", timeout=1.0)
    assert client.attempt_deadline() == pytest.approx(4.0)
    with pytest.raises(ValueError):
        ChatCompletionsClient("http://127.0.0.1:9/v1", deadline=0)
    with pytest.raises(ValueError):
        ChatCompletionsClient("http://127.0.0.1:9/v1", max_reply_bytes=0)


def test_an_oversized_reply_fails_at_once_with_a_clear_error(serve) -> None:
    server = serve(Reply(200, body=chat("z" * 3_000_000)))
    client = client_for(server, max_reply_bytes=1_000_000)
    with pytest.raises(ChatRequestError, match="larger than the 1,000,000-byte cap") as info:
        ask(client)
    assert info.value.attempts == 1 and len(server.requests) == 1


def test_a_claimed_huge_length_is_refused_before_reading(serve) -> None:
    server = serve(Reply(200, body="{}", headers={"Content-Length": str(10**12)}))
    with pytest.raises(ChatRequestError, match="Content-Length"):
        ask(client_for(server, max_reply_bytes=1000))


def test_a_reply_at_the_cap_is_read() -> None:
    server = fuzz.MisbehavingServer()
    try:
        body = chat("w" * 100).encode()
        server.script[:] = [{"status": 200, "body": body}]
        client = ChatCompletionsClient(server.base_url, api_key_env=None, max_reply_bytes=len(body))
        assert client.complete([{"role": "user", "content": "x"}], model="m") == "w" * 100
    finally:
        server.close()


@settings(max_examples=40)
@given(st.integers(0, 2**32))
def test_a_misbehaving_server_never_leaks_the_key_nor_hangs(seed: int) -> None:
    server = fuzz.MisbehavingServer()
    log: list[str] = []
    handler = fuzz._ListHandler(log)
    logging.getLogger("agents.chat_client").addHandler(handler)
    try:
        fuzz.check_client(random.Random(seed), server, log)
    finally:
        logging.getLogger("agents.chat_client").removeHandler(handler)
        server.close()
