"""training.sft: chat datasets, assistant-only labels, a short real SFT run, resume."""

from __future__ import annotations

import json

import pytest
import torch

from shop_env.prompt import PAGE_DROPPED, format_target
from tests.session_factory import make_sessions
from training.models import TinySpec, load_model
from training.sft import (
    METRICS_FILE,
    SFTSettings,
    build_sft_dataset,
    build_trainer,
    chat_tokens,
    run_sft,
)
from training.tokenizer import IM_END

SMALL = TinySpec(vocab_size=600, hidden_size=64, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=128)


@pytest.fixture(scope="module")
def sessions():
    return make_sessions(6)


@pytest.fixture(scope="module")
def base_dir(sessions, tmp_path_factory):
    out = tmp_path_factory.mktemp("base")
    load_model("tiny", sessions=sessions, out_dir=out, tiny=SMALL)
    return out


def fresh_model(sessions, base_dir):
    """The cached tiny model, loaded anew (training changes it in place)."""
    return load_model("tiny", sessions=sessions, out_dir=base_dir, tiny=SMALL)


def label_spans(labels: list[int]) -> list[list[int]]:
    spans, current = [], []
    for token in labels:
        if token == -100:
            if current:
                spans.append(current)
            current = []
        else:
            current.append(token)
    return spans + ([current] if current else [])


def targets(session) -> list[str]:
    return [format_target(step.rationale, step.action) for step in session.steps]


@pytest.mark.parametrize("context", ["whole-session", "latest-step"])
def test_labels_are_exactly_the_assistant_answers(sessions, base_dir, tmp_path, context) -> None:
    model, tokenizer = fresh_model(sessions, base_dir)
    trainer = build_trainer(SFTSettings(context=context, max_steps=1), model, tokenizer, sessions, tmp_path)
    rows = trainer.train_dataset
    decoded = [[tokenizer.decode(span) for span in label_spans(row["labels"])] for row in rows]
    expected = [t + IM_END for s in sessions for t in targets(s)]
    if context == "whole-session":
        assert len(rows) == len(sessions)
        assert decoded == [[t + IM_END for t in targets(s)] for s in sessions]
    else:
        assert len(rows) == len(expected)
        assert [d for row in decoded for d in row] == expected
    for row in rows:  # everything else (system, pages, role headers) is masked
        masked = [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label == -100]
        assert "Page:" in tokenizer.decode(masked) or "Current page" in tokenizer.decode(masked)


def trained_answers(chats) -> list[str]:
    return [m["content"] for chat in chats for m in chat if m["role"] == "assistant" and m.get("train") is not False]


def test_long_sessions_train_each_answer_once_with_its_page(base_dir, tmp_path) -> None:
    long_sessions = make_sessions(4, seed=1, pages=25)
    model, tokenizer = load_model("tiny", sessions=long_sessions, out_dir=base_dir / "long", tiny=SMALL)
    full = build_sft_dataset(long_sessions, tokenizer, SFTSettings(max_seq_tokens=100_000))
    assert len(full) == len(long_sessions)
    longest = max(chat_tokens(tokenizer, chat) for chat in full["messages"])
    budget = longest // 3
    settings = SFTSettings(max_seq_tokens=budget)
    chats = build_sft_dataset(long_sessions, tokenizer, settings)["messages"]
    assert len(chats) > len(long_sessions)
    assert all(chat_tokens(tokenizer, chat) <= budget for chat in chats)
    assert trained_answers(chats) == [t for s in long_sessions for t in targets(s)]  # each once, in order
    for chat in chats:
        for user, answer in zip(chat[1::2], chat[2::2], strict=True):
            # a trained answer sees its page; an answer whose page was dropped is context only
            assert (PAGE_DROPPED in user["content"]) == (answer.get("train") is False)
    assert any(PAGE_DROPPED in m["content"] for chat in chats for m in chat)
    trainer = build_trainer(settings, model, tokenizer, long_sessions, tmp_path)
    labels = [tokenizer.decode(span) for row in trainer.train_dataset for span in label_spans(row["labels"])]
    assert labels == [t + IM_END for t in trained_answers(chats)]


def test_latest_step_chats_fit_and_keep_the_answer(base_dir) -> None:
    long_sessions = make_sessions(2, seed=2, pages=25)
    _, tokenizer = load_model("tiny", sessions=long_sessions, out_dir=base_dir / "long2", tiny=SMALL)
    settings = SFTSettings(context="latest-step", max_seq_tokens=800, max_prompt_tokens=700)
    chats = build_sft_dataset(long_sessions, tokenizer, settings)["messages"]
    assert [chat[-1]["content"] for chat in chats] == [t for s in long_sessions for t in targets(s)]
    assert all(chat_tokens(tokenizer, chat) <= 800 for chat in chats)
    assert all(chat_tokens(tokenizer, chat[:-1]) <= 700 for chat in chats)
    assert any("page cut here" in chat[1]["content"] for chat in chats)


def test_a_page_is_cut_at_the_same_character_in_sft_chats_and_in_prompts(base_dir) -> None:
    """One cutting rule: a latest-step SFT chat, cut to the prompt budget, holds exactly the
    prompt that GRPO and evaluation build for that state with the same budget."""
    from shop_env.observations import build_states
    from shop_env.prompt import build_messages

    long_sessions = make_sessions(2, seed=2, pages=25)
    _, tokenizer = load_model("tiny", sessions=long_sessions, out_dir=base_dir / "long3", tiny=SMALL)
    settings = SFTSettings(context="latest-step", max_seq_tokens=100_000, max_prompt_tokens=900, max_history=4)
    chats = build_sft_dataset(long_sessions, tokenizer, settings)["messages"]
    states = build_states(long_sessions, context="latest-step", max_history=4)
    assert len(chats) == len(states)
    cut = 0
    for state, chat in zip(states, chats, strict=True):
        prompt = build_messages(state.observation, context="latest-step", tokenizer=tokenizer, max_prompt_tokens=900)
        assert prompt == [{"role": m["role"], "content": m["content"]} for m in chat[:-1]]
        cut += "page cut here" in chat[1]["content"]
    assert cut >= 2


def test_a_tiny_budget_still_trains_every_answer(sessions, base_dir) -> None:
    _, tokenizer = fresh_model(sessions, base_dir)
    chats = build_sft_dataset(sessions, tokenizer, SFTSettings(max_seq_tokens=700))["messages"]
    assert len(chats) > len(sessions)
    assert trained_answers(chats) == [t for s in sessions for t in targets(s)]


def test_missing_rationales_are_written_by_the_template_writer(base_dir) -> None:
    bare = make_sessions(2, rationales=False)
    _, tokenizer = load_model("tiny", sessions=bare, out_dir=base_dir / "bare", tiny=SMALL)
    chats = build_sft_dataset(bare, tokenizer, SFTSettings())["messages"]
    rationales = [json.loads(m["content"])["rationale"] for chat in chats for m in chat if m["role"] == "assistant"]
    assert len(rationales) == sum(len(s.steps) for s in bare) and all(rationales)


def test_a_short_sft_run_lowers_the_loss_and_saves(sessions, base_dir, tmp_path) -> None:
    model, tokenizer = fresh_model(sessions, base_dir)
    settings = SFTSettings(max_steps=16, batch_size=2, learning_rate=3e-3, warmup_ratio=0.0, save_steps=8,
                           lr_scheduler="constant", max_seq_tokens=700)
    final = run_sft(settings, model, tokenizer, sessions, tmp_path)
    records = [json.loads(line) for line in (tmp_path / METRICS_FILE).read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 17))
    assert all(r["phase"] == "sft" for r in records)
    assert sum(losses[-4:]) / 4 < 0.7 * sum(losses[:2]) / 2
    assert (tmp_path / "checkpoint-16").is_dir() and (tmp_path / "checkpoint-8").is_dir()
    loaded, loaded_tok = load_model(str(final))
    row = build_trainer(SFTSettings(max_steps=1), loaded, loaded_tok, sessions[:1], tmp_path / "probe").train_dataset[0]
    ids = torch.tensor([row["input_ids"]])
    with torch.no_grad():
        loss = loaded(ids, labels=torch.tensor([row["labels"]])).loss.item()
    assert loss < losses[0]  # the saved weights are the trained ones


def test_resume_continues_the_step_count(sessions, base_dir, tmp_path) -> None:
    settings = SFTSettings(max_steps=2, batch_size=2, learning_rate=1e-3, save_steps=1, save_total_limit=5,
                           max_seq_tokens=600)
    model, tokenizer = fresh_model(sessions, base_dir)
    run_sft(settings, model, tokenizer, sessions, tmp_path)
    model, tokenizer = fresh_model(sessions, base_dir)
    settings.max_steps = 4
    run_sft(settings, model, tokenizer, sessions, tmp_path, resume=True)
    steps = [json.loads(line)["step"] for line in (tmp_path / METRICS_FILE).read_text().splitlines()
             if "loss" in json.loads(line)]
    assert steps == [1, 2, 3, 4]
    state = json.loads((tmp_path / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4


def test_settings_round_trip_and_unknown_keys() -> None:
    settings = SFTSettings(epochs=4.0, learning_rate=2e-5, grad_accum=8, context="latest-step")
    with pytest.raises(ValueError, match="'bogus'"):
        SFTSettings.from_dict({"bogus": 1})
    assert SFTSettings.from_dict(settings.to_dict()) == settings


def test_bad_inputs_raise_clear_errors(sessions, base_dir) -> None:
    _, tokenizer = fresh_model(sessions, base_dir)
    with pytest.raises(ValueError, match="at least one session"):
        build_sft_dataset([], tokenizer, SFTSettings())
    with pytest.raises(ValueError, match="context"):
        build_sft_dataset(sessions, tokenizer, SFTSettings(context="everything"))


@pytest.mark.parametrize("context", ["whole-session", "latest-step"])
def test_the_evaluation_prompt_of_step_t_is_the_prefix_sft_trained_for_step_t(sessions, base_dir, context) -> None:
    """One format from SFT to evaluation: the chat SFT trains answer t on, cut before answer t,
    is the prompt GRPO, evaluation and every model agent show for state t (unbudgeted)."""
    from agents import TransformersAgent
    from shop_env.observations import build_states
    from shop_env.prompt import build_messages

    model, tokenizer = fresh_model(sessions, base_dir)
    settings = SFTSettings(context=context, max_seq_tokens=100_000, max_history=None)
    chats = build_sft_dataset(sessions, tokenizer, settings)["messages"]
    states = build_states(sessions, context=context)
    agent = TransformersAgent(model, tokenizer, context=context, max_new_tokens=1)
    if context == "whole-session":
        assert len(chats) == len(sessions)  # one chat per session trains every step
        trained = {(s.session_id, k): chat for s, chat in zip(sessions, chats, strict=True)
                   for k in range(len(s.steps))}
        prefix = {key: chat[: 2 + 2 * key[1]] for key, chat in trained.items()}
    else:
        assert len(chats) == len(states)
        prefix = {(st.session_id, st.step): chat[:-1] for st, chat in zip(states, chats, strict=True)}
    for state in states:
        expected = [{"role": m["role"], "content": m["content"]} for m in prefix[(state.session_id, state.step)]]
        assert build_messages(state.observation, context=context) == expected
        assert agent.prompt(state.observation) == tokenizer.apply_chat_template(
            expected, tokenize=False, add_generation_prompt=True)


def test_settings_come_from_the_run_config_in_one_place() -> None:
    """Every key of the config's sft/data sections that SFT uses reaches its settings."""
    from training.config import load_config

    config = load_config("smollm2-cpu", ["sft.max_steps=9", "data.max_history=3", "precision=bf16"])
    settings = SFTSettings.from_config(config)
    plan = config.batch_plans()["sft"]
    assert (settings.batch_size, settings.grad_accum) == (plan.per_device, plan.accumulation)
    assert settings.batch_size * settings.grad_accum == config.sft.batch_size
    assert (settings.learning_rate, settings.epochs, settings.max_steps) == (
        config.sft.learning_rate, config.sft.epochs, 9)
    assert (settings.context, settings.max_history, settings.max_prompt_tokens, settings.page_format) == (
        config.data.context, 3, config.data.max_prompt_tokens, config.data.page_format)
    assert (settings.max_seq_tokens, settings.seed, settings.precision, settings.rationales) == (
        config.sft.max_seq_tokens, config.seed, "bf16", config.data.rationales)
    assert SFTSettings.from_config(load_config("tiny-cpu", ["sft.max_steps=null"])).max_steps == -1
