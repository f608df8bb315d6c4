"""Small, deterministic shopping sessions: the one session factory of the tests.

Built here (not by the simulated shop) so these tests do not depend on its output; the
pages look like pruned pages: named interactive elements inside sections.
"""

from __future__ import annotations

import random

from shop_env.actions import Action
from shop_env.sessions import Session, Step

PRODUCTS = ("alpine tent", "trail shoes", "rain jacket", "camp stove", "sleeping bag", "head lamp")


def _slug(text: str) -> str:
    return text.replace(" ", "_")


def search_page(query: str, items: list[str]) -> str:
    rows = "".join(
        f'<li><span>{item}</span> <span>${10 + 7 * i}.99</span>'
        f'<a name="search_results.{_slug(item)}.view_product">{item}</a></li>'
        for i, item in enumerate(items)
    )
    return (
        f"<html><head><title>Search: {query}</title></head><body>"
        '<header><input name="header.search_input" type="text"/>'
        '<button name="header.search_button">Search</button></header>'
        f"<section><h1>Results for {query}</h1><ul>{rows}</ul>"
        '<button name="filters.sort_by_price">Sort by price</button></section></body></html>'
    )


def product_page(item: str) -> str:
    return (
        f"<html><head><title>{item}</title></head><body><h1>{item}</h1><p>A great {item} for hiking.</p>"
        '<button name="product.add_to_cart">Add to cart</button>'
        '<a name="product.back_to_results">Back to results</a></body></html>'
    )


def cart_page(item: str) -> str:
    return (
        f"<html><head><title>Cart</title></head><body><h1>Your cart</h1><p>{item}</p>"
        '<button name="cart.proceed_to_checkout">Proceed to checkout</button></body></html>'
    )


def make_sessions(n: int = 6, seed: int = 0, *, rationales: bool = True, pages: int = 1) -> list[Session]:
    """``n`` sessions of 3-5 steps: search, view a product, then buy or leave.

    Args:
        rationales: give every step a rationale (else all are None).
        pages: repeat each page's result list this many times (longer pages).
    """
    rng = random.Random(seed)
    sessions = []
    for k in range(n):
        query = rng.choice(PRODUCTS)
        items = rng.sample(PRODUCTS, 4) * pages
        item = items[rng.randrange(4)]
        steps = [
            Step("https://shop.example/", search_page("", []), Action("type_and_submit", "header.search_input", query),
                 f"I need a {query}, so I search for it." if rationales else None),
            Step(f"https://shop.example/s?k={_slug(query)}", search_page(query, items),
                 Action("click", f"search_results.{_slug(item)}.view_product"),
                 f"The {item} looks good, I want a closer look." if rationales else None),
        ]
        if k % 2 == 0:
            steps.append(Step(f"https://shop.example/p/{_slug(item)}", product_page(item),
                              Action("click", "product.add_to_cart"),
                              f"I like this {item}, so I add it to my cart." if rationales else None))
            steps.append(Step("https://shop.example/cart", cart_page(item), Action("terminate"),
                              "I'm done for now and leave without paying." if rationales else None))
        else:
            steps.append(Step(f"https://shop.example/p/{_slug(item)}", product_page(item), Action("terminate"),
                              "It is too expensive, so I leave without buying." if rationales else None))
        sessions.append(Session(f"s-{seed}-{k:03d}", steps, user_id=f"u-{k % 3}", source="test"))
    return sessions


SEARCH_PAGE = ('<html><body><section name="search"><input name="search.query"/>'
        '<button name="search.go">Go</button></section><section name="results">'
        '<a name="results.alpine_tent.view">Alpine 2 person tent $129</a>'
        '<a name="results.trail_pack.view">Trail pack 40L $89</a></section></body></html>')


def three_step_sessions(n: int = 6) -> list[Session]:
    """``n`` sessions of three steps on one page: search, click a product, leave (the GRPO tests)."""
    out = []
    for i in range(n):
        steps = [
            Step("https://shop.example/", SEARCH_PAGE, Action("type_and_submit", "search.query", "tent" if i % 2 else "backpack"),
                 "I want to find a tent for my trip."),
            Step("https://shop.example/s?k=tent", SEARCH_PAGE, Action("click", "results.alpine_tent.view"),
                 "The alpine tent looks light and cheap, I want a closer look."),
            Step("https://shop.example/p/1", SEARCH_PAGE, Action("terminate"), "I have seen enough for today."),
        ]
        out.append(Session(f"s-{i:03d}", steps, source="test"))
    return out
