"""ROUGE-L F1 equal to ``rouge_score``'s ``RougeScorer(["rougeL"])``, but fast.

``rouge_score`` fills an O(n*m) Python table, which hangs on long model outputs. This
module keeps its tokenizer (lowercase, then maximal runs of ``[a-z0-9]``) and its
F-measure arithmetic bit for bit, and computes the LCS length exactly with whichever of
two algorithms is cheaper for the pair: the bit-parallel algorithm of Hyyrö (2004) on
Python ints (one big-int step per token of the shorter sequence, in column blocks so
that memory stays bounded), or Hunt-Szymanski (one bisect per matching token pair) when
matches are rare. Both are far from rouge_score's O(n*m) Python table on long inputs.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections import Counter
from functools import lru_cache

# rouge_score: lower(); replace [^a-z0-9]+ by " "; split on \s+; keep ^[a-z0-9]+$ tokens.
# After the replacement only [a-z0-9] runs and spaces remain, so the tokens are exactly
# the maximal [a-z0-9] runs of the lowercased text. Lowercasing first matters: some
# non-ASCII letters lowercase to ASCII (KELVIN SIGN -> "k", U+0130 -> "i" + combining dot).
_TOKEN = re.compile(r"[a-z0-9]+")

# Memory budget of the match-mask table of one column block of the bit-parallel LCS.
# A block of W bits holds at most min(distinct shared tokens, W) masks of W/8 bytes each;
# the block is made as wide as this budget allows (wider blocks = fewer Python steps).
MASK_BUDGET_BYTES = 64 << 20
# Strings longer than this are tokenized without caching (the cache must not pin megabytes).
_CACHE_MAX_CHARS = 2048


def tokenize(text: str) -> tuple[str, ...]:
    """Return ``rouge_score``'s default tokens (no stemmer) of ``text``.

    Raises:
        TypeError: ``text`` is not a str.
    """
    if not isinstance(text, str):
        raise TypeError(f"rouge_l expects str, got {type(text).__name__}")
    text = plain_str(text)
    if len(text) <= _CACHE_MAX_CHARS:
        return _tokenize_cached(text)
    return tuple(_TOKEN.findall(text.lower()))


#: Characters lowercased and tokenized at a time by :func:`tokenize_bounded`.
_CHUNK_CHARS = 1 << 16


def tokenize_bounded(text: str, limit: int | None) -> tuple[str, ...] | None:
    """:func:`tokenize` of ``text``, or None as soon as it is seen to have over ``limit`` tokens.

    Reads ``text`` in chunks, so time and memory are O(limit) for a text of many short
    tokens (plus a C-speed scan of token-free stretches); ``limit=None`` means no bound.
    Equal to :func:`tokenize` whenever it returns a tuple.

    Raises:
        TypeError: ``text`` is not a str.
    """
    if not isinstance(text, str):
        raise TypeError(f"rouge_l expects str, got {type(text).__name__}")
    text = plain_str(text)
    if limit is None or len(text) <= _CACHE_MAX_CHARS:
        tokens = tokenize(text)
        return tokens if limit is None or len(tokens) <= limit else None
    tokens: list[str] = []
    joins = False  # the previous chunk ended inside a token
    for start in range(0, len(text), _CHUNK_CHARS):
        # str.lower works character by character here: only Greek final sigma looks at
        # context, and no sigma lowercases to a token character.
        chunk = text[start : start + _CHUNK_CHARS].lower()
        found = _TOKEN.findall(chunk)
        if found and joins and chunk[:1].isascii() and chunk[:1].isalnum():
            tokens[-1] += found[0]
            found = found[1:]
        tokens += found
        if len(tokens) > limit + 1:  # +1: the last token may still grow
            return None
        last = chunk[-1:]
        joins = bool(found or joins) and last.isascii() and last.isalnum()
    return tuple(tokens) if len(tokens) <= limit else None


def plain_str(text: str) -> str:
    """``text`` as an exact ``str``: a subclass's overridden methods (strip, lower) never run."""
    return text if type(text) is str else str.__str__(text)


@lru_cache(maxsize=16384)
def _tokenize_cached(text: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(text.lower()))


def rouge_l(a: str, b: str) -> float:
    """ROUGE-L F-measure of two strings, equal to ``rouge_score``'s rougeL fmeasure.

    Symmetric (``rouge_score`` treats one side as target and one as prediction, but its
    F-measure ``2*p*r/(p+r)`` is symmetric in IEEE arithmetic too).

    Args:
        a: one text (e.g. the gold).
        b: the other text (e.g. the prediction).

    Returns:
        F1 in [0, 1]; 0.0 when either side has no tokens.

    Raises:
        TypeError: either argument is not a str.
    """
    return rouge_l_tokens(tokenize(a), tokenize(b))


def rouge_l_tokens(target: tuple[str, ...] | list[str], prediction: tuple[str, ...] | list[str]) -> float:
    """ROUGE-L F-measure of two token sequences (``rouge_score._score_lcs`` arithmetic)."""
    if not target or not prediction:
        return 0.0
    lcs = lcs_length(target, prediction)
    precision = lcs / len(prediction)
    recall = lcs / len(target)
    # Same expression and order as rouge_score.scoring.fmeasure, for bit-equal results.
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def lcs_length(x: tuple[str, ...] | list[str], y: tuple[str, ...] | list[str]) -> int:
    """Length of the longest common subsequence of two token sequences.

    Time O(len(x) * len(y) / 64) machine-word operations (a few seconds for two
    400,000-token strings); memory bounded by ``MASK_BUDGET_BYTES`` plus the inputs.
    """
    # Common prefix and suffix are part of every LCS; stripping them makes equal and
    # near-equal strings (the common case for rewards) linear-time.
    start = 0
    limit = min(len(x), len(y))
    while start < limit and x[start] == y[start]:
        start += 1
    end_x, end_y = len(x), len(y)
    while end_x > start and end_y > start and x[end_x - 1] == y[end_y - 1]:
        end_x -= 1
        end_y -= 1
    common = start + (len(x) - end_x)
    x, y = x[start:end_x], y[start:end_y]
    if not x or not y:
        return common
    # Bits run along the longer sequence, the Python loop along the shorter one.
    if len(x) < len(y):
        x, y = y, x
    count_x, count_y = Counter(x), Counter(y)
    shared = count_y.keys() & count_x.keys()
    if not shared:
        return common
    # Pick the cheaper exact algorithm. Rough costs in Python steps: the bit-parallel one
    # makes len(y) steps per column block, each over len(x)/64 machine words; the sparse
    # one makes one bisect per matching (i, j) pair. Large vocabularies (few matches)
    # favour sparse, small ones (many matches) bit-parallel.
    matches = sum(count_x[t] * count_y[t] for t in shared)
    blocks = -(-len(x) // _block_bits(len(x), len(shared)))
    if matches + len(x) < len(y) * (blocks + len(x) / 512):
        return common + _sparse_lcs(x, y, shared)
    return common + _bit_parallel_lcs(x, y, shared)


def _block_bits(n_bits: int, n_shared: int) -> int:
    """Widest column block whose mask table fits MASK_BUDGET_BYTES (at least 64 bits)."""
    budget_bits = MASK_BUDGET_BYTES * 8
    width = max(math.isqrt(budget_bits), budget_bits // max(n_shared, 1))
    return max(64, min(n_bits, width))


def _sparse_lcs(x, y, shared) -> int:
    """Hunt-Szymanski LCS: O((matches + n) log n) time, O(n) memory.

    ``tails[k]`` is the smallest x-index that ends a common subsequence of length k+1;
    each y token updates it with its matching x-indices in decreasing order (so one y
    token is never used twice).
    """
    where: dict[str, list[int]] = {}
    for i, token in enumerate(x):
        if token in shared:
            where.setdefault(token, []).append(i)
    for positions in where.values():
        positions.reverse()
    tails: list[int] = []
    for token in y:
        positions = where.get(token)
        if positions is None:
            continue
        for i in positions:
            k = bisect_left(tails, i)
            if k == len(tails):
                tails.append(i)
            else:
                tails[k] = i
    return len(tails)


def _bit_parallel_lcs(bits_seq, loop_seq, shared) -> int:
    """Hyyrö's bit-vector LCS, one column block of ``bits_seq`` at a time.

    For each block, V starts all ones; per token c of ``loop_seq``:
    U = V & M[c]; V = (V + U + carry) | (V - U). The carry out of each step feeds the same
    step of the next block, exactly as if the addition ran over the whole bit vector.
    LCS = number of zero bits of the final V over all blocks.
    """
    n_bits = len(bits_seq)
    block_bits = _block_bits(n_bits, len(shared))
    carries: bytearray | None = None
    zeros = 0
    for block_start in range(0, n_bits, block_bits):
        block = bits_seq[block_start : block_start + block_bits]
        width = len(block)
        full = (1 << width) - 1
        masks = _match_masks(block, shared)
        v = full
        last_block = block_start + block_bits >= n_bits
        if carries is None:
            # First block: no carry in; tokens without a match leave V unchanged.
            if last_block:
                for token in loop_seq:
                    m = masks.get(token)
                    if m:
                        u = v & m
                        v = ((v + u) | (v - u)) & full
            else:
                carries = bytearray(len(loop_seq))
                for j, token in enumerate(loop_seq):
                    m = masks.get(token, 0)
                    u = v & m
                    s = v + u
                    carries[j] = s >> width
                    v = (s | (v - u)) & full
        else:
            next_carries = bytearray(len(loop_seq)) if not last_block else None
            for j, token in enumerate(loop_seq):
                m = masks.get(token, 0)
                u = v & m
                s = v + u + carries[j]
                if next_carries is not None:
                    next_carries[j] = s >> width
                v = (s | (v - u)) & full
            carries = next_carries
        zeros += width - v.bit_count()
    return zeros


def _match_masks(block, shared) -> dict[str, int]:
    """token -> int with bit i set where ``block[i] == token`` (only tokens in ``shared``)."""
    positions: dict[str, list[int]] = {}
    for i, token in enumerate(block):
        if token in shared:
            positions.setdefault(token, []).append(i)
    masks = {}
    for token, where in positions.items():
        if len(where) < 64:
            masks[token] = sum(1 << i for i in where)
        else:
            # Many positions: set bits in a byte buffer instead of summing big ints.
            buf = bytearray((len(block) + 7) // 8)
            for i in where:
                buf[i >> 3] |= 1 << (i & 7)
            masks[token] = int.from_bytes(buf, "little")
    return masks
