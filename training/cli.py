"""The pipeline's command line: SFT cold start, then GRPO, then evaluate (``training.pipeline``).

``python training/grpo.py`` (a thin wrapper), ``python -m training.cli`` and the installed
``shop-r1-train`` command all run :func:`main`. With no arguments it generates
the seeded synthetic sessions, builds the tiny model, runs SFT and GRPO on 2 CPU cores,
evaluates zero-shot, SFT and Shop-R1 on the held-out split beside the oracle ceiling, prints
the paper-style table and writes ``runs/<name>/`` (config.yaml, checkpoints, metrics.jsonl,
report.md, plots/). See ``--help``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

from training.config import (
    DEFAULT_PRESET,
    ConfigError,
    TrainConfig,
    config_keys_help,
    load_config,
    preset_names,
)

EPILOG = """\
examples:
  python training/grpo.py                                  # whole default pipeline (tiny model, CPU, <= 15 min)
  python training/grpo.py --set grpo.steps=2 --name quick  # override any key (dotted, YAML-typed)
  python training/grpo.py --config paper-qwen2.5-3b --dry-run
  python training/grpo.py --config ablation-no-dars --set model=./my-sft-model
  python training/grpo.py --resume                         # continue an interrupted run
  python training/grpo.py --config paper-qwen2.5-3b --backend verl --nnodes 2 --n-gpus 8 --ray-address auto

"""


def build_parser() -> argparse.ArgumentParser:
    """The pipeline's command-line parser (``--help`` lists every config key)."""
    parser = argparse.ArgumentParser(
        prog="python training/grpo.py",
        description=(
            "Shop-R1 training pipeline: load or generate sessions, split train/test by session, "
            "build the model, SFT cold start, GRPO with the hybrid Shop-R1 reward (format + "
            "self-certainty + hierarchical action reward with DARS), then evaluate zero-shot, SFT and "
            "Shop-R1 on the held-out split and write runs/<name>/ (config.yaml, checkpoints, "
            "metrics.jsonl, report.md, plots/)."
        ),
        epilog=EPILOG + "\n" + config_keys_help() + f"\npresets: {', '.join(preset_names())}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", default=DEFAULT_PRESET, metavar="NAME|PATH",
                        help=f"preset name in training/configs/ or a YAML file (default: {DEFAULT_PRESET})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. grpo.steps=2 (repeatable; value parsed as YAML)")
    parser.add_argument("--name", help="run name (default: the config's name); output goes to OUT/NAME/")
    parser.add_argument("--out", default="runs", help="directory holding run directories (default: runs)")
    parser.add_argument("--resume", action="store_true",
                        help="reuse finished stages of OUT/NAME and continue GRPO from its last checkpoint")
    parser.add_argument("--backend", choices=("local", "verl"),
                        help="local: TRL on this machine (CPU or one GPU); verl: launch verl on Ray "
                             "(default: the config's backend)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the resolved config (and, for verl, the launch plan) and exit")
    parser.add_argument("--world-size", type=int, default=None, metavar="N",
                        help="local --dry-run: resolve batches and memory for N devices (default: WORLD_SIZE, "
                             "which accelerate/torchrun set, else 1)")
    parser.add_argument("--nnodes", type=int, default=1, help="verl: number of nodes (default 1)")
    parser.add_argument("--n-gpus", type=int, default=1, help="verl: GPUs per node (default 1)")
    parser.add_argument("--ray-address", default=None, help="verl: address of a running Ray cluster")
    parser.add_argument("--verl-set", dest="verl_overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="verl: a Hydra override of the GRPO stage (verl's ppo_trainer config), replacing "
                             "the plan's value of that key (repeatable; a key verl's config lacks needs a "
                             "leading +)")
    parser.add_argument("--verl-sft-set", dest="verl_sft_overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="verl: the same for the SFT stage (verl's sft_trainer config)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: 1 for the tiny model on CPU, else torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _run_verl(config: Any, args: argparse.Namespace) -> int:
    if importlib.util.find_spec("training.verl_backend.launch") is None:
        return _fail("--backend verl needs training/verl_backend/launch.py, which this checkout does not have")
    if not args.dry_run and importlib.util.find_spec("verl") is None:
        return _fail("--backend verl needs verl, which is not installed in this Python. verl pins its own "
                     "transformers/vLLM: install it in a separate environment with pip install -e '.[verl]'")
    from training.verl_backend import launch

    return int(launch.run(config, dry_run=args.dry_run, nnodes=args.nnodes, n_gpus_per_node=args.n_gpus,
                          ray_address=args.ray_address, out_root=args.out,
                          grpo_extra=args.verl_overrides, sft_extra=args.verl_sft_overrides) or 0)


def describe_resources(config: TrainConfig, plans: dict) -> str:
    """The ``--dry-run`` lines on batches and per-device memory (YAML comments)."""
    from training.batching import architecture_of, estimate_memory, generation_steps

    n = plans["sft"].world_size
    lines = [f"# batches on {n} device{'s' if n != 1 else ''} (global = per device x accumulation x devices):"]
    for stage, plan, section in (("sft", plans["sft"], config.sft), ("grpo", plans["grpo"], config.grpo)):
        checkpointing = "on" if section.gradient_checkpointing else "off"
        lines.append(f"#   {stage}: {plan.describe()}; gradient checkpointing {checkpointing}")
    arch = architecture_of(config.model)
    if arch is None:
        lines.append(f"# memory: no estimate for model {config.model!r} (not a known preset model, no local config.json)")
        return "\n".join(lines) + "\n"
    sft, grpo = plans["sft"], plans["grpo"]
    grpo_seq = (config.data.max_prompt_tokens or config.sft.max_seq_tokens) + config.grpo.max_completion_tokens
    estimates = {
        "sft": estimate_memory(arch, seq_tokens=config.sft.max_seq_tokens, micro_batch=sft.per_device,
                               gradient_checkpointing=config.sft.gradient_checkpointing,
                               supervised_tokens=min(config.sft.max_seq_tokens, 1024)),
        "grpo": estimate_memory(arch, seq_tokens=grpo_seq, micro_batch=grpo.per_device,
                                gradient_checkpointing=config.grpo.gradient_checkpointing,
                                supervised_tokens=config.grpo.max_completion_tokens,
                                reference_model=config.grpo.kl_beta > 0, generation_tokens=grpo_seq,
                                generation_batch=grpo.per_device * generation_steps(grpo, config.grpo.num_generations)),
    }
    lines.append("# memory per device, estimated (training/batching.py; data parallel, bf16 autocast, AdamW):")
    lines += [f"#   {stage}: {estimate.describe()}" for stage, estimate in estimates.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the pipeline CLI; returns the exit status (2 with ``error: ...`` on a user error)."""
    args = build_parser().parse_args(argv)
    overrides = list(args.overrides)
    if args.backend is not None:
        overrides.append(f"backend={args.backend}")
    try:
        config = load_config(args.config, overrides, name=args.name)
    except ConfigError as err:
        return _fail(str(err))
    if args.nnodes < 1 or args.n_gpus < 1:
        return _fail("--nnodes and --n-gpus must be >= 1")
    extra = args.verl_overrides + args.verl_sft_overrides
    bad = [item for item in extra if "=" not in item or not item.partition("=")[0].strip("+~")]
    if bad:
        return _fail(f"--verl-set/--verl-sft-set need KEY=VALUE, got {bad[0]!r}")
    if extra and config.backend != "verl":
        return _fail("--verl-set/--verl-sft-set apply to the verl backend only (add --backend verl)")
    if args.dry_run:
        print(f"# resolved config ({args.config}); run dir: {Path(args.out) / config.name}")
        print(config.to_yaml(), end="")
    if config.backend == "verl":
        return _run_verl(config, args)
    if args.world_size is not None and args.world_size < 1:
        return _fail("--world-size must be >= 1")
    try:
        plans = config.batch_plans(args.world_size)
    except ConfigError as err:
        return _fail(str(err))
    if args.dry_run:
        print(describe_resources(config, plans), end="")
        return 0
    try:
        config.reward_config()
    except ConfigError as err:
        return _fail(str(err))
    import torch

    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    elif config.model == "tiny" and not torch.cuda.is_available():
        # The tiny model's matmuls are too small to gain from a second thread, and on a
        # busy 2-core machine two spinning threads run ~10x slower than one (measured).
        torch.set_num_threads(1)
    from training.pipeline import run_pipeline

    result = run_pipeline(config, args.out, resume=args.resume, progress=not args.no_progress)
    print(result.table)
    print(f"\nrun written to {result.run_dir} (report.md, metrics, plots) in {result.wall_s / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
