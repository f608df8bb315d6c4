"""The simulated shopper: a stochastic policy over the actions a pruned page offers.

At every step the shopper reads the *pruned* page (``PrunedPage.elements``), builds a
weighted list of candidate actions that target elements of that page, and samples one.
The most likely candidate and its probability are the oracle's prediction and its
chance of being right, so their mean over a split bounds exact-match accuracy.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass, field
from typing import Any

from shop_env.actions import Action
from shop_env.synthetic import shop
from shop_env.synthetic.catalog import CATEGORY_BY_KEY, Catalog, Product
from shop_env.synthetic.intent import Intent, query_options
from shop_env.synthetic.render import CHECKOUT_FIELDS, RATING_FILTERS, SHIPPING_OPTIONS, SORT_OPTIONS
from shop_env.synthetic.search import search
from shop_env.synthetic.views import (
    CartItem,
    CartView,
    CheckoutView,
    HomeView,
    ProductView,
    SearchFilters,
    SearchView,
    View,
)
from shop_env.webpage.prune import PrunedPage, slugify

#: Hard cap on session length (the last allowed step can only be ``terminate``).
MAX_STEPS = 30
GOOD_FIT = 2.5  # utility above which a product is worth buying

# Per-step chance of leaving (see Shopper.leave_prob), calibrated on the action mix of the
# paper's Shop-CART split (about 36% click, 38% type_and_submit, 25% terminate, 3.4 steps
# per session) and on shops converting only a small share of visits.
LEAVE_HOME = 0.30
LEAVE_SEARCH = 0.39
LEAVE_PRODUCT = 0.25
LEAVE_PRODUCT_POOR = 0.45
LEAVE_CART = 0.15
LEAVE_CHECKOUT = 0.10
LEAVE_PER_STEP = 0.02
LEAVE_IMPATIENT = 0.8


@dataclass
class Candidate:
    """One action the shopper may take, with its unnormalised weight.

    ``kind`` says what the action means (for transitions and rationales); ``arg``
    carries what it is about (a product, a query, a field value...).
    """

    action: Action
    weight: float
    kind: str
    arg: Any = None


@dataclass
class Decision:
    """The sampled candidate, the most likely one and its probability, and the whole
    distribution the shopper sampled from (each distinct action with its probability)."""

    chosen: Candidate
    oracle: Candidate
    oracle_prob: float
    distribution: list[tuple[Action, float]] = field(default_factory=list)


class Targets:
    """Element names of a pruned page, looked up by (section, visible text) or field name."""

    def __init__(self, page: PrunedPage) -> None:
        self.clicks: dict[tuple[str, str], str] = {}
        self.inputs: set[str] = set()
        self.labelled: dict[tuple[str, str], str] = {}
        # Lookups repeat the same texts (product titles, labels); one Targets may serve many
        # shoppers' candidate lists on one page (shop_env.synthetic.posterior).
        self._slugs: dict[str, str] = {}
        for name, element in page.elements.items():
            if element.kind == "input":
                self.inputs.add(name)
                label = element.attrs.get("aria-label") or element.attrs.get("placeholder") or ""
                self.labelled.setdefault((element.section, slugify(label)), name)
            else:
                self.clicks.setdefault((element.section, slugify(element.text)), name)

    def click(self, section: str, text: str) -> str | None:
        """The name of the clickable element with ``text`` in ``section`` (None if absent)."""
        return self.clicks.get((section, self._slug(text)))

    def field(self, name: str) -> str | None:
        """``name`` if the page has a text field of that name."""
        return name if name in self.inputs else None

    def labelled_field(self, section: str, label: str) -> str | None:
        """The name of the text field labelled ``label`` in ``section`` (None if absent)."""
        return self.labelled.get((section, self._slug(label)))

    def _slug(self, text: str) -> str:
        slug = self._slugs.get(text)
        if slug is None:
            slug = self._slugs[text] = slugify(text)
        return slug


@dataclass
class ShopperState:
    """What the shopper has done so far in the session."""

    view: View
    cart: list[CartItem] = field(default_factory=list)
    last_search: SearchView | None = None
    searches: int = 0
    viewed: list[str] = field(default_factory=list)
    tried: set[str] = field(default_factory=set)
    home_visits: int = 0
    fields: dict[str, str] = field(default_factory=dict)
    shipping: str | None = None
    coupon: str | None = None
    step: int = 0

    @property
    def cart_count(self) -> int:
        return sum(item.quantity for item in self.cart)


class Shopper:
    """One simulated shopper with a latent :class:`Intent`, acting on a catalog's shop."""

    def __init__(self, intent: Intent, catalog: Catalog, rng: random.Random) -> None:
        self.intent = intent
        self.catalog = catalog
        self.rng = rng
        self.state = ShopperState(view=shop.home_page(catalog, rng.randrange(1000), 0))
        # Signed-in shoppers: checkout shows the account's saved shipping address.
        self.state.fields = {"full_name": intent.full_name, "street_address": intent.street_address,
                             "city": intent.city, "shipping_zip": intent.zip_code,
                             "phone_number": intent.phone_number}
        assert set(self.state.fields) == set(CHECKOUT_FIELDS)

    # -- deciding ---------------------------------------------------------------------
    def decide(self, page: PrunedPage) -> Decision:
        """Build the action distribution on ``page`` and sample from it."""
        cands = self.merged_candidates(page)
        total = sum(c.weight for c in cands)
        oracle = max(cands, key=lambda c: c.weight)  # max keeps the first on ties
        chosen = self.rng.choices(cands, weights=[c.weight for c in cands])[0]
        return Decision(chosen, oracle, oracle.weight / total, [(c.action, c.weight / total) for c in cands])

    def merged_candidates(self, page: PrunedPage, targets: Targets | None = None) -> list[Candidate]:
        """:meth:`candidates` with each distinct action once (weights added, the first kind kept)
        and zero weights dropped: the unnormalised distribution :meth:`decide` samples from.
        ``targets``: the page's :class:`Targets`, when the caller already built them."""
        return self._merge(self.candidates(page, targets))

    @staticmethod
    def _merge(cands: list[Candidate]) -> list[Candidate]:
        merged: dict[Action, Candidate] = {}
        for cand in cands:
            if cand.weight <= 0:
                continue
            if cand.action in merged:
                merged[cand.action].weight += cand.weight
            else:
                merged[cand.action] = Candidate(cand.action, cand.weight, cand.kind, cand.arg)
        return list(merged.values())

    def candidates(self, page: PrunedPage, targets: Targets | None = None) -> list[Candidate]:
        """Every action the shopper would consider on ``page``, weighted.

        After the first action, ``terminate`` (leaving without buying) gets the weight that
        makes its probability :meth:`leave_prob`: the calibrated per-step hazard. ``targets``:
        the page's :class:`Targets` when the caller built them already (else built here).
        """
        st = self.state
        if st.step >= MAX_STEPS - 1:
            return [Candidate(Action("terminate"), 1.0, "terminate", "limit")]
        targets = targets if targets is not None else Targets(page)
        view = st.view
        if isinstance(view, HomeView):
            cands = self._on_home(view, targets)
        elif isinstance(view, SearchView):
            cands = self._on_search(view, targets)
        elif isinstance(view, ProductView):
            cands = self._on_product(view, targets)
        elif isinstance(view, CartView):
            cands = self._on_cart(view, targets)
        else:
            cands = self._on_checkout(view, targets)
        stay = sum(c.weight for c in cands if c.weight > 0)
        if st.step > 0 and stay > 0:  # nobody leaves before acting at least once
            leave = self.leave_prob()
            cands.append(Candidate(Action("terminate"), stay * leave / (1.0 - leave), "terminate", "bored"))
        return cands if stay > 0 else [Candidate(Action("terminate"), 1.0, "terminate", "stuck")]

    def leave_prob(self) -> float:
        """The chance of leaving the shop at this step (after the first action).

        Calibrated so that sessions are short (about 3.4 steps) and most end in
        abandonment, as in logged shopping data: a per-page base hazard, higher for
        hesitant shoppers and growing with every step, and near-certain once the
        shopper's patience (a handful of steps) is spent. Shoppers with something in
        the cart or at checkout are less likely to walk away.
        """
        st, it = self.state, self.intent
        view = st.view
        if isinstance(view, CheckoutView):
            base = LEAVE_CHECKOUT
        elif isinstance(view, CartView):
            base = LEAVE_CART
        elif isinstance(view, ProductView):
            base = LEAVE_PRODUCT if it.utility(view.product) >= GOOD_FIT else LEAVE_PRODUCT_POOR
        elif isinstance(view, SearchView):
            base = LEAVE_SEARCH
        else:
            base = LEAVE_HOME
        hazard = base * (0.75 + 0.5 * (1.0 - it.buy_propensity)) + LEAVE_PER_STEP * max(st.step - 1, 0)
        committed = isinstance(view, (CartView, CheckoutView))  # a few more steps to finish
        if st.step >= it.patience + (4 if committed else 0):
            hazard = max(hazard, LEAVE_IMPATIENT)
        return min(max(hazard, 0.02), 0.95)

    def _click(self, targets: Targets, section: str, text: str, weight: float, kind: str,
               arg: Any = None) -> list[Candidate]:
        name = targets.click(section, text)
        return [Candidate(Action("click", name), weight, kind, arg)] if name and weight > 0 else []

    def _type(self, targets: Targets, field_name: str, text: str, weight: float, kind: str,
              arg: Any = None, *, section: str | None = None) -> list[Candidate]:
        """Type ``text`` into field ``field_name`` (or, with ``section``, the field labelled so)."""
        name = targets.field(field_name) if section is None else targets.labelled_field(section, field_name)
        return [Candidate(Action("type_and_submit", name, text), weight, kind, arg)] if name and weight > 0 else []

    def _searches(self, targets: Targets, total: float, current: str | None = None) -> list[Candidate]:
        attempt = min(self.state.searches, 2)
        options = [(q, w) for q, w in query_options(self.intent, attempt) if q != current]
        norm = sum(w for _, w in options) or 1.0
        kind = "search" if self.state.searches == 0 else "reformulate"
        out: list[Candidate] = []
        for query, weight in options:
            out += self._type(targets, "search_input", query, total * weight / norm, kind, query)
        return out

    def _product_cards(self, targets: Targets, section: str, products: list[Product],
                       scale: float) -> list[Candidate]:
        """Open-a-product candidates: a block of mass ``scale`` (less when nothing fits),
        shared by the unseen products in proportion to how well they fit."""
        fits = {p.product_id: self.intent.utility(p) for p in products}
        unseen = [p for p in products if p.product_id not in self.state.viewed]
        raw = {p.product_id: math.exp(1.5 * (fits[p.product_id] - 3.5)) for p in unseen}
        total = sum(raw.values()) or 1.0
        mass = scale * (1.0 if any(f >= GOOD_FIT for f in fits.values()) else 0.4)
        out: list[Candidate] = []
        for product in products:
            weight = mass * raw[product.product_id] / total if product.product_id in raw else 0.02
            out += self._click(targets, f"{section}.{product.slug}", "View product", weight, "view_product", product)
        return out

    # -- pages ------------------------------------------------------------------------
    def _on_home(self, view: HomeView, t: Targets) -> list[Candidate]:
        spec = CATEGORY_BY_KEY[self.intent.category]
        cands = self._searches(t, 2.0)
        cands += self._click(t, "categories", spec.label, 0.3, "nav_category", spec)
        cands += self._product_cards(t, "recommended", view.recommended, 0.15)
        cands += self._product_cards(t, "todays_deals", view.deals, 0.1)
        if self.state.cart:
            cands += self._click(t, "header", "Cart", 0.8, "open_cart")
        return cands

    def _on_search(self, view: SearchView, t: Targets) -> list[Candidate]:
        it, st, f = self.intent, self.state, view.filters
        shown = view.sponsored + view.results
        fresh_good = [p for p in shown if p.product_id not in st.viewed and it.utility(p) >= GOOD_FIT]
        cands = self._searches(t, 0.7 + (0.9 if not fresh_good else 0.0), view.query)
        bargain, quality = it.style == "bargain hunter", it.style == "quality seeker"
        if f.price_max is None and "price_max" not in st.tried:
            over = any(p.price > it.budget for p in shown)
            cands += self._type(t, "price_max", str(it.budget), (0.3 if bargain else 0.12) * over, "price_max")
        if f.price_min is None and "price_min" not in st.tried:
            cands += self._type(t, "price_min", str(int(it.budget * 0.3)), 0.1 if quality else 0.02, "price_min")
        if it.brand and f.brand is None and it.brand in view.brands and "brand" not in st.tried:
            cands += self._click(t, "filters.brand", it.brand, 0.25, "brand_filter", it.brand)
        if f.colour is None and "colour" not in st.tried:
            cands += self._click(t, "filters.colour", it.colour, 0.04, "colour_filter", it.colour)
        if f.min_rating is None and "rating" not in st.tried:
            cands += self._click(t, "filters.rating", RATING_FILTERS[4], 0.12 if quality else 0.02, "rating_filter", 4)
        if view.sort == "relevance" and "sort" not in st.tried:
            key = "price-asc" if bargain else "rating"
            cands += self._click(t, "sort", SORT_OPTIONS[key], 0.1 if (bargain or quality) else 0.02, "sort", key)
        if view.page < view.n_pages:
            cands += self._click(t, "pagination", "Next", 0.03 + 0.15 * (not fresh_good), "next_page")
        cands += self._product_cards(t, "sponsored", view.sponsored, 0.15)
        cands += self._product_cards(t, "search_results", view.results, 1.05)
        if st.cart:
            cands += self._click(t, "header", "Cart", 0.3, "open_cart")
        return cands

    def _on_product(self, view: ProductView, t: Targets) -> list[Candidate]:
        it, st, p = self.intent, self.state, view.product
        fit = it.utility(p)
        cands: list[Candidate] = []
        has_back = st.last_search is not None
        if fit < GOOD_FIT:
            cands += self._click(t, "breadcrumb", "Back to results", 0.5 if has_back else 0.0, "back", "poor_fit")
            cands += self._product_cards(t, "related_products", view.related, 0.3)
            cands += self._searches(t, 1.0)
            if it.reads_reviews and view.review_query is None:
                cands += self._type(t, "review_search", it.feature, 0.05, "review_search", it.feature)
            return cands
        colour = it.colour if it.colour in p.colours else p.colours[0]
        size = (it.size if it.size in p.sizes else p.sizes[len(p.sizes) // 2]) if p.sizes else None
        if view.colour != colour:
            cands += self._click(t, "colour_options", colour, 0.3, "colour", colour)
        if p.sizes and view.size != size:
            cands += self._click(t, "size_options", size, 0.3, "size", size)
        if it.reads_reviews and view.review_query is None:
            cands += self._type(t, "review_search", it.feature, 0.12, "review_search", it.feature)
        if view.quantity != it.quantity and "quantity" not in st.tried:
            cands += self._type(t, "quantity", str(it.quantity), 0.06, "quantity", it.quantity)
        compared = len(st.viewed) >= it.compares
        cands += self._click(t, "buy_box", "Add to Cart", 1.4 if compared else 0.6, "add_to_cart", p)
        impulse = it.style == "impulse buyer"
        cands += self._click(t, "buy_box", "Buy Now", (0.3 if impulse else 0.05) * (0.5 + compared), "buy_now", p)
        cands += self._click(t, "breadcrumb", "Back to results", (0.2 if compared else 0.4) * has_back, "back",
                             "compare")
        cands += self._product_cards(t, "related_products", view.related, 0.15)
        cands += self._searches(t, 0.5)
        return cands

    def _on_cart(self, view: CartView, t: Targets) -> list[Candidate]:
        it, st = self.intent, self.state
        cands: list[Candidate] = []
        if it.coupon and "coupon" not in st.tried:
            cands += self._type(t, "coupon_code", it.coupon, 0.3, "coupon", it.coupon)
        for item in view.items:
            if item.quantity != it.quantity and f"qty:{item.product.product_id}" not in st.tried:
                cands += self._type(t, "Quantity", str(it.quantity), 0.05, "cart_quantity", item,
                                    section=f"cart.{item.product.slug}")
            if it.utility(item.product) < GOOD_FIT:
                cands += self._click(t, f"cart.{item.product.slug}", "Delete", 0.5, "delete", item)
        if view.items:
            cands += self._click(t, "cart_summary", "Proceed to Checkout", 2.0 * it.buy_propensity, "checkout")
        cands += self._click(t, "cart_summary", "Continue shopping", 0.25 + 0.8 * (not view.items), "continue")
        return cands

    def _on_checkout(self, view: CheckoutView, t: Targets) -> list[Candidate]:
        # The shipping address is the account's saved one (prefilled): real logs do not
        # carry shoppers typing their name, address or phone number.
        it, st = self.intent, self.state
        cands: list[Candidate] = []
        if it.coupon and "coupon" not in st.tried and view.promo is None:
            cands += self._type(t, "promo_code", it.coupon, 0.15, "promo", it.coupon)
        wanted = SHIPPING_OPTIONS[{"bargain hunter": 0, "impulse buyer": 2}.get(it.style, 1)]
        if view.shipping != wanted and "shipping" not in st.tried:
            cands += self._click(t, "shipping_speed", wanted, 0.3, "shipping", wanted)
        cands += self._click(t, "order_summary", "Place your order", 2.0 * it.buy_propensity, "place_order")
        cands += self._click(t, "order_summary", "Return to cart", 0.05, "return_to_cart")
        return cands

    # -- acting -----------------------------------------------------------------------
    def apply(self, cand: Candidate) -> bool:
        """Advance the shop to the page the action leads to; False when the session ends."""
        st, it, cat = self.state, self.intent, self.catalog
        st.step += 1
        kind, arg, view = cand.kind, cand.arg, st.view
        if kind in ("terminate", "place_order"):
            return False
        count = st.cart_count
        if kind in ("search", "reformulate"):
            st.searches += 1
            st.view = st.last_search = search(cat, arg, cart_count=count)
        elif kind == "nav_category":
            st.view = st.last_search = search(cat, arg.synonyms[0], cart_count=count)
        elif isinstance(view, SearchView) and kind in _SEARCH_CHANGES:
            st.tried.add(_SEARCH_CHANGES[kind])
            filters, sort, page = _SEARCH_CHANGE_FNS[kind](view, it, arg)
            st.view = st.last_search = search(cat, view.query, filters, sort, page, count)
        elif kind == "view_product":
            st.viewed.append(arg.product_id)
            st.view = shop.product_page(cat, arg, count)
        elif kind == "back":
            st.view = (dataclasses.replace(st.last_search, cart_count=count) if st.last_search
                       else shop.home_page(cat, st.home_visits, count))
        elif isinstance(view, ProductView) and kind in ("colour", "size", "quantity", "review_search"):
            st.tried.add(kind)
            st.view = self._reselect(view, kind, arg)
        elif kind in ("add_to_cart", "buy_now"):
            assert isinstance(view, ProductView)
            st.cart.append(CartItem(view.product, view.colour, view.size, view.quantity))
            st.view = (shop.cart_page(cat, st.cart) if kind == "add_to_cart" else shop.checkout_page(st.cart, st.fields))
        elif kind == "open_cart" or kind == "return_to_cart":
            st.view = shop.cart_page(cat, st.cart, st.coupon)
        elif kind == "coupon":
            st.tried.add("coupon")
            st.coupon = arg
            st.view = shop.cart_page(cat, st.cart, arg)
        elif kind == "cart_quantity":
            st.tried.add(f"qty:{arg.product.product_id}")
            arg.quantity = it.quantity
            st.view = shop.cart_page(cat, st.cart, st.coupon)
        elif kind == "delete":
            st.cart = [item for item in st.cart if item is not arg]
            st.view = shop.cart_page(cat, st.cart, st.coupon)
        elif kind == "continue":
            st.home_visits += 1
            st.view = shop.home_page(cat, 1000 + st.home_visits, count)
        elif kind == "checkout":
            st.view = shop.checkout_page(st.cart, st.fields, st.shipping)
        elif kind in ("shipping", "promo"):
            if kind == "shipping":
                st.tried.add("shipping")
                st.shipping = arg
            else:
                st.tried.add("coupon")
            assert isinstance(view, CheckoutView)
            st.view = shop.checkout_page(st.cart, st.fields, st.shipping, arg if kind == "promo" else view.promo)
        else:
            raise ValueError(f"no transition for candidate kind {kind!r} on {type(view).__name__}")
        return True

    def _reselect(self, view: ProductView, kind: str, arg: Any) -> ProductView:
        sel = {"colour": view.colour, "size": view.size, "quantity": view.quantity, "zip_code": view.zip_code,
               "review_query": view.review_query}
        key = {"colour": "colour", "size": "size", "quantity": "quantity", "review_search": "review_query"}[kind]
        sel[key] = arg
        return shop.product_page(self.catalog, view.product, self.state.cart_count, **sel)


# Search-page actions that change filters/sort/page: kind -> the "tried" key, and the change.
_SEARCH_CHANGES = {"price_max": "price_max", "price_min": "price_min", "brand_filter": "brand",
                   "colour_filter": "colour", "rating_filter": "rating", "sort": "sort", "next_page": "page"}


def _with(view: SearchView, **changes: Any) -> tuple[SearchFilters, str, int]:
    return dataclasses.replace(view.filters, **changes), view.sort, 1


_SEARCH_CHANGE_FNS = {
    "price_max": lambda v, it, arg: _with(v, price_max=it.budget),
    "price_min": lambda v, it, arg: _with(v, price_min=int(it.budget * 0.3)),
    "brand_filter": lambda v, it, arg: _with(v, brand=arg),
    "colour_filter": lambda v, it, arg: _with(v, colour=arg),
    "rating_filter": lambda v, it, arg: _with(v, min_rating=arg),
    "sort": lambda v, it, arg: (v.filters, arg, 1),
    "next_page": lambda v, it, arg: (v.filters, v.sort, v.page + 1),
}
