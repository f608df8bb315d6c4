"""The tiny model's tokenizer is the same at every stage: build, SFT save, GRPO save, ``hf:<dir>``.

A regression test: a saved ``qwen2`` config made ``AutoTokenizer`` come back as
``Qwen2Tokenizer``, which rebuilt Qwen's pre-tokenizer and split our element names and
JSON scaffold into pieces the model never saw (a 640-token prompt became 693 tokens).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from agents import make_agent  # noqa: E402
from shop_env.observations import build_states  # noqa: E402
from shop_env.prompt import build_messages  # noqa: E402
from tests.session_factory import three_step_sessions  # noqa: E402
from training.config import load_config  # noqa: E402
from training.grpo_train import run_grpo  # noqa: E402
from training.models import TinySpec, load_model  # noqa: E402
from training.pipeline import load_saved  # noqa: E402
from training.sft import SFTSettings, run_sft  # noqa: E402

SMALL = TinySpec(vocab_size=600, hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64)


def chat_ids(tokenizer, messages) -> list[int]:
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def test_token_ids_of_one_chat_are_equal_at_every_stage(tmp_path) -> None:
    torch.set_num_threads(1)
    sessions = three_step_sessions(4)
    states = build_states(sessions, context="latest-step")
    messages = build_messages(states[1].observation, context="latest-step")
    model, tokenizer = load_model("tiny", sessions=sessions, out_dir=tmp_path / "base", tiny=SMALL)
    built = chat_ids(tokenizer, messages)
    # the scaffold and element names are single tokens of ours, not Qwen pieces
    assert tokenizer.convert_tokens_to_ids('", "name": "') != tokenizer.unk_token_id

    sft_dir = run_sft(SFTSettings(max_steps=1, batch_size=2, max_seq_tokens=1024, context="latest-step",
                                  save_steps=1, precision="fp32"), model, tokenizer, sessions, tmp_path / "sft")
    model, after_sft = load_saved(sft_dir)
    assert chat_ids(after_sft, messages) == built

    config = load_config("tiny-cpu", ["grpo.steps=1", "grpo.batch_size=4", "grpo.num_generations=2",
                                      "grpo.max_completion_tokens=8", "precision=fp32"])
    grpo_dir = run_grpo(config, model, after_sft, states, tmp_path / "grpo", progress=False)
    _, after_grpo = load_saved(grpo_dir)
    assert chat_ids(after_grpo, messages) == built

    agent = make_agent(f"hf:{grpo_dir}", max_new_tokens=4)
    assert chat_ids(agent.tokenizer, messages) == built
    assert type(agent.tokenizer) is type(tokenizer)
