"""The simulated shop: catalog, raw pages, shopper sessions, gold targets, CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shop_env.actions import ACTION_TYPES, Action
from shop_env.sessions import Session, Step, read_jsonl, select_split, write_jsonl
from shop_env.synthetic import (
    CATEGORIES,
    build_catalog,
    generate_session,
    generate_sessions,
    oracle_ceiling,
    sample_page,
)
from shop_env.synthetic.search import search
from shop_env.synthetic.views import SearchFilters
from shop_env.webpage.prune import prune_html

KB = 1024
N_FAST = 24
PAGE_KINDS = ("home", "search", "product", "cart", "checkout")


def _without_raw(sessions: list[Session]) -> list[dict]:
    out = []
    for session in sessions:
        record = session.to_dict()
        for step in record["steps"]:  # to_dict shares the meta dict: copy, never mutate it
            step["meta"] = {k: v for k, v in step.get("meta", {}).items() if k != "raw_html"}
        out.append(record)
    return out


@pytest.fixture(scope="module")
def sessions() -> list[Session]:
    """A few sessions with their raw pages kept (generated once for the module)."""
    return generate_sessions(N_FAST, seed=0, keep_raw=True)


@pytest.fixture(scope="module")
def steps(sessions: list[Session]) -> list[Step]:
    return [step for session in sessions for step in session.steps]


# -- catalog -------------------------------------------------------------------------


def test_catalog_has_enough_products_and_categories() -> None:
    catalog = build_catalog(0)
    assert len(CATEGORIES) >= 8
    assert len(catalog) >= 500
    assert set(catalog.by_category) == {spec.key for spec in CATEGORIES}
    assert all(len(items) >= 40 for items in catalog.by_category.values())
    titles = [p.title for p in catalog.products]
    assert len(set(titles)) == len(titles), "titles must be unique (card names derive from them)"
    assert len({p.slug for p in catalog.products}) == len(titles)
    for p in catalog.products:
        assert p.brand and p.description and p.colours
        assert p.price > 0 and 1.0 <= p.rating <= 5.0 and p.review_count >= 1


def test_catalog_is_deterministic_by_seed() -> None:
    fresh = build_catalog.__wrapped__(0)
    assert [p.title for p in fresh.products] == [p.title for p in build_catalog(0).products]
    assert [p.title for p in build_catalog.__wrapped__(1).products] != [p.title for p in fresh.products]
    with pytest.raises(ValueError, match="per_category"):
        build_catalog.__wrapped__(0, per_category=0)


# -- raw pages -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", PAGE_KINDS)
def test_sample_pages_are_realistically_big_and_prune_small(kind: str) -> None:
    raw = sample_page(kind)
    assert 300 * KB <= len(raw.encode()) <= 1536 * KB
    for clutter in ("<script", "<style", "<svg", "<meta", "<link", 'hidden style="display:none"',
                    'width="1" height="1"', "data-section=", "<footer"):
        assert clutter in raw, clutter
    page = prune_html(raw)
    assert len(raw) >= 10 * len(page.html)
    assert "search_input" in page.elements
    assert sample_page(kind) == raw, "same kind and seed, same page"


def test_sample_search_page_is_about_1_4_mb() -> None:
    raw = sample_page("search", seed=3)
    assert 1300 * KB <= len(raw.encode()) <= 1500 * KB
    names = prune_html(raw).elements
    assert any(re.fullmatch(r"search_results\.[a-z0-9_]+\.view_product", name) for name in names)
    assert any(name.startswith("sponsored.") for name in names)
    assert {"price_min", "price_max", "pagination.next"} <= set(names)


def test_sample_page_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown page kind 'faq'"):
        sample_page("faq")


def test_generated_raw_pages_are_in_range(steps: list[Step]) -> None:
    sizes = [len(step.meta["raw_html"].encode()) for step in steps]
    assert min(sizes) >= 300 * KB and max(sizes) <= 1536 * KB
    search_sizes = [s for s, step in zip(sizes, steps, strict=True) if step.meta["page_type"] == "search"]
    assert search_sizes and max(search_sizes) > 700 * KB


# -- sessions ------------------------------------------------------------------------


def test_same_seed_same_sessions_and_prefix_property(sessions: list[Session]) -> None:
    again = generate_sessions(4, seed=0)
    assert _without_raw(again) == _without_raw(sessions[:4])
    assert _without_raw([generate_session(0, 7)]) == _without_raw([sessions[7]])
    other = generate_sessions(2, seed=1)
    assert [s.session_id for s in other] == ["syn-s1-000000", "syn-s1-000001"]
    assert _without_raw(other)[0]["steps"] != _without_raw(sessions)[0]["steps"]


def test_sessions_do_not_depend_on_hash_randomisation(sessions: list[Session]) -> None:
    code = ("import json, sys; from shop_env.synthetic import generate_sessions; "
            "json.dump([s.to_dict() for s in generate_sessions(2, seed=0)], sys.stdout)")
    for hash_seed in ("1", "987"):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                              check=True, env={**os.environ, "PYTHONHASHSEED": hash_seed})
        assert json.loads(done.stdout) == _without_raw(sessions[:2])


def test_session_fields(sessions: list[Session]) -> None:
    for i, session in enumerate(sessions):
        assert session.session_id == f"syn-s0-{i:06d}"
        assert session.source == "synthetic"
        assert session.user_id and session.user_id.startswith("syn-u0-")
        assert isinstance(session.persona, dict) and session.persona["shopping_for"]
        assert 2 <= len(session.steps) <= 30
        stamps = [step.timestamp for step in session.steps]
        assert all(a < b for a, b in zip(stamps, stamps[1:], strict=False))
        assert session.steps[0].action.type != "terminate"
        last = session.steps[-1].action
        assert last.type == "terminate" or last.name == "order_summary.place_your_order"
        assert all(step.action.type != "terminate" for step in session.steps[:-1])


def test_step_meta_and_urls(steps: list[Step]) -> None:
    for step in steps:
        assert step.url.startswith("https://shop.example/")
        assert step.meta["page_type"] in PAGE_KINDS
        assert 0.0 < step.meta["oracle_prob"] <= 1.0
        oracle = Action.from_dict(step.meta["oracle_action"])
        assert oracle.type in ACTION_TYPES
        assert step.action.type in ("click", "type_and_submit", "terminate")


def test_gold_and_oracle_targets_are_pruned_page_elements(steps: list[Step]) -> None:
    for step in steps:
        elements = prune_html(step.meta["raw_html"]).elements
        stored = prune_html(step.html).elements
        for action in (step.action, Action.from_dict(step.meta["oracle_action"])):
            if action.type == "terminate":
                continue
            assert action.name in elements, (step.url, action)
            assert action.name in stored
            assert f'name="{action.name}"' in step.html
            expected_kind = "input" if action.type == "type_and_submit" else "click"
            assert elements[action.name].kind == expected_kind, action
            if action.type == "type_and_submit":
                assert action.text.strip()


def test_stored_pages_are_pruned_small_and_idempotent(steps: list[Step]) -> None:
    for step in steps:
        raw = step.meta["raw_html"]
        assert step.html == prune_html(raw).html
        assert len(raw) >= 10 * len(step.html)
        assert prune_html(step.html).html == step.html
        assert "<script" not in step.html and "<style" not in step.html


def test_rationales_are_first_person_and_terminate_means_leaving(steps: list[Step]) -> None:
    for step in steps:
        assert step.rationale and re.search(r"\b(I|I'm|I'll|I've|me|my|Let me)\b", step.rationale)
        assert "{" not in step.rationale, "unfilled template slot"
        if step.action.type == "terminate":
            assert re.search(r"leav|without (buying|purchasing)", step.rationale)
    assert len({step.rationale for step in steps}) > len(steps) // 3, "wording should vary"


def test_action_mix_and_page_kinds(steps: list[Step]) -> None:
    # The calibrated mix and the full set of page kinds are checked on the default data set
    # (tests/shop_env/test_synthetic_calibration.py); a couple of dozen sessions only sketch them.
    types = Counter(step.action.type for step in steps)
    assert max(types.values()) / len(steps) <= 0.5, types
    assert types["type_and_submit"] and types["terminate"] and types["click"]
    assert {"home", "search", "product"} <= {step.meta["page_type"] for step in steps} <= set(PAGE_KINDS)
    typed = [step.action.name for step in steps if step.action.type == "type_and_submit"]
    assert typed.count("search_input") / len(typed) >= 0.7, Counter(typed)


def test_jsonl_round_trip(sessions: list[Session], tmp_path) -> None:
    slim = [
        Session(s.session_id, [Step(x.url, x.html, x.action, x.rationale, x.timestamp,
                                    {k: v for k, v in x.meta.items() if k != "raw_html"}) for x in s.steps],
                s.user_id, s.persona, s.source)
        for s in sessions
    ]
    path = tmp_path / "syn.jsonl"
    assert write_jsonl(slim, path) == len(slim)
    back = read_jsonl(path)
    assert [s.to_dict() for s in back] == [s.to_dict() for s in slim] == _without_raw(sessions)


def test_oracle_ceiling() -> None:
    plain = Session("x", [Step("u", "<body></body>", Action("terminate"))])
    assert oracle_ceiling([plain]) == 0.0
    steps = [Step("u", "h", Action("terminate"), meta={"oracle_prob": p}) for p in (0.2, 0.6)]
    assert oracle_ceiling([Session("y", steps), plain]) == pytest.approx(0.4)


def test_generate_sessions_rejects_negative_count() -> None:
    assert generate_sessions(0) == []
    with pytest.raises(ValueError, match="n must be >= 0"):
        generate_sessions(-1)


@pytest.mark.slow
def test_two_hundred_sessions_mix_lengths_and_ceiling() -> None:
    sessions = generate_sessions(200, seed=0)
    steps = [step for s in sessions for step in s.steps]
    types = Counter(step.action.type for step in steps)
    assert max(types.values()) / len(steps) <= 0.5, types
    assert all(2 <= len(s.steps) <= 30 for s in sessions)
    test = select_split(sessions, "test")
    assert 0.2 < oracle_ceiling(test) < 0.95


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(-(2**40), 2**40), index=st.integers(0, 10**6))
def test_any_seed_gives_a_valid_session(seed: int, index: int) -> None:
    session = generate_session(seed, index)
    assert session.session_id == f"syn-s{seed}-{index:06d}"
    assert 2 <= len(session.steps) <= 30
    for step in session.steps:
        if step.action.type != "terminate":
            assert step.action.name in prune_html(step.html).elements


# -- search engine and renderer fuzzing -----------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=st.text(max_size=40), price_max=st.none() | st.integers(-5, 10_000), page=st.integers(-3, 50),
       sort=st.sampled_from(["relevance", "price-asc", "price-desc", "rating", "bogus"]))
def test_search_never_crashes_and_pages_stay_in_range(query: str, price_max, page: int, sort: str) -> None:
    view = search(build_catalog(0), query, SearchFilters(price_max=price_max), sort, page)
    assert 1 <= view.page <= view.n_pages
    assert len(view.results) <= 12
    if price_max is not None:
        assert all(p.price <= price_max for p in view.results)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30))
def test_any_typed_query_renders_and_prunes(query: str) -> None:
    from shop_env.synthetic.render import render_search

    page = prune_html(render_search(search(build_catalog(0), query)))
    assert page.elements["search_input"].kind == "input"


# -- CLI -----------------------------------------------------------------------------


def test_cli_writes_sessions_and_prints_summary(tmp_path) -> None:
    out = tmp_path / "data" / "syn.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "shop_env.synthetic", "--sessions", "3", "--seed", "5", "--out", str(out),
         "--no-progress"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "wrote 3 sessions" in done.stdout
    assert re.search(r"train: \d+ sessions", done.stdout) and re.search(r"test: \d+ sessions", done.stdout)
    assert "action types:" in done.stdout and "oracle ceiling" in done.stdout
    back = read_jsonl(out)
    assert [s.session_id for s in back] == [f"syn-s5-{i:06d}" for i in range(3)]
    assert all("raw_html" not in step.meta for s in back for step in s.steps)
    json.loads(out.read_text().splitlines()[0])


def test_cli_help_and_bad_arguments(capsys) -> None:
    from shop_env.synthetic.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "--sessions" in capsys.readouterr().out
    assert main(["--sessions", "-1", "--out", "x.jsonl"]) == 2
    with pytest.raises(SystemExit):
        main(["--sessions", "3"])  # --out is required
