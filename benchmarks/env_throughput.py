"""Env step throughput of ``ShopReplay-v0`` on pre-pruned synthetic pages (docs/architecture.md §11).

Budget: median ``step()`` <= 200 us, including response parsing and the reward. The
responses cycle through the gold answer (exact match, full ROUGE-L path), a wrong
element name (type match, partial credit) and invalid text (format gate), so every
reward branch is timed.

Usage: ``python -m benchmarks.env_throughput [--steps N] [--sessions N] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym

import shop_env  # noqa: F401  (registers ShopReplay-v0)
from shop_env.env import ShopReplayEnv
from shop_env.sessions import Session

BUDGET_MEDIAN_US = 200.0


def _responses(gold: dict[str, str]) -> list[str]:
    """Gold, near-miss and invalid responses for one step."""
    wrong = dict(gold, name=gold.get("name", "") + "_other") if "name" in gold else {"type": "click", "name": "x"}
    return [
        json.dumps({"rationale": "I found what I was looking for.", "action": gold}),
        json.dumps({"rationale": "That one looks better to me.", "action": wrong}),
        "I think I would click the tent.",
    ]


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _time_steps(env: ShopReplayEnv, n_steps: int, seed: int) -> tuple[list[float], list[float]]:
    """Wall and CPU microseconds per ``step()`` over ``n_steps`` steps, resetting at episode ends.

    CPU (thread) time is reported too because on a shared machine the wall-clock tail is
    dominated by the scheduler preempting the process, not by the env.
    """
    env.reset(seed=seed)
    times: list[float] = []
    cpu: list[float] = []
    turn = 0
    while len(times) < n_steps:
        session = env.sessions[env._session_index]  # noqa: SLF001 (benchmark peeks at the gold)
        gold = session.steps[env._step].action.to_dict()  # noqa: SLF001
        text = _responses(gold)[turn % 3]
        turn += 1
        start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
        _, _, terminated, _, _ = env.step(text)
        cpu.append((time.thread_time_ns() - start_cpu) / 1000)
        times.append((time.perf_counter_ns() - start) / 1000)
        if terminated:
            env.reset()
    return times, cpu


def measure(
    n_steps: int = 3000,
    *,
    sessions: list[Session] | None = None,
    n_sessions: int = 20,
    seed: int = 0,
    num_envs: int = 4,
    vec_steps: int = 300,
) -> dict[str, Any]:
    """Time ``ShopReplay-v0`` steps on pre-pruned pages.

    Args:
        n_steps: timed single-env steps (after one untimed pass that warms caches).
        sessions: the sessions to replay; default ``n_sessions`` synthetic ones.
        n_sessions: how many synthetic sessions to generate when ``sessions`` is None.
        seed: generation and episode seed.
        num_envs: sub-envs of the sync vector env.
        vec_steps: timed vector steps.

    Returns:
        ``step_median_us``, ``step_p95_us``, ``step_p99_us`` (wall clock),
        ``step_cpu_median_us``, ``step_cpu_p99_us`` (thread CPU time, immune to other
        processes), ``step_mean_us``, ``cold_median_us`` (first
        visit of each page: candidate names not yet cached), ``n_steps``,
        ``vec_steps_per_s`` (vector steps), ``vec_env_steps_per_s`` (sub-env steps),
        ``num_envs``, ``mean_page_chars``, ``budget_median_us``, ``within_budget``.
    """
    if sessions is None:
        from shop_env.synthetic import generate_sessions

        sessions = generate_sessions(n_sessions, seed=seed)
    env = ShopReplayEnv(sessions=sessions)
    total_steps = sum(len(s.steps) for s in sessions)
    cold, _ = _time_steps(env, total_steps, seed)  # also fills the per-page caches
    warm, warm_cpu = _time_steps(env, n_steps, seed + 1)

    vec = gym.make_vec("ShopReplay-v0", num_envs=num_envs, vectorization_mode="sync", sessions=sessions)
    vec.reset(seed=seed)
    actions = ["not json"] * num_envs
    for _ in range(20):
        vec.step(actions)
    start = time.perf_counter()
    for _ in range(vec_steps):
        vec.step(actions)
    elapsed = time.perf_counter() - start
    vec.close()

    median = statistics.median(warm)
    return {
        "n_steps": n_steps,
        "step_median_us": round(median, 1),
        "step_p95_us": round(_percentile(warm, 0.95), 1),
        "step_p99_us": round(_percentile(warm, 0.99), 1),
        "step_cpu_median_us": round(statistics.median(warm_cpu), 1),
        "step_cpu_p99_us": round(_percentile(warm_cpu, 0.99), 1),
        "step_mean_us": round(statistics.fmean(warm), 1),
        "cold_median_us": round(statistics.median(cold), 1),
        "num_envs": num_envs,
        "vec_steps_per_s": round(vec_steps / elapsed, 1),
        "vec_env_steps_per_s": round(vec_steps * num_envs / elapsed, 1),
        "mean_page_chars": round(sum(len(st.html) for s in sessions for st in s.steps) / total_steps),
        "budget_median_us": BUDGET_MEDIAN_US,
        "within_budget": median <= BUDGET_MEDIAN_US,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: print the measurements (a table, or JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="timed single-env steps")
    parser.add_argument("--sessions", type=int, default=20, help="synthetic sessions to replay")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    result = measure(args.steps, n_sessions=args.sessions, seed=args.seed)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:>22}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
