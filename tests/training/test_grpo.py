"""GRPO: the TRL reward function equals rewards.score, self-certainty covers only rationale
tokens and comes from the policy, a two-step run on the tiny model works on CPU, and an
interrupted run resumes without losing or duplicating steps."""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from rewards import RewardConfig, score, token_char_offsets  # noqa: E402
from shop_env.actions import ACTION_TYPES, Action  # noqa: E402
from shop_env.observations import build_states  # noqa: E402
from tests.session_factory import three_step_sessions  # noqa: E402
from training.checkpoints import last_checkpoint, read_metrics  # noqa: E402
from training.config import load_config  # noqa: E402
from training.grpo_reward import (  # noqa: E402
    GenerationCertainty,
    ShopR1Reward,
    prompt_token_ids,
    rationale_mask,
)
from training.grpo_train import CHECKPOINTS, floored_group_advantages, run_grpo  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine, two spinning threads run ~10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from training.models import load_model

    model, tokenizer = load_model("tiny", sessions=three_step_sessions(), out_dir=tmp_path_factory.mktemp("tiny"))
    return model, tokenizer


COMPLETIONS = [
    '{"rationale": "I want a closer look at the tent.", "action": {"type": "click", "name": "results.alpine_tent.view"}}',
    '{"rationale": "Search it.", "action": {"type": "type_and_submit", "name": "search.query", "text": "tent"}}',
    '```json\n{"rationale": "Done.", "action": {"type": "terminate"}}\n```',
    'not json at all',
    '{"rationale": 3, "action": {"type": "click"}}',
    '{"rationale": "", "action": {"type": "click", "name": "results.trail_pack.view"}}',
]
GOLDS = [Action("click", "results.alpine_tent.view"), Action("type_and_submit", "search.query", "tents"),
         Action("terminate"), Action("click", "x"), Action("click", "x"), Action("click", "results.alpine_tent.view")]


@pytest.mark.parametrize("preset", ["tiny-cpu", "ablation-binary", "ablation-no-format", "ablation-no-dars"])
def test_reward_function_equals_rewards_score_without_policy(preset):
    config = load_config(preset).reward_config()
    fn = ShopR1Reward(config)
    logged: dict[str, float] = {}
    got = fn(prompts=[[{"role": "user", "content": "p"}]] * len(COMPLETIONS),
             completions=[[{"role": "assistant", "content": c}] for c in COMPLETIONS],
             gold_action=[g.to_json() for g in GOLDS], log_metric=logged.__setitem__)
    want = [score(c, g, config).total for c, g in zip(COMPLETIONS, GOLDS, strict=True)]
    assert got == pytest.approx(want, abs=1e-9)
    assert fn.errors == 0
    for key in ("reward/format", "reward/type", "reward/attribute", "reward/value", "reward/self_certainty",
                "reward/total", "exact_match/click", "exact_match/terminate", "exact_match/type_and_submit"):
        assert key in logged
    assert logged["exact_match/terminate"] == 1.0
    shares = {k: v for k, v in logged.items() if k.startswith("predicted/")}
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["predicted/terminate"] == pytest.approx(1 / 6) and shares["predicted/invalid"] > 0
    # Every type is logged in every call (zeros too), so averages over micro-batches still sum to 1.
    assert set(shares) == {f"predicted/{kind}" for kind in (*ACTION_TYPES, "invalid")}


def test_a_faulty_sample_scores_zero_and_the_rest_are_scored():
    config = RewardConfig()
    fn = ShopR1Reward(config)
    golds = [GOLDS[0].to_json(), "{not json", json.dumps({"type": "fly"})]
    got = fn(prompts=["p"] * 3, completions=[COMPLETIONS[0]] * 3, gold_action=golds)
    assert got[1:] == [0.0, 0.0] and fn.errors == 2
    assert got[0] == pytest.approx(score(COMPLETIONS[0], GOLDS[0], config).total)


def test_rollouts_are_logged_per_completion_with_the_step_the_state_and_the_breakdown(tmp_path):
    from types import SimpleNamespace

    config = RewardConfig()
    log_path = tmp_path / "grpo" / "rollouts.jsonl"
    fn = ShopR1Reward(config, rollout_log=log_path)
    # Two groups of two: state (s1, 0) has a right and a wrong click, state (s2, 3) two
    # unparseable answers (equal action rewards: a tied group).
    texts = [COMPLETIONS[0], COMPLETIONS[5], COMPLETIONS[3], COMPLETIONS[3]]
    golds = [GOLDS[0].to_json()] * 2 + ['{"type": "terminate"}'] * 2
    logged: dict[str, float] = {}
    got = fn(prompts=["p"] * 4, completions=texts, gold_action=golds, log_metric=logged.__setitem__,
             session_id=["s1", "s1", "s2", "s2"], step=[0, 0, 3, 3], page_type=["search", "search", "", ""],
             trainer_state=SimpleNamespace(global_step=6))
    assert logged["reward/action_tied_groups"] == 0.5
    rows = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [r["step"] for r in rows] == [7] * 4, "the optimizer step the rollout trains"
    assert [(r["session_id"], r["state_step"]) for r in rows] == [("s1", 0), ("s1", 0), ("s2", 3), ("s2", 3)]
    assert [r["completion"] for r in rows] == texts and [r["gold"] for r in rows] == golds
    assert [r.get("page_type") for r in rows] == ["search", "search", None, None], "unknown page types are left out"
    assert [r["exact"] for r in rows] == [True, False, False, False]
    assert [r["predicted"] for r in rows] == ["click", "click", "invalid", "invalid"]
    assert [r["total"] for r in rows] == pytest.approx(got)
    assert rows[0]["value"] == pytest.approx(config.dars_factor)
    # A second call appends: the log is the whole run's.
    fn(prompts=["p"], completions=[COMPLETIONS[2]], gold_action=['{"type": "terminate"}'],
       session_id=["s3"], step=[1], trainer_state=SimpleNamespace(global_step=7))
    assert len(log_path.read_text().splitlines()) == 5


def test_the_grpo_dataset_names_each_state_and_its_page_type():
    from shop_env.synthetic import generate_sessions
    from training.grpo_train import build_grpo_dataset

    sessions = generate_sessions(3, seed=1)
    states = build_states(sessions, context="latest-step")
    data = build_grpo_dataset(states + _states())
    assert data["session_id"] == [s.session_id for s in states + _states()]
    assert data["page_type"] == [s.meta["page_type"] for s in states] + [""] * len(_states())
    assert {"home", "search"} <= set(data["page_type"])


def test_token_offsets_tile_the_decoded_text(tiny):
    _, tokenizer = tiny
    ids = tokenizer(COMPLETIONS[0], add_special_tokens=False)["input_ids"]
    text, offsets = token_char_offsets(tokenizer, ids)
    assert text == COMPLETIONS[0]
    assert offsets[0][0] == 0 and offsets[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(offsets, offsets[1:], strict=False))


def _naive_certainty(model, tokenizer, prompt, completion_ids, keep):
    """log V - H(p) averaged over the kept completion positions (one plain forward)."""
    ids = prompt_token_ids(tokenizer, prompt) + list(completion_ids)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].double()
    logits = logits[len(ids) - len(completion_ids) - 1: len(ids) - 1]
    logp = torch.log_softmax(logits, -1)
    per_token = math.log(logits.shape[-1]) + (logp.exp() * logp).sum(-1)
    chosen = [per_token[i].item() for i, k in enumerate(keep) if k]
    return sum(chosen) / len(chosen) if chosen else 0.0, per_token.mean().item()


def test_self_certainty_is_from_the_policy_over_rationale_tokens_only(tiny):
    model, tokenizer = tiny
    prompt = [{"role": "user", "content": "What next?"}]
    config = RewardConfig()
    fn = ShopR1Reward(config, tokenizer, model=model, chunk_size=3)
    completion_ids = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in COMPLETIONS[:3]]
    got = fn(prompts=[prompt] * 3, completions=COMPLETIONS[:3], completion_ids=completion_ids,
             gold_action=[g.to_json() for g in GOLDS[:3]])
    for text, ids, gold, total in zip(COMPLETIONS[:3], completion_ids, GOLDS[:3], got, strict=True):
        decoded, offsets = token_char_offsets(tokenizer, ids)
        start = decoded.index('"rationale": "') + len('"rationale": "')
        end = decoded.index('"', start)
        keep = [a < end and b > start for a, b in offsets]
        assert keep == rationale_mask(tokenizer, ids)
        assert 0 < sum(keep) < len(ids)
        naive, whole = _naive_certainty(model, tokenizer, prompt, ids, keep)
        assert naive != pytest.approx(whole, abs=1e-6)  # restricting the tokens matters
        assert total == pytest.approx(score(text, gold, config, self_certainty=naive).total, abs=1e-5)
    breakdowns = fn.last_breakdowns
    assert all(b.self_certainty != 0 for b in breakdowns)


def test_switching_self_certainty_off_skips_the_policy(tiny):
    model, tokenizer = tiny
    config = RewardConfig.from_dict({"use_self_certainty": False})
    fn = ShopR1Reward(config, tokenizer, model=model)
    assert not fn.uses_self_certainty
    ids = [tokenizer(COMPLETIONS[0], add_special_tokens=False)["input_ids"]]
    got = fn(prompts=["p"], completions=COMPLETIONS[:1], completion_ids=ids, gold_action=[GOLDS[0].to_json()])
    assert got == [pytest.approx(score(COMPLETIONS[0], GOLDS[0], config).total)]


def _per_token_certainty(model, tokenizer, prompt, completion_ids, temperature):
    """log V - H(softmax(z / T)) at every completion position, from one plain forward."""
    ids = prompt_token_ids(tokenizer, prompt) + list(completion_ids)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].double() / temperature
    logp = torch.log_softmax(logits[len(ids) - len(completion_ids) - 1: len(ids) - 1], -1)
    return (math.log(logits.shape[-1]) + (logp.exp() * logp).sum(-1)).tolist()


def test_self_certainty_recorded_while_sampling_equals_a_forward_pass(tiny):
    """The recorder sees the raw logits of each sampled token (not the temperature-warped
    ones), so its values equal a separate forward pass at the same temperature."""
    model, tokenizer = tiny
    # One prompt twice (two different samples): no left padding, whose positions generate
    # treats its own way, so the plain forward below is the very distribution sampled from.
    prompts = [[{"role": "user", "content": "Find a tent, please."}]] * 2
    temperature = 0.7
    recorder = GenerationCertainty("kl_p_u", temperature)
    recorder.install(model)
    try:
        encoded = [prompt_token_ids(tokenizer, p) for p in prompts]
        width = max(map(len, encoded))
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        input_ids = torch.tensor([[pad] * (width - len(e)) + e for e in encoded])
        attention = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded])
        torch.manual_seed(0)
        out = model.generate(input_ids=input_ids, attention_mask=attention, do_sample=True, temperature=temperature,
                             max_new_tokens=6, pad_token_id=pad)
    finally:
        recorder.uninstall()
    assert "generate" not in vars(model)
    eos = tokenizer.eos_token_id
    # As GRPOTrainer keeps them: up to and including the first EOS.
    completions = [c[:c.index(eos) + 1] if eos in c else c for c in out[:, width:].tolist()]
    # A completion that is not the recorded rollout is refused (the forward pass is used).
    assert recorder.take([[c[0] + 1] + c[1:] if i == 0 else c for i, c in enumerate(completions)]) is None
    recorder.install(model)
    try:
        torch.manual_seed(0)
        model.generate(input_ids=input_ids, attention_mask=attention, do_sample=True, temperature=temperature,
                       max_new_tokens=6, pad_token_id=pad)
    finally:
        recorder.uninstall()
    recorded = recorder.take(completions)
    assert recorded is not None and recorder.take(completions) is None  # one use per rollout
    for prompt, ids, values in zip(prompts, completions, recorded, strict=True):
        want = _per_token_certainty(model, tokenizer, prompt, ids, temperature)
        assert values == pytest.approx(want, abs=1e-4)
        assert values != pytest.approx(_per_token_certainty(model, tokenizer, prompt, ids, 1.0), abs=1e-4)


def test_the_reward_uses_the_rollout_record_and_falls_back_to_a_forward_pass(tiny):
    model, tokenizer = tiny
    prompt = [{"role": "user", "content": "What next?"}]
    ids = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in COMPLETIONS[:2]]
    recorder = GenerationCertainty("kl_p_u", 1.0)
    fn = ShopR1Reward(RewardConfig(), tokenizer, model=model, recorder=recorder)
    golds = [g.to_json() for g in GOLDS[:2]]
    forward = fn(prompts=[prompt] * 2, completions=COMPLETIONS[:2], completion_ids=ids, gold_action=golds)
    assert fn.certainty_sources == {"generation": 0, "forward": 2}
    # A record of these very tokens: one step per token, each row's logits as the policy gives them.
    full = [prompt_token_ids(tokenizer, prompt) + c for c in ids]
    with torch.no_grad():
        for step in range(max(map(len, ids))):
            rows = [f[:len(f) - len(c) + min(step, len(c))] for f, c in zip(full, ids, strict=True)]
            scores = torch.stack([model(input_ids=torch.tensor([r])).logits[0, -1] for r in rows])
            last = torch.tensor([[r[-1]] for r in rows])
            recorder.observe(last, scores)
    recorded = fn(prompts=[prompt] * 2, completions=COMPLETIONS[:2], completion_ids=ids, gold_action=golds)
    assert fn.certainty_sources == {"generation": 2, "forward": 2}
    assert recorded == pytest.approx(forward, abs=1e-4)


def _tiny_config(steps: int, save_steps: int = 1):
    return load_config("tiny-cpu", [f"grpo.steps={steps}", "grpo.num_generations=2", "grpo.batch_size=2",
                                    "grpo.max_completion_tokens=12", f"grpo.save_steps={save_steps}",
                                    "grpo.learning_rate=1e-4", "data.max_prompt_tokens=256"])


def _states():
    return build_states(three_step_sessions(), context="latest-step")


def test_two_step_grpo_smoke_run_on_cpu(tiny, tmp_path, monkeypatch):
    import agents.prefill
    from training.models import load_model

    model, tokenizer = load_model("tiny", sessions=three_step_sessions(), out_dir=tmp_path / "m")
    prefilled: list[int] = []  # rows prefilled per rollout: one prompt's two copies share one
    real_prefill = agents.prefill.prefill
    monkeypatch.setattr(agents.prefill, "prefill",
                        lambda model, ids, mask=None: prefilled.append(ids.size(0)) or real_prefill(model, ids, mask))
    final = run_grpo(_tiny_config(2, save_steps=2), model, tokenizer, _states(), tmp_path / "grpo", progress=False)
    assert (final / "config.json").is_file()
    records = read_metrics(tmp_path / "grpo" / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2]
    for key in ("reward/total", "reward/format", "reward/type", "reward/attribute", "reward/value",
                "reward/self_certainty", "kl", "loss"):
        assert all(key in r for r in records), key
    assert any(k.startswith("exact_match/") for k in records[0])
    assert all(0.0 <= r["reward/action_tied_groups"] <= 1.0 for r in records)
    rollouts = read_metrics(tmp_path / "grpo" / "rollouts.jsonl")
    assert [r["step"] for r in rollouts] == [1, 1, 2, 2], "one record per completion, two completions a step"
    sources = json.loads((tmp_path / "grpo" / "reward_errors.json").read_text())["self_certainty_sources"]
    assert sources == {"generation": 4, "forward": 0}, "self-certainty came from the rollouts, not a second pass"
    assert prefilled == [1, 1], "each step's prompt was prefilled once for its two completions"
    assert "generate" not in vars(model)


def test_a_std_floor_keeps_wide_groups_normalised_and_shrinks_self_certainty_ties():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    rewards = st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=4, max_size=4)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(rewards, min_size=1, max_size=5), st.floats(1e-3, 10.0))
    def check(groups, floor):
        r = torch.tensor(groups, dtype=torch.float64)
        centred = (r - r.mean(dim=1, keepdim=True)).reshape(-1)
        out = floored_group_advantages(centred, 4, floor).reshape(-1, 4)
        std = r.std(dim=1, keepdim=True)
        trl_group = (r - r.mean(dim=1, keepdim=True)) / (std + 1e-4)  # TRL's scale_rewards: group
        wide = (std >= floor).squeeze(1)
        # TRL divides by std + 1e-4, the floor by std itself (>= floor here): they differ by a
        # relative 1e-4/std at most, which for a small floor exceeds a fixed 1e-3.
        assert torch.allclose(out[wide], trl_group[wide], rtol=1e-3 + 1e-4 / floor, atol=1e-3)
        assert torch.all(out.abs() <= centred.reshape(-1, 4).abs() / floor + 1e-9)
        assert torch.allclose(out.sum(dim=1), torch.zeros(len(groups), dtype=torch.float64), atol=1e-6)

    check()
    # Two right-type answers against two wrong ones stay unit-size; a tie broken only by
    # self-certainty (0.01 apart) no longer is.
    out = floored_group_advantages(torch.tensor([0.3, 0.3, -0.3, -0.3]), 4, 0.1)
    assert torch.allclose(out, torch.tensor([0.866, 0.866, -0.866, -0.866]), atol=1e-3)
    assert floored_group_advantages(torch.tensor([0.005, -0.005, 0.005, -0.005]), 4, 0.1).abs().max() <= 0.05
    with pytest.raises(ValueError, match="whole groups"):
        floored_group_advantages(torch.zeros(6), 4, 0.1)
    with pytest.raises(ValueError, match="floor"):
        floored_group_advantages(torch.zeros(4), 4, 0.0)


def test_grpo_with_a_std_floor_runs_and_logs_like_the_default(tiny, tmp_path):
    from training.models import load_model

    model, tokenizer = load_model("tiny", sessions=three_step_sessions(), out_dir=tmp_path / "m")
    config = _tiny_config(2, save_steps=2)
    config.grpo.advantage_std_floor = 0.1
    final = run_grpo(config, model, tokenizer, _states(), tmp_path / "grpo", progress=False)
    assert (final / "config.json").is_file()
    records = read_metrics(tmp_path / "grpo" / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2] and all("reward/total" in r for r in records)


def test_interrupted_grpo_resumes_from_last_checkpoint(tiny, tmp_path):
    from transformers import TrainerCallback

    from training.models import load_model

    class Interrupt(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.global_step == 2:
                raise KeyboardInterrupt  # as if the user pressed Ctrl-C after step 2 was logged

    out = tmp_path / "grpo"
    model, tokenizer = load_model("tiny", sessions=three_step_sessions(), out_dir=tmp_path / "m")
    with pytest.raises(KeyboardInterrupt):
        run_grpo(_tiny_config(3), model, tokenizer, _states(), out, progress=False, callbacks=[Interrupt()])
    assert last_checkpoint(out / CHECKPOINTS).name == "checkpoint-1"
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [1, 2]
    before = read_metrics(out / "metrics.jsonl")[0]
    first_rollouts = [r for r in read_metrics(out / "rollouts.jsonl") if r["step"] == 1]

    model, tokenizer = load_model("tiny", sessions=three_step_sessions(), out_dir=tmp_path / "m")
    run_grpo(_tiny_config(3), model, tokenizer, _states(), out, resume=True, progress=False)
    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3]
    assert records[0] == before
    rollouts = read_metrics(out / "rollouts.jsonl")
    assert [r["step"] for r in rollouts] == [1, 1, 2, 2, 3, 3], "step 2's interrupted rollouts are not kept twice"
    assert rollouts[:2] == first_rollouts
    state = json.loads((last_checkpoint(out / CHECKPOINTS) / "trainer_state.json").read_text())
    assert state["global_step"] == 3


def test_any_completion_text_scores_like_rewards_score_and_never_raises():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    config = RewardConfig()
    fn = ShopR1Reward(config)
    gold = Action("type_and_submit", "search.query", "tent")

    @settings(max_examples=150, deadline=None)
    @given(st.one_of(st.text(max_size=200),
                     st.builds(lambda r, t, n, x: json.dumps({"rationale": r, "action": {"type": t, "name": n, "text": x}}),
                               st.text(max_size=30), st.sampled_from(["click", "type_and_submit", "terminate", "fly"]),
                               st.text(max_size=20), st.text(max_size=20))))
    def check(text):
        got = fn(prompts=["p"], completions=[[{"role": "assistant", "content": text}]], gold_action=[gold.to_json()])
        assert got == [pytest.approx(score(text, gold, config).total)]

    check()
    assert fn.errors == 0


def test_trl_fused_head_scores_only_completions_on_cpu_with_the_same_values_and_gradients(tiny, monkeypatch):
    import copy

    from trl.trainer import utils as trl_utils

    from training.lm_head import trl_scores_completions_only

    if not all(hasattr(trl_utils, name) for name in ("add_fused_lm_head", "_ChunkedLogProbFunction", "_use_triton")):
        pytest.skip("this TRL has no fused LM head (its log-probs come from logits_to_keep alone)")
    model = copy.deepcopy(tiny[0]).float()
    trl_utils.add_fused_lm_head(model, temperature=0.7, outputs=("log_probs", "entropy"))
    rows: list[int] = []
    kernel = trl_utils._ChunkedLogProbFunction

    class Counting:
        @staticmethod
        def apply(hidden, *args):
            rows.append(hidden.shape[0])
            return kernel.apply(hidden, *args)

    monkeypatch.setattr(trl_utils, "_ChunkedLogProbFunction", Counting)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (2, 12), generator=generator)
    attention = torch.ones_like(ids)
    attention[0, :3] = 0  # left padding, as in a GRPO batch
    labels = ids.masked_fill(attention == 0, -100)
    labels[:, :-5] = -100  # prompt positions: no label

    def scored():
        model.zero_grad()
        out = model(input_ids=ids, attention_mask=attention, labels=labels, fused_lm_head=True)
        (out.log_probs.sum() + 0.1 * out.entropy.sum()).backward()
        return out.log_probs.detach(), out.entropy.detach(), [p.grad.clone() for p in model.parameters()]

    original = trl_utils._use_triton
    full = scored()
    with trl_scores_completions_only() as switched:
        assert switched
        compact = scored()
    assert trl_utils._use_triton is original  # restored
    assert rows == [2 * 11, 2 * 5]  # every shifted position, then only the labelled ones
    torch.testing.assert_close(compact[0], full[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(compact[1], full[1], rtol=1e-5, atol=1e-5)
    assert (compact[0][:, :-5] == 0).all() and (compact[1][:, :-5] == 0).all()
    for a, b in zip(compact[2], full[2], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
