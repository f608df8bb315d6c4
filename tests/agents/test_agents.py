"""Agent protocol, make_agent specs, and the baseline agents on real sessions and states."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents import (
    AGENT_SPECS,
    Agent,
    HeuristicAgent,
    MajorityAgent,
    OracleAgent,
    RandomAgent,
    make_agent,
)
from shop_env.actions import Action, parse_response
from shop_env.observations import build_states
from shop_env.sessions import Session, Step, read_jsonl, write_jsonl
from shop_env.webpage.reader import page_elements

HOME = (
    '<header><input type="text" name="search_input" aria-label="Search"><button name="search_bar.search">Search</button>'
    '<a name="header.cart">Cart</a></header>'
    '<section><a name="recommended.trail_running_shoes.view_product">Trail running shoes</a></section>'
)
RESULTS = (
    '<header><input type="text" name="search_input" value="tent"><a name="header.cart">Cart</a></header>'
    '<div><a name="sort.price_low_to_high">Price: Low to High</a>'
    '<a name="search_results.alpine_2_person_tent.view_product">View product</a>'
    '<a name="search_results.dome_tent.view_product">View product</a></div>'
)
PRODUCT = (
    '<header><input type="text" name="search_input"><a name="header.cart">Cart</a></header>'
    '<h1>Alpine 2-Person Tent</h1><input type="number" name="quantity" value="1">'
    '<button name="buy_box.add_to_cart">Add to Cart</button><button name="buy_box.buy_now">Buy Now</button>'
)
CART = (
    '<header><input type="text" name="search_input"><a name="header.cart">Cart</a></header>'
    '<input type="text" name="coupon_code"><button name="cart_summary.proceed_to_checkout">Proceed to Checkout</button>'
)
CHECKOUT = (
    '<input type="text" name="full_name"><button name="order_summary.place_your_order">Place your order</button>'
)
BASE = "https://shop.example"


def shopping_session(sid: str, query: str = "tent") -> Session:
    """home -> results -> product -> cart -> checkout (type, order) -> done, with oracle meta."""
    plan = [
        (f"{BASE}/", HOME, Action("type_and_submit", "search_input", query)),
        (f"{BASE}/s?k={query}", RESULTS, Action("click", "search_results.alpine_2_person_tent.view_product")),
        (f"{BASE}/dp/B01/alpine", PRODUCT, Action("click", "buy_box.add_to_cart")),
        (f"{BASE}/cart", CART, Action("click", "cart_summary.proceed_to_checkout")),
        (f"{BASE}/checkout/shipping", CHECKOUT, Action("type_and_submit", "full_name", "Ann Lee")),
        (f"{BASE}/checkout/shipping", CHECKOUT, Action("click", "order_summary.place_your_order")),
        (f"{BASE}/thanks", "<p>Thank you</p>", Action("terminate")),
    ]
    steps = []
    for index, (url, html, action) in enumerate(plan):
        # The shopper model's most likely action: the gold one, except one sampled detour.
        oracle = Action("click", "search_results.dome_tent.view_product") if index == 1 and sid.endswith("2") else action
        meta = {"oracle_action": oracle.to_dict(), "oracle_prob": 0.8, "page_type": "x"}
        steps.append(Step(url, html, action, rationale="I want a tent.", timestamp=float(index), meta=meta))
    return Session(sid, steps, source="synthetic")


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> list[Session]:
    # Round-trip through the canonical JSONL so the agents see what loaders produce.
    path = tmp_path_factory.mktemp("data") / "sessions.jsonl"
    write_jsonl([shopping_session(f"s-{i}", q) for i, q in enumerate(["tent", "boots", "tent"])], path)
    return read_jsonl(path)


@pytest.fixture(scope="module")
def states(sessions: list[Session]) -> list:
    return build_states(sessions)


def test_page_elements_reads_names_and_kinds() -> None:
    elements = {e.name: e for e in page_elements(PRODUCT + '<select name="size"></select><div role="searchbox" name="q"></div>')}
    assert elements["search_input"].kind == "input"
    assert elements["quantity"].kind == "input"
    assert elements["size"].kind == "input" and elements["q"].kind == "input"
    assert elements["buy_box.add_to_cart"].kind == "click"
    assert elements["buy_box.add_to_cart"].text == "Add to Cart"


@pytest.mark.parametrize("html", ["", "no markup", "<<<>>>", "<a name='x'", "\x00\ufffd", "<a name=''>x</a>"])
def test_page_elements_is_lenient(html: str) -> None:
    assert all(e.name for e in page_elements(html))


@pytest.mark.parametrize("spec", ["random", "majority", "heuristic", "oracle"])
def test_baselines_answer_valid_responses(spec: str, states: list) -> None:
    agent = make_agent(spec, states=states) if spec in ("majority", "oracle") else make_agent(spec)
    assert isinstance(agent, Agent)
    answers = agent.act_batch([s.observation for s in states])
    assert len(answers) == len(states)
    for state, text in zip(states, answers, strict=True):
        response = parse_response(text)
        assert response.rationale.strip()
        assert json.loads(text)["action"] == response.action.to_dict()
        if response.action.type in ("click", "type_and_submit"):
            names = {e.name for e in page_elements(state.observation["html"])}
            if spec != "majority":  # majority may fall back to a name the page lacks
                assert response.action.name in names


def test_random_agent_is_seeded_and_types_only_into_inputs(states: list) -> None:
    observations = [s.observation for s in states]
    first = RandomAgent(seed=3).act_batch(observations)
    assert first == RandomAgent(seed=3).act_batch(observations)
    assert first != RandomAgent(seed=4).act_batch(observations)
    for seed in range(10):
        for state, text in zip(states, RandomAgent(seed).act_batch(observations), strict=True):
            action = parse_response(text).action
            if action.type == "type_and_submit":
                kinds = {e.name: e.kind for e in page_elements(state.observation["html"])}
                assert kinds[action.name] == "input" and action.text.strip()


def test_random_agent_terminates_on_an_empty_page() -> None:
    text = RandomAgent().act({"url": "", "html": "", "history": "[]", "session_id": "s", "step": 0})
    assert parse_response(text).action == Action("terminate")


def test_majority_agent_fits_type_and_names(states: list) -> None:
    agent = MajorityAgent.fit(states)
    assert agent.action_type == "click"
    assert agent.names["type_and_submit"] == ["full_name", "search_input"]  # 3 each; ties alphabetical
    assert agent.texts == ["Ann Lee", "tent", "boots"]
    # On the cart page it picks the most frequent click name that exists there.
    cart = next(s for s in states if "cart_summary" in s.observation["html"])
    assert parse_response(agent.act(cart.observation)).action == Action("click", "cart_summary.proceed_to_checkout")


def test_majority_agent_needs_data() -> None:
    with pytest.raises(ValueError, match="at least one"):
        MajorityAgent.fit([])
    with pytest.raises(ValueError, match="states"):
        make_agent("majority")


def test_heuristic_follows_a_purchase(states: list) -> None:
    session = [s for s in states if s.session_id == "s-0"]
    actions = [parse_response(HeuristicAgent().act(s.observation)).action for s in session]
    assert actions[0].type == "type_and_submit" and actions[0].name == "search_input"
    assert actions[1] == Action("click", "search_results.alpine_2_person_tent.view_product")
    assert actions[2] == Action("click", "buy_box.add_to_cart")
    assert actions[3] == Action("click", "cart_summary.proceed_to_checkout")
    assert actions[4] == Action("type_and_submit", "full_name", "Alex Morgan")
    assert actions[5] == Action("click", "order_summary.place_your_order")  # full_name already typed
    assert actions[6] == Action("terminate")


def test_oracle_answers_the_oracle_action(states: list, sessions: list[Session]) -> None:
    for agent in (OracleAgent.from_states(states), OracleAgent.from_sessions(sessions)):
        for state in states:
            predicted = parse_response(agent.act(state.observation)).action
            assert predicted.to_dict() == state.meta["oracle_action"]
    with pytest.raises(KeyError, match="no oracle action"):
        OracleAgent.from_states(states).act({"session_id": "unknown", "step": 0})


def test_oracle_without_meta_is_a_clear_error(states: list) -> None:
    bare = build_states([Session("plain", [Step(BASE, HOME, Action("terminate"))])])
    with pytest.raises(ValueError, match="plain.*oracle_action"):
        OracleAgent.from_states(bare)
    agent = OracleAgent.from_states(bare, fallback_to_gold=True)
    assert parse_response(agent.act(bare[0].observation)).action == Action("terminate")
    with pytest.raises(ValueError, match="oracle"):
        make_agent("oracle")


@pytest.mark.parametrize("spec", ["gpt", "hf:", "openai:model", "openai:@http://x", "nope:thing", ""])
def test_make_agent_rejects_bad_specs_listing_valid_forms(spec: str) -> None:
    with pytest.raises(ValueError) as info:
        make_agent(spec)
    assert "valid forms" in str(info.value) or "openai:MODEL@URL" in str(info.value)


def test_valid_forms_are_listed() -> None:
    with pytest.raises(ValueError) as info:
        make_agent("bogus")
    for form in AGENT_SPECS:
        assert form in str(info.value)


def test_vllm_agent_without_vllm_says_how_to_install() -> None:
    pytest.importorskip("torch")  # any env: vLLM is not installed in the test venv
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"pip install 'shop-r1\[vllm\]'"):
            make_agent("vllm:/models/none")
    else:  # pragma: no cover - a machine with vLLM
        pytest.skip("vLLM is installed")


def test_importing_agents_does_not_import_torch() -> None:
    code = (
        "import sys, agents\n"
        "agents.make_agent('random'); agents.OpenAICompatibleAgent; agents.TransformersAgent\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


observations = st.fixed_dictionaries({
    "url": st.text(max_size=40),
    "html": st.one_of(st.text(max_size=200), st.just(RESULTS), st.just(CART),
                      st.builds(lambda a, b: a + b, st.sampled_from([HOME, PRODUCT]), st.text(max_size=50))),
    "history": st.one_of(st.just("[]"), st.text(max_size=30),
                         st.just('[{"url": "", "html": null, "action": {"type": "click", "name": "x.place_your_order"}}]')),
    "session_id": st.text(max_size=10),
    "step": st.integers(0, 50),
})


@given(observations)
def test_baselines_never_crash_on_odd_observations(observation: dict) -> None:
    for agent in (RandomAgent(), HeuristicAgent(), MajorityAgent("click", {"click": ["header.cart"]}, [])):
        parse_response(agent.act(observation))


def test_heuristic_picks_product_options_before_adding_to_cart() -> None:
    page = PRODUCT + '<button name="colour_options.white">White</button><button name="size_options.m">M</button>'
    agent = HeuristicAgent()
    steps = [
        (f"{BASE}/dp/B01/alpine", "colour_options.white"),
        (f"{BASE}/dp/B01/alpine?colour=White", "size_options.m"),
        (f"{BASE}/dp/B01/alpine?colour=White&size=M", "buy_box.add_to_cart"),
    ]
    for url, expected in steps:
        observation = {"url": url, "html": page, "history": "[]", "session_id": "s", "step": 1}
        assert parse_response(agent.act(observation)).action == Action("click", expected)
    assert isinstance(make_agent(" Heuristic "), HeuristicAgent)
