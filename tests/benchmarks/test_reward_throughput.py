"""benchmarks.reward_throughput.measure: runs and reports the figures the throughput benchmark quotes."""

from __future__ import annotations

from benchmarks.reward_throughput import measure, realistic_pairs
from rewards.format import check_format


def test_measure_smoke():
    figures = measure(n=40, long_tokens=60, megabyte=False)
    for key in ("score_calls_per_s", "rouge_l_calls_per_s", "rouge_score_calls_per_s", "rouge_l_speedup",
                "long_rouge_l_s", "long_rouge_score_s", "long_speedup"):
        assert figures[key] > 0, key
    assert figures["long_equal"] is True and figures["n"] == 40


def test_realistic_pairs_are_deterministic_and_mostly_valid():
    pairs = realistic_pairs(300, seed=3)
    assert pairs == realistic_pairs(300, seed=3)
    valid = sum(check_format(text)[0] is not None for text, _ in pairs)
    assert 0.85 * len(pairs) < valid < len(pairs)
