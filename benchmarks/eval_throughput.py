"""Evaluation throughput, measured side by side: greedy answers per second with and without
the shared-prefix prefill of :class:`agents.TransformersAgent`.

A pipeline evaluation (``training.pipeline.eval_stage``) spends most of its time prefilling
prompts near the token budget; every prompt starts with the same system turn. This runs the
same evaluation states through the same model twice per round, once prefilling each prompt
whole (left-padded, ``share_prefix=False``) and once prefilling the shared prefix once per
call (``share_prefix=True``), alternating which goes first, and reports seconds per state,
the speed-up (a ratio of the same run; the machines are shared and noisy), and how many
greedy answers differ between the two (expected: none).

The states, prompt settings, precision and batch size come from a training preset
(``--config``, default ``smollm2-cpu``), as the pipeline's own evaluation uses them.

    python -m benchmarks.eval_throughput                          # smollm2-cpu, 32 states
    python -m benchmarks.eval_throughput --config tiny-cpu --states 16 --out results.json
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.cli import measure_and_report


def run(config_name: str, *, states: int, rounds: int, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Time both prefill modes on the first ``states`` evaluation states of a preset.

    Args:
        config_name: a training preset or YAML file (``training.config.load_config``).
        states: how many evaluation states (in the preset's order) each mode answers.
        rounds: timed rounds; each round runs both modes, the first one alternating.
        overrides: ``key=value`` settings applied to the preset.

    Returns:
        The results dict (also what ``--out`` writes).

    Raises:
        ValueError: a bad preset, override or count.
    """
    from agents import TransformersAgent
    from training.config import load_config
    from training.pipeline import base_model, prepare_data
    from training.precision import resolve_precision, torch_dtype

    if states < 1 or rounds < 1:
        raise ValueError("need --states >= 1 and --rounds >= 1")
    config = load_config(config_name, list(overrides))
    data = prepare_data(config)
    observations = [state.observation for state in data.eval_states[:states]]
    with tempfile.TemporaryDirectory(prefix="shop-r1-eval-tput-") as tmp:  # where `tiny` is built
        model, tokenizer = base_model(config, data, Path(tmp))
    precision = resolve_precision(config.precision)
    if precision != "fp32":
        model = copy.deepcopy(model).to(torch_dtype(precision))
    agents = {
        shared: TransformersAgent(model, tokenizer, temperature=0.0, max_new_tokens=config.eval.max_new_tokens,
                                  batch_size=config.eval.batch_size, context=config.data.context,
                                  max_prompt_tokens=config.data.max_prompt_tokens,
                                  page_format=config.data.page_format, share_prefix=shared)
        for shared in (False, True)
    }
    seconds: dict[bool, list[float]] = {False: [], True: []}
    answers: dict[bool, list[str]] = {}
    for round_index in range(rounds):
        for shared in ((False, True) if round_index % 2 == 0 else (True, False)):
            print(f"[eval_throughput] round {round_index + 1}/{rounds}: share_prefix={shared} ...",
                  file=sys.stderr, flush=True)
            start = time.perf_counter()
            answers[shared] = agents[shared].act_batch(observations)
            seconds[shared].append(time.perf_counter() - start)
    prompt_ids = [tokenizer(agents[True].prompt(o), add_special_tokens=False)["input_ids"] for o in observations]
    whole, shared = min(seconds[False]), min(seconds[True])
    return {
        "config": config_name, "model": config.model, "precision": precision, "states": len(observations),
        "batch_size": config.eval.batch_size, "max_new_tokens": config.eval.max_new_tokens, "rounds": rounds,
        "mean_prompt_tokens": round(sum(map(len, prompt_ids)) / len(prompt_ids), 1),
        "shared_prefix_tokens": len(os.path.commonprefix(prompt_ids)),
        "seconds_whole_prefill": [round(s, 2) for s in seconds[False]],
        "seconds_shared_prefix": [round(s, 2) for s in seconds[True]],
        "seconds_per_state_whole_prefill": round(whole / len(observations), 3),
        "seconds_per_state_shared_prefix": round(shared / len(observations), 3),
        "speedup": round(whole / shared, 2),
        "answers_differing": sum(a != b for a, b in zip(answers[False], answers[True], strict=True)),
    }


def table(results: dict[str, Any]) -> str:
    """The results as a markdown table."""
    return "\n".join([
        "| config | model | precision | states | mean prompt tokens | shared prefix tokens | s/state whole prefill | "
        "s/state shared prefix | speed-up | answers differing |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| {results['config']} | {results['model']} | {results['precision']} | {results['states']} | "
        f"{results['mean_prompt_tokens']} | {results['shared_prefix_tokens']} | "
        f"{results['seconds_per_state_whole_prefill']} | "
        f"{results['seconds_per_state_shared_prefix']} | {results['speedup']}x | {results['answers_differing']} |",
    ])


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--config", default="smollm2-cpu", help="training preset or YAML file (default smollm2-cpu)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a preset setting (repeatable), e.g. --set eval.batch_size=8")
    parser.add_argument("--states", type=int, default=32, help="evaluation states each mode answers (default 32)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="timed rounds, each running both modes; the best of each is compared (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; prints a markdown table. Returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return measure_and_report(lambda: run(args.config, states=args.states, rounds=args.rounds, overrides=args.set),
                              table, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
