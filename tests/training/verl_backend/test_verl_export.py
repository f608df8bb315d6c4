"""verl parquet export: the columns verl's RLHFDataset / multi-turn SFT dataset read, from env states."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

import rewards
from shop_env.actions import parse_response
from shop_env.observations import build_states
from shop_env.prompt import build_messages
from shop_env.sessions import select_split
from training.verl_backend.export import ABILITY, export_dataset, main
from training.verl_backend.reward import compute_score


@pytest.fixture(scope="module")
def exported(sessions, tmp_path_factory):
    out = tmp_path_factory.mktemp("verl")
    result = export_dataset(sessions, out, reward_config={"dars_factor": 10}, context="latest-step", max_history=3)
    return result


def test_rl_columns_and_values(exported, sessions) -> None:
    table = pq.read_table(exported.rl["train"])
    assert table.column_names == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    rows = table.to_pylist()
    train = select_split(sessions, "train")
    states = build_states(train, context="latest-step", max_history=3)
    assert len(rows) == len(states) == exported.counts["rl/train"]
    for i, (row, state) in enumerate(zip(rows, states, strict=True)):
        assert row["data_source"] == "shop_r1/synthetic"
        assert row["ability"] == ABILITY
        assert row["prompt"] == build_messages(state.observation, "latest-step")
        assert row["reward_model"]["style"] == "rule"
        assert json.loads(row["reward_model"]["ground_truth"]) == state.gold.to_dict()
        info = row["extra_info"]
        assert (info["session_id"], info["step"], info["split"], info["index"]) == (
            state.session_id, state.step, "train", i)
        assert info["reward_config"] == rewards.RewardConfig(dars_factor=10.0).to_dict()


def test_splits_are_disjoint_by_session(exported) -> None:
    train = {r["extra_info"]["session_id"] for r in pq.read_table(exported.rl["train"]).to_pylist()}
    test = {r["extra_info"]["session_id"] for r in pq.read_table(exported.rl["test"]).to_pylist()}
    assert train and test and not train & test


def test_rows_score_through_compute_score(exported) -> None:
    """A row as verl hands it over (Arrow -> dicts) scores exactly like rewards.score."""
    for row in pq.read_table(exported.rl["test"]).to_pylist()[:5]:
        gold = json.loads(row["reward_model"]["ground_truth"])
        text = json.dumps({"rationale": "I go on.", "action": gold})
        out = compute_score(row["data_source"], text, row["reward_model"]["ground_truth"], row["extra_info"])
        expected = rewards.score(text, gold, rewards.RewardConfig(dars_factor=10.0))
        assert out["score"] == pytest.approx(expected.total)
        assert out["acc"] == 1.0


def test_sft_rows_are_chats_with_parsable_targets(exported, sessions) -> None:
    rows = pq.read_table(exported.sft["train"]).to_pylist()
    train = select_split(sessions, "train")
    # latest-step: one chat per step (prompt + target)
    assert len(rows) == sum(len(s.steps) for s in train)
    for row in rows:
        roles = [m["role"] for m in row["messages"]]
        assert roles[0] == "system" and roles[-1] == "assistant"
        parse_response(row["messages"][-1]["content"])


def test_whole_session_sft_is_one_chat_per_session(sessions, tmp_path) -> None:
    result = export_dataset(sessions, tmp_path, splits=("train",), context="whole-session")
    rows = pq.read_table(result.sft["train"]).to_pylist()
    train = select_split(sessions, "train")
    assert [r["session_id"] for r in rows] == [s.session_id for s in train]
    for row, session in zip(rows, train, strict=True):
        assistant = [m for m in row["messages"] if m["role"] == "assistant"]
        assert len(assistant) == len(session.steps)


def test_unknown_reward_key_fails_before_writing(sessions, tmp_path) -> None:
    with pytest.raises(ValueError, match="dars"):
        export_dataset(sessions, tmp_path, reward_config={"dars": 1})
    assert not list(tmp_path.iterdir())


def test_empty_split_is_an_error(sessions, tmp_path) -> None:
    with pytest.raises(ValueError, match="no rows"):
        export_dataset(sessions, tmp_path, test_fraction=0.0, splits=("test",))


def test_cli_writes_files_and_reports_bad_sources(sessions, tmp_path, capsys) -> None:
    from shop_env.sessions import write_jsonl

    data = tmp_path / "sessions.jsonl"
    write_jsonl(sessions, data)
    assert main(["--data", str(data), "--out", str(tmp_path / "out"), "--no-sft", "--context", "latest-step"]) == 0
    assert (tmp_path / "out" / "train.parquet").is_file()
    assert not (tmp_path / "out" / "sft_train.parquet").exists()
    assert "RL rows" in capsys.readouterr().out
    assert main(["--data", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o2")]) == 2
    assert "export failed" in capsys.readouterr().err


def test_every_exported_prompt_is_within_verls_limit_or_the_export_fails(sessions, tokenizer, tmp_path) -> None:
    """No silent data loss: the export counts each prompt as verl does (chat template and
    generation prompt, the tokenizer verl loads) and fails when verl would drop over 1%."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from shop_env.prompt import chat_token_ids
    from training.verl_backend.export import overlong_rows
    from training.verl_backend.overrides import TEMPLATE_MARGIN_TOKENS

    @settings(max_examples=6, deadline=None)
    @given(st.integers(min_value=1000, max_value=3000))
    def fits(budget: int) -> None:
        out = tmp_path / f"b{budget}"
        limit = budget + TEMPLATE_MARGIN_TOKENS
        result = export_dataset(sessions, out, context="latest-step", max_history=2, max_prompt_tokens=budget,
                                tokenizer=tokenizer, sft=False, max_prompt_length=limit)
        assert result.overlong == {"train": 0, "test": 0}
        for path in result.rl.values():
            for row in pq.read_table(path).to_pylist():
                assert len(chat_token_ids(tokenizer, row["prompt"], add_generation_prompt=True)) <= limit

    fits()
    rows = pq.read_table(export_dataset(sessions, tmp_path / "all", context="latest-step", tokenizer=tokenizer,
                                        sft=False).rl["train"]).to_pylist()
    lengths = sorted(len(chat_token_ids(tokenizer, r["prompt"], add_generation_prompt=True)) for r in rows)
    assert overlong_rows(rows, tokenizer, lengths[-1]) == []
    assert len(overlong_rows(rows, tokenizer, lengths[-1] - 1)) >= 1
    with pytest.raises(ValueError, match=r"verl would drop \d+ of \d+ train prompts.*max_prompt_length"):
        export_dataset(sessions, tmp_path / "short", context="latest-step", tokenizer=tokenizer, sft=False,
                       max_prompt_length=lengths[len(lengths) // 2])
    # A budget the prompts cannot be fitted to (the system prompt alone is longer) fails too.
    with pytest.raises(ValueError, match="verl would drop"):
        export_dataset(sessions, tmp_path / "tiny", context="latest-step", tokenizer=tokenizer, sft=False,
                       max_prompt_tokens=100, max_prompt_length=100 + TEMPLATE_MARGIN_TOKENS)


def test_a_tokenizer_without_a_chat_template_is_refused_by_name(sessions, tokenizer, tmp_path) -> None:
    """verl renders every prompt with the chat template; the export says so instead of failing inside."""
    import copy

    bare = copy.deepcopy(tokenizer)
    bare.chat_template = None
    with pytest.raises(ValueError, match="has no chat template"):
        export_dataset(sessions, tmp_path / "bare", context="latest-step", tokenizer=bare, sft=False,
                       max_prompt_length=4000)


def test_latest_step_sft_chats_are_the_grpo_prompts_plus_answers(sessions, tokenizer, tmp_path) -> None:
    """A latest-step SFT chat is the state's RL prompt (same budget) plus its answer, as the
    local SFT builds it, and no chat is over sft.max_seq_tokens (verl would cut its answer)."""
    from shop_env.prompt import chat_token_ids

    result = export_dataset(sessions, tmp_path / "fit", context="latest-step", max_history=2, max_prompt_tokens=1200,
                            tokenizer=tokenizer, sft_max_tokens=1600, max_prompt_length=1264)
    rl = pq.read_table(result.rl["train"]).to_pylist()
    chats = pq.read_table(result.sft["train"]).to_pylist()
    assert len(chats) == len(rl)
    for row, chat in zip(rl, chats, strict=True):
        assert [m["content"] for m in chat["messages"][:-1]] == [m["content"] for m in row["prompt"]]
        assert chat["messages"][-1]["role"] == "assistant"
        assert len(chat_token_ids(tokenizer, chat["messages"])) <= 1600
    assert result.sft_overlong == {"train": 0, "test": 0}
    assert "0 over sft.max_seq_tokens" in result.summary()
    with pytest.raises(ValueError, match=r"SFT chats .* are over sft.max_seq_tokens=1210.*cut their answers"):
        export_dataset(sessions, tmp_path / "cut", context="latest-step", max_history=2, max_prompt_tokens=1200,
                       tokenizer=tokenizer, sft_max_tokens=1210)
