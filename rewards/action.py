"""Action rewards (docs/architecture.md §5 Table 1, with DARS), binary reward, exact and type match (§6)."""

from __future__ import annotations

from rewards.breakdown import RewardBreakdown
from rewards.config import RewardConfig
from rewards.similarity import plain_str, rouge_l_tokens, tokenize, tokenize_bounded
from shop_env.actions import Action

_DEFAULT = RewardConfig()
# Slack on the length bound below so float rounding can never zero a score that
# rouge_score would put exactly at the threshold.
_BOUND_SLACK = 1e-9


def type_match(pred: Action | None, gold: Action) -> bool:
    """Whether the predicted action type equals the gold type (None never matches)."""
    return isinstance(pred, Action) and pred.type == gold.type


def thresholded_similarity(a: str, b: str, threshold: float) -> float:
    """ROUGE-L F1 of ``a`` and ``b`` if it is >= ``threshold``, else 0.

    Exact, but skips the LCS when the token counts alone rule the threshold out
    (F1 = 2*LCS/(m+n) <= 2*min(m,n)/(m+n)). The shorter text (the gold, in practice) is
    tokenized first, and the other only up to the token count that could still reach the
    threshold, so a 50 MB prediction against a short gold costs time and memory in
    proportion to the gold, not to the prediction.
    """
    a, b = plain_str(a), plain_str(b)
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    ts = tokenize(short)
    if not ts:
        return 0.0
    m = len(ts)
    limit = None
    if threshold - _BOUND_SLACK > 0:
        # 2m/(m+n) >= threshold - slack  <=>  n <= 2m/(threshold - slack) - m
        bound = 2 * m / (threshold - _BOUND_SLACK) - m
        limit = int(bound) + 1 if bound < 1e15 else None
    tl = tokenize_bounded(long_, limit)
    if not tl:  # None: more tokens than can reach the threshold
        return 0.0
    n = len(tl)
    if 2 * min(m, n) / (m + n) < threshold - _BOUND_SLACK:
        return 0.0
    sim = rouge_l_tokens(ts, tl)
    return sim if sim >= threshold else 0.0


def _filled(text: str) -> bool:
    return bool(str.strip(text))  # str's own strip: a subclass may override it


def action_reward(pred: Action | None, gold: Action, config: RewardConfig | None = None) -> RewardBreakdown:
    """The action part of the reward for one prediction.

    Hierarchical mode (paper Table 1): ``type_reward`` for the right type; then, only when
    the type is right, attribute rewards for non-empty fields and value rewards
    ``dars_factor * sim`` on the long-text field (click name, typed text) and
    ``input_name_value * sim(name)`` for ``type_and_submit``; ``sim`` is ROUGE-L F1
    zeroed below ``rouge_threshold``. Binary mode: 1 iff :func:`exact_match`.

    Args:
        pred: the predicted action, or None for an unparseable output (scores 0).
        gold: the logged action.
        config: reward settings (default :class:`RewardConfig`).

    Returns:
        A breakdown with ``type``/``attribute``/``value`` set, ``format`` and
        ``self_certainty`` 0, ``total`` = the action reward.
    """
    config = config or _DEFAULT
    if config.action_reward == "binary":
        hit = 1.0 if exact_match(pred, gold, config) else 0.0
        return RewardBreakdown(type=hit, total=hit, valid=pred is not None)
    if not type_match(pred, gold):
        return RewardBreakdown(valid=pred is not None)
    type_r = config.type_reward
    attribute = value = 0.0
    threshold = config.rouge_threshold
    if gold.type == "click":
        if _filled(pred.name):
            attribute = config.click_name_attr
        value = config.dars_factor * thresholded_similarity(pred.name, gold.name, threshold)
    elif gold.type == "type_and_submit":
        if _filled(pred.name):
            attribute += config.input_name_attr
        if _filled(pred.text):
            attribute += config.input_text_attr
        value = config.input_name_value * thresholded_similarity(pred.name, gold.name, threshold)
        value += config.dars_factor * thresholded_similarity(pred.text, gold.text, threshold)
    # terminate / scroll: the type is the whole action.
    return RewardBreakdown(type=type_r, attribute=attribute, value=value,
                           total=type_r + attribute + value)


def normalise_text(text: str) -> str:
    """Casefold and collapse whitespace: the comparison behind ``strict_text``."""
    return " ".join(text.casefold().split())


def exact_match(pred: Action | None, gold: Action, config: RewardConfig | None = None,
                strict_text: bool = False) -> bool:
    """Whether a prediction is the logged action (docs/architecture.md §6).

    Types must be equal; ``click`` also needs equal names; ``type_and_submit`` needs equal
    names and typed text with ROUGE-L >= ``rouge_threshold`` or equal normalised text
    (so two texts without ROUGE tokens, e.g. non-Latin queries, can still match);
    ``strict_text=True`` demands equal normalised text. Names are compared after
    stripping surrounding whitespace.

    Args:
        pred: the prediction, or None for an invalid output (never matches).
        gold: the logged action.
        config: supplies ``rouge_threshold`` (default :class:`RewardConfig`).
        strict_text: compare typed text by equality of :func:`normalise_text`.
    """
    if not type_match(pred, gold):
        return False
    if gold.type not in ("click", "type_and_submit"):
        return True
    if str.strip(pred.name) != str.strip(gold.name):
        return False
    if gold.type == "click":
        return True
    if normalise_text(plain_str(pred.text)) == normalise_text(plain_str(gold.text)):
        return True
    if strict_text:
        return False
    threshold = (config or _DEFAULT).rouge_threshold
    if threshold <= 0.0:  # "ROUGE-L >= 0" holds for any text
        return True
    # Nonzero iff ROUGE-L >= threshold > 0.
    return thresholded_similarity(pred.text, gold.text, threshold) > 0.0
