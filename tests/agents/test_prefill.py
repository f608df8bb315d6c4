"""agents.prefill: rows that share a prompt (or its prefix) are prefilled once, and nothing else changes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from agents import prefill as prefill_module  # noqa: E402
from agents.prefill import (  # noqa: E402
    common_prefix_length,
    repeated_row_groups,
    sharing_repeated_prompts,
    starts_with,
    supports_prefill,
)

VOCAB, PAD = 64, 0


@pytest.fixture(scope="module")
def model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         pad_token_id=PAD, eos_token_id=1)
    return LlamaForCausalLM(config).eval()


def left_padded(prompts: list[list[int]]) -> tuple:
    width = max(map(len, prompts))
    ids = torch.tensor([[PAD] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    return ids, mask


prompt = st.lists(st.integers(2, VOCAB - 1), min_size=2, max_size=12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(distinct=st.lists(prompt, min_size=1, max_size=3), copies=st.lists(st.integers(1, 3), min_size=3, max_size=3),
       seed=st.integers(0, 2**16))
def test_repeated_prompts_sample_what_whole_prefill_samples(model, monkeypatch, distinct, copies, seed):
    """Same seed, same samples and scores, whether repeated prompts are prefilled once or each time."""
    prompts = [p for p, n in zip(distinct, copies, strict=False) for _ in range(n)]
    ids, mask = left_padded(prompts)
    options = {"max_new_tokens": 5, "do_sample": True, "temperature": 1.0, "top_k": 0, "pad_token_id": PAD,
               "return_dict_in_generate": True, "output_scores": True}
    torch.manual_seed(seed)
    whole = model.generate(input_ids=ids, attention_mask=mask, **options)
    prefilled: list[int] = []
    real = prefill_module.prefill
    monkeypatch.setattr(prefill_module, "prefill", lambda m, i, a=None: prefilled.append(i.size(0)) or real(m, i, a))
    with sharing_repeated_prompts(model):
        torch.manual_seed(seed)
        shared = model.generate(input_ids=ids, attention_mask=mask, **options)
    assert torch.equal(whole.sequences, shared.sequences)
    for a, b in zip(whole.scores, shared.scores, strict=True):
        finite = torch.isfinite(a)
        assert torch.equal(finite, torch.isfinite(b))
        torch.testing.assert_close(a[finite], b[finite], atol=1e-4, rtol=1e-4)
    groups = repeated_row_groups(ids, mask)
    # Each run of identical rows was prefilled once; with none, generate ran as it is.
    assert prefilled == ([] if groups is None else [len(set(groups))])


def test_the_wrapper_leaves_the_model_as_it_found_it(model):
    assert "generate" not in vars(model)
    with sharing_repeated_prompts(model):
        assert "generate" in vars(model)
    assert "generate" not in vars(model)

    def earlier(*args, **kwargs):  # another instance-level wrapper, installed first
        return "earlier"

    model.generate = earlier
    try:
        with sharing_repeated_prompts(model):
            ids, mask = left_padded([[5, 6, 7]] * 2)
            assert model.generate(input_ids=ids, attention_mask=mask) == "earlier"
        assert model.generate is earlier
    finally:
        del model.generate


def test_a_caller_cache_or_positional_arguments_pass_through(model):
    seen: list[tuple] = []
    original = type(model).generate

    def spy(self, *args, **kwargs):
        seen.append((args, sorted(kwargs)))
        return original(self, *args, **kwargs)

    ids, mask = left_padded([[5, 6, 7]] * 2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(model), "generate", spy)
        with sharing_repeated_prompts(model):
            model.generate(ids, attention_mask=mask, max_new_tokens=1, pad_token_id=PAD)  # positional ids
            model.generate(input_ids=ids[:1], attention_mask=mask[:1], max_new_tokens=1, pad_token_id=PAD)
    assert prefill_module.cache_keyword(model) in seen[0][1]  # two identical rows: one prefill
    assert all(name not in seen[1][1] for name in ("cache", "past_key_values"))  # one row: as it is


@given(st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=6), min_size=1, max_size=4))
def test_common_prefix_leaves_every_row_a_token_of_its_own(rows):
    length = common_prefix_length(rows)
    assert all(starts_with(row, rows[0][:length]) or length == 0 for row in rows)
    assert all(len(row) > length for row in rows) or length == 0
    assert all(row[:length] == rows[0][:length] for row in rows)


def test_models_without_a_cache_keyword_are_turned_down(model):
    class NoCache(torch.nn.Module):
        def forward(self, input_ids, attention_mask=None):
            return input_ids

    assert supports_prefill(model)
    assert not supports_prefill(NoCache())
    calls = []
    generate = prefill_module.generate_sharing_repeated_rows
    out = generate(lambda **kw: calls.append(sorted(kw)) or "plain", NoCache(),
                   input_ids=torch.ones(2, 3, dtype=torch.long), attention_mask=torch.ones(2, 3))
    assert out == "plain" and calls == [["attention_mask", "input_ids"]]  # repeated rows, yet no prefill
