"""Baseline agents: random, majority, hand-written heuristics, the synthetic oracle and its
observable counterpart (the Bayes-optimal answer given the session so far).

Every baseline answers a valid response (docs/architecture.md §4) built with
:class:`shop_env.actions.Response`, so their scores measure the action, never the format.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agents.base import BaseAgent, Observation
from shop_env.actions import Action, FormatError, Response
from shop_env.webpage.reader import PageElement, page_elements

# Fallback search queries when the page offers no words to reuse.
_QUERIES = ("running shoes", "tent", "coffee maker", "wireless headphones", "backpack", "desk lamp")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")
# Element-name parts that place an order (the end of a purchase).
_ORDER_KEYS = ("place_order", "place_your_order", "confirm_order", "submit_order", "pay_now")
_STOPWORDS = frozenset({"the", "and", "for", "with", "view", "add", "cart", "buy", "now", "more", "see"})


def rationale_for(action: Action, element: PageElement | None = None) -> str:
    """A short first-person rationale for ``action`` (template; no model involved)."""
    label = (element.text if element and element.text else action.name.rsplit(".", 1)[-1].replace("_", " "))
    if action.type == "type_and_submit":
        if "search" in action.name.lower() or "query" in action.name.lower():
            return f"I want to look for {action.text}, so I will search for it."
        return f"I will fill in \"{label[:40]}\" with {action.text} to move on."
    if action.type == "click":
        return f"I want to open \"{label[:60]}\" because it looks like what I need next."
    if action.type == "scroll":
        return "I want to see more of this page before deciding."
    return "I have done what I came for, so I am leaving the site."


def answer(action: Action, element: PageElement | None = None, rationale: str | None = None) -> str:
    """The response JSON for ``action`` with a template (or given) rationale."""
    return Response(rationale if rationale is not None else rationale_for(action, element), action).to_json()


class RandomAgent(BaseAgent):
    """Picks a uniformly random valid action on the current page.

    An action type is drawn uniformly among those the page allows (``click`` if it has
    named clickable elements, ``type_and_submit`` if it has named text inputs, and always
    ``terminate``), then a uniform element of that kind. Text typed is a word or two from
    the page, or a stock shopping query. Draws are seeded by ``(seed, session_id, step)``
    so each answer is reproducible on its own (a resumed evaluation gets the same ones).
    """

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def act(self, observation: Observation) -> str:
        """Return a random valid response for the observation's page."""
        rng = random.Random(_seed_key(self.seed, observation))
        elements = page_elements(str(observation.get("html", "")))
        clicks = [e for e in elements if e.kind == "click"]
        inputs = [e for e in elements if e.kind == "input"]
        kinds = [k for k, pool in (("click", clicks), ("type_and_submit", inputs)) if pool] + ["terminate"]
        kind = rng.choice(kinds)
        if kind == "click":
            element = rng.choice(clicks)
            return answer(Action("click", element.name), element)
        if kind == "type_and_submit":
            element = rng.choice(inputs)
            return answer(Action("type_and_submit", element.name, _plausible_query(rng, elements)), element)
        return answer(Action("terminate"))

    def __repr__(self) -> str:
        return f"RandomAgent(seed={self.seed})"


class MajorityAgent(BaseAgent):
    """Answers the most frequent training action type, with its most frequent name/text.

    For ``click`` and ``type_and_submit`` it prefers the most frequent training name that
    exists on the current page (a majority vote restricted to what can be done here),
    falling back to the overall most frequent name.
    """

    name = "majority"

    def __init__(self, action_type: str, names: Mapping[str, Sequence[str]], texts: Sequence[str]) -> None:
        """Args: the majority type; per type, names by decreasing frequency; typed texts likewise."""
        self.action_type = action_type
        self.names = {kind: list(ranked) for kind, ranked in names.items()}
        self.texts = list(texts)

    @classmethod
    def fit(cls, states: Iterable[Any]) -> MajorityAgent:
        """Count gold actions of training states (anything with a ``gold`` Action).

        Raises:
            ValueError: ``states`` is empty.
        """
        types: Counter[str] = Counter()
        names: dict[str, Counter[str]] = {}
        texts: Counter[str] = Counter()
        for state in states:
            gold: Action = state.gold
            types[gold.type] += 1
            if gold.name:
                names.setdefault(gold.type, Counter())[gold.name] += 1
            if gold.type == "type_and_submit" and gold.text:
                texts[gold.text] += 1
        if not types:
            raise ValueError("MajorityAgent.fit needs at least one training state")
        return cls(
            _most_common(types)[0],
            {kind: _most_common(counter) for kind, counter in names.items()},
            _most_common(texts),
        )

    def act(self, observation: Observation) -> str:
        """Return the majority action, its name chosen among those on the page if possible."""
        kind = self.action_type
        if kind not in ("click", "type_and_submit"):
            return answer(Action(kind))
        ranked = self.names.get(kind, [])
        on_page = {e.name: e for e in page_elements(str(observation.get("html", "")))}
        name = next((n for n in ranked if n in on_page), ranked[0] if ranked else "")
        text = self.texts[0] if (kind == "type_and_submit" and self.texts) else ""
        return answer(Action(kind, name, text), on_page.get(name))

    def __repr__(self) -> str:
        return f"MajorityAgent(action_type={self.action_type!r})"


class HeuristicAgent(BaseAgent):
    """Hand rules a goal-directed shopper might follow, read off element names and the URL.

    In order: leave after placing an order; on checkout, fill each empty address field
    (not yet typed into this session) and then place the order; on a product page, pick a
    colour and a size if none is chosen, then add to cart; go to checkout from the cart;
    search from the home page; open the first search result (else any product); search
    if there is a search box; leave.
    """

    name = "heuristic"

    def act(self, observation: Observation) -> str:
        """Return the first rule's action that applies to the observation."""
        elements = page_elements(str(observation.get("html", "")))
        clicks = [e for e in elements if e.kind == "click"]
        inputs = [e for e in elements if e.kind == "input"]
        history = _history_actions(observation)
        url = str(observation.get("url", "")).lower()
        if history and any(key in str(history[-1].get("name", "")).lower() for key in _ORDER_KEYS):
            return answer(Action("terminate"))
        if "/checkout" in _url_path(observation):
            typed = {a.get("name") for a in history if a.get("type") == "type_and_submit"}
            for field in inputs:
                value = _field_value(field.name)
                if value and field.name not in typed:
                    return answer(Action("type_and_submit", field.name, value), field)
        order = _first_named(clicks, _ORDER_KEYS)
        if order:
            return answer(Action("click", order.name), order)
        if _is_product_page(observation):
            for section, param in (("colour_options", "colour="), ("size_options", "size=")):
                option = next((e for e in clicks if e.name.startswith(section + ".")), None)
                if option and param not in url:
                    return answer(Action("click", option.name), option)
        element = _first_named(clicks, ("add_to_cart",))
        if element:
            return answer(Action("click", element.name), element)
        if not _is_product_page(observation):
            element = _first_named(clicks, ("checkout",))
            if element:
                return answer(Action("click", element.name), element)
        search = _first_named(inputs, ("search", "query", "q")) or (inputs[0] if inputs else None)
        if search and _is_home(observation):
            return answer(Action("type_and_submit", search.name, _query_from(elements)), search)
        product = (next((e for e in clicks if e.name.startswith("search_results.")), None)
                   or _first_named(clicks, ("view_product", "product", "result", "item")))
        if product:
            return answer(Action("click", product.name), product)
        if search:
            return answer(Action("type_and_submit", search.name, _query_from(elements)), search)
        return answer(Action("terminate"))


class _LookupAgent(BaseAgent):
    """An agent whose answers were computed ahead for each ``(session_id, step)`` it may be asked."""

    #: What the lookup holds, for the error of a state it lacks.
    answer_kind = "answer"

    def __init__(self, lookup: Mapping[tuple[str, int], Action]) -> None:
        self.lookup = dict(lookup)

    def act(self, observation: Observation) -> str:
        """Return the precomputed answer of the observation's (session_id, step).

        Raises:
            KeyError: the agent was not built with that state.
        """
        key = (str(observation.get("session_id")), int(observation.get("step", -1)))
        action = self.lookup.get(key)
        if action is None:
            raise KeyError(f"{type(self).__name__} has no {self.answer_kind} for session {key[0]!r} step {key[1]}")
        return answer(action)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(states={len(self.lookup)})"


class OracleAgent(_LookupAgent):
    """Answers the synthetic shopper model's most likely action for each state.

    The observation does not carry it, so the oracle holds a lookup
    ``(session_id, step) -> Action`` built from states or sessions whose step meta has
    ``oracle_action`` (as :func:`shop_env.synthetic.generate_sessions` writes). Its exact
    match rate is the ceiling any agent can expect on average on synthetic data.
    """

    name = "oracle"
    answer_kind = "oracle action"

    @classmethod
    def from_states(cls, states: Iterable[Any], *, fallback_to_gold: bool = False) -> OracleAgent:
        """Build the lookup from states (``session_id``, ``step``, ``meta``, ``gold``).

        Args:
            states: e.g. :func:`shop_env.observations.build_states` output.
            fallback_to_gold: use the gold action where ``meta`` has no ``oracle_action``
                (an upper-bound sanity agent on non-synthetic data) instead of raising.

        Raises:
            ValueError: a state without a usable ``meta["oracle_action"]`` (naming it).
        """
        lookup = {}
        for state in states:
            key = (str(state.session_id), int(state.step))
            lookup[key] = _oracle_action(state.meta, state.gold, key, fallback_to_gold)
        return cls(lookup)

    @classmethod
    def from_sessions(cls, sessions: Iterable[Any], *, fallback_to_gold: bool = False) -> OracleAgent:
        """Build the lookup from sessions; step ``i`` of a session is state step ``i``.

        Raises:
            ValueError: as :meth:`from_states`.
        """
        lookup = {}
        for session in sessions:
            for index, step in enumerate(session.steps):
                key = (str(session.session_id), index)
                lookup[key] = _oracle_action(step.meta, step.action, key, fallback_to_gold)
        return cls(lookup)


class BayesAgent(_LookupAgent):
    """Answers the most likely next action given only what the observation shows (synthetic data).

    The oracle reads the shopper's hidden intent; no model can. This agent answers the action
    that maximises expected exact match under the Bayes posterior predictive of the next
    action given the session's logged history
    (:func:`shop_env.synthetic.posterior.posterior_predictive`): the best any model that sees
    the pages and the past actions can expect to score, i.e. the honest ceiling of
    ``latest-step`` prompts (``whole-session`` prompts also show past rationales, which can name
    the intent: there it is a lower bound on the ceiling).
    """

    name = "bayes"

    @classmethod
    def from_states(cls, states: Iterable[Any], *, samples_per_category: int | None = None,
                    progress: bool = False) -> BayesAgent:
        """Compute the answer of every state (``session_id``, ``step``) of synthetic sessions.

        Args:
            states: e.g. :func:`shop_env.observations.build_states` output, of one synthetic shop.
            samples_per_category: intents drawn from the prior per category (None: the
                posterior module's default).
            progress: show a tqdm progress bar over sessions.

        Raises:
            ValueError: a state of a session that is not synthetic, or sessions of several shops.
        """
        from rewards.action import exact_match
        from shop_env.synthetic.posterior import DEFAULT_SAMPLES_PER_CATEGORY, best_answer, session_posteriors

        def exact(pred: Action, gold: Action) -> float:
            return float(exact_match(pred, gold))

        wanted = {(str(s.session_id), int(s.step)) for s in states}
        posteriors = session_posteriors((sid for sid, _ in wanted),
                                        samples_per_category or DEFAULT_SAMPLES_PER_CATEGORY, progress=progress)
        lookup = {key: best_answer(posteriors[key].predictive, exact) for key in wanted if key in posteriors}
        return cls(lookup)


def _oracle_action(meta: Any, gold: Action, key: tuple[str, int], fallback_to_gold: bool) -> Action:
    raw = meta.get("oracle_action") if isinstance(meta, Mapping) else None
    if raw is None:
        if fallback_to_gold:
            return gold
        raise ValueError(f"session {key[0]!r} step {key[1]} has no meta['oracle_action'] (not synthetic data?)")
    try:
        return raw if isinstance(raw, Action) else Action.from_dict(raw, field="meta.oracle_action")
    except FormatError as err:
        raise ValueError(f"session {key[0]!r} step {key[1]}: {err}") from None


def _seed_key(seed: int, observation: Observation) -> int:
    text = f"{seed}\x00{observation.get('session_id', '')}\x00{observation.get('step', '')}"
    return int.from_bytes(hashlib.sha256(text.encode("utf-8", "replace")).digest()[:8], "big")


def _plausible_query(rng: random.Random, elements: Sequence[PageElement]) -> str:
    words = [w.lower() for e in elements if e.kind == "click" for w in _WORD.findall(e.text)]
    words = [w for w in words if w not in _STOPWORDS]
    if not words:
        return rng.choice(_QUERIES)
    return " ".join(rng.sample(words, k=min(len(words), rng.choice((1, 2)))))


def _query_from(elements: Sequence[PageElement]) -> str:
    """A deterministic query: the most common content word among the page's link texts."""
    words = [w.lower() for e in elements if e.kind == "click" for w in _WORD.findall(e.text)]
    counts = Counter(w for w in words if w not in _STOPWORDS)
    return _most_common(counts)[0] if counts else _QUERIES[0]


def _most_common(counter: Counter[str]) -> list[str]:
    # Ties broken alphabetically so fitted baselines do not depend on input order.
    return [key for key, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]


def _first_named(elements: Sequence[PageElement], keys: Sequence[str]) -> PageElement | None:
    # Short keys ("q") must be a whole name part; longer ones may be a substring of the
    # last dotted segment ("proceed_to_checkout" matches "checkout").
    for key in keys:
        for element in elements:
            lowered = element.name.lower()
            if key in re.split(r"[._\-]", lowered) or (len(key) > 3 and key in lowered.rsplit(".", 1)[-1]):
                return element
    return None


def _url_path(observation: Observation) -> str:
    url = str(observation.get("url", ""))
    path = re.sub(r"^[a-z]+://[^/]*", "", url).split("?", 1)[0].split("#", 1)[0]
    return path.rstrip("/").lower()


def _is_home(observation: Observation) -> bool:
    return _url_path(observation) in ("", "/home", "/index.html", "/index")


def _is_product_page(observation: Observation) -> bool:
    path = _url_path(observation)
    return any(part in ("product", "products", "item", "dp", "p") for part in path.split("/"))


def _history_actions(observation: Observation) -> list[dict]:
    """The past actions of the observation's history (the env stores it as a JSON string)."""
    history = observation.get("history") or []
    if isinstance(history, str):
        try:
            history = json.loads(history)
        except (ValueError, RecursionError):
            return []
    if not isinstance(history, list):
        return []
    actions = []
    for entry in history:
        action = entry.get("action") if isinstance(entry, Mapping) else None
        if isinstance(action, str):  # some writers store the action as JSON text
            try:
                action = json.loads(action)
            except (ValueError, RecursionError):
                action = None
        actions.append(action if isinstance(action, dict) else {})
    return actions


# Plausible values for address-form fields, by a word of the field's name.
_FIELD_VALUES = (
    ("name", "Alex Morgan"),
    ("street", "12 Oak Street"),
    ("address", "12 Oak Street"),
    ("city", "Denver"),
    ("zip", "80202"),
    ("postal", "80202"),
    ("phone", "555-0100"),
    ("email", "alex@example.com"),
)


def _field_value(name: str) -> str | None:
    """A value to type into an address/contact field, or None for other inputs."""
    lowered = name.lower()
    if any(skip in lowered for skip in ("search", "promo", "coupon", "quantity", "review")):
        return None
    return next((value for key, value in _FIELD_VALUES if key in lowered), None)
