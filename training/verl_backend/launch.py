"""Launch a Shop-R1 run on verl: export data, optional SFT cold start, then GRPO.

``training/grpo.py --backend verl`` calls :func:`run`. One node: ``python -m torch.distributed.run ... -m
verl.trainer.sft_trainer`` (torchrun) for SFT, then ``python -m training.verl_backend.entry`` (verl's PPO
main with the Shop-R1 trainer), which starts its own local Ray. With ``ray_address`` both
stages are submitted to a running Ray cluster with ``ray job submit`` (SFT through
``verl.trainer.sft_trainer_ray``); every node then needs this package installed and the run
folder on a shared filesystem (docs/verl.md).

``dry_run=True`` prints the resolved reward config and the exact commands and returns 0; it
needs neither verl nor a GPU and writes nothing.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from training.precision import resolve_precision
from training.verl_backend.overrides import (
    DataFiles,
    default_attn_implementation,
    grpo_overrides,
    local_ray_cpus,
    merge_overrides,
    prompt_budget,
    sft_overrides,
)

#: Model specs that name a model this project builds locally rather than a path or hub id.
LOCAL_SPECS = ("tiny", "smollm2-135m")
SFT_PLACEHOLDER = "global_step_LAST"
#: Written into the SFT folder once the SFT stage has finished: a rerun reuses its export.
SFT_DONE = "shop_r1_sft_done.json"


class LaunchError(ValueError):
    """A run that cannot be launched as configured (the message says why and what to do)."""


@dataclass
class LaunchPlan:
    """Everything a verl run executes, in order.

    Attributes:
        run_dir: ``<out_root>/<name>/verl``.
        files: the exported parquet files (under ``run_dir/data``).
        base_model: the model SFT (or GRPO, without SFT) starts from.
        grpo_model: the model GRPO starts from (the SFT export when SFT is on).
        reward_config: every RewardConfig field of the run.
        sft_command: argv of the SFT stage, or None.
        grpo_command: argv of the GRPO stage.
    """

    run_dir: Path
    files: DataFiles
    base_model: str
    grpo_model: str
    reward_config: dict[str, Any]
    sft_command: list[str] | None
    grpo_command: list[str]
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        """The plan as text: reward config, files, then each command (shell-quoted, one arg per line)."""
        lines = [f"# verl launch plan (run folder: {self.run_dir})"]
        lines.append("# reward config (RewardConfig, passed as reward_kwargs and in each row's extra_info):")
        lines += [f"#   {k}: {v}" for k, v in self.reward_config.items()]
        lines.append(f"# data: {self.files.train}, {self.files.test} (+ sft_*.parquet)")
        lines += [f"# note: {note}" for note in self.notes]
        if self.sft_command:
            lines += ["", "# 1. SFT cold start", _shell(self.sft_command)]
        lines += ["", f"# {2 if self.sft_command else 1}. GRPO (model: {self.grpo_model})", _shell(self.grpo_command)]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (written to ``run_dir/launch.json``)."""
        out = asdict(self)
        out["run_dir"] = str(self.run_dir)
        out["files"] = {k: str(v) for k, v in asdict(self.files).items()}
        return out


def _shell(argv: list[str]) -> str:
    """Shell-quoted command: the program and its options on one line, then one override a line."""
    split = next((i for i, a in enumerate(argv) if "=" in a and not a.startswith("-")), len(argv))
    return " \\\n    ".join([shlex.join(argv[:split])] + [shlex.quote(a) for a in argv[split:]])


def build_plan(
    config: Any,
    *,
    nnodes: int = 1,
    n_gpus_per_node: int = 1,
    ray_address: str | None = None,
    out_root: str | Path = "runs",
    python: str | None = None,
    grpo_extra: Sequence[str] = (),
    sft_extra: Sequence[str] = (),
) -> LaunchPlan:
    """Resolve a :class:`training.config.TrainConfig` into a :class:`LaunchPlan` (no side effects).

    ``grpo_extra``/``sft_extra`` are verl overrides applied over each stage's plan
    (:func:`~training.verl_backend.overrides.merge_overrides`): any verl key, e.g. what a CPU
    test platform needs.

    Raises:
        LaunchError: GRPO disabled, several nodes without a Ray address, a bad cluster shape,
            or a reward setting the verl backend cannot honour (``kl_u_p`` self-certainty).
        ValueError: an invalid reward config (names the key).
    """
    from training.verl_backend.certainty import UnsupportedVariantError, check_temperature, check_variant

    if nnodes < 1 or n_gpus_per_node < 1:
        raise LaunchError(f"nnodes and n_gpus_per_node must be >= 1, got {nnodes} and {n_gpus_per_node}")
    if nnodes > 1 and not ray_address:
        raise LaunchError(
            f"{nnodes} nodes need a running Ray cluster: start one (ray start --head on one node, "
            "ray start --address=<head>:6379 on the others) and pass --ray-address http://<head>:8265"
        )
    if not config.grpo.enabled:
        raise LaunchError("the verl backend runs GRPO; this config has grpo.enabled=false")
    reward = config.reward
    if reward.use_self_certainty and reward.self_certainty_alpha > 0:
        try:
            check_variant(reward.self_certainty_variant)
            check_temperature(reward.self_certainty_temperature, config.grpo.temperature)
        except UnsupportedVariantError as err:
            raise LaunchError(str(err)) from None
    py = python or sys.executable
    run_dir = (Path(out_root) / config.name / "verl").expanduser().resolve()
    files = DataFiles.under(run_dir / "data")
    base_model = _model_path(config.model, run_dir)
    notes = []
    if config.model in LOCAL_SPECS:
        notes.append(f"model {config.model!r} is built locally and saved to {base_model} before training")
    attn = default_attn_implementation()
    if attn is not None:
        notes.append(f"flash-attn is not installed here: models load with attn_implementation={attn}")
    # A cluster's workers are not this machine: there only an explicit fp32 overrides verl's bf16.
    if ray_address:
        precision = "fp32" if config.precision == "fp32" else None
    else:
        precision = resolve_precision(config.precision)
    if precision == "fp32":
        notes.append("precision fp32: FSDP computes and vLLM rolls out in float32 (verl's default is bf16)")
    # A running cluster has its own resources; only a Ray that verl starts here needs the count.
    ray_cpus = None if ray_address else local_ray_cpus()
    if ray_cpus is not None:
        notes.append(f"verl starts a local Ray with {ray_cpus} logical CPUs (ray_kwargs.ray_init.num_cpus)")
    sft_command = None
    grpo_model = base_model
    if config.sft.enabled:
        sft_args = sft_overrides(
            config, model_path=base_model, files=files, out_dir=run_dir, nnodes=nnodes,
            n_gpus_per_node=n_gpus_per_node, attn_implementation=attn, precision=precision,
        )
        sft_args = merge_overrides(sft_args, sft_extra)
        if ray_address:
            sft_command = _ray_submit(ray_address, [py, "-m", "verl.trainer.sft_trainer_ray", *sft_args])
        else:
            # torchrun through this interpreter: the venv's own, whether or not it is activated.
            sft_command = [
                py, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", f"--nproc_per_node={n_gpus_per_node}",
                "-m", "verl.trainer.sft_trainer", *sft_args,
            ]
        grpo_model = str(run_dir / "sft" / SFT_PLACEHOLDER / "huggingface")
        notes.append(f"GRPO starts from the SFT checkpoint; {SFT_PLACEHOLDER} is resolved after SFT")
    grpo_args = grpo_overrides(
        config, model_path=grpo_model, files=files, out_dir=run_dir, nnodes=nnodes,
        n_gpus_per_node=n_gpus_per_node, reward_config=reward.to_dict(), ray_cpus=ray_cpus,
        attn_implementation=attn, precision=precision,
    )
    grpo_args = merge_overrides(grpo_args, grpo_extra)
    grpo_command = [py, "-m", "training.verl_backend.entry", *grpo_args]
    if ray_address:
        grpo_command = _ray_submit(ray_address, grpo_command)
    return LaunchPlan(
        run_dir=run_dir, files=files, base_model=base_model, grpo_model=grpo_model,
        reward_config=reward.to_dict(), sft_command=sft_command, grpo_command=grpo_command, notes=notes,
    )


def _ray_submit(address: str, entrypoint: list[str]) -> list[str]:
    head = ["ray", "job", "submit"]
    if address != "auto":  # "auto": ray's default (RAY_ADDRESS or the local dashboard)
        head += ["--address", address]
    return [*head, "--", *entrypoint]


def _model_path(spec: str, run_dir: Path) -> str:
    if spec in LOCAL_SPECS:
        return str(run_dir / "base-model")
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.exists() else spec


def _latest_step_model(root: Path, model: str, required: str) -> Path | None:
    """``root/global_step_<N>/<model>`` for the largest N where ``<model>/<required>`` exists."""
    candidates = []
    for step_dir in root.glob("global_step_*"):
        suffix = step_dir.name.rsplit("_", 1)[-1]
        if suffix.isdigit() and (step_dir / model / required).exists():
            candidates.append((int(suffix), step_dir / model))
    return max(candidates)[1] if candidates else None


def latest_sft_export(sft_dir: str | Path) -> Path:
    """The HF model folder of the last SFT checkpoint under ``sft_dir``.

    Raises:
        LaunchError: no checkpoint with a ``huggingface`` folder was found.
    """
    found = _latest_step_model(Path(sft_dir), "huggingface", "")
    if found is None:
        raise LaunchError(f"no SFT checkpoint with a huggingface/ export under {sft_dir}")
    return found


def latest_grpo_export(checkpoints_dir: str | Path) -> Path:
    """The HF model folder (``actor/huggingface``) of the last GRPO checkpoint under ``checkpoints_dir``.

    Raises:
        LaunchError: no checkpoint with an HF export was found.
    """
    found = _latest_step_model(Path(checkpoints_dir), "actor/huggingface", "config.json")
    if found is None:
        raise LaunchError(f"no GRPO checkpoint with an actor/huggingface/ model under {checkpoints_dir}")
    return found


def label_exports(run_dir: str | Path, config: Any) -> list[Path]:
    """Write the run's ``prompt_settings.json`` into every HF model folder verl saved under
    ``run_dir`` (SFT and GRPO checkpoints), so ``hf:<dir>`` agents prompt them as trained.

    Returns:
        The folders labelled.
    """
    from shop_env.prompt_settings import PromptSettings

    settings = PromptSettings(config.data.context, config.data.max_history, config.data.max_prompt_tokens,
                              page_format=config.data.page_format)
    root = Path(run_dir)
    folders = sorted({p.parent for pattern in ("sft/global_step_*/huggingface/config.json",
                                               "checkpoints/global_step_*/actor/huggingface/config.json")
                      for p in root.glob(pattern)})
    for folder in folders:
        settings.save(folder)
    return folders


def prepare(plan: LaunchPlan, config: Any) -> None:
    """Side effects before training: build a local base model, export the parquet files.

    Raises:
        ValueError, FileNotFoundError: from the export (bad data source or settings).
    """
    from training.verl_backend.export import export_dataset

    plan.run_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = None
    if config.model in LOCAL_SPECS:
        from training.models import load_model

        model, tokenizer = load_model(config.model, out_dir=plan.run_dir)
        model.save_pretrained(plan.base_model)
        tokenizer.save_pretrained(plan.base_model)
    else:
        try:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(plan.base_model)
        except (ImportError, OSError, ValueError) as err:  # budget falls back to the chars/4 estimate
            print(f"[verl] tokenizer of {plan.base_model} not loaded ({err}); prompt budget estimated", flush=True)
    result = export_dataset(
        config.data.sessions, plan.files.train.parent, reward_config=plan.reward_config,
        context=config.data.context, max_history=config.data.max_history,
        max_prompt_tokens=config.data.max_prompt_tokens, tokenizer=tokenizer,
        test_fraction=config.data.test_fraction, sft=config.sft.enabled,
        sft_max_tokens=config.sft.max_seq_tokens, page_format=config.data.page_format,
        max_prompt_length=prompt_budget(config) if tokenizer is not None else None,
    )
    print(result.summary(), flush=True)
    (plan.run_dir / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
    (plan.run_dir / "launch.json").write_text(json.dumps(plan.to_dict(), indent=2), encoding="utf-8")


def run(
    config: Any,
    *,
    dry_run: bool,
    nnodes: int = 1,
    n_gpus_per_node: int = 1,
    ray_address: str | None = None,
    out_root: str | Path = "runs",
    grpo_extra: Sequence[str] = (),
    sft_extra: Sequence[str] = (),
) -> int:
    """Run (or, with ``dry_run``, print) a Shop-R1 verl run; returns a process exit status.

    Args:
        config: the resolved :class:`training.config.TrainConfig`.
        dry_run: print the plan and return 0 without exporting or running anything.
        nnodes, n_gpus_per_node: the cluster shape.
        ray_address: a running Ray cluster's dashboard address (``http://<head>:8265``); None
            runs on this node.
        out_root: folder of run folders (the run writes ``<out_root>/<name>/verl``).
        grpo_extra, sft_extra: verl overrides over each stage's plan (see :func:`build_plan`).

    Returns:
        0 on success, 2 for a configuration that cannot be launched, else the failing
        stage's exit status.
    """
    try:
        plan = build_plan(
            config, nnodes=nnodes, n_gpus_per_node=n_gpus_per_node, ray_address=ray_address, out_root=out_root,
            grpo_extra=grpo_extra, sft_extra=sft_extra,
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(plan.render(), flush=True)
    if dry_run:
        return 0
    try:
        prepare(plan, config)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: data export failed: {err}", file=sys.stderr)
        return 2
    if plan.sft_command:
        done = plan.run_dir / "sft" / SFT_DONE
        finished = json.loads(done.read_text(encoding="utf-8")).get("export") if done.is_file() else None
        if finished and Path(finished).is_dir():
            # verl's SFT trainer, restarted on a finished run, trains one step more (and saves
            # global_step_N+1); a finished stage is reused, as the local pipeline does.
            print(f"[verl] SFT: reusing {finished} (delete {plan.run_dir / 'sft'} to train it again)", flush=True)
        else:
            code = run_stage("SFT", plan.sft_command)
            if code:
                return code
        try:
            sft_model = str(latest_sft_export(plan.run_dir / "sft"))
        except LaunchError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        done.write_text(json.dumps({"export": sft_model}), encoding="utf-8")
        label_exports(plan.run_dir, config)
        plan.grpo_command = [a.replace(plan.grpo_model, sft_model) for a in plan.grpo_command]
        plan.grpo_model = sft_model
        print(f"[verl] GRPO starts from {sft_model}", flush=True)
    code = run_stage("GRPO", plan.grpo_command)
    if code:
        return code
    label_exports(plan.run_dir, config)
    try:
        final = latest_grpo_export(plan.run_dir / "checkpoints")
    except LaunchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"[verl] trained model: {final}\n[verl] evaluate it with: python benchmarks/evaluate.py "
          f"--agent hf:{final} --data {shlex.quote(config.data.sessions)}", flush=True)
    return 0


def run_stage(name: str, argv: list[str]) -> int:
    """Run one stage's command; returns its exit status (127 when the program is missing)."""
    try:
        code = subprocess.run(argv, check=False).returncode
    except OSError as err:  # e.g. torchrun or ray not on PATH in this environment
        print(f"error: {name} stage could not start {argv[0]!r}: {err}", file=sys.stderr)
        return 127
    if code:
        print(f"error: {name} stage exited with {code}", file=sys.stderr)
    return code
