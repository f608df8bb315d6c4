"""Self-certainty from verl's per-token entropy equals rewards.self_certainty, on the rationale tokens."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

import rewards
from rewards import token_char_offsets
from shop_env.actions import Action
from training.verl_backend.certainty import (
    UnsupportedVariantError,
    batch_certainty,
    certainty_bonus,
    certainty_from_entropy,
    check_variant,
    completion_certainty,
    rationale_mask,
)

GOLD = Action("click", "results.tent.view_product")
TEXTS = [
    json.dumps({"rationale": "The tent looks light and cheap, I want a closer look.", "action": GOLD.to_dict()}),
    json.dumps({"rationale": "Ce café coûte 3 €, je regarde 🛒 ensuite.", "action": {"type": "terminate"}},
               ensure_ascii=False),
    '{"action": {"type": "terminate"}, "rationale": "order \\"swapped\\" keys"}',
]


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE trained here on JSON-like text (no download)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TEXTS * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")


def _entropy(logits: torch.Tensor) -> torch.Tensor:
    """Per-token entropy as verl computes it (logsumexp(z) - sum softmax(z) * z)."""
    return torch.logsumexp(logits, -1) - (torch.softmax(logits, -1) * logits).sum(-1)


@pytest.mark.parametrize("text", TEXTS)
def test_offsets_cover_the_decoded_text(tokenizer, text: str) -> None:
    ids = tokenizer.encode(text) + [tokenizer.eos_token_id]
    decoded, offsets = token_char_offsets(tokenizer, ids)
    assert decoded == tokenizer.decode(ids, skip_special_tokens=True) == text
    assert len(offsets) == len(ids)
    assert "".join(decoded[s:e] for s, e in offsets) == decoded
    assert offsets[-1][0] == offsets[-1][1] == len(decoded)  # eos: empty span


@pytest.mark.parametrize("text", TEXTS)
def test_rationale_mask_marks_the_rationale_tokens(tokenizer, text: str) -> None:
    ids = tokenizer.encode(text)
    decoded, mask = rationale_mask(tokenizer, ids)
    start, end = rewards.rationale_char_span(decoded)
    _, offsets = token_char_offsets(tokenizer, ids)
    assert mask == rewards.rationale_token_mask(offsets, (start, end))
    assert any(mask)
    covered = "".join(decoded[s:e] for (s, e), m in zip(offsets, mask, strict=True) if m)
    assert decoded[start:end] in covered


def test_no_rationale_means_no_tokens(tokenizer) -> None:
    _, mask = rationale_mask(tokenizer, tokenizer.encode('{"action": {"type": "terminate"}}'))
    assert not any(mask)


@settings(max_examples=25)
@given(seed=st.integers(0, 10_000), vocab=st.integers(2, 300), n_tokens=st.integers(1, 12))
def test_log_v_minus_entropy_equals_rewards_self_certainty(seed: int, vocab: int, n_tokens: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(1, n_tokens, vocab, generator=gen, dtype=torch.float64) * 4
    mask = torch.rand(1, n_tokens, generator=gen) > 0.4
    expected = float(rewards.self_certainty(logits, mask, variant="kl_p_u")[0])
    got = certainty_from_entropy(_entropy(logits[0]), mask[0].tolist(), vocab)
    assert got == pytest.approx(expected, abs=1e-5)


def test_entropy_length_is_checked() -> None:
    with pytest.raises(ValueError, match="mask"):
        certainty_from_entropy([0.1], [True, True], 10)
    with pytest.raises(ValueError, match="vocab_size"):
        certainty_from_entropy([0.1], [True], 0)


def test_bonus_is_what_rewards_score_adds() -> None:
    config = rewards.RewardConfig(self_certainty_alpha=0.01)
    assert certainty_bonus(TEXTS[0], GOLD, config, 2.0) == pytest.approx(0.02)
    assert certainty_bonus("not json", GOLD, config, 2.0) == 0.0  # format gate
    off = rewards.RewardConfig(use_self_certainty=False)
    assert certainty_bonus(TEXTS[0], GOLD, off, 2.0) == 0.0


def test_completion_and_batch(tokenizer) -> None:
    config = rewards.RewardConfig(self_certainty_alpha=0.5)
    vocab = len(tokenizer)
    ids = tokenizer.encode(TEXTS[0])
    logits = torch.randn(len(ids), vocab, generator=torch.Generator().manual_seed(0))
    entropy = _entropy(logits)
    result = completion_certainty(tokenizer, ids, entropy, GOLD, config, vocab)
    _, mask = rationale_mask(tokenizer, ids)
    expected = float(rewards.self_certainty(logits[None], torch.tensor([mask]), variant="kl_p_u")[0])
    assert result.certainty == pytest.approx(expected, abs=1e-5)
    assert result.n_rationale_tokens == sum(mask) > 0
    assert result.bonus == pytest.approx(0.5 * expected, abs=1e-5)

    results, metrics = batch_certainty(
        tokenizer, [ids, tokenizer.encode("garbage")], [entropy, torch.zeros(20)],
        [GOLD.to_json(), GOLD.to_json()], config, vocab,
    )
    assert results[0] == result and results[1].bonus == 0.0
    assert metrics["shop_r1/self_certainty/bonus_mean"] == pytest.approx(result.bonus / 2)
    with pytest.raises(ValueError, match="batch sizes differ"):
        batch_certainty(tokenizer, [ids], [], [GOLD.to_json()], config, vocab)


def test_only_kl_p_u_is_available_from_entropy() -> None:
    check_variant("kl_p_u")
    with pytest.raises(UnsupportedVariantError, match="kl_u_p"):
        check_variant("kl_u_p")


@pytest.mark.parametrize("temperature", [0.6, 1.0, 1.7])
def test_both_backends_measure_the_same_certainty_at_the_sampling_temperature(temperature):
    """The local reward scales logits by 1/T; verl returns the entropy of softmax(z / T): one number."""
    torch.manual_seed(int(temperature * 10))
    logits = torch.randn(2, 7, 50) * 3
    mask = torch.tensor([[0, 1, 1, 1, 0, 1, 0], [1, 1, 0, 0, 0, 0, 1]], dtype=torch.bool)
    local = rewards.self_certainty(logits, mask, temperature=temperature)
    # verl's actor: entropy_from_logits(logits / temperature), per token
    logp = torch.log_softmax(logits / temperature, dim=-1)
    verl_entropy = -(logp.exp() * logp).sum(-1)
    for row in range(2):
        verl = certainty_from_entropy(verl_entropy[row], mask[row].tolist(), vocab_size=50)
        assert local[row].item() == pytest.approx(verl, rel=1e-5)
    if temperature != 1.0:  # the temperature changes the number: it must be the same one on both sides
        assert rewards.self_certainty(logits, mask)[0].item() != pytest.approx(local[0].item(), rel=1e-3)


def test_verl_refuses_a_certainty_temperature_other_than_the_rollouts():
    from training.config import load_config
    from training.verl_backend.launch import LaunchError, build_plan

    with pytest.raises(LaunchError, match="self_certainty_temperature 1 is not available on the verl backend"):
        build_plan(load_config("tiny-cpu", ["reward.self_certainty_temperature=1.0", "backend=verl"]))


def test_the_local_reward_measures_at_the_sampling_temperature_unless_told():
    from training.grpo_reward import ShopR1Reward

    assert ShopR1Reward(rewards.RewardConfig(), temperature=0.6).certainty_temperature == 0.6
    explicit = rewards.RewardConfig.from_dict({"self_certainty_temperature": 1.0})
    assert ShopR1Reward(explicit, temperature=0.6).certainty_temperature == 1.0
    with pytest.raises(ValueError, match="self_certainty_temperature must be > 0"):
        rewards.RewardConfig.from_dict({"self_certainty_temperature": 0})
