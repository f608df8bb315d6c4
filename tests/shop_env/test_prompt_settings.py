"""Prompt settings travel with the checkpoint: saved by training, read back by agents and evaluation."""

from __future__ import annotations

import json

import pytest

from shop_env.prompt_settings import (
    PROMPT_SETTINGS_FILE,
    PromptSettings,
    prompt_version,
    resolve_prompt_settings,
)


def test_round_trip_and_explicit_values_win_with_a_warning(tmp_path):
    PromptSettings("latest-step", 4, 640).save(tmp_path)
    saved = PromptSettings.load(tmp_path)
    assert saved == PromptSettings("latest-step", 4, 640) and saved.prompt_version == prompt_version()
    assert resolve_prompt_settings(str(tmp_path)) == saved
    with pytest.warns(UserWarning, match="context='whole-session' differs"):
        mixed = resolve_prompt_settings(str(tmp_path), context="whole-session")
    assert (mixed.context, mixed.max_prompt_tokens) == ("whole-session", 640)
    assert resolve_prompt_settings("no/such/dir") == PromptSettings()
    assert resolve_prompt_settings(None, max_prompt_tokens=99).max_prompt_tokens == 99


def test_a_changed_system_prompt_and_a_corrupt_file_are_reported(tmp_path):
    (tmp_path / PROMPT_SETTINGS_FILE).write_text(json.dumps({"context": "latest-step", "prompt_version": "old"}))
    with pytest.warns(UserWarning, match="another system prompt"):
        resolve_prompt_settings(str(tmp_path))
    (tmp_path / PROMPT_SETTINGS_FILE).write_text(json.dumps({"context": "everything"}))
    with pytest.raises(ValueError, match=PROMPT_SETTINGS_FILE):
        PromptSettings.load(tmp_path)


def test_an_hf_agent_and_evaluate_read_the_saved_settings(tmp_path):
    pytest.importorskip("torch")
    from agents import make_agent
    from benchmarks import evaluate
    from tests.session_factory import make_sessions
    from training.models import TinySpec, load_model

    small = TinySpec(vocab_size=400, hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64)
    model, tokenizer = load_model("tiny", sessions=make_sessions(2), out_dir=tmp_path / "base", tiny=small)
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    PromptSettings("latest-step", 2, 300).save(model_dir)
    agent = make_agent(f"hf:{model_dir}", max_new_tokens=4)
    assert (agent.context, agent.max_prompt_tokens) == ("latest-step", 300)

    parser = evaluate.build_parser()
    args = parser.parse_args(["--agent", f"hf:{model_dir}"])
    evaluate._resolve_prompt_settings(args)
    assert (args.context, args.max_history, args.max_prompt_tokens) == ("latest-step", 2, 300)
    args = parser.parse_args(["--agent", "random"])
    evaluate._resolve_prompt_settings(args)
    assert args.context == "whole-session"
