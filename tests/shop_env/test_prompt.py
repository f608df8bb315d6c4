"""Prompt building: layout, token budget (drop oldest pages, then cut the current one), SFT chats."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shop_env import Action, Session, Step, parse_response
from shop_env.observations import build_observation
from shop_env.prompt import (
    CUT_MARKER,
    MESSAGE_OVERHEAD_TOKENS,
    PAGE_DROPPED,
    SYSTEM_PROMPT,
    build_messages,
    build_prompt,
    format_target,
    page_text,
    session_chat,
    step_chats,
)
from shop_env.sessions import read_jsonl, write_jsonl


def _page(k, words=150):
    body = " ".join(f"item{k}_{w}" for w in range(words))
    return f'<div data-section="results"><p>{body}</p><a name="results.item_{k}">Item {k}</a></div>'


def make_session(n=5):
    steps = [Step(f"https://shop.example/p{k}", _page(k), Action("click", f"results.item_{k}"), f"I open item {k}.")
             for k in range(n - 1)]
    steps.append(Step("https://shop.example/end", _page(n - 1), Action("terminate"), "I am done."))
    return Session("sess-1", steps)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompt") / "s.jsonl"
    write_jsonl([make_session()], path)
    return read_jsonl(path)[0]


@pytest.fixture(scope="module")
def bpe():
    """A real byte-level BPE tokenizer trained here on the prompt's own text."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    corpus = [SYSTEM_PROMPT, PAGE_DROPPED, CUT_MARKER] + [_page(k) for k in range(6)] * 3
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return tokenizer


@pytest.fixture(scope="module")
def chat_tokenizer(bpe):
    """The same BPE wrapped as a transformers tokenizer with a ChatML chat template."""
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=bpe)
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    return tok


def _count(tokenizer, messages):
    return sum(len(tokenizer.encode(m["content"], add_special_tokens=False).ids) for m in messages) + \
        MESSAGE_OVERHEAD_TOKENS * len(messages)


def _last_obs(session):
    return build_observation(session, len(session.steps) - 1)


def test_unbudgeted_prompt_has_every_page_and_action_in_order(session):
    build = build_prompt(_last_obs(session))
    system, *turns = build.messages
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    assert [m["role"] for m in turns] == ["user", "assistant"] * 4 + ["user"]
    text = _chat_text(build.messages)
    positions = []
    for step in session.steps[:-1]:
        positions += [text.index(step.url), text.index(page_text(step.html)), text.index(step.action.to_json())]
    positions.append(text.index(page_text(session.steps[-1].html)))
    assert positions == sorted(positions)
    assert build.dropped_pages == 0 and not build.truncated_current and not build.over_budget
    assert build.n_tokens > len(text) // 4


def test_system_prompt_describes_actions_and_format():
    for word in ("click", "type_and_submit", "terminate", "rationale", "action", "JSON", "name", "text"):
        assert word in SYSTEM_PROMPT


def test_latest_step_context_shows_actions_but_not_past_pages(session):
    for obs in (_last_obs(session), build_observation(session, 4, context="latest-step")):
        text = build_messages(obs, context="latest-step")[1]["content"]
        assert all(page_text(s.html) not in text for s in session.steps[:-1])
        assert all(s.action.to_json() in text for s in session.steps[:-1])
        assert page_text(session.steps[-1].html) in text


def test_first_step_prompt(session):
    text = build_messages(build_observation(session, 0), context="latest-step")[1]["content"]
    assert "first page" in text and page_text(session.steps[0].html) in text
    whole = build_messages(build_observation(session, 0))
    assert whole[1:] == [{"role": "user", "content": f"Step 1. URL: {session.steps[0].url}\nPage:\n"
                                                    + page_text(session.steps[0].html)}]


def _chat_text(messages):
    """Everything after the system prompt (one user message, or the turns of a whole-session chat)."""
    return "\n".join(m["content"] for m in messages[1:])


def _pages_kept(user_text, session):
    return [page_text(s.html) in user_text for s in session.steps[:-1]]


@pytest.mark.parametrize("use_tokenizer", [False, True])
def test_budget_drops_oldest_pages_first_and_keeps_actions(session, bpe, use_tokenizer):
    tokenizer = bpe if use_tokenizer else None
    full = build_prompt(_last_obs(session), tokenizer=tokenizer)
    page_cost = full.n_tokens - build_prompt(_last_obs(session), tokenizer=tokenizer, max_prompt_tokens=full.n_tokens - 1).n_tokens
    assert page_cost > 0
    budget = full.n_tokens - 1  # forces exactly the oldest page out
    build = build_prompt(_last_obs(session), tokenizer=tokenizer, max_prompt_tokens=budget)
    text = _chat_text(build.messages)
    assert build.dropped_pages == 1 and not build.truncated_current
    assert _pages_kept(text, session) == [False, True, True, True]
    assert text.count(PAGE_DROPPED) == 1
    assert all(s.action.to_json() in text for s in session.steps[:-1])
    assert build.n_tokens <= budget
    if use_tokenizer:
        assert build.n_tokens == _count(bpe, build.messages)


@pytest.mark.parametrize("use_tokenizer", [False, True])
def test_budget_cuts_current_page_with_marker_after_dropping_all(session, bpe, use_tokenizer):
    tokenizer = bpe if use_tokenizer else None
    no_pages = build_prompt(_last_obs(session), context="latest-step", tokenizer=tokenizer).n_tokens
    budget = no_pages - 50  # even with no past page the current one must lose some tokens
    build = build_prompt(_last_obs(session), tokenizer=tokenizer, max_prompt_tokens=budget)
    text = _chat_text(build.messages)
    current = page_text(session.steps[-1].html)
    assert build.dropped_pages == 4 and _pages_kept(text, session) == [False] * 4
    assert build.truncated_current and build.cut_chars > 0 and not build.over_budget
    marker = CUT_MARKER.format(cut=build.cut_chars)
    assert marker in text
    head = "URL: https://shop.example/end\nPage:\n"
    kept = text[text.index(head) + len(head): text.index(marker)]
    assert current.startswith(kept) and len(kept) + build.cut_chars == len(current)
    assert all(s.action.to_json() in text for s in session.steps[:-1])
    assert build.n_tokens <= budget
    if use_tokenizer:
        assert build.n_tokens == _count(bpe, build.messages)


def test_chat_template_tokenizer_counts_the_templated_prompt(session, chat_tokenizer):
    full = build_prompt(_last_obs(session), tokenizer=chat_tokenizer)
    for budget in (full.n_tokens, full.n_tokens - 200, full.n_tokens // 3):
        build = build_prompt(_last_obs(session), tokenizer=chat_tokenizer, max_prompt_tokens=budget)
        ids = chat_tokenizer.apply_chat_template(build.messages, tokenize=True, add_generation_prompt=True, return_dict=False)
        assert build.n_tokens == len(ids) <= budget


def test_impossible_budget_is_reported(session, bpe):
    build = build_prompt(_last_obs(session), tokenizer=bpe, max_prompt_tokens=10)
    assert build.over_budget and build.n_tokens > 10
    assert build.dropped_pages == 4 and build.truncated_current
    assert all(s.action.to_json() in _chat_text(build.messages) for s in session.steps[:-1])


@settings(max_examples=40)
@given(budget=st.integers(min_value=1, max_value=6000), context=st.sampled_from(["whole-session", "latest-step"]))
def test_any_budget_fits_or_reports(budget, context):
    session = make_session()
    build = build_prompt(_last_obs(session), context=context, max_prompt_tokens=budget)
    assert build.n_tokens <= budget or build.over_budget
    kept = _pages_kept(_chat_text(build.messages), session)
    if context == "whole-session":
        # Dropped pages are always the oldest ones.
        assert kept == [False] * build.dropped_pages + [True] * (4 - build.dropped_pages)
    if build.truncated_current:
        assert build.dropped_pages == (4 if context == "whole-session" else 0)


@settings(max_examples=25)
@given(budget=st.integers(min_value=1, max_value=5000))
def test_any_budget_with_a_tokenizer_fits_or_reports(bpe, budget):
    session = make_session()
    build = build_prompt(_last_obs(session), tokenizer=bpe, max_prompt_tokens=budget)
    assert build.n_tokens == _count(bpe, build.messages)
    assert build.n_tokens <= budget or build.over_budget
    kept = _pages_kept(_chat_text(build.messages), session)
    assert kept == [False] * build.dropped_pages + [True] * (4 - build.dropped_pages)


@pytest.mark.parametrize(
    "observation, message",
    [
        ([], "must be a dict"),
        ({"url": "", "html": "", "step": 0}, "missing key 'history'"),
        ({"url": "", "html": 3, "history": "[]", "step": 0}, "'html' must be strings"),
        ({"url": "", "html": "", "history": "[oops", "step": 0}, "history"),
        ({"url": "", "html": "", "history": '[{"url": "u"}]', "step": 1}, r"history\[0\]"),
        ({"url": "", "html": "", "history": "[]", "step": -1}, "'step'"),
    ],
)
def test_malformed_observation_names_the_key(observation, message):
    with pytest.raises(ValueError, match=message):
        build_prompt(observation)


def test_bad_arguments(session):
    with pytest.raises(ValueError, match="unknown context"):
        build_prompt(_last_obs(session), context="all")
    for budget in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="max_prompt_tokens"):
            build_prompt(_last_obs(session), max_prompt_tokens=budget)


def test_history_may_be_a_list(session):
    obs = dict(_last_obs(session))
    as_list = dict(obs, history=json.loads(obs["history"]))
    assert build_messages(as_list) == build_messages(obs)


def test_format_target_round_trips_through_the_parser():
    for action in (Action("click", "a.b"), Action("type_and_submit", "search_input", "tent é"), Action("terminate")):
        text = format_target("I want \"this\".", action)
        parsed = parse_response(text)
        assert parsed.action == action and parsed.rationale == 'I want "this".'
    assert parse_response(format_target(None, {"type": "terminate"})).rationale == ""


def test_session_chat_alternates_pages_and_targets(session):
    chat = session_chat(session)
    assert chat[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert [m["role"] for m in chat[1:]] == ["user", "assistant"] * len(session.steps)
    for step, user, assistant in zip(session.steps, chat[1::2], chat[2::2], strict=True):
        assert page_text(step.html) in user["content"] and step.url in user["content"]
        parsed = parse_response(assistant["content"])
        assert parsed.action == step.action and parsed.rationale == step.rationale


def test_session_chat_budget_drops_oldest_then_cuts_last(session, bpe):
    full = _count(bpe, session_chat(session, tokenizer=bpe))
    chat = session_chat(session, tokenizer=bpe, max_prompt_tokens=full - 1)
    assert PAGE_DROPPED in chat[1]["content"] and all(page_text(s.html) in m["content"] for s, m in zip(session.steps[1:], chat[3::2], strict=True))
    assert _count(bpe, chat) <= full - 1
    tight = session_chat(session, tokenizer=bpe, max_prompt_tokens=full // 4)
    assert all(PAGE_DROPPED in m["content"] for m in tight[1:-2:2])
    assert "page cut here" in tight[-2]["content"]
    assert [parse_response(m["content"]).action for m in tight[2::2]] == [s.action for s in session.steps]


def test_session_chat_rejects_latest_step_and_step_chats_cover_it(session):
    with pytest.raises(ValueError, match="step_chats"):
        session_chat(session, context="latest-step")
    chats = step_chats(session, context="latest-step")
    assert len(chats) == len(session.steps)
    for k, chat in enumerate(chats):
        assert [m["role"] for m in chat] == ["system", "user", "assistant"]
        assert page_text(session.steps[k].html) in chat[1]["content"]
        assert all(page_text(s.html) not in chat[1]["content"] for s in session.steps[:k])
        assert parse_response(chat[2]["content"]).action == session.steps[k].action
