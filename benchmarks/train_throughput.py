"""Training throughput, measured side by side: SFT tokens/s and seconds per GRPO step.

For each model (``tiny``, ``smollm2-135m``) in one run:

* SFT, **baseline**: TRL's stock ``SFTTrainer`` in float32 (its loss over every position);
* SFT, **optimized**: :class:`training.sft.SupervisedOnlySFTTrainer` (LM head at the
  assistant positions only) under ``--precision`` (``auto``: bf16 on AMX/AVX512-BF16 CPUs);
* GRPO seconds per step with the optimized path, with and without self-certainty, so the
  share of a step that self-certainty costs is a ratio of the same run;
* GRPO seconds per step with TRL's stock CPU LM head (log-probs of every position, prompt
  included) against the completion-only head run_grpo uses
  (:func:`training.lm_head.trl_scores_completions_only`), both with self-certainty;
* GRPO seconds per step with TRL prefilling every copy of a prompt (``grpo.share_prompt_prefill``
  off) against each distinct prompt prefilled once (:mod:`agents.prefill`).

The first step of each trainer is a warm-up and is not timed. Tokens are the real
(unpadded) tokens of the batches. The machines are shared and noisy: read the ratios,
not the absolute numbers.

    python -m benchmarks.train_throughput                       # both models
    python -m benchmarks.train_throughput --models tiny --sft-steps 4 --out results.json
    python -m benchmarks.train_throughput --models smollm2-135m --sft-steps 0   # GRPO only
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.cli import measure_and_report

#: (results key, self-certainty on, completion-only LM head, repeated prompts prefilled once)
#: of each timed GRPO variant.
GRPO_VARIANTS = (
    ("grpo_without_self_certainty", False, True, True),
    ("grpo_with_self_certainty", True, True, True),
    ("grpo_stock_lm_head", True, False, True),
    ("grpo_whole_prefill", True, True, False),
)


def _step_timer() -> Any:
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Wall time of each optimizer step (begin to end)."""

        def __init__(self) -> None:
            self.times: list[float] = []
            self._t0 = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            self._t0 = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            self.times.append(time.perf_counter() - self._t0)

    return StepTimer()


def measure_sft(model_spec: str, sessions: Sequence[Any], *, steps: int, stock: bool, precision: str,
                batch_size: int, max_seq_tokens: int, max_prompt_tokens: int, workdir: Path) -> dict[str, Any]:
    """SFT tokens/s of one trainer over ``steps`` timed steps (after one warm-up step)."""
    from training.models import load_model
    from training.sft import SFTSettings, build_trainer

    model, tokenizer = load_model(model_spec, sessions=sessions, out_dir=workdir / "base")
    settings = SFTSettings(max_steps=steps + 1, batch_size=batch_size, max_seq_tokens=max_seq_tokens,
                           context="latest-step", max_history=4, max_prompt_tokens=max_prompt_tokens,
                           warmup_ratio=0.0, learning_rate=1e-5, save_steps=10_000,
                           precision="fp32" if stock else precision)
    trainer = build_trainer(settings, model, tokenizer, sessions, workdir / ("sft-stock" if stock else "sft-fast"),
                            stock_trl=stock)
    # Same examples in the same order for both trainers: the first (steps+1) batches.
    lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
    timer = _step_timer()
    trainer.add_callback(timer)
    trainer.train()
    order = list(trainer.get_train_dataloader().sampler)  # the (seeded) order the trainer used
    tokens = [sum(lengths[i] for i in order[k * batch_size:(k + 1) * batch_size]) for k in range(steps + 1)]
    timed_s = sum(timer.times[1:steps + 1])
    # The loss of every step: both trainers see the same batches, so equal losses show the
    # optimized path trains the same model, not just a faster one.
    losses = [round(float(r["loss"]), 4) for r in trainer.state.log_history if "loss" in r]
    return {"steps": steps, "tokens": sum(tokens[1:]), "seconds": round(timed_s, 3),
            "tokens_per_s": round(sum(tokens[1:]) / timed_s, 1) if timed_s else None, "losses": losses}


def measure_grpo(model_spec: str, sessions: Sequence[Any], *, steps: int, self_certainty: bool, precision: str,
                 max_prompt_tokens: int, workdir: Path, compact_lm_head: bool = True,
                 share_prompt_prefill: bool = True) -> dict[str, Any]:
    """Mean seconds per GRPO step (after one warm-up step), with or without self-certainty,
    with the completion-only LM head or TRL's stock one (``compact_lm_head=False``), with
    each distinct prompt prefilled once or every copy prefilled (``share_prompt_prefill``)."""
    from shop_env.observations import build_states
    from training.config import load_config
    from training.grpo_train import run_grpo
    from training.models import load_model

    model, tokenizer = load_model(model_spec, sessions=sessions, out_dir=workdir / "base")
    states = build_states(sessions, context="latest-step", max_history=4)
    config = load_config("tiny-cpu", [
        f"grpo.steps={steps + 1}", "grpo.batch_size=8", "grpo.num_generations=4", "grpo.max_completion_tokens=64",
        "grpo.save_steps=10000", "grpo.kl_beta=0.0", f"precision={precision}",
        f"data.max_prompt_tokens={max_prompt_tokens}", f"reward.use_self_certainty={str(self_certainty).lower()}",
        f"grpo.share_prompt_prefill={str(share_prompt_prefill).lower()}",
    ])
    timer = _step_timer()
    run_grpo(config, model, tokenizer, states,
             workdir / f"grpo-{int(self_certainty)}-{int(compact_lm_head)}-{int(share_prompt_prefill)}",
             progress=False, callbacks=[timer], compact_lm_head=compact_lm_head)
    timed = timer.times[1:steps + 1]
    return {"steps": len(timed), "seconds_per_step": round(sum(timed) / len(timed), 2) if timed else None}


def run(models: Sequence[str], *, sft_steps: int, grpo_steps: int, precision: str, sessions_spec: str,
        batch_size: int, max_seq_tokens: int, max_prompt_tokens: int,
        grpo_variants: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure every model; returns the results dict (also what ``--out`` writes).

    ``grpo_variants`` limits the GRPO variants timed (keys of :data:`GRPO_VARIANTS`; None: all);
    a ratio whose two variants were not both timed is None.
    """
    from shop_env.datasets import load_sessions
    from training.precision import resolve_precision

    sessions = load_sessions(sessions_spec)
    results: dict[str, Any] = {"precision": resolve_precision(precision), "sessions": sessions_spec, "models": {}}
    for spec in models:
        with tempfile.TemporaryDirectory(prefix="shop-r1-tput-") as tmp:
            work = Path(tmp)
            row: dict[str, Any] = {}
            for stock in (True, False) if sft_steps else ():
                key = "sft_fp32_stock" if stock else "sft_optimized"
                print(f"[train_throughput] {spec}: {key} ...", file=sys.stderr, flush=True)
                row[key] = measure_sft(spec, sessions, steps=sft_steps, stock=stock, precision=precision,
                                       batch_size=batch_size, max_seq_tokens=max_seq_tokens,
                                       max_prompt_tokens=max_prompt_tokens, workdir=work)
            for key, certainty, compact, shared in GRPO_VARIANTS if grpo_steps else ():
                if grpo_variants is not None and key not in grpo_variants:
                    continue
                print(f"[train_throughput] {spec}: {key} ...", file=sys.stderr, flush=True)
                row[key] = measure_grpo(spec, sessions, steps=grpo_steps, self_certainty=certainty,
                                        precision=precision, max_prompt_tokens=max_prompt_tokens, workdir=work,
                                        compact_lm_head=compact, share_prompt_prefill=shared)
        for key in ("sft_fp32_stock", "sft_optimized"):
            row.setdefault(key, {"steps": 0, "tokens": 0, "tokens_per_s": None, "losses": []})  # --sft-steps 0
        base, fast = row["sft_fp32_stock"]["tokens_per_s"], row["sft_optimized"]["tokens_per_s"]
        row["sft_speedup"] = round(fast / base, 2) if base and fast else None
        pairs = zip(row["sft_fp32_stock"]["losses"], row["sft_optimized"]["losses"], strict=False)
        row["sft_max_loss_gap"] = round(max((abs(a - b) for a, b in pairs), default=0.0), 4)
        for key, _, _, _ in GRPO_VARIANTS:
            row.setdefault(key, {"steps": 0, "seconds_per_step": None})  # --grpo-steps 0: not measured
        without = row["grpo_without_self_certainty"]["seconds_per_step"]
        with_sc = row["grpo_with_self_certainty"]["seconds_per_step"]
        stock_head = row["grpo_stock_lm_head"]["seconds_per_step"]
        whole_prefill = row["grpo_whole_prefill"]["seconds_per_step"]
        row["self_certainty_share_of_step"] = round((with_sc - without) / with_sc, 3) if with_sc and without else None
        row["grpo_compact_head_speedup"] = round(stock_head / with_sc, 2) if with_sc and stock_head else None
        row["grpo_shared_prefill_speedup"] = round(whole_prefill / with_sc, 2) if with_sc and whole_prefill else None
        results["models"][spec] = row
    return results


def table(results: dict[str, Any]) -> str:
    """The results as a markdown table."""
    lines = ["| model | SFT tok/s fp32 stock | SFT tok/s optimized | speed-up | max SFT loss gap | GRPO s/step w/o SC | "
             "GRPO s/step with SC | SC share of step | GRPO s/step, TRL stock CPU head | compact-head speed-up | "
             "GRPO s/step, every copy prefilled | shared-prefill speed-up |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for spec, row in results["models"].items():
        cells = [row["sft_fp32_stock"]["tokens_per_s"], row["sft_optimized"]["tokens_per_s"],
                 _times(row["sft_speedup"]), row.get("sft_max_loss_gap"),
                 row["grpo_without_self_certainty"]["seconds_per_step"],
                 row["grpo_with_self_certainty"]["seconds_per_step"],
                 None if row["self_certainty_share_of_step"] is None
                 else f"{100 * row['self_certainty_share_of_step']:.1f}%",
                 row["grpo_stock_lm_head"]["seconds_per_step"], _times(row["grpo_compact_head_speedup"]),
                 row.get("grpo_whole_prefill", {}).get("seconds_per_step"),  # absent from older results
                 _times(row.get("grpo_shared_prefill_speedup"))]
        lines.append(f"| {spec} | " + " | ".join("—" if c is None else str(c) for c in cells) + " |")
    return "\n".join(lines)


def _times(ratio: float | None) -> str | None:
    """A speed-up as ``1.23x`` (None when not measured)."""
    return None if ratio is None else f"{ratio}x"


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--models", default="tiny,smollm2-135m", help="comma-separated model specs")
    parser.add_argument("--sft-steps", type=int, default=3,
                        help="timed SFT steps per trainer (after 1 warm-up); 0 measures GRPO only")
    parser.add_argument("--grpo-steps", type=int, default=2, help="timed GRPO steps per variant (after 1 warm-up); 0 measures SFT only")
    parser.add_argument("--grpo-variants", default=None, metavar="KEYS",
                        help="comma-separated GRPO variants to time (default all: "
                             + ", ".join(key for key, *_ in GRPO_VARIANTS) + ")")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                        help="precision of the optimized path")
    parser.add_argument("--sessions", default="synthetic:24?seed=0", help="data source of the chats")
    parser.add_argument("--batch-size", type=int, default=4, help="SFT chats per step")
    parser.add_argument("--max-seq-tokens", type=int, default=768, help="SFT chat length budget")
    parser.add_argument("--max-prompt-tokens", type=int, default=640, help="prompt budget (SFT and GRPO)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; prints a markdown table. Returns the exit status."""
    args = build_parser().parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models or args.batch_size < 1 or min(args.sft_steps, args.grpo_steps) < 0 or not (
            args.sft_steps or args.grpo_steps):
        print("error: need at least one model, --batch-size >= 1, --sft-steps and --grpo-steps >= 0 and not both 0",
              file=sys.stderr)
        return 2
    variants = None if args.grpo_variants is None else [v.strip() for v in args.grpo_variants.split(",") if v.strip()]
    unknown = sorted(set(variants or ()) - {key for key, *_ in GRPO_VARIANTS})
    if unknown or variants == []:
        print(f"error: --grpo-variants: unknown or empty {unknown}; choose from "
              + ", ".join(key for key, *_ in GRPO_VARIANTS), file=sys.stderr)
        return 2
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    def measure() -> dict[str, Any]:
        return run(models, sft_steps=args.sft_steps, grpo_steps=args.grpo_steps, precision=args.precision,
                   sessions_spec=args.sessions, batch_size=args.batch_size, max_seq_tokens=args.max_seq_tokens,
                   max_prompt_tokens=args.max_prompt_tokens, grpo_variants=variants)

    return measure_and_report(measure, table, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
