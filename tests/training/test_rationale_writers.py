"""training.rationale_writers: template writer, OpenAI-compatible writer against a real loopback server, cache."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shop_env.actions import Action
from shop_env.sessions import Session, Step
from tests.chat_server import ChatServer, Reply
from tests.session_factory import make_sessions
from training.rationale_writers import (
    INSTRUCTION,
    OpenAIRationaleWriter,
    RationaleError,
    TemplateRationaleWriter,
    fill_rationales,
    make_writer,
)

KEY = "sk-test-SECRET-0123456789"


def rationale_answer(body: dict) -> str:
    """Answer like a model would: the action's type in a padded, quoted sentence."""
    action = body["messages"][-1]["content"].split("Action the shopper took next:\n")[1].split("\n")[0]
    kind = json.loads(action)["type"]
    return f' "I chose to {kind}." '


def rationale_server(*script: Reply, default: Reply | None = None) -> ChatServer:
    """A loopback chat server: ``script`` in order, then ``default`` (a good rationale) forever."""
    return ChatServer(list(script), default=default or Reply(), answer=rationale_answer)


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with rationale_server() as srv:
        yield srv


def _writer(url: str, **kwargs) -> OpenAIRationaleWriter:
    return OpenAIRationaleWriter("test-model", url, api_key_env="SHOP_R1_TEST_KEY", backoff=0.01, max_backoff=0.05,
                                 timeout=5, **kwargs)


# --- template ------------------------------------------------------------------------------


def test_template_rationales_are_first_person_and_grounded() -> None:
    writer = TemplateRationaleWriter()
    session = make_sessions(1, rationales=False)[0]
    texts = [writer.write(session, i) for i in range(len(session.steps))]
    assert all(" I" in f" {t}" or "I'" in t or t.startswith("I") or " my " in t for t in texts)
    query = session.steps[0].action.text
    assert query in texts[0]  # the search text
    item = session.steps[1].action.name.split(".")[1].replace("_", " ")
    assert item in texts[1]  # the clicked product's visible text
    assert "cart" in texts[2]
    assert any(word in texts[-1] for word in ("without", "not going to buy"))
    assert texts == [writer.write(session, i) for i in range(len(session.steps))]  # deterministic


@given(name=st.text(max_size=60), text=st.text(max_size=60), page=st.text(max_size=300),
       kind=st.sampled_from(["click", "type_and_submit", "terminate", "scroll"]))
def test_template_writer_never_fails_on_odd_input(name: str, text: str, page: str, kind: str) -> None:
    session = Session("s", [Step("u", page, Action(kind, name, text))])
    out = TemplateRationaleWriter().write(session, 0)
    assert isinstance(out, str) and out.strip()


def test_fill_rationales_keeps_existing_fills_missing_and_copies() -> None:
    sessions = make_sessions(3)
    sessions[0].steps[1].rationale = None
    filled = fill_rationales(sessions, TemplateRationaleWriter(), progress=False)
    assert sessions[0].steps[1].rationale is None  # inputs untouched
    assert filled[0].steps[1].rationale
    assert filled[0].steps[0].rationale == sessions[0].steps[0].rationale
    assert all(step.rationale for s in filled for step in s.steps)


# --- OpenAI-compatible endpoint on loopback ------------------------------------------------


def test_openai_writer_success(server, monkeypatch) -> None:
    monkeypatch.setenv("SHOP_R1_TEST_KEY", KEY)
    session = make_sessions(1, rationales=False)[0]
    text = _writer(server.base_url).write(session, 0)
    assert text == "I chose to type_and_submit."  # whitespace and quotes stripped
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    body = request["body"]
    assert body["model"] == "test-model"
    assert body["messages"][0] == {"role": "system", "content": INSTRUCTION}
    assert "first person" in INSTRUCTION and "without buying" in INSTRUCTION
    assert session.steps[0].action.to_json() in body["messages"][1]["content"]


def test_openai_writer_retries_429_then_succeeds(monkeypatch) -> None:
    monkeypatch.setenv("SHOP_R1_TEST_KEY", KEY)
    busy = Reply(429, json.dumps({"error": {"message": "rate limited"}}), headers={"Retry-After": "0"})
    with rationale_server(busy, busy) as srv:
        text = _writer(srv.base_url).write(make_sessions(1)[0], 2)
    assert text == "I chose to click."
    assert len(srv.requests) == 3


def test_openai_writer_gives_up_and_never_leaks_the_key(monkeypatch, caplog) -> None:
    monkeypatch.setenv("SHOP_R1_TEST_KEY", KEY)
    echo = Reply(500, json.dumps({"error": f"bad header Authorization: Bearer {KEY}"}))  # a server echoing the key
    caplog.set_level(logging.DEBUG)
    with rationale_server(default=echo) as srv:
        writer = _writer(srv.base_url, max_retries=2)
        with pytest.raises(RationaleError) as info:
            writer.write(make_sessions(1)[0], 0)
    assert len(srv.requests) == 3
    assert "gave up after 3" in str(info.value) and "HTTP 500" in str(info.value)
    assert KEY not in str(info.value) and KEY not in caplog.text and KEY not in repr(writer)
    assert "retry 1/2" in caplog.text


def test_openai_writer_does_not_retry_client_errors(monkeypatch) -> None:
    monkeypatch.delenv("SHOP_R1_TEST_KEY", raising=False)
    with rationale_server(default=Reply(400, '{"error": "bad model"}')) as srv:
        with pytest.raises(RationaleError, match="HTTP 400"):
            _writer(srv.base_url).write(make_sessions(1)[0], 0)
    assert len(srv.requests) == 1
    assert "Authorization" not in srv.requests[0]["headers"]  # no key set: no header


@pytest.mark.parametrize("payload", ['{"choices": []}', "not json", '{"choices": [{"message": {"content": "  "}}]}',
                                     '{"choices": [{"message": {"content": null}}]}',
                                     '{"choices": [{"message": {"content": 3}}]}'])
def test_openai_writer_rejects_unusable_answers(payload: str) -> None:
    with rationale_server(default=Reply(200, payload)) as srv:
        with pytest.raises(RationaleError):
            _writer(srv.base_url).write(make_sessions(1)[0], 0)


def test_openai_writer_reports_an_unreachable_endpoint() -> None:
    with rationale_server() as srv:
        url = srv.base_url
    with pytest.raises(RationaleError, match="gave up"):
        _writer(url, max_retries=1).write(make_sessions(1)[0], 0)


def test_openai_writer_settings_live_on_its_client(monkeypatch) -> None:
    monkeypatch.setenv("SHOP_R1_TEST_KEY", KEY)
    with rationale_server(default=Reply(503, "{}")) as srv:
        writer = _writer(srv.base_url, max_retries=-4)  # clamped to no retries
        assert (writer.max_retries, writer.backoff, writer.max_backoff, writer.timeout) == (0, 0.01, 0.05, 5.0)
        assert writer.client.backoff_base == 0.01 and writer.base_url == srv.base_url
        with pytest.raises(RationaleError, match="gave up after 1 attempt"):
            writer.write(make_sessions(1)[0], 0)
        writer.max_retries = 1  # changed after construction: still takes effect
        with pytest.raises(RationaleError, match="gave up after 2 attempts"):
            writer.write(make_sessions(1)[0], 0)
    assert len(srv.requests) == 3
    for bad in ("ftp://x/v1", "http://", ""):
        with pytest.raises(ValueError, match="base_url"):
            OpenAIRationaleWriter("m", bad)


def test_cache_is_reused_and_an_interrupted_run_resumes(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SHOP_R1_TEST_KEY", KEY)
    sessions = make_sessions(2, rationales=False)
    n_steps = sum(len(s.steps) for s in sessions)
    cache = tmp_path / "rationales.jsonl"
    # First run dies on the 4th request: the first 3 answers are cached.
    with rationale_server(Reply(), Reply(), Reply(), Reply(400, '{"error": "boom"}')) as srv:
        with pytest.raises(RationaleError):
            fill_rationales(sessions, _writer(srv.base_url), cache_path=cache, progress=False)
    assert len(cache.read_text().splitlines()) == 3
    with rationale_server() as srv:
        filled = fill_rationales(sessions, _writer(srv.base_url), cache_path=cache, progress=False)
        assert len(srv.requests) == n_steps - 3  # only the missing ones
        again = fill_rationales(sessions, _writer(srv.base_url), cache_path=cache, progress=False)
        assert len(srv.requests) == n_steps - 3  # a re-run asks nothing
    assert [st.rationale for s in filled for st in s.steps] == [st.rationale for s in again for st in s.steps]
    assert all(st.rationale and st.rationale.startswith("I chose to") for s in filled for st in s.steps)
    assert KEY not in cache.read_text()


def test_a_changed_prompt_misses_the_cache(tmp_path) -> None:
    sessions = make_sessions(1, rationales=False)
    cache = tmp_path / "c.jsonl"
    with rationale_server() as srv:
        fill_rationales(sessions, _writer(srv.base_url), cache_path=cache, progress=False)
        first = len(srv.requests)
        fill_rationales(sessions, _writer(srv.base_url, max_page_chars=10), cache_path=cache, progress=False)
        assert len(srv.requests) == 2 * first


def test_a_truncated_cache_line_is_skipped(tmp_path) -> None:
    sessions = make_sessions(1, rationales=False)
    cache = tmp_path / "c.jsonl"
    with rationale_server() as srv:
        fill_rationales(sessions, _writer(srv.base_url), cache_path=cache, progress=False)
        cache.write_text(cache.read_text() + '{"session_id": "s-0-000", "st')  # crash mid-line
        fill_rationales(sessions, _writer(srv.base_url), cache_path=cache, progress=False)
        assert len(srv.requests) == len(sessions[0].steps)


# --- specs ---------------------------------------------------------------------------------


def test_make_writer_specs() -> None:
    assert isinstance(make_writer("template"), TemplateRationaleWriter)
    writer = make_writer("openai:claude-3-5-sonnet@20240620@https://api.example.com/v1/", api_key_env="K")
    assert isinstance(writer, OpenAIRationaleWriter)
    assert writer.model == "claude-3-5-sonnet@20240620"
    assert writer.base_url == "https://api.example.com/v1"
    assert writer.api_key_env == "K"
    for bad in ("", "openai:", "openai:gpt@ftp://x", "claude", "openai:@http://x"):
        with pytest.raises(ValueError, match="rationale writer"):
            make_writer(bad)
