"""Generate simulated shopping sessions: render each page, prune it, let the shopper act.

Session ``i`` of seed ``s`` depends only on ``(s, i)``, so a smaller run is a prefix of a
larger one and the train/test split (by session id) is stable.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from shop_env.sessions import Session, Step
from shop_env.synthetic.catalog import build_catalog
from shop_env.synthetic.intent import sample_intent
from shop_env.synthetic.rationale_templates import write_rationale
from shop_env.synthetic.render import page_kind, page_url, render
from shop_env.synthetic.shopper import Shopper
from shop_env.webpage.prune import prune_html

#: The first session of every run starts at this Unix time (2026-03-02 09:00 UTC).
_EPOCH = 1772442000.0


def session_id(seed: int, index: int) -> str:
    """The id of session ``index`` of run ``seed``: ``syn-s<seed>-<index:06d>``."""
    return f"syn-s{seed}-{index:06d}"


def parse_session_id(sid: str) -> tuple[int, int]:
    """``(seed, index)`` of a synthetic session id (the inverse of :func:`session_id`).

    Raises:
        ValueError: ``sid`` is not ``syn-s<seed>-<index>``.
    """
    prefix, _, index = str(sid).rpartition("-")
    if not prefix.startswith("syn-s") or not prefix[5:].isdigit() or not index.isdigit():
        raise ValueError(f"{sid!r} is not a synthetic session id (syn-s<seed>-<index>)")
    return int(prefix[5:]), int(index)


def generate_session(seed: int, index: int, *, keep_raw: bool = False, keep_distribution: bool = False) -> Session:
    """Simulate one session (see :func:`generate_sessions`).

    With ``keep_distribution`` each ``Step.meta["action_distribution"]`` lists every action the
    shopper could have taken there, ``[{"action": {...}, "prob": p}, ...]`` (probabilities sum
    to 1): what an expected reward or an expected exact match is computed against.
    """
    rng = random.Random(f"syn-session-{seed}-{index}")
    catalog = build_catalog(seed)
    intent = sample_intent(rng, catalog)
    shopper = Shopper(intent, catalog, rng)
    stamp = _EPOCH + index * 3600.0 + rng.uniform(0, 3000)
    steps: list[Step] = []
    going = True
    while going:
        view = shopper.state.view
        raw = render(view)
        page = prune_html(raw)
        decision = shopper.decide(page)
        chosen = decision.chosen
        meta = {
            "oracle_action": decision.oracle.action.to_dict(),
            "oracle_prob": round(decision.oracle_prob, 6),
            "page_type": page_kind(view),
        }
        if keep_raw:
            meta["raw_html"] = raw
        if keep_distribution:
            meta["action_distribution"] = [{"action": a.to_dict(), "prob": p} for a, p in decision.distribution]
        rationale = write_rationale(chosen.kind, chosen.arg, intent, rng)
        steps.append(Step(page_url(view), page.html, chosen.action, rationale, round(stamp, 3), meta))
        stamp += rng.uniform(2.0, 45.0)  # dwell time before the next action
        going = shopper.apply(chosen)
    return Session(
        session_id=session_id(seed, index),
        steps=steps,
        user_id=f"syn-u{seed}-{rng.randrange(5000):04d}",
        persona=intent.persona(),
        source="synthetic",
    )


def generate_sessions(n: int, seed: int = 0, *, keep_raw: bool = False, progress: bool = False) -> list[Session]:
    """Simulate ``n`` shopping sessions on the synthetic shop.

    Args:
        n: number of sessions (>= 0).
        seed: run seed; the same seed gives identical sessions, and the first ``k``
            sessions of a run do not depend on ``n``.
        keep_raw: also keep each raw page in ``Step.meta["raw_html"]`` (large).
        progress: show a tqdm progress bar.

    Returns:
        Sessions with source ``"synthetic"``; each ``Step.html`` is the pruned page, and
        ``Step.meta`` has ``oracle_action``, ``oracle_prob``, ``page_type`` (and ``raw_html``).

    Raises:
        ValueError: ``n`` is negative.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    indices: Iterable[int] = range(n)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, total=n, desc="simulating sessions", unit="session")
    return [generate_session(seed, i, keep_raw=keep_raw) for i in indices]


def oracle_ceiling(sessions: Sequence[Session]) -> float:
    """Mean ``oracle_prob`` over every step: the oracle's expected exact-match accuracy.

    Steps without ``oracle_prob`` (non-synthetic data) are skipped; returns 0.0 when no
    step has one.
    """
    probs = [float(step.meta["oracle_prob"]) for s in sessions for step in s.steps if "oracle_prob" in step.meta]
    return sum(probs) / len(probs) if probs else 0.0
