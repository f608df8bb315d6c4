"""Both backends pay the same reward: for the same completions and golds, verl's reward
(``compute_score`` on the decoded text, plus the trainer's self-certainty bonus from the
per-token entropies verl's actor computes) equals the local TRL reward (``ShopR1Reward``
with the policy's logits) within float tolerance.

The policy is a real (small, random) causal LM and both sides run it: the local reward its
own way (left-padded prompt, LM head at the rationale tokens only), the verl side as verl's
actor does (one forward pass over prompt + response, logits / T, ``entropy_from_logits``).
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("verl")
torch = pytest.importorskip("torch")

from rewards import RewardConfig  # noqa: E402
from shop_env.actions import Action  # noqa: E402

TEMPERATURE = 0.6
GOLDS = [
    Action("click", "search_results.tent.view_product"),
    Action("type_and_submit", "search_input", "trail tent"),
    Action("terminate"),
    Action("click", "nav.home"),
]
COMPLETIONS = [
    json.dumps({"rationale": "The tent looks light, I want a closer look.",
                "action": {"type": "click", "name": "search_results.tent.view_product"}}),
    json.dumps({"rationale": "Let me search for something more specific.",
                "action": {"type": "type_and_submit", "name": "search_input", "text": "trail tent 2 person"}}),
    json.dumps({"rationale": "Nothing here is what I need, I am leaving.", "action": {"type": "terminate"}}),
    'not json at all {"rationale": "x"',  # invalid: format gate, no certainty
]


@pytest.fixture(scope="module")
def policy(tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(config).eval()


def _verl_entropies(model, prompt_ids: list[int], response_ids: list[int]) -> torch.Tensor:
    """Per-response-token entropy as verl's actor computes it for ``calculate_entropy=True``."""
    from verl.utils.torch_functional import entropy_from_logits

    ids = torch.tensor([prompt_ids + response_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float()
    # logits at position t predict token t + 1: the response's tokens are predicted from
    # the last prompt position on; verl divides by the rollout temperature first.
    start = len(prompt_ids) - 1
    response_logits = logits[start:start + len(response_ids)] / TEMPERATURE
    return entropy_from_logits(response_logits)


def test_verl_and_local_rewards_agree(tokenizer, policy, sessions) -> None:
    from shop_env.observations import build_states
    from shop_env.prompt import build_messages, chat_token_ids
    from training.grpo_reward import ShopR1Reward
    from training.verl_backend.reward import compute_score
    from training.verl_backend.verl_trainer import self_certainty_scores

    config = RewardConfig(self_certainty_alpha=0.5, dars_factor=100.0)
    state = build_states(sessions[:1])[0]
    prompt = build_messages(state.observation, context="latest-step", tokenizer=tokenizer, max_prompt_tokens=300)
    prompt_ids = chat_token_ids(tokenizer, prompt, add_generation_prompt=True)
    completion_ids = [tokenizer.encode(text, add_special_tokens=False) for text in COMPLETIONS]
    assert all(tokenizer.decode(ids) == text for ids, text in zip(completion_ids, COMPLETIONS, strict=True))

    local = ShopR1Reward(config, tokenizer, policy, temperature=TEMPERATURE)(
        prompts=[prompt] * len(COMPLETIONS), completions=COMPLETIONS, completion_ids=completion_ids,
        gold_action=[g.to_json() for g in GOLDS],
    )
    assert local[3] == 0.0 and all(r > 0 for r in local[:3])
    assert local[2] > local[3]

    # verl: the rule reward on the last response token, then the trainer adds the bonus.
    rm_scores, entropies = [], []
    for ids, text, gold in zip(completion_ids, COMPLETIONS, GOLDS, strict=True):
        scores = torch.zeros(len(ids))
        scores[-1] = compute_score("shop_r1/synthetic", text, gold.to_json(),
                                   {"reward_config": config.to_dict()})["score"]
        rm_scores.append(scores)
        entropies.append(_verl_entropies(policy, prompt_ids, ids))
    nested = lambda rows: torch.nested.as_nested_tensor(rows, layout=torch.jagged)  # noqa: E731
    data = {
        "responses": nested([torch.tensor(ids) for ids in completion_ids]),
        "entropy": nested(entropies),
        "rm_scores": nested(rm_scores),
        "reward_model": [{"ground_truth": g.to_json()} for g in GOLDS],
    }
    new_scores, metrics = self_certainty_scores(data, tokenizer, config, policy.config.vocab_size)
    verl = [float(row.sum()) for row in new_scores.unbind(0)]

    assert verl == pytest.approx(local, rel=1e-4, abs=1e-5)
    assert metrics["shop_r1/self_certainty/bonus_mean"] > 0  # the certainty term is in both, not 0 on both
    rule_only = [float(row.sum()) for row in rm_scores]
    assert verl[0] != pytest.approx(rule_only[0], abs=1e-6)
