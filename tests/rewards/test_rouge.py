"""rouge_l equals rouge_score's RougeScorer(["rougeL"]) F-measure exactly, and stays fast."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer

import rewards.similarity as similarity
from rewards import rouge_l
from rewards.similarity import lcs_length, tokenize

SCORER = rouge_scorer.RougeScorer(["rougeL"])


def reference(a: str, b: str) -> float:
    return SCORER.score(a, b)["rougeL"].fmeasure


# Words that stress the tokenizer: case, digits, punctuation, non-ASCII letters that
# lowercase to ASCII (KELVIN SIGN, U+0130), accents, CJK, emoji, whitespace kinds.
VOCAB = ["tent", "Tent", "TENT", "two", "2", "person", "2-person", "view_product", "a.b.c", "K", "\u212a",
         "\u0130stanbul", "café", "naïve", "テント", "😀", "", "---", "x1y2", "€9.99", "\t", "\n", "ÄÖÜ",
         "straße", "ǅ", "\u00a0", "search_results.alpine_2_person_tent"]
SEPARATORS = [" ", "  ", ",", "_", ".", "", "\n", "/"]


def random_text(rng: random.Random, max_words: int) -> str:
    parts = []
    for _ in range(rng.randint(0, max_words)):
        if rng.random() < 0.1:
            parts.append("".join(chr(rng.randint(32, 0x2FFF)) for _ in range(rng.randint(1, 4))))
        else:
            parts.append(rng.choice(VOCAB))
        parts.append(rng.choice(SEPARATORS))
    return "".join(parts)


def test_seeded_corpus_matches_rouge_score():
    rng = random.Random(1234)
    pairs = [(random_text(rng, 30), random_text(rng, 30)) for _ in range(1200)]
    # Near-duplicates, the common case for rewards.
    for _ in range(300):
        a = random_text(rng, 25)
        words = a.split(" ")
        rng.shuffle(words[: len(words) // 3])
        pairs.append((a, " ".join(words)))
    pairs += [("", ""), ("", "tent"), ("...", "tent"), ("Tent", "tent"), ("a a a", "a"), ("\u212a", "k")]
    mismatches = [(a, b) for a, b in pairs if rouge_l(a, b) != reference(a, b)]
    assert not mismatches, mismatches[:3]
    assert len(pairs) >= 1500


text_strategy = st.text(st.characters(codec=None, categories=None), max_size=80)
words_strategy = st.lists(st.sampled_from(VOCAB), max_size=40).map(" ".join)


@settings(max_examples=600, deadline=None)
@given(a=st.one_of(text_strategy, words_strategy), b=st.one_of(text_strategy, words_strategy))
def test_hypothesis_pairs_match_rouge_score(a, b):
    assert rouge_l(a, b) == reference(a, b)
    assert rouge_l(a, b) == rouge_l(b, a)


@settings(max_examples=200, deadline=None)
@given(a=st.lists(st.sampled_from("abcd"), max_size=300), b=st.lists(st.sampled_from("abcd"), max_size=300))
def test_multi_block_lcs_matches_reference(a, b):
    """Force 64-bit column blocks so the carry chain between blocks is exercised."""
    old = similarity.MASK_BUDGET_BYTES
    similarity.MASK_BUDGET_BYTES = 1
    try:
        assert rouge_l(" ".join(a), " ".join(b)) == reference(" ".join(a), " ".join(b))
    finally:
        similarity.MASK_BUDGET_BYTES = old


def test_tokenizer_matches_rouge_score():
    rng = random.Random(7)
    for _ in range(300):
        text = random_text(rng, 20)
        assert list(tokenize(text)) == SCORER._tokenizer.tokenize(text)


def test_lcs_length_small_cases():
    assert lcs_length(("a", "b", "c"), ("a", "c")) == 2
    assert lcs_length(("a",), ("b",)) == 0
    assert lcs_length((), ("b",)) == 0
    assert lcs_length(tuple("abcbdab"), tuple("bdcaba")) == 4


def test_non_str_is_a_type_error():
    with pytest.raises(TypeError, match="rouge_l expects str"):
        rouge_l(None, "a")  # type: ignore[arg-type]


def test_long_strings_finish_and_agree_with_arithmetic():
    """Megabyte inputs: no O(n*m) Python table (timings live in benchmarks/reward_throughput.py)."""
    rng = random.Random(0)
    words = [f"w{rng.randint(0, 50_000)}" for _ in range(150_000)]  # ~1 MB
    text = " ".join(words)
    edited = list(words)
    for i in rng.sample(range(len(words)), 100):
        edited[i] = "zzz"
    # LCS = n - 100 exactly: each replaced word is a deletion on both sides.
    expected_lcs = len(words) - 100
    assert rouge_l(text, " ".join(edited)) == pytest.approx(expected_lcs / len(words))
    short_vs_long = rouge_l("w1 w2 w3", text)
    assert 0 < short_vs_long < 1e-4


def _dp_lcs(x, y) -> int:
    row = [0] * (len(y) + 1)
    for a in x:
        prev_diag = 0
        for j, b in enumerate(y, 1):
            prev_diag, row[j] = row[j], prev_diag + 1 if a == b else max(row[j], row[j - 1])
    return row[-1]


@settings(max_examples=300, deadline=None)
@given(x=st.lists(st.sampled_from("abcdefg"), max_size=60), y=st.lists(st.sampled_from("abcdefg"), max_size=60))
def test_both_lcs_algorithms_match_dynamic_programming(x, y):
    shared = set(x) & set(y)
    expected = _dp_lcs(x, y)
    assert similarity._sparse_lcs(x, y, shared) == expected
    longer, shorter = (x, y) if len(x) >= len(y) else (y, x)
    if shared:
        assert similarity._bit_parallel_lcs(longer, shorter, shared) == expected
    assert lcs_length(x, y) == expected


def test_large_vocabulary_pairs_take_the_sparse_path_and_match_rouge_score():
    rng = random.Random(11)
    vocab = [f"item{i}" for i in range(5000)]
    for _ in range(5):
        a = " ".join(rng.choices(vocab, k=rng.randint(300, 600)))
        b = " ".join(rng.choices(vocab, k=rng.randint(300, 600)))
        assert rouge_l(a, b) == reference(a, b)
