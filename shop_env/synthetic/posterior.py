"""What an observer of a simulated session can know about the shopper's next action.

The shop's ``oracle`` predicts the most likely action of the shopper's *own* distribution,
which depends on the latent :class:`~shop_env.synthetic.intent.Intent` (the product noun,
colour, budget, patience...). No model sees the intent: it sees the pages and the actions so
far. The best any model can do is the Bayes posterior predictive

    P(next action | history) = sum over intents I of P(I | history) * P(next action | I, state)

where ``P(I | history)`` is proportional to the prior times the probability of every logged
action so far under ``I``. Here the integral over intents is estimated by importance sampling
from the intent prior, stratified by category (``samples_per_category`` intents drawn from
the prior of each category, weighted by the category's prior share): the same draws serve
every session, and after the first action most of them have likelihood 0.

The evidence is the pages and the logged actions: what a ``latest-step`` prompt shows. A
``whole-session`` prompt also shows the logged rationales of past steps, which can name the
intent outright ("a trekking pack under $338"); there this posterior ignores evidence a model
has, and its optimum is a lower bound on what a model can reach.

The shopper's state after a step (pages viewed, filters tried, cart, searches made) is a
function of the logged actions only, so one replay of the logged actions gives the state
every sampled intent is scored in.

    from shop_env.synthetic.posterior import IntentSample, posterior_predictive
    samples = IntentSample.draw(build_catalog(0), per_category=200)
    for step in posterior_predictive("syn-s0-000026", samples):
        print(step.action, step.predictive[:3], step.effective_samples)
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from shop_env.actions import Action
from shop_env.synthetic.catalog import CATEGORIES, Catalog, build_catalog
from shop_env.synthetic.generate import generate_session, parse_session_id
from shop_env.synthetic.intent import Intent, sample_intent
from shop_env.synthetic.render import page_kind, render
from shop_env.synthetic.shopper import Shopper, Targets
from shop_env.webpage.prune import prune_html

#: Intents drawn per category by default: ~50 per product noun (10 categories x 4 nouns).
DEFAULT_SAMPLES_PER_CATEGORY = 200
#: Answers :func:`best_answer` considers by default: the likeliest actions.
DEFAULT_TOP_K = 50


@dataclass(frozen=True)
class IntentSample:
    """Intents drawn from the prior, with their importance weights (summing to 1).

    Attributes:
        intents: the drawn intents.
        log_weights: log of each draw's prior weight (the category's prior share divided
            by the draws of that category).
    """

    intents: tuple[Intent, ...]
    log_weights: tuple[float, ...]

    @classmethod
    def draw(cls, catalog: Catalog, per_category: int = DEFAULT_SAMPLES_PER_CATEGORY, seed: int = 0) -> IntentSample:
        """Draw ``per_category`` intents of every category from the prior.

        Args:
            catalog: the shop's catalog (:func:`~shop_env.synthetic.build_catalog` of the data's seed).
            per_category: intents drawn per category (>= 1).
            seed: seed of the draws (independent of every session's own random source).

        Raises:
            ValueError: ``per_category`` < 1.
        """
        if per_category < 1:
            raise ValueError(f"per_category must be >= 1, got {per_category}")
        intents: list[Intent] = []
        # sample_intent draws the category uniformly: each category's draws share 1/len(CATEGORIES).
        log_w = math.log(1.0 / (len(CATEGORIES) * per_category))
        for spec in CATEGORIES:
            rng = random.Random(f"posterior-{seed}-{spec.key}")
            intents += [sample_intent(rng, catalog, spec.key) for _ in range(per_category)]
        return cls(tuple(intents), tuple([log_w] * len(intents)))


@dataclass(frozen=True)
class StepPosterior:
    """The posterior predictive at one step of a session.

    Attributes:
        action: the logged action of the step.
        predictive: every action with posterior probability > 0, most likely first.
        effective_samples: Kish's effective sample size of the weights the predictive used
            (1 to the number of draws; small means a noisy estimate).
        page_type: the page's type (``search``, ``product``...).
        consistent: False when no draw explained the history; the predictive then falls back
            to the prior predictive at this state (the history's evidence is ignored).
    """

    action: Action
    predictive: list[tuple[Action, float]]
    effective_samples: float
    page_type: str
    consistent: bool = True


def posterior_predictive(session_id: str, samples: IntentSample) -> list[StepPosterior]:
    """The posterior predictive of the next action at every step of a synthetic session.

    Args:
        session_id: a synthetic session id (``syn-s<seed>-<index>``).
        samples: intents drawn from the prior of the session's catalog (:meth:`IntentSample.draw`).

    Returns:
        One :class:`StepPosterior` per step, in order.

    Raises:
        ValueError: ``session_id`` is not a synthetic session id, or the replay of the logged
            actions leaves the logged pages (a shop version other than the one that generated it).
    """
    seed, index = parse_session_id(session_id)
    logged = generate_session(seed, index).steps
    catalog = build_catalog(seed)
    # Rebuilt exactly as generate_session builds it (same random source, same draws), so the
    # replay starts on the logged home page.
    rng = random.Random(f"syn-session-{seed}-{index}")
    replay = Shopper(sample_intent(rng, catalog), catalog, rng)
    probe = copy.copy(replay)  # shares the replay's state; only its intent is swapped
    log_post = list(samples.log_weights)
    out: list[StepPosterior] = []
    for step in logged:
        page = prune_html(render(replay.state.view))
        if page.html != step.html:
            raise ValueError(f"{session_id}: replay left the logged pages at step {len(out)}")
        alive = [i for i, lw in enumerate(log_post) if lw > -math.inf]
        consistent = bool(alive)
        users = alive if consistent else list(range(len(samples.intents)))
        base = log_post if consistent else list(samples.log_weights)
        top = max(base[i] for i in users)
        weights = {i: math.exp(base[i] - top) for i in users}
        mixture: dict[Action, float] = {}
        likelihood: dict[int, float] = {}
        targets = Targets(page)  # the same page for every draw
        for i in users:
            probe.intent = samples.intents[i]
            cands = probe.merged_candidates(page, targets)
            total = sum(c.weight for c in cands)
            for cand in cands:
                mixture[cand.action] = mixture.get(cand.action, 0.0) + weights[i] * cand.weight / total
                if cand.action == step.action:
                    likelihood[i] = cand.weight / total
        norm = sum(mixture.values())
        predictive = sorted(((a, p / norm) for a, p in mixture.items()), key=lambda ap: -ap[1])
        w = list(weights.values())
        ess = sum(w) ** 2 / sum(x * x for x in w)
        out.append(StepPosterior(step.action, predictive, ess, page_kind(replay.state.view), consistent))
        # Update on the logged action: draws that could not have taken it drop out.
        for i in range(len(log_post)):
            p = likelihood.get(i, 0.0)
            log_post[i] = log_post[i] + math.log(p) if p > 0 and log_post[i] > -math.inf else -math.inf
        own = [c for c in replay.merged_candidates(page) if c.action == step.action]
        if not own:
            raise ValueError(f"{session_id}: the logged action {step.action} is not the shopper's at step {len(out) - 1}")
        replay.apply(own[0])
    return out



def session_posteriors(session_ids: Iterable[str], per_category: int = DEFAULT_SAMPLES_PER_CATEGORY,
                       progress: bool = False) -> dict[tuple[str, int], StepPosterior]:
    """``{(session_id, step): StepPosterior}`` of synthetic sessions of one shop, with one intent
    sample (:meth:`IntentSample.draw`) shared by all of them.

    Raises:
        ValueError: an id that is not a synthetic session id, or ids of several shops (seeds).
    """
    ids = sorted(set(session_ids))
    seeds = {parse_session_id(sid)[0] for sid in ids}
    if len(seeds) > 1:
        raise ValueError(f"sessions of several synthetic shops (seeds {sorted(seeds)}): one shop at a time")
    if not ids:
        return {}
    samples = IntentSample.draw(build_catalog(seeds.pop()), per_category)
    sessions: Iterable[str] = ids
    if progress:
        from tqdm import tqdm

        sessions = tqdm(ids, desc="posterior predictives", unit="session")
    return {(sid, t): step for sid in sessions for t, step in enumerate(posterior_predictive(sid, samples))}


def best_answer(predictive: Sequence[tuple[Action, float]], score: Callable[[Action, Action], float], *,
                top_k: int = DEFAULT_TOP_K) -> Action:
    """The answer ``score(answer, next action)`` expects to pay most under ``predictive``.

    Args:
        predictive: ``[(action, probability), ...]``, most likely first (a :class:`StepPosterior`'s).
        score: the reward of an answer against the action taken (exact match, a reward's total...).
        top_k: answers considered: the ``top_k`` likeliest actions (the expectation still runs
            over every action). Rewards that pay mostly for hitting the action (exact match;
            the Shop-R1 reward, whose DARS scales a right name by 1000) have their optimum there.

    Returns:
        The best answer (the likelier one on ties).

    Raises:
        ValueError: an empty ``predictive``.
    """
    if not predictive:
        raise ValueError("an empty predictive distribution has no best answer")
    return max((a for a, _ in predictive[:top_k]), key=lambda a: sum(p * score(a, g) for g, p in predictive))
