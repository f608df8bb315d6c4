"""Reward throughput on realistic responses, and our ROUGE-L against rouge_score.

``measure()`` is what ``benchmarks/throughput.py`` calls; ``python -m benchmarks.reward_throughput``
prints the same dict as JSON. Timings only: correctness lives in the tests.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from rewards.config import RewardConfig
from rewards.score import score
from rewards.similarity import _tokenize_cached, rouge_l
from shop_env.actions import Action, Response

_PRODUCTS = ["alpine 2 person tent", "trail runner shoes", "insulated water bottle", "down sleeping bag",
             "carbon trekking poles", "waterproof rain jacket", "camping stove", "merino wool socks",
             "led headlamp", "folding camp chair", "dome tent 4 person", "ultralight backpack 40l"]
_SECTIONS = ["search_results", "product_page", "recommendations", "cart", "header"]
_VERBS = ["view_product", "add_to_cart", "buy_now", "select_size", "read_reviews"]
_QUERIES = ["cheap tent", "2 person tent under 200", "running shoes men size 10", "water bottle 1l",
            "sleeping bag -10c", "rain jacket women", "camping gear", "headlamp rechargeable"]
_RATIONALE_WORDS = ("I want to compare the price and reviews before I decide because this one looks "
                    "lighter and cheaper than the others I saw so I will check it").split()


def realistic_pairs(n: int, seed: int = 0) -> list[tuple[str, Action]]:
    """``n`` (raw model output, gold action) pairs: mostly valid, some near misses, ~5% invalid."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        kind = rng.choices(["click", "type_and_submit", "terminate"], weights=[65, 25, 10])[0]
        product = rng.choice(_PRODUCTS).replace(" ", "_")
        if kind == "click":
            gold = Action("click", f"{rng.choice(_SECTIONS)}.{product}.{rng.choice(_VERBS)}")
        elif kind == "type_and_submit":
            gold = Action("type_and_submit", "header.search_box", rng.choice(_QUERIES))
        else:
            gold = Action("terminate")
        roll = rng.random()
        if roll < 0.5:
            pred = gold
        elif roll < 0.75:  # near miss: same element family, another verb or query
            pred = Action(gold.type, gold.name.rsplit(".", 1)[0] + "." + rng.choice(_VERBS)
                          if gold.type == "click" else gold.name, rng.choice(_QUERIES))
        else:
            pred = Action(rng.choice(["click", "type_and_submit", "terminate"]),
                          f"{rng.choice(_SECTIONS)}.{rng.choice(_PRODUCTS).replace(' ', '_')}",
                          rng.choice(_QUERIES))
        rationale = " ".join(rng.choices(_RATIONALE_WORDS, k=rng.randint(12, 40))).capitalize() + "."
        text = Response(rationale, pred).to_json()
        if rng.random() < 0.05:
            text = text[: rng.randint(0, len(text) - 1)]  # truncated generation
        elif rng.random() < 0.2:
            text = f"```json\n{text}\n```"
        pairs.append((text, gold))
    return pairs


def _rate(fn, items) -> float:
    start = time.perf_counter()
    for item in items:
        fn(*item)
    elapsed = time.perf_counter() - start
    return len(items) / elapsed if elapsed > 0 else float("inf")


def measure(n: int = 2000, *, seed: int = 0, long_tokens: int = 2000, megabyte: bool = True,
            certainty: bool = False) -> dict[str, Any]:
    """Time the reward on realistic responses and ROUGE-L against ``rouge_score``.

    Args:
        n: number of (response, gold) pairs scored, and of string pairs for ROUGE-L.
        seed: seed of the generated responses.
        long_tokens: tokens per side of the long ROUGE-L pair that both implementations
            run (rouge_score is O(n*m) in Python: 2,000 tokens take seconds).
        megabyte: also time our ROUGE-L alone on two ~1 MB near-duplicate texts and on a
            1 MB text against a short one.
        certainty: also time :func:`rewards.self_certainty` on [4, 256, 32000] bf16
            logits (imports torch).

    Returns:
        A flat dict of figures (calls/s, seconds, speedups, and the sizes used).
    """
    from rouge_score import rouge_scorer

    pairs = realistic_pairs(n, seed)
    config = RewardConfig()
    out: dict[str, Any] = {"n": n}
    _tokenize_cached.cache_clear()
    out["score_calls_per_s"] = _rate(lambda text, gold: score(text, gold, config, self_certainty=2.5), pairs)

    rng = random.Random(seed + 1)
    texts = [t for t, _ in pairs]
    names = [g.name or g.type for _, g in pairs]
    string_pairs = [(names[i], names[rng.randrange(n)]) for i in range(n // 2)]
    string_pairs += [(texts[i][:200], texts[rng.randrange(n)][:200]) for i in range(n - n // 2)]
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    _tokenize_cached.cache_clear()
    out["rouge_l_calls_per_s"] = _rate(rouge_l, string_pairs)
    out["rouge_score_calls_per_s"] = _rate(lambda a, b: scorer.score(a, b)["rougeL"].fmeasure, string_pairs)
    out["rouge_l_speedup"] = out["rouge_l_calls_per_s"] / out["rouge_score_calls_per_s"]

    words = _RATIONALE_WORDS + [p.split()[0] for p in _PRODUCTS]
    long_a = " ".join(rng.choices(words, k=long_tokens))
    long_b = " ".join(rng.choices(words, k=long_tokens))
    start = time.perf_counter()
    ours = rouge_l(long_a, long_b)
    out["long_rouge_l_s"] = time.perf_counter() - start
    start = time.perf_counter()
    theirs = scorer.score(long_a, long_b)["rougeL"].fmeasure
    out["long_rouge_score_s"] = time.perf_counter() - start
    out["long_tokens"] = long_tokens
    out["long_equal"] = ours == theirs
    out["long_speedup"] = out["long_rouge_score_s"] / max(out["long_rouge_l_s"], 1e-9)

    if megabyte:
        vocab = [f"w{i}" for i in range(50_000)]
        big = rng.choices(vocab, k=150_000)
        edited = list(big)
        for i in rng.sample(range(len(big)), 1000):
            edited[i] = "zzz"
        big_a, big_b = " ".join(big), " ".join(edited)
        out["megabyte_chars"] = len(big_a)
        start = time.perf_counter()
        rouge_l(big_a, big_b)
        out["megabyte_pair_rouge_l_s"] = time.perf_counter() - start
        start = time.perf_counter()
        rouge_l(big_a, "alpine tent view product")
        out["megabyte_vs_short_rouge_l_s"] = time.perf_counter() - start
    if certainty:
        out.update(_measure_certainty())
    return out


def _measure_certainty() -> dict[str, float]:
    import torch

    from rewards.certainty import self_certainty

    logits = torch.randn(4, 256, 32_000).to(torch.bfloat16)
    mask = torch.ones(4, 256, dtype=torch.bool)
    self_certainty(logits[:, :8], mask[:, :8])  # warm-up
    start = time.perf_counter()
    self_certainty(logits, mask)
    elapsed = time.perf_counter() - start
    return {"self_certainty_tokens_per_s": mask.numel() / elapsed, "self_certainty_vocab": 32_000}


if __name__ == "__main__":
    print(json.dumps(measure(certainty=True), indent=2))
