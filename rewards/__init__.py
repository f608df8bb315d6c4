"""The Shop-R1 hybrid reward (docs/architecture.md §5) and evaluation metrics (§6).

``score(response_text, gold)`` is the whole reward of one model output: format gate,
alpha-weighted self-certainty of the rationale, and the hierarchical action reward with
difficulty-aware scaling (or the binary baseline). ``score_answer`` returns that breakdown
with the parsed prediction and its exact and type match: the one scoring call of the env,
the TRL and verl rewards and the evaluator. Importing this package never imports
torch; :func:`self_certainty` imports it on first call.
"""

from __future__ import annotations

from rewards.action import action_reward, exact_match, normalise_text, type_match
from rewards.breakdown import RewardBreakdown
from rewards.certainty import DEFAULT_CHUNK_TOKENS, self_certainty, self_certainty_from_entropy
from rewards.config import ACTION_REWARD_MODES, SELF_CERTAINTY_VARIANTS, RewardConfig
from rewards.format import check_format
from rewards.metrics import compute_metrics, markdown_table
from rewards.rationale_span import (
    rationale_char_span,
    rationale_mask_for_ids,
    rationale_token_mask,
    token_char_offsets,
)
from rewards.score import ScoredAnswer, score, score_answer
from rewards.similarity import rouge_l

__all__ = [
    "rationale_mask_for_ids",
    "token_char_offsets",
    "ACTION_REWARD_MODES",
    "DEFAULT_CHUNK_TOKENS",
    "SELF_CERTAINTY_VARIANTS",
    "RewardBreakdown",
    "RewardConfig",
    "ScoredAnswer",
    "action_reward",
    "check_format",
    "compute_metrics",
    "exact_match",
    "markdown_table",
    "normalise_text",
    "rationale_char_span",
    "rationale_token_mask",
    "rouge_l",
    "score",
    "score_answer",
    "self_certainty",
    "self_certainty_from_entropy",
    "type_match",
]
