"""verl's own dataset classes read the parquet files our export writes."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

pytest.importorskip("verl")

from omegaconf import OmegaConf  # noqa: E402


def _rl_config(**extra):
    base = {
        "prompt_key": "prompt", "max_prompt_length": 4096, "filter_overlong_prompts": True,
        "filter_overlong_prompts_workers": 1, "truncation": "error", "return_raw_chat": True,
        "cache_dir": None,
    }
    return OmegaConf.create({**base, **extra})


def test_rlhf_dataset_reads_rl_parquet(exported, tokenizer, tmp_path) -> None:
    from verl.utils.dataset.rl_dataset import RLHFDataset

    rows = pq.read_table(exported.rl["train"]).to_pylist()
    dataset = RLHFDataset(str(exported.rl["train"]), tokenizer, _rl_config(cache_dir=str(tmp_path)))
    assert len(dataset) == len(rows)
    for i in (0, len(rows) - 1):
        item = dataset[i]
        assert list(item["raw_prompt"]) == rows[i]["prompt"]
        assert item["data_source"] == "shop_r1/synthetic"
        assert item["ability"] == "web_shopping"
        assert json.loads(item["reward_model"]["ground_truth"]) == json.loads(rows[i]["reward_model"]["ground_truth"])
        assert item["extra_info"]["reward_config"]["dars_factor"] == 100.0
        assert item["index"] == rows[i]["extra_info"]["index"]
        # The prompt renders through the tokenizer's chat template, as the rollout will do it.
        text = tokenizer.apply_chat_template(list(item["raw_prompt"]), add_generation_prompt=True, tokenize=False)
        assert rows[i]["prompt"][-1]["content"] in text and text.endswith("<|im_start|>assistant\n")


def test_rlhf_dataset_filters_overlong_prompts(exported, tokenizer, tmp_path) -> None:
    from verl.utils.dataset.rl_dataset import RLHFDataset

    dataset = RLHFDataset(str(exported.rl["train"]), tokenizer,
                          _rl_config(cache_dir=str(tmp_path), max_prompt_length=8))
    assert len(dataset) == 0


def test_multiturn_sft_dataset_masks_assistant_turns(exported, tokenizer) -> None:
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    config = OmegaConf.create({"messages_key": "messages", "max_length": 4096, "truncation": "right",
                               "pad_mode": "right"})
    dataset = MultiTurnSFTDataset(str(exported.sft["train"]), tokenizer, config)
    rows = pq.read_table(exported.sft["train"]).to_pylist()
    assert len(dataset) == len(rows)
    item = dataset[0]
    ids, loss_mask = item["input_ids"], item["loss_mask"]
    assert ids.shape == loss_mask.shape
    trained = tokenizer.decode(ids[loss_mask.bool()])
    target = rows[0]["messages"][-1]["content"]
    assert target in trained  # the assistant's response JSON is trained on ...
    assert rows[0]["messages"][0]["content"][:40] not in trained  # ... the system prompt is not


def test_verl_keeps_every_prompt_the_export_fitted(sessions, tokenizer, tmp_path) -> None:
    """verl's own length filter, with the limit the launcher passes (budget + template room),
    drops none of the rows the export fitted to the budget with verl's tokenizer."""
    from verl.utils.dataset.rl_dataset import RLHFDataset

    from training.verl_backend.export import export_dataset
    from training.verl_backend.overrides import TEMPLATE_MARGIN_TOKENS

    budget = 1200
    result = export_dataset(sessions, tmp_path / "data", context="latest-step", max_history=2,
                            max_prompt_tokens=budget, tokenizer=tokenizer, sft=False,
                            max_prompt_length=budget + TEMPLATE_MARGIN_TOKENS)
    assert result.overlong["train"] == 0
    rows = pq.read_table(result.rl["train"]).to_pylist()
    dataset = RLHFDataset(str(result.rl["train"]), tokenizer,
                          _rl_config(cache_dir=str(tmp_path), max_prompt_length=budget + TEMPLATE_MARGIN_TOKENS))
    assert len(dataset) == len(rows) > 0
