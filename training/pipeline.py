"""The whole Shop-R1 pipeline as stages: data, model, SFT, GRPO, evaluation.

:func:`run_pipeline` is what ``python training/grpo.py`` runs. The stages are public so
that ``benchmarks/paper.py`` can share checkpoints between rows (one SFT for every
SFT-based row). Each stage writes a ``DONE`` marker when complete; with ``resume`` a
finished stage is loaded instead of rerun, and an interrupted GRPO stage continues from
its last checkpoint.
"""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.config import TrainConfig

DONE = "DONE"
#: Seconds each stage has taken over every attempt of a run (kept across ``--resume``).
STAGE_SECONDS = "stage_seconds.json"
#: Row labels of the results table (paper Tab. 2 names).
ZERO_SHOT, SFT_ROW, SHOP_R1, ORACLE = "Zero-shot", "SFT", "Shop-R1", "Oracle ceiling"
#: The ceiling a model can reach: the Bayes-optimal answer given the observation (synthetic data).
OBSERVABLE = "Observable ceiling (Bayes)"
HEURISTIC, RANDOM = "Heuristic", "Random"
#: The eval sub-directory of each row the pipeline writes (a row's ``predictions.jsonl`` lives there).
EVAL_DIRS = {ZERO_SHOT: "zero-shot", SFT_ROW: "sft", RANDOM: "random", HEURISTIC: "heuristic", ORACLE: "oracle",
             OBSERVABLE: "bayes"}
RL_EVAL_DIR = "shop-r1"


@dataclass
class PipelineData:
    """The sessions of a run, split, and the states trained and evaluated on."""

    train_sessions: list[Any]
    test_sessions: list[Any]
    train_states: list[Any]
    eval_states: list[Any]
    #: which rule split train/test (:func:`shop_env.sessions.split_rule`), for the report
    split_rule: str = ""


@dataclass
class PipelineResult:
    """What a pipeline run produced."""

    run_dir: Path
    rows: dict[str, dict[str, Any]]
    table: str
    wall_s: float
    stage_s: dict[str, float] = field(default_factory=dict)


def say(message: str) -> None:
    """Print a pipeline progress line (stderr, flushed, so it interleaves with the bars)."""
    print(f"[shop-r1] {message}", file=sys.stderr, flush=True)


def write_resolved_config(config: TrainConfig, run_dir: Path) -> Path:
    """Write ``config.yaml`` (the resolved config) into the run directory."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "config.yaml"
    path.write_text(config.to_yaml(), encoding="utf-8")
    return path


def prepare_data(config: TrainConfig) -> PipelineData:
    """Load the sessions, split train/test, build the states.

    The split is :func:`shop_env.sessions.session_split`: a data set's own split (OPeRA's
    train/test files) when it has one, else a hash of the session id, the same rule as the
    verl export, the env and ``benchmarks/evaluate.py --split``.

    The evaluation states are a seeded sample of ``eval.max_states`` states of the
    evaluation split (all of them when None), in their original order.
    """
    from shop_env.datasets import load_sessions
    from shop_env.observations import build_states
    from shop_env.sessions import select_split, split_rule

    sessions = load_sessions(config.data.sessions)
    train = select_split(sessions, "train", config.data.test_fraction)
    test = select_split(sessions, "test", config.data.test_fraction)
    if not train or not test:
        raise ValueError(
            f"data.sessions {config.data.sessions!r} gives {len(train)} train and {len(test)} test sessions; need both"
        )
    eval_sessions = {"train": train, "test": test, "all": sessions}[config.eval.split]
    context, history = config.data.context, config.data.max_history
    eval_states = build_states(eval_sessions, context=context, max_history=history)
    limit = config.eval.max_states
    if limit is not None and limit < len(eval_states):
        keep = sorted(random.Random(config.seed).sample(range(len(eval_states)), limit))
        eval_states = [eval_states[i] for i in keep]
    train_states = build_states(train, context=context, max_history=history)
    return PipelineData(train, test, train_states, eval_states, split_rule(sessions, config.data.test_fraction))


def base_model(config: TrainConfig, data: PipelineData, cache_dir: Path) -> tuple[Any, Any]:
    """The model before any training (``tiny`` is built on the training sessions)."""
    from training.models import load_model

    return load_model(config.model, sessions=data.train_sessions, out_dir=cache_dir)


def load_saved(path: str | os.PathLike[str]) -> tuple[Any, Any]:
    """Load a model and tokenizer saved by a stage."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(str(path)), AutoTokenizer.from_pretrained(str(path))


def _read_stage_seconds(run_dir: Path) -> dict[str, float]:
    """The per-stage seconds of earlier attempts (``{}`` when none, or the file is unreadable)."""
    try:
        saved = json.loads((run_dir / STAGE_SECONDS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(saved, dict):
        return {}
    return {str(k): float(v) for k, v in saved.items() if isinstance(v, (int, float))}


def _done(path: Path) -> bool:
    return (path / DONE).is_file()


def _mark_done(path: Path, info: dict[str, Any] | None = None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / DONE).write_text(json.dumps(info or {}), encoding="utf-8")


def sft_stage(config: TrainConfig, model: Any, tokenizer: Any, data: PipelineData, stage_dir: Path,
              *, resume: bool = False, progress: bool = True) -> tuple[Any, Any, Path]:
    """Cold-start SFT; returns the trained model, tokenizer and where they are saved.

    With ``resume`` a finished stage is loaded and an interrupted one continues from its
    last checkpoint.
    """
    from training.sft import SFTSettings, run_sft

    final = stage_dir / "final"
    if resume and _done(stage_dir) and final.is_dir():
        say(f"SFT: reusing {final}")
        model, tokenizer = load_saved(final)
        return model, tokenizer, final
    if not resume and stage_dir.exists():
        shutil.rmtree(stage_dir)
    settings = SFTSettings.from_config(config)
    sessions = data.train_sessions
    limit = config.sft.max_sessions
    if limit is not None and limit < len(sessions):
        keep = sorted(random.Random(config.seed).sample(range(len(sessions)), limit))
        sessions = [sessions[i] for i in keep]
    saved = Path(run_sft(settings, model, tokenizer, sessions, stage_dir, resume=resume, progress=progress))
    if saved.resolve() != final.resolve():
        if final.exists():
            shutil.rmtree(final)
        shutil.copytree(saved, final)
    model, tokenizer = load_saved(final)  # a model whose name_or_path is its directory
    _mark_done(stage_dir)
    return model, tokenizer, final


def grpo_stage(config: TrainConfig, model: Any, tokenizer: Any, data: PipelineData, stage_dir: Path,
               *, resume: bool = False, progress: bool = True) -> tuple[Any, Any, Path]:
    """GRPO with the Shop-R1 reward; returns the trained model, tokenizer and their directory."""
    from training.checkpoints import FINAL_DIR
    from training.grpo_train import run_grpo

    final = stage_dir / FINAL_DIR
    if resume and _done(stage_dir) and final.is_dir():
        say(f"GRPO: reusing {final}")
        model, tokenizer = load_saved(final)
        return model, tokenizer, final
    if not resume and stage_dir.exists():
        shutil.rmtree(stage_dir)
    run_grpo(config, model, tokenizer, data.train_states, stage_dir, resume=resume, progress=progress)
    _mark_done(stage_dir)
    model, tokenizer = load_saved(final)
    return model, tokenizer, final


def eval_stage(config: TrainConfig, model: Any, tokenizer: Any, data: PipelineData, out_dir: Path,
               *, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Evaluate a model on the evaluation states (greedy); returns the metrics dict."""
    from agents import TransformersAgent
    from agents.evaluation import evaluate
    from training.precision import resolve_precision, torch_dtype

    if not resume and out_dir.exists():
        shutil.rmtree(out_dir)
    precision = resolve_precision(config.precision)
    if precision != "fp32":  # greedy decoding on a bf16 copy: the trained fp32 weights stay as they are
        model = copy.deepcopy(model).to(torch_dtype(precision))
    agent = TransformersAgent(
        model, tokenizer, temperature=0.0, max_new_tokens=config.eval.max_new_tokens,
        batch_size=config.eval.batch_size, context=config.data.context,
        max_prompt_tokens=config.data.max_prompt_tokens, page_format=config.data.page_format, seed=config.seed,
    )
    return evaluate(agent, data.eval_states, out_dir, config=config.reward_config(),
                    batch_size=config.eval.batch_size, resume=resume, progress=progress)


def baseline_stage(config: TrainConfig, data: PipelineData, spec: str, out_dir: Path, *,
                   progress: bool = True) -> dict[str, Any]:
    """A baseline agent (``heuristic``, ``oracle``, ...) scored on the evaluation states like a model.

    ``oracle`` is the simulated shopper's own most likely action, ``bayes`` the most likely
    action given the session so far (both synthetic data only).
    """
    from agents import make_agent
    from agents.evaluation import evaluate

    if out_dir.exists():
        shutil.rmtree(out_dir)
    kwargs = {"oracle": {"states": data.eval_states}, "majority": {"states": data.train_states},
              "random": {"seed": config.seed}, "bayes": {"states": data.eval_states, "progress": progress}}.get(spec, {})
    agent = make_agent(spec, **kwargs)
    return evaluate(agent, data.eval_states, out_dir, config=config.reward_config(),
                    batch_size=config.eval.batch_size, resume=False, progress=progress)


def oracle_stage(config: TrainConfig, data: PipelineData, out_dir: Path, *, progress: bool = True) -> dict[str, Any]:
    """The simulated shopper's own most likely action, scored like a model (synthetic data only)."""
    return baseline_stage(config, data, "oracle", out_dir, progress=progress)


def rl_label(config: TrainConfig) -> str:
    """The table label of the GRPO model: what was trained.

    "Shop-R1" for the full recipe on the paper's whole-session prompts, "Shop-R1 (latest-step
    context)" for the full recipe on latest-step prompts, else "SFT + RL (<preset>)" or
    "RL (<preset>)".
    """
    from rewards import RewardConfig

    reward = config.reward_config()
    full = (config.sft.enabled and reward.action_reward == "hierarchical" and reward.use_format
            and reward.use_self_certainty and reward.dars_factor == RewardConfig().dars_factor)
    if full:
        return SHOP_R1 if config.data.context == "whole-session" else f"{SHOP_R1} ({config.data.context} context)"
    prefix = "SFT + RL" if config.sft.enabled else "RL"
    return f"{prefix} ({config.name})"


def versus_sft(eval_root: Path, rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each row's paired difference to the SFT row on the same states (``{}`` without an SFT row).

    Reads the rows' ``predictions.jsonl`` under ``eval_root``
    (:func:`agents.evaluation.compare_predictions`).
    """
    from agents.evaluation import PREDICTIONS, compare_predictions, load_predictions

    if SFT_ROW not in rows:
        return {}
    out: dict[str, dict[str, Any]] = {}
    # A report nicety must never cost a finished run its report: unreadable or mismatched
    # predictions (PredictionsError / compare_predictions' ValueError) are said and skipped.
    try:
        baseline = load_predictions(eval_root / EVAL_DIRS[SFT_ROW] / PREDICTIONS)
    except ValueError as err:
        say(f"no paired comparison with SFT: {err}")
        return out
    for label in rows:
        if label == SFT_ROW:
            continue
        try:
            records = load_predictions(eval_root / EVAL_DIRS.get(label, RL_EVAL_DIR) / PREDICTIONS)
            out[label] = compare_predictions(records, baseline)
        except ValueError as err:
            say(f"no paired comparison of {label} with SFT: {err}")
    return out


def run_pipeline(config: TrainConfig, out_root: str | os.PathLike[str] = "runs", *, resume: bool = False,
                 progress: bool = True) -> PipelineResult:
    """Run data -> model -> zero-shot eval -> SFT -> eval -> GRPO -> eval -> report.

    Args:
        config: the resolved config.
        out_root: runs are written to ``out_root/<config.name>/``.
        resume: reuse finished stages and continue an interrupted GRPO stage.
        progress: show progress bars.

    Returns:
        The run directory, the result rows (label -> metrics), the markdown table and timings.
    """
    from training.report import write_report

    started = time.perf_counter()
    run_dir = Path(out_root) / config.name
    if run_dir.exists() and not resume:
        for sub in ("sft", "grpo", "eval", "plots"):
            if (run_dir / sub).exists():
                shutil.rmtree(run_dir / sub)
        (run_dir / "metrics.jsonl").unlink(missing_ok=True)
        (run_dir / STAGE_SECONDS).unlink(missing_ok=True)
    write_resolved_config(config, run_dir)
    timings: dict[str, float] = {}
    # A resumed stage takes seconds to reuse what an earlier attempt made: the report shows the
    # seconds of every attempt too, interrupted ones included, so a resumed run's cost is not lost.
    spent = _read_stage_seconds(run_dir) if resume else {}

    def timed(name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        say(f"{name} ...")
        try:
            out = fn(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - t0
            spent[name] = round(spent.get(name, 0.0) + elapsed, 1)
            (run_dir / STAGE_SECONDS).write_text(json.dumps(spent, indent=1), encoding="utf-8")
        timings[name] = round(elapsed, 1)
        say(f"{name} done in {timings[name]:.1f}s")
        return out

    data = timed("data", prepare_data, config)
    say(f"{len(data.train_sessions)} train / {len(data.test_sessions)} test sessions; "
        f"{len(data.train_states)} train states, {len(data.eval_states)} eval states")
    model, tokenizer = timed("model", base_model, config, data, run_dir / "model")
    rows: dict[str, dict[str, Any]] = {}
    ev = run_dir / "eval"
    if config.eval.zero_shot:
        rows[ZERO_SHOT] = timed("eval zero-shot", eval_stage, config, model, tokenizer, data, ev / EVAL_DIRS[ZERO_SHOT],
                                resume=resume, progress=progress)
    if config.sft.enabled:
        model, tokenizer, _ = timed("sft", sft_stage, config, model, tokenizer, data, run_dir / "sft",
                                    resume=resume, progress=progress)
        rows[SFT_ROW] = timed("eval sft", eval_stage, config, model, tokenizer, data, ev / EVAL_DIRS[SFT_ROW],
                              resume=resume, progress=progress)
    if config.grpo.enabled:
        model, tokenizer, _ = timed("grpo", grpo_stage, config, model, tokenizer, data, run_dir / "grpo",
                                    resume=resume, progress=progress)
        # The run's headline log: one record per GRPO step (the SFT log stays in sft/).
        from training.checkpoints import METRICS_FILE

        if (run_dir / "grpo" / METRICS_FILE).is_file():
            shutil.copyfile(run_dir / "grpo" / METRICS_FILE, run_dir / METRICS_FILE)
        rows[rl_label(config)] = timed("eval shop-r1", eval_stage, config, model, tokenizer, data, ev / RL_EVAL_DIR,
                              resume=resume, progress=progress)
    # The floor and the ceiling on the same states: a uniformly random valid action, the rule-based
    # heuristic, the shopper's own most likely action.
    rows[RANDOM] = timed("eval random", baseline_stage, config, data, "random", ev / EVAL_DIRS[RANDOM],
                         progress=progress)
    rows[HEURISTIC] = timed("eval heuristic", baseline_stage, config, data, "heuristic", ev / EVAL_DIRS[HEURISTIC],
                            progress=progress)
    try:
        rows[ORACLE] = timed("eval oracle", oracle_stage, config, data, ev / EVAL_DIRS[ORACLE], progress=progress)
        # The oracle reads the shopper's hidden intent; this ceiling sees what a model sees.
        rows[OBSERVABLE] = timed("eval bayes", baseline_stage, config, data, "bayes", ev / EVAL_DIRS[OBSERVABLE],
                                 progress=progress)
    except Exception as err:  # real logs have no shopper model: the ceilings are simply absent
        say(f"no oracle ceiling for this data: {type(err).__name__}: {err}")
    wall = time.perf_counter() - started
    table = write_report(run_dir, config, rows, timings=timings, wall_s=wall, split_rule=data.split_rule,
                         comparisons=versus_sft(ev, rows), all_attempts={k: spent[k] for k in timings})
    return PipelineResult(run_dir, rows, table, wall, timings)
