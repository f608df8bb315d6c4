"""verl's naive reward managers call our compute_score (loaded the way verl loads it) and log our breakdown."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

pytest.importorskip("verl")

import torch  # noqa: E402
from hydra import compose, initialize_config_module  # noqa: E402

import rewards  # noqa: E402
from training.config import load_config  # noqa: E402
from training.verl_backend.launch import build_plan  # noqa: E402
from training.verl_backend.overrides import with_required_overrides  # noqa: E402
from training.verl_backend.reward import BREAKDOWN_KEYS  # noqa: E402


@pytest.fixture(scope="module")
def verl_config(tmp_path_factory):
    config = load_config("tiny-cpu", ["backend=verl", "reward.dars_factor=100"])
    plan = build_plan(config, out_root=tmp_path_factory.mktemp("runs"))
    args = plan.grpo_command[plan.grpo_command.index("training.verl_backend.entry") + 1:]
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        return compose(config_name="ppo_trainer", overrides=with_required_overrides(args))


def _completions(rows: list[dict]) -> list[str]:
    good = json.loads(rows[0]["reward_model"]["ground_truth"])
    return [
        json.dumps({"rationale": "This is what I want, so I go on.", "action": good}),
        json.dumps({"rationale": "I stop here.", "action": {"type": "terminate"}}),
        "I think I will click the tent",  # not the output format
        json.dumps({"rationale": "Let me search.", "action": {"type": "type_and_submit", "name": "q", "text": "x"}}),
    ]


def _batch(rows: list[dict], texts: list[str], tokenizer):
    """A DataProto shaped like verl's rollout output: left-padded prompts, right-padded responses."""
    from verl import DataProto

    prompts = [tokenizer.encode("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")] * len(texts)
    responses = [tokenizer.encode(t) + [tokenizer.eos_token_id] for t in texts]
    p_len, r_len = max(map(len, prompts)), max(map(len, responses))
    pad = tokenizer.pad_token_id
    prompt_ids = torch.tensor([[pad] * (p_len - len(p)) + p for p in prompts])
    response_ids = torch.tensor([r + [pad] * (r_len - len(r)) for r in responses])
    mask = torch.tensor(
        [[0] * (p_len - len(p)) + [1] * len(p) + [1] * len(r) + [0] * (r_len - len(r))
         for p, r in zip(prompts, responses, strict=True)]
    )
    n = len(texts)
    return DataProto.from_dict(
        tensors={"prompts": prompt_ids, "responses": response_ids, "attention_mask": mask,
                 "input_ids": torch.cat([prompt_ids, response_ids], 1)},
        non_tensors={
            "data_source": np.array([rows[0]["data_source"]] * n, dtype=object),
            "reward_model": np.array([rows[0]["reward_model"]] * n, dtype=object),
            "extra_info": np.array([dict(rows[0]["extra_info"]) for _ in range(n)], dtype=object),
        },
    ), [len(r) for r in responses]


def _expected(text: str, row: dict):
    config = rewards.RewardConfig.from_dict(row["extra_info"]["reward_config"])
    return rewards.score(text, json.loads(row["reward_model"]["ground_truth"]), config)


def test_reward_loop_naive_manager_uses_compute_score(verl_config, exported, tokenizer) -> None:
    from verl.trainer.ppo.reward import load_reward_manager

    rows = pq.read_table(exported.rl["train"]).to_pylist()
    texts = _completions(rows)
    data, _ = _batch(rows, texts, tokenizer)
    manager = load_reward_manager(verl_config, tokenizer)
    assert type(manager).__name__ == "NaiveRewardManager"

    async def score_all():
        return [await manager.run_single(data[i:i + 1]) for i in range(len(data))]

    results = manager.loop.run_until_complete(score_all())  # the loop verl's manager was built on
    for text, result in zip(texts, results, strict=True):
        expected = _expected(text, rows[0])
        assert result["reward_score"] == pytest.approx(expected.total)
        info = result["reward_extra_info"]
        for key in BREAKDOWN_KEYS:
            assert info[key] == pytest.approx(float(getattr(expected, key))), key
        assert info["valid"] == float(expected.valid)
    assert results[0]["reward_extra_info"]["acc"] == 1.0  # the gold action itself
    assert results[2]["reward_score"] == 0.0  # format gate
    # dars_factor=100 reached compute_score through reward_kwargs and extra_info alike
    assert rows[0]["extra_info"]["reward_config"]["dars_factor"] == 100.0


def test_legacy_naive_manager_uses_compute_score(verl_config, exported, tokenizer) -> None:
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.workers.reward_manager import get_reward_manager_cls

    rows = pq.read_table(exported.rl["test"]).to_pylist()
    texts = _completions(rows)
    data, lengths = _batch(rows, texts, tokenizer)
    manager = get_reward_manager_cls("naive")(tokenizer, num_examine=0, compute_score=get_custom_reward_fn(verl_config))
    out = manager(data, return_dict=True)
    tensor, extra = out["reward_tensor"], out["reward_extra_info"]
    for i, text in enumerate(texts):
        expected = _expected(text, rows[0])
        assert tensor[i, lengths[i] - 1].item() == pytest.approx(expected.total)  # reward on the last token
        assert tensor[i].sum().item() == pytest.approx(expected.total)
        for key in BREAKDOWN_KEYS:
            assert extra[key][i] == pytest.approx(float(getattr(expected, key))), key
