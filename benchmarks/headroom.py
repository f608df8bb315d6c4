"""Where a model's exact-match headroom is on the simulated shop, and which reward points at it.

Every synthetic session can be simulated again with the shopper's whole action distribution
at each step (:func:`shop_env.synthetic.generate_session` with ``keep_distribution``). Given a
model's evaluation (``predictions.jsonl``), this benchmark scores policies built on the model's
answers against the logged actions:

* **the leaving rule**: ``terminate`` where the shopper leaves with probability >= ``t``, the
  model's own answer elsewhere (one row per ``t``);
* **the page rule**: ``terminate`` on every page of one type (search results, product...),
  the model's own answer elsewhere (one row per page type). Unlike the shopper's leaving
  probability, the page type is in the observation: a policy can learn this rule;
* **the model's answer or terminate, whichever a reward expects to pay more**: once by the
  expected Shop-R1 action reward (hierarchical with DARS; format and self-certainty are the
  same for any valid answer and left out), once by the expected exact match (the binary
  reward). It shows whether a reward's optimum even asks for the leaving rule;
* **a reward's optimum**: the action the shopper might take that the reward expects to pay most
  (for exact match that is the oracle). It knows the shopper's latent intent, which no model sees;
* **a reward's observable optimum** (``--bayes-samples``, on by default): the answer the reward
  expects to pay most under the Bayes posterior predictive of the next action given only the
  session so far (:mod:`shop_env.synthetic.posterior`). For exact match it is the best any
  model that reads the observation can score: the honest ceiling. For the Shop-R1 reward it is
  where a policy trained to the reward's optimum ends up; the **observable leaving rule** puts
  ``terminate`` on top of it wherever the posterior probability of leaving is >= ``t``.

    python benchmarks/headroom.py runs/smol/eval/sft --json headroom.json

It prints the usual results table (95% session-bootstrap intervals). User errors (no
predictions file, a state that is not a synthetic session of this shop) print ``error: ...``
and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from agents.evaluation import PREDICTIONS, load_predictions
from rewards import RewardConfig
from rewards.action import action_reward, exact_match
from rewards.metrics import compute_metrics, markdown_table
from shop_env.actions import Action

#: Probabilities of leaving scored by the leaving-rule rows by default.
DEFAULT_THRESHOLDS = (0.6, 0.5, 0.4, 0.35, 0.3, 0.2)
MODEL_ROW = "model's own answers"
#: Intents drawn per category for the observable-optimum rows by default.
DEFAULT_BAYES_SAMPLES = 200
TERMINATE = Action("terminate")

#: One state's shopper distribution: each action it could take with its probability.
Distribution = list[tuple[Action, float]]


def simulated_steps(session_ids: Iterable[str]) -> dict[tuple[str, int], Any]:
    """``{(session_id, step): Step}`` of synthetic sessions, simulated again from their ids with
    the shopper's distribution kept (``Step.meta["action_distribution"]``, ``["page_type"]``).

    Raises:
        ValueError: an id that is not a synthetic session id.
    """
    from shop_env.synthetic import generate_session, parse_session_id

    out: dict[tuple[str, int], Any] = {}
    for sid in sorted(set(session_ids)):
        seed, index = parse_session_id(sid)
        for step_index, step in enumerate(generate_session(seed, index, keep_distribution=True).steps):
            out[(sid, step_index)] = step
    return out


def shopper_distributions(session_ids: Iterable[str]) -> dict[tuple[str, int], tuple[Action, Distribution]]:
    """``{(session_id, step): (logged action, shopper distribution)}`` of synthetic sessions,
    simulated again from their ids.

    Raises:
        ValueError: an id that is not a synthetic session id.
    """
    return distributions(simulated_steps(session_ids))


def distributions(steps: Mapping[tuple[str, int], Any]) -> dict[tuple[str, int], tuple[Action, Distribution]]:
    """``{(session_id, step): (logged action, shopper distribution)}`` of :func:`simulated_steps`."""
    return {key: (step.action, [(Action.from_dict(d["action"]), float(d["prob"]))
                                for d in step.meta["action_distribution"]])
            for key, step in steps.items()}


def page_types(steps: Mapping[tuple[str, int], Any]) -> dict[tuple[str, int], str]:
    """``{(session_id, step): page type}`` of :func:`simulated_steps` (``""`` where unnamed)."""
    return {key: str(step.meta.get("page_type", "")) for key, step in steps.items()}


def observable_predictives(session_ids: Iterable[str], samples_per_category: int = DEFAULT_BAYES_SAMPLES,
                           progress: bool = False) -> dict[tuple[str, int], Any]:
    """``{(session_id, step): StepPosterior}`` of synthetic sessions: the posterior predictive of the
    next action given the history only (:func:`shop_env.synthetic.posterior.posterior_predictive`).

    Args:
        session_ids: synthetic session ids (all of one seed's shop).
        samples_per_category: intents drawn from the prior per category
            (:meth:`shop_env.synthetic.posterior.IntentSample.draw`).
        progress: show a tqdm progress bar.

    Raises:
        ValueError: an id that is not a synthetic session id, or ids of several seeds.
    """
    from shop_env.synthetic.posterior import session_posteriors

    return session_posteriors(session_ids, samples_per_category, progress=progress)


def posterior_note(posteriors: Mapping[tuple[str, int], Any], keys: Iterable[tuple[str, int]]) -> str:
    """One line on how well the sampled posterior is resolved at the scored states."""
    chosen = [posteriors[k] for k in keys]
    if not chosen:
        return "Posterior: no states."
    ess = sorted(p.effective_samples for p in chosen)
    lost = sum(not p.consistent for p in chosen)
    return (f"Posterior over {len(chosen)} states: median effective sample size {ess[len(ess) // 2]:.0f} "
            f"(10th percentile {ess[len(ess) // 10]:.0f}); {lost} states with no draw that explains the history "
            "(scored with the prior predictive there).")


def expected(score: Callable[[Action | None, Action], float], answer: Action | None, dist: Distribution) -> float:
    """The expectation of ``score(answer, next action)`` over the shopper's distribution."""
    return sum(p * score(answer, gold) for gold, p in dist)


def headroom(records: Mapping[tuple[str, int], Mapping[str, Any]],
             shopper: Mapping[tuple[str, int], tuple[Action, Distribution]],
             thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
             config: RewardConfig | None = None,
             pages: Mapping[tuple[str, int], str] | None = None,
             observable: Mapping[tuple[str, int], Distribution] | None = None) -> dict[str, dict[str, Any]]:
    """Metrics of the model's answers and of the policies built on them (module docstring).

    Args:
        records: a model's scored answers (:func:`agents.evaluation.load_predictions`).
        shopper: :func:`shopper_distributions` of the same sessions.
        thresholds: the leaving probabilities ``t`` of the leaving-rule rows.
        config: the Shop-R1 reward settings (None: the paper's, :class:`rewards.RewardConfig`).
        pages: each state's page type (:func:`page_types`); None leaves out the page-rule rows.
        observable: each state's posterior predictive given the history (``[(action, p), ...]``,
            the ``predictive`` of :func:`observable_predictives`); None leaves out the
            observable-optimum rows.

    Returns:
        ``{row label: compute_metrics(...)}`` with session-bootstrap intervals, the model's own
        row first.

    Raises:
        ValueError: a state the shopper did not visit, or whose logged action differs from the
            simulated one (another shop version or data set).
    """
    config = config or RewardConfig()
    keys = list(records)
    for key in keys:
        if key not in shopper:
            raise ValueError(f"state {key} is not a step of the simulated session: not this shop's data")
        logged = Action.from_dict(records[key]["gold"], field="gold")
        if logged != shopper[key][0]:
            raise ValueError(f"state {key}: the evaluation's gold {logged} is not the simulated {shopper[key][0]} "
                             "(generated by another version of the shop)")
    golds = [shopper[k][0] for k in keys]
    dists = [shopper[k][1] for k in keys]
    own = [Action.from_dict(records[k]["pred"], field="pred") if records[k].get("pred") else None for k in keys]

    def shop_r1(answer: Action | None, gold: Action) -> float:
        return action_reward(answer, gold, config).total

    def exact(answer: Action | None, gold: Action) -> float:
        return float(exact_match(answer, gold, config))

    def or_terminate(score: Callable[[Action | None, Action], float]) -> list[Action | None]:
        return [TERMINATE if expected(score, TERMINATE, d) > expected(score, a, d) else a
                for a, d in zip(own, dists, strict=True)]

    def optimum(score: Callable[[Action | None, Action], float]) -> list[Action | None]:
        return [max((action for action, _ in d), key=lambda action: expected(score, action, d)) for d in dists]

    leave = [sum(p for action, p in d if action.type == "terminate") for d in dists]
    policies: dict[str, list[Action | None]] = {MODEL_ROW: own}
    for t in thresholds:
        policies[f"terminate where P(leave) >= {t:g}, else the model"] = [
            TERMINATE if p >= t and p > 0 else a for a, p in zip(own, leave, strict=True)]
    for page in sorted({pages[k] for k in keys if pages.get(k)} if pages is not None else ()):
        policies[f"terminate on every {page} page, else the model"] = [
            TERMINATE if pages.get(k) == page else a for k, a in zip(keys, own, strict=True)]
    policies["model or terminate, by expected Shop-R1 reward"] = or_terminate(shop_r1)
    policies["model or terminate, by expected exact match"] = or_terminate(exact)
    policies["Shop-R1 reward's optimum (shopper's actions)"] = optimum(shop_r1)
    policies["exact match's optimum (oracle)"] = optimum(exact)
    if observable is not None:
        from shop_env.synthetic.posterior import best_answer

        def observable_optimum(score: Callable[[Action | None, Action], float]) -> list[Action | None]:
            return [best_answer(observable[k], score) for k in keys]

        shop_r1_best = observable_optimum(shop_r1)
        policies["Shop-R1 reward's observable optimum (Bayes)"] = shop_r1_best
        policies["exact match's observable optimum (Bayes)"] = observable_optimum(exact)
        seen_leave = [sum(p for action, p in observable[k] if action.type == "terminate") for k in keys]
        for t in thresholds:
            policies[f"terminate where observable P(leave) >= {t:g}, else the Shop-R1 observable optimum"] = [
                TERMINATE if p >= t and p > 0 else a for a, p in zip(shop_r1_best, seen_leave, strict=True)]
    sessions = [k[0] for k in keys]
    return {label: compute_metrics(preds, golds, config, session_ids=sessions) for label, preds in policies.items()}


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/headroom.py",
        description="Score policies built on a model's answers on the simulated shop: the leaving rule at "
                    "several probabilities, terminate on every page of one type, the model-or-terminate "
                    "choice each reward prefers, each "
                    "reward's optimum with the shopper's hidden intent, and each reward's observable optimum "
                    "(Bayes posterior given the session so far). Needs an evaluation of synthetic sessions.",
    )
    parser.add_argument("evaluation", type=Path, help="evaluation directory with predictions.jsonl (e.g. runs/x/eval/sft)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=list(DEFAULT_THRESHOLDS), metavar="T",
                        help="leaving probabilities t of the leaving-rule rows (default: %(default)s)")
    parser.add_argument("--bayes-samples", type=int, default=DEFAULT_BAYES_SAMPLES, metavar="N",
                        help="intents drawn per category for the observable-optimum rows; 0 leaves them out "
                             "(default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the rows as JSON to PATH")
    return parser


def main(argv: Iterable[str] | None = None) -> int:
    """CLI entry point; returns the exit status (2 on a user error, with ``error: ...`` on stderr)."""
    args = build_parser().parse_args(None if argv is None else list(argv))
    try:
        path = args.evaluation / PREDICTIONS
        if not path.is_file():
            raise ValueError(f"{args.evaluation}: no {PREDICTIONS} (not an evaluation directory)")
        records = load_predictions(path)
        steps = simulated_steps(k[0] for k in records)  # simulated once: distributions and page types
        if args.bayes_samples < 0:
            raise ValueError(f"--bayes-samples must be >= 0, got {args.bayes_samples}")
        posteriors = (observable_predictives((k[0] for k in records), args.bayes_samples,
                                             progress=not args.no_progress) if args.bayes_samples else None)
        observable = {k: p.predictive for k, p in posteriors.items()} if posteriors is not None else None
        rows = headroom(records, distributions(steps), args.thresholds, pages=page_types(steps),
                        observable=observable)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(markdown_table(rows))
    if posteriors is not None:
        print(f"\n{posterior_note(posteriors, records)}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
