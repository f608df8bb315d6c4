"""The trainer's self-certainty step on data shaped as verl keeps it (jagged tensors, non-tensor stacks)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("verl")
pytest.importorskip("transfer_queue")

import torch  # noqa: E402

import rewards  # noqa: E402
from shop_env.actions import Action  # noqa: E402
from training.verl_backend.certainty import rationale_mask  # noqa: E402

GOLD = Action("click", "results.tent.view_product")


def _jagged(rows):
    return torch.nested.as_nested_tensor(rows, layout=torch.jagged)


def test_self_certainty_scores_match_rewards(tokenizer) -> None:
    from verl.utils import tensordict_utils as tu
    from verl.utils.torch_functional import entropy_from_logits

    from training.verl_backend.verl_trainer import self_certainty_scores

    texts = [
        json.dumps({"rationale": "The tent is light, I open it.", "action": GOLD.to_dict()}),
        "no json here",
        json.dumps({"rationale": "Enough for today.", "action": {"type": "terminate"}}),
    ]
    vocab = len(tokenizer)
    gen = torch.Generator().manual_seed(0)
    responses, logits, base = [], [], []
    for text in texts:
        ids = tokenizer.encode(text) + [tokenizer.eos_token_id]
        responses.append(torch.tensor(ids))
        logits.append(torch.randn(len(ids), vocab, generator=gen) * 3)
        base.append(torch.zeros(len(ids)).index_fill_(0, torch.tensor([len(ids) - 1]), 1.5))
    data = tu.get_tensordict({
        "responses": _jagged(responses),
        "entropy": _jagged([entropy_from_logits(z) for z in logits]),  # verl's own entropy
        "rm_scores": _jagged(base),
        "reward_model": [{"style": "rule", "ground_truth": GOLD.to_json()} for _ in texts],
    })
    config = rewards.RewardConfig(self_certainty_alpha=0.1)
    scores, metrics = self_certainty_scores(data, tokenizer, config, vocab)
    rows = list(scores.unbind(0))
    for text, ids, z, row, before in zip(texts, responses, logits, rows, base, strict=True):
        _, mask = rationale_mask(tokenizer, ids.tolist())
        certainty = rewards.self_certainty(z[None], torch.tensor([mask]), variant="kl_p_u")[0]
        expected_bonus = (rewards.score(text, GOLD, config, self_certainty=certainty).total
                          - rewards.score(text, GOLD, config).total)
        assert row.shape == before.shape
        assert torch.equal(row[:-1], before[:-1])  # only the last token's reward moves
        assert row[-1].item() == pytest.approx(1.5 + expected_bonus, abs=1e-5)
    assert rows[1][-1].item() == pytest.approx(1.5)  # invalid format: no self-certainty paid
    assert rows[0][-1].item() != pytest.approx(1.5)
    assert set(metrics) >= {"shop_r1/self_certainty/mean", "shop_r1/self_certainty/bonus_mean"}
