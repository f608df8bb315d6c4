"""The simulated shopper is calibrated on logged data: the paper's Shop-CART mix, short
sessions that mostly end in abandonment, search-dominated typing, no personal fields."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

import pytest

from shop_env.datasets import DEFAULT_SOURCE, parse_source
from shop_env.datasets.__main__ import main
from shop_env.datasets.stats import DatasetStats, compute_stats, typed_text_kind
from shop_env.sessions import Session, select_split
from shop_env.synthetic import generate_sessions
from shop_env.synthetic.render import CHECKOUT_FIELDS

#: The paper's Shop-CART action mix (share of steps) and the tolerance we hold it to.
PAPER_MIX = {"click": 0.36, "type_and_submit": 0.38, "terminate": 0.25}
TOLERANCE = 0.05
PERSONAL_FIELDS = set(CHECKOUT_FIELDS) | {"zip_code"}


@pytest.fixture(scope="module")
def default_sessions() -> list[Session]:
    source = parse_source(DEFAULT_SOURCE)
    assert (source.scheme, source.target, source.options) == ("synthetic", "200", {"seed": "0"})
    return generate_sessions(200, seed=0)


@pytest.fixture(scope="module")
def default_stats(default_sessions: list[Session]) -> DatasetStats:
    return compute_stats(default_sessions)


def _assert_calibrated(stats: DatasetStats) -> None:
    for kind, share in PAPER_MIX.items():
        assert abs(stats.action_share(kind) - share) <= TOLERANCE, (kind, stats.action_counts)
    assert stats.terminate_ending_share >= 0.70, stats.terminate_endings
    assert 2.9 <= stats.length_mean <= 4.2, stats.length_mean


def test_default_set_matches_the_paper_mix(default_stats: DatasetStats) -> None:
    _assert_calibrated(default_stats)
    assert default_stats.length_min >= 2 and default_stats.length_median <= 4
    assert set(default_stats.action_counts) == set(PAPER_MIX)


def test_another_seed_is_calibrated_too() -> None:
    _assert_calibrated(compute_stats(generate_sessions(200, seed=1), oracle=False))


@pytest.mark.slow
def test_two_thousand_sessions_are_calibrated() -> None:
    _assert_calibrated(compute_stats(generate_sessions(2000, seed=0), oracle=False))


def test_most_sessions_are_abandoned_but_some_buy(default_sessions: list[Session]) -> None:
    endings = Counter(s.steps[-1].action.type == "terminate" for s in default_sessions)
    assert endings[True] >= 0.7 * len(default_sessions)
    purchases = [s for s in default_sessions if s.steps[-1].action.type != "terminate"]
    assert purchases, "a shop converts a small share of visits, not none"
    assert all(s.steps[-1].action.name == "order_summary.place_your_order" for s in purchases)


def test_typed_text_is_search_queries_and_refinements(default_sessions, default_stats) -> None:
    kinds = default_stats.typed_kinds
    searches = kinds.get("search", 0) + kinds.get("refined search", 0)
    assert searches / sum(kinds.values()) >= 0.8, kinds
    assert kinds.get("refined search", 0) > 0
    assert searches + kinds.get("filter", 0) >= 0.95 * sum(kinds.values())


def test_no_checkout_personal_field_typing(default_sessions, default_stats) -> None:
    assert "personal field" not in default_stats.typed_kinds
    for session in default_sessions:
        for step in session.steps:
            for action in (step.action, step.meta["oracle_action"]):
                if isinstance(action, dict):
                    if action["type"] != "type_and_submit":
                        continue
                    name, text = action["name"], action["text"]
                elif action.type == "type_and_submit":
                    name, text = action.name, action.text
                else:
                    continue
                assert name not in PERSONAL_FIELDS, (session.session_id, name)
                assert not re.search(r"\d{3}-555-\d{4}", text), text


def test_sessions_are_realistic_flows(default_sessions: list[Session]) -> None:
    first = Counter(s.steps[0].action.name for s in default_sessions)
    assert first["search_input"] >= 0.8 * len(default_sessions), first
    pages = Counter(step.meta["page_type"] for s in default_sessions for step in s.steps)
    assert set(pages) == {"home", "search", "product", "cart", "checkout"}
    viewed = sum(any(st.meta["page_type"] == "product" for st in s.steps) for s in default_sessions)
    assert 0.3 <= viewed / len(default_sessions) <= 0.8
    refined = sum(sum(st.action.name == "search_input" for st in s.steps) > 1 for s in default_sessions)
    assert refined >= 0.1 * len(default_sessions)


def test_statistics_are_deterministic_by_seed(default_sessions: list[Session]) -> None:
    again = generate_sessions(200, seed=0)
    assert [s.to_dict() for s in again] == [s.to_dict() for s in default_sessions]
    other = generate_sessions(200, seed=3)
    assert [s.to_dict() for s in other] != [s.to_dict() for s in default_sessions]


def test_oracle_ceiling_is_computed_on_the_test_split(default_sessions, default_stats) -> None:
    oracle = default_stats.oracle
    test_steps = sum(len(s.steps) for s in select_split(default_sessions, "test"))
    assert oracle.states == test_steps > 0
    assert oracle.exact_match is not None and 0.25 <= oracle.exact_match <= 0.9
    assert oracle.expected is not None and abs(oracle.exact_match - oracle.expected) < 0.1


def test_oracle_ceiling_is_not_computable_without_oracle_meta() -> None:
    from shop_env.actions import Action
    from shop_env.sessions import Step

    plain = [Session(f"p{i}", [Step("u", "<html/>", Action("terminate"))]) for i in range(30)]
    stats = compute_stats(plain)
    assert stats.oracle.exact_match is None and "oracle_action" in stats.oracle.reason


@pytest.mark.parametrize("name, before, kind", [
    ("search_input", False, "search"), ("search_input", True, "refined search"),
    ("header.search.field_keywords", False, "search"), ("price_max", True, "filter"),
    ("review_search", False, "review search"), ("coupon_code", False, "coupon"), ("quantity", False, "quantity"),
    ("full_name", False, "personal field"), ("phone_number", False, "personal field"),
    ("checkout.zip_postal_code", False, "personal field"), ("shipping_zip", False, "personal field"),
    ("gift_message", False, "other"),
])
def test_typed_text_kind(name: str, before: bool, kind: str) -> None:
    assert typed_text_kind(name, before) == kind


def test_cli_prints_the_calibration_statistics(capsys) -> None:
    assert main([DEFAULT_SOURCE]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^200 sessions, \d+ steps from synthetic:200\?seed=0", out, re.M)
    for kind in PAPER_MIX:
        assert re.search(rf"^\s+{kind}\s+\d+\s+\d+\.\d%$", out, re.M), kind
    assert re.search(r"^session length: mean \d+\.\d\d, median \d+, min 2, max \d+$", out, re.M)
    assert re.search(r"^sessions ending in terminate: \d+/200 \(\d+\.\d%\)$", out, re.M)
    assert re.search(r"^typed text: search \d+ \(", out, re.M)
    assert re.search(r"^oracle ceiling \(test split exact match\): 0\.\d{4} on \d+ states", out, re.M)
    assert "observable ceiling" not in out  # opt-in: it takes minutes on a real split


def test_observable_ceiling_is_the_bayes_agents_exact_match_on_the_test_split(tmp_path, capsys) -> None:
    """The CLI's observable ceiling is what the `bayes` agent scores on the same test states."""
    from agents import BayesAgent
    from agents.evaluation import evaluate
    from shop_env.observations import build_states

    source = "synthetic:40?seed=2"
    assert main([source, "--observable-ceiling", "20"]) == 0
    out = capsys.readouterr().out
    found = re.search(r"^observable ceiling \(test split exact match of the bayes agent, given only the session "
                      r"so far\): (0\.\d{4}) on (\d+) states; expected (0\.\d{4})$", out, re.M)
    assert found, out
    test = select_split(generate_sessions(40, seed=2), "test")
    states = build_states(test, context="latest-step")
    metrics = evaluate(BayesAgent.from_states(states, samples_per_category=20), states, tmp_path, progress=False)
    assert int(found.group(2)) == len(states)
    assert float(found.group(1)) == pytest.approx(metrics["exact_match"], abs=1e-4)
    oracle = float(re.search(r"^oracle ceiling \(test split exact match\): (0\.\d{4})", out, re.M).group(1))
    assert 0 < float(found.group(3)) < 1 and float(found.group(1)) <= oracle + 0.15


def test_observable_ceiling_is_not_computable_off_the_shop(tmp_path, capsys) -> None:
    from shop_env.sessions import write_jsonl

    renamed = [replace(s, session_id=f"user-{i}") for i, s in enumerate(generate_sessions(40, seed=1))]
    path = tmp_path / "renamed.jsonl"
    write_jsonl(renamed, path)
    assert main([str(path), "--observable-ceiling", "5"]) == 0
    assert re.search(r"^observable ceiling: n/a \(.*not a synthetic session id", capsys.readouterr().out, re.M)
    assert main([str(path), "--observable-ceiling", "-1"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
