"""Data-set statistics: action mix, session lengths, endings, typed-text kinds, ceilings.

Used by ``python -m shop_env.datasets`` to describe any source, so a simulated data set can
be compared with logged ones (the paper's Shop-CART split: about 36% click, 38%
type_and_submit, 25% terminate of steps, 3.4 steps per session).
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from shop_env.actions import Action, FormatError
from shop_env.sessions import Session, select_split

#: Typed-text kinds, in report order (see :func:`typed_text_kind`).
TYPED_KINDS = ("search", "refined search", "filter", "review search", "quantity", "coupon",
               "personal field", "other")

# Checked in order: the first pattern that matches the element name wins.
_KIND_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("review search", re.compile(r"review")),
    ("personal field", re.compile(r"(full|first|last|given|family|user)_?name|address|street|city|zip|postal"
                                  r"|phone|mobile|(^|[._-])tel([._-]|$)|e_?mail|card_?number|cvv")),
    ("coupon", re.compile(r"coupon|promo|voucher|gift_?card")),
    ("quantity", re.compile(r"quantity|(^|[._-])qty")),
    ("filter", re.compile(r"price|(^|[._-])(min|max)([._-]|$)|rating|filter|range")),
    ("search", re.compile(r"search|query|keyword|(^|[._-])q([._-]|$)|find")),
)


def typed_text_kind(name: str, searched_before: bool = False) -> str:
    """What a ``type_and_submit`` into element ``name`` is, judged from the name.

    A search box gives ``search`` for the session's first query and ``refined search``
    for later ones (``searched_before``). Personal fields (name, address, ZIP, phone,
    e-mail) are reported as ``personal field``: logged shopping data does not carry them.
    """
    lowered = name.lower()
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(lowered):
            if kind == "search" and searched_before:
                return "refined search"
            return kind
    return "other"


@dataclass
class Ceiling:
    """An agent's exact match on the test split, as a ceiling (``None`` fields: not computable).

    Attributes:
        exact_match: share of states where the agent's answer exactly matches the logged
            action (as ``agents.evaluation`` scores it).
        expected: the exact match the agent expects: for the oracle the mean
            ``meta.oracle_prob``; for the observable ceiling the mean posterior probability
            of its answer.
        states: states scored.
        reason: why it was not computed (empty when it was).
    """

    exact_match: float | None = None
    expected: float | None = None
    states: int = 0
    reason: str = ""


@dataclass
class DatasetStats:
    """Summary statistics of a list of sessions."""

    sessions: int
    steps: int
    action_counts: dict[str, int]
    length_mean: float
    length_median: float
    length_min: int
    length_max: int
    terminate_endings: int
    typed_kinds: dict[str, int]
    oracle: Ceiling = field(default_factory=Ceiling)
    observable: Ceiling = field(default_factory=lambda: Ceiling(reason="not computed"))

    def action_share(self, kind: str) -> float:
        """The share of steps whose action type is ``kind`` (0-1)."""
        return self.action_counts.get(kind, 0) / self.steps if self.steps else 0.0

    @property
    def terminate_ending_share(self) -> float:
        """The share of sessions whose last action is ``terminate`` (0-1)."""
        return self.terminate_endings / self.sessions if self.sessions else 0.0


def compute_stats(sessions: Sequence[Session], *, oracle: bool = True, observable_samples: int = 0,
                  progress: bool = False) -> DatasetStats:
    """Statistics of ``sessions``.

    Args:
        sessions: the sessions to describe.
        oracle: also score the oracle on their test split (:func:`oracle_ceiling_on_test`).
        observable_samples: > 0 also computes the observable ceiling with this many intents
            drawn per category (:func:`observable_ceiling_on_test`; minutes on 150 sessions).
        progress: a progress bar over sessions while the observable ceiling is computed.
    """
    actions: Counter[str] = Counter()
    typed: Counter[str] = Counter()
    lengths = [len(s.steps) for s in sessions]
    endings = 0
    for session in sessions:
        searched = False
        for step in session.steps:
            actions[step.action.type] += 1
            if step.action.type == "type_and_submit":
                kind = typed_text_kind(step.action.name, searched)
                searched = searched or kind in ("search", "refined search")
                typed[kind] += 1
        if session.steps and session.steps[-1].action.type == "terminate":
            endings += 1
    return DatasetStats(
        sessions=len(sessions),
        steps=sum(lengths),
        action_counts=dict(actions.most_common()),
        length_mean=statistics.fmean(lengths) if lengths else 0.0,
        length_median=float(statistics.median(lengths)) if lengths else 0.0,
        length_min=min(lengths, default=0),
        length_max=max(lengths, default=0),
        terminate_endings=endings,
        typed_kinds={kind: typed[kind] for kind in TYPED_KINDS if typed[kind]},
        oracle=oracle_ceiling_on_test(sessions) if oracle else Ceiling(reason="not computed"),
        observable=(observable_ceiling_on_test(sessions, observable_samples, progress=progress)
                    if observable_samples > 0 else Ceiling(reason="not computed")),
    )


def oracle_ceiling_on_test(sessions: Sequence[Session]) -> Ceiling:
    """Exact match of the ``oracle`` agent on the test split of ``sessions``.

    The test split is :func:`shop_env.sessions.select_split`'s (a hash of the session id),
    as for every source but OPeRA, which carries no oracle actions. Every test step must
    carry ``meta["oracle_action"]`` (synthetic data); otherwise the ceiling is reported as
    not computable. The oracle's answer is ``meta["oracle_action"]`` itself, judged with
    ``rewards``' exact match (imported here, lazily: the datasets layer sits below
    ``rewards`` otherwise).
    """
    test = select_split(sessions, "test")
    if not test:
        return Ceiling(reason="no test-split sessions")
    if not all("oracle_action" in step.meta for s in test for step in s.steps):
        return Ceiling(reason="no meta.oracle_action (not synthetic data)")
    from rewards.action import exact_match

    hits = states = 0
    for session in test:
        for step in session.steps:
            try:
                pred = Action.parse(step.meta["oracle_action"], field="meta.oracle_action")
            except FormatError:
                pred = None
            hits += bool(exact_match(pred, step.action))
            states += 1
    probs = [float(step.meta["oracle_prob"]) for s in test for step in s.steps if "oracle_prob" in step.meta]
    return Ceiling(exact_match=hits / states, expected=sum(probs) / len(probs) if probs else None, states=states)


def observable_ceiling_on_test(sessions: Sequence[Session], samples_per_category: int, *,
                               progress: bool = False) -> Ceiling:
    """Exact match of the ``bayes`` agent on the test split of ``sessions`` (synthetic data).

    At each test step the answer is the action the Bayes posterior predictive given only the
    session so far makes likeliest (:mod:`shop_env.synthetic.posterior`, ``samples_per_category``
    intents drawn per category): the best a model that sees the pages and past actions can
    expect, where the oracle reads the shopper's hidden intent. Sessions that are not one
    synthetic shop's, or whose logged actions the shop's shopper would not take, are reported
    as not computable.
    """
    test = select_split(sessions, "test")
    if not test:
        return Ceiling(reason="no test-split sessions")
    from rewards.action import exact_match
    from shop_env.synthetic.posterior import best_answer, session_posteriors

    def exact(pred: Action, gold: Action) -> float:
        return float(exact_match(pred, gold))

    try:
        posteriors = session_posteriors((s.session_id for s in test), samples_per_category, progress=progress)
    except ValueError as err:  # not synthetic ids, several shops, or actions this shop's shopper never takes
        return Ceiling(reason=str(err))
    hits = expected = 0.0
    states = 0
    for session in test:
        for t, step in enumerate(session.steps):
            predictive = posteriors[(session.session_id, t)].predictive
            answer = best_answer(predictive, exact)
            hits += exact(answer, step.action)
            expected += sum(p * exact(answer, g) for g, p in predictive)
            states += 1
    return Ceiling(exact_match=hits / states, expected=expected / states, states=states)


def format_stats(stats: DatasetStats) -> str:
    """The report ``python -m shop_env.datasets`` prints (one item per line)."""
    lines = ["action mix:"]
    for kind, count in stats.action_counts.items():
        lines.append(f"  {kind:<16} {count:>7}  {count / max(stats.steps, 1):6.1%}")
    lines.append(f"session length: mean {stats.length_mean:.2f}, median {stats.length_median:g}, "
                 f"min {stats.length_min}, max {stats.length_max}")
    lines.append(f"sessions ending in terminate: {stats.terminate_endings}/{stats.sessions} "
                 f"({stats.terminate_ending_share:.1%})")
    typed_total = sum(stats.typed_kinds.values())
    if typed_total:
        kinds = ", ".join(f"{kind} {count} ({count / typed_total:.1%})" for kind, count in stats.typed_kinds.items())
        lines.append(f"typed text: {kinds}")
    else:
        lines.append("typed text: none")
    oracle = stats.oracle
    if oracle.exact_match is None:
        lines.append(f"oracle ceiling (test split exact match): n/a ({oracle.reason})")
    else:
        expected = f"; expected {oracle.expected:.4f}" if oracle.expected is not None else ""
        lines.append(f"oracle ceiling (test split exact match): {oracle.exact_match:.4f} "
                     f"on {oracle.states} states{expected}")
    observable = stats.observable
    if observable.exact_match is not None:
        lines.append(f"observable ceiling (test split exact match of the bayes agent, given only the session so far): "
                     f"{observable.exact_match:.4f} on {observable.states} states; expected {observable.expected:.4f}")
    elif observable.reason != "not computed":
        lines.append(f"observable ceiling: n/a ({observable.reason})")
    return "\n".join(lines)
