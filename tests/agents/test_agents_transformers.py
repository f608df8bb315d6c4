"""TransformersAgent on a tiny randomly initialised Qwen2 model with a tokenizer trained here."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from agents import Generation, TransformersAgent, make_agent, transformers_agent  # noqa: E402
from shop_env.prompt import SYSTEM_PROMPT  # noqa: E402

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
MAX_NEW = 6


def observation(step: int, page: str) -> dict:
    return {"url": f"https://shop.example/p/{step}", "html": page, "history": "[]", "session_id": "s", "step": step}


OBSERVATIONS = [
    observation(0, '<a name="results.tent.view_product">View product</a>'),
    observation(1, '<input name="search_input"><button name="search">Search</button>' * 4),
    observation(2, "<p>Thank you for your order</p>"),
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|pad|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    corpus = [SYSTEM_PROMPT] + [o["html"] for o in OBSERVATIONS] + ['{"rationale": "I want it.", "action": {}}']
    core.train_from_iterator(corpus * 3, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<|pad|>", eos_token="<|im_end|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = Qwen2ForCausalLM(config).eval()
    directory = tmp_path_factory.mktemp("tiny-qwen2")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return model, tokenizer, directory


def test_generate_returns_texts_and_aligned_logits(tiny: tuple) -> None:
    model, tokenizer, _ = tiny
    agent = TransformersAgent(model, tokenizer, max_new_tokens=MAX_NEW, batch_size=2, device="cpu")
    out = agent.generate(OBSERVATIONS, return_logits=True)
    assert isinstance(out, Generation)
    assert len(out.texts) == len(out.token_ids) == len(out.logits) == len(out.prompts) == len(OBSERVATIONS)
    for text, ids, logits, prompt in zip(out.texts, out.token_ids, out.logits, out.prompts, strict=True):
        assert 1 <= len(ids) <= MAX_NEW
        assert logits.shape == (len(ids), model.config.vocab_size)
        assert logits.dtype == torch.float32
        # Greedy: every completion token is the argmax of the logits it was chosen from.
        assert torch.equal(logits.argmax(dim=-1), ids)
        assert text == tokenizer.decode(ids, skip_special_tokens=True)
        assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")


def test_left_padding_matches_unbatched_generation(tiny: tuple) -> None:
    model, tokenizer, _ = tiny
    batched = TransformersAgent(model, tokenizer, max_new_tokens=MAX_NEW, batch_size=3).generate(OBSERVATIONS)
    single = TransformersAgent(model, tokenizer, max_new_tokens=MAX_NEW, batch_size=1).generate(OBSERVATIONS)
    assert tokenizer.padding_side == "left"
    for a, b in zip(batched.logits, single.logits, strict=True):
        # The first step's logits do not depend on padding; later ones follow the same tokens.
        torch.testing.assert_close(a[0], b[0], atol=1e-4, rtol=1e-4)
    assert [ids[0] for ids in batched.token_ids] == [ids[0] for ids in single.token_ids]


def test_act_batch_and_sampling_are_reproducible(tiny: tuple) -> None:
    model, tokenizer, _ = tiny
    greedy = TransformersAgent(model, tokenizer, max_new_tokens=MAX_NEW)
    assert greedy.act_batch(OBSERVATIONS) == greedy.act_batch(OBSERVATIONS)
    assert greedy.act(OBSERVATIONS[0]) == greedy.act_batch(OBSERVATIONS[:1])[0]
    sampler = TransformersAgent(model, tokenizer, temperature=1.0, top_p=0.9, max_new_tokens=MAX_NEW, seed=7)
    first = sampler.generate(OBSERVATIONS, return_logits=False)
    assert first.logits is None
    assert first.texts == sampler.generate(OBSERVATIONS, return_logits=False).texts


def test_prompt_budget_is_applied(tiny: tuple) -> None:
    model, tokenizer, _ = tiny
    agent = TransformersAgent(model, tokenizer, max_new_tokens=2, max_prompt_tokens=800)
    long_page = observation(0, "<p>" + "tent stove lamp " * 2000 + "</p>")
    prompt = agent.prompt(long_page)
    assert "page cut here" in prompt
    # The budget is counted by shop_env.prompt; allow the template's few role tokens.
    assert len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) <= 800 + 16
    assert len(agent.act_batch([long_page])) == 1


def test_make_agent_hf_loads_a_local_directory(tiny: tuple) -> None:
    _, _, directory = tiny
    agent = make_agent(f"hf:{Path(directory)}", max_new_tokens=3, device="cpu")
    assert isinstance(agent, TransformersAgent)
    assert isinstance(agent.act(OBSERVATIONS[0]), str)
    assert str(directory) in repr(agent)


def test_model_object_needs_a_tokenizer(tiny: tuple) -> None:
    with pytest.raises(ValueError, match="tokenizer"):
        TransformersAgent(tiny[0])
    with pytest.raises(ValueError, match="temperature"):
        TransformersAgent(tiny[0], tiny[1], temperature=-1)


def test_completion_certainty_matches_a_naive_mean_over_rationale_tokens(tiny: tuple) -> None:
    from agents.transformers_agent import completion_certainty

    _, tokenizer, _ = tiny
    text = '{"rationale": "I want it.", "action": {"type": "terminate"}}'
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(len(ids), 50, generator=generator)
    start = text.index("I want")
    stop = start + len("I want it.")
    inside, ends = [], 0
    for i in range(len(ids)):  # naive: a token is in the rationale if its characters overlap it
        begin, ends = ends, len(tokenizer.decode(ids[: i + 1]))
        inside.append(begin < stop and ends > start and ends > begin)
    log_probs = torch.log_softmax(logits[torch.tensor(inside)], dim=-1)
    expected = (torch.log(torch.tensor(50.0)) + (log_probs.exp() * log_probs).sum(-1)).mean()
    assert completion_certainty(tokenizer, ids, logits) == pytest.approx(float(expected), abs=1e-5)
    assert completion_certainty(tokenizer, tokenizer("no json here")["input_ids"], logits[:3]) == 0.0


def test_evaluate_scores_self_certainty_of_a_model_agent(tiny: tuple, tmp_path: Path) -> None:
    from agents.evaluation import PREDICTIONS, evaluate
    from shop_env.actions import Action
    from shop_env.observations import State

    model, tokenizer, _ = tiny
    agent = TransformersAgent(model, tokenizer, max_new_tokens=MAX_NEW)
    states = [State("s", o["step"], o, Action("terminate")) for o in OBSERVATIONS]
    metrics = evaluate(agent, states, tmp_path, batch_size=2, progress=False)
    assert metrics["n"] == 3 and metrics["invalid_rate"] == 1.0  # an untrained model emits no JSON
    records = [line for line in (tmp_path / PREDICTIONS).read_text().splitlines() if line]
    assert len(records) == 3 and all('"self_certainty": 0.0' in r for r in records)


def test_certainties_on_device_match_those_from_returned_logits(tiny: tuple) -> None:
    from agents.transformers_agent import completion_certainty

    model, tokenizer, _ = tiny
    agent = TransformersAgent(model, tokenizer, max_new_tokens=MAX_NEW)
    out = agent.generate(OBSERVATIONS, return_logits=True, certainty_variant="kl_u_p")
    expected = [completion_certainty(tokenizer, i, lg, "kl_u_p") for i, lg in zip(out.token_ids, out.logits, strict=True)]
    assert out.certainties == pytest.approx(expected)
    pairs = agent.act_batch_with_certainty(OBSERVATIONS, variant="kl_u_p")
    assert [text for text, _ in pairs] == out.texts


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    order=st.permutations(range(len(OBSERVATIONS))),
    batch_size=st.integers(min_value=1, max_value=3),
    extra=st.text(alphabet="tent stove<>/ ", max_size=40),
)
def test_shared_prefix_generation_matches_whole_prompt_prefill(tiny: tuple, order: list[int], batch_size: int,
                                                                extra: str) -> None:
    """Prefilling the shared system turn once changes no greedy token and no logit beyond rounding."""
    model, tokenizer, _ = tiny
    observations = [OBSERVATIONS[i] for i in order] + [observation(9, f"<p>{extra}</p>")]
    shared = TransformersAgent(model, tokenizer, max_new_tokens=MAX_NEW, batch_size=batch_size)
    whole = TransformersAgent(model, tokenizer, max_new_tokens=MAX_NEW, batch_size=batch_size, share_prefix=False)
    a, b = shared.generate(observations), whole.generate(observations)
    assert a.texts == b.texts
    for ids_a, ids_b, logits_a, logits_b in zip(a.token_ids, b.token_ids, a.logits, b.logits, strict=True):
        assert torch.equal(ids_a, ids_b)
        torch.testing.assert_close(logits_a, logits_b, atol=1e-4, rtol=1e-4)


def test_the_system_turn_is_prefilled_once_per_call(tiny: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    model, tokenizer, _ = tiny
    agent = TransformersAgent(model, tokenizer, max_new_tokens=2, batch_size=1)
    prefills: list[int] = []
    real_prefill = transformers_agent.prefill
    monkeypatch.setattr(transformers_agent, "prefill",
                        lambda model, ids: prefills.append(ids.size(1)) or real_prefill(model, ids))
    calls: list[dict] = []
    real_generate = model.generate
    monkeypatch.setattr(model, "generate", lambda **kw: calls.append(kw) or real_generate(**kw))
    agent.generate(OBSERVATIONS * 2, return_logits=False)
    system_turn = tokenizer.apply_chat_template([{"role": "system", "content": SYSTEM_PROMPT}], tokenize=False)
    system_tokens = len(tokenizer(system_turn, add_special_tokens=False)["input_ids"])
    # The first one-row batch holds its whole prompt; the second settles on what both share.
    assert len(prefills) == 2 and prefills[1] >= system_tokens
    held = calls[1]["input_ids"][0, :prefills[1]]
    assert all(torch.equal(call["input_ids"][0, :prefills[1]], held) for call in calls[1:])
    # Each batch generates on its own copy of the held cache (generate appends to what it gets).
    caches = [call.get("cache", call.get("past_key_values")) for call in calls]
    assert all(cache is not None for cache in caches)
    assert len({id(cache) for cache in caches}) == len(caches)
