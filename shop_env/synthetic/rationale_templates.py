"""Offline template rationales for simulated steps: first person, grounded in intent and page.

Each candidate kind has several phrasings; the session's random generator picks one, so
wording varies while staying faithful to why the shopper acted. ``terminate`` always
means leaving the shop without buying.
"""

from __future__ import annotations

import random
from typing import Any

from shop_env.synthetic.catalog import Product
from shop_env.synthetic.intent import Intent

_TEMPLATES: dict[str, tuple[str, ...]] = {
    "search": (
        "I'm looking for {a_noun} and searching is the quickest way to find one, so I'll type \"{arg}\".",
        "I want {a_noun} under ${budget}; let me search for \"{arg}\" and see what comes up.",
        "I need {a_noun}, so I'll start by searching \"{arg}\".",
    ),
    "reformulate": (
        "These results aren't what I had in mind, so I'll try a different search: \"{arg}\".",
        "Nothing here really fits, let me rephrase my search as \"{arg}\".",
        "I'll search again with \"{arg}\" to get closer to the {noun} I want.",
    ),
    "nav_category": (
        "I'll browse the {category} category to see what's available.",
        "Let me open {category} from the menu instead of typing a search.",
    ),
    "price_max": (
        "My budget is ${budget}, so I'll set the maximum price to hide anything more expensive.",
        "Some of these are over ${budget}; I'll cap the price at {budget}.",
    ),
    "price_min": (
        "Very cheap ones tend to be flimsy, so I'll set a minimum price of ${arg_text}.",
        "I'd rather skip the bargain-bin options; setting the lowest price to ${arg_text}.",
    ),
    "brand_filter": (
        "I trust {arg}, so I'll filter the results to that brand.",
        "I've had good experiences with {arg}; let me show only their products.",
    ),
    "colour_filter": (
        "I really want it in {colour}, so I'll filter by that colour.",
        "Let me narrow this down to {colour} ones.",
    ),
    "rating_filter": (
        "I only want well-reviewed products, so I'll keep those with 4 stars and up.",
        "Ratings matter to me; filtering to 4 stars and above.",
    ),
    "sort": (
        "I'll sort the results so the best options for me come first.",
        "Let me re-sort this list to compare more easily.",
    ),
    "next_page": (
        "Nothing on this page fits what I need, so I'll look at the next page.",
        "Let me check the next page of results for a better match.",
    ),
    "view_product": (
        "The {title} looks promising at ${price}; I want a closer look.",
        "The {title} seems to fit what I need, let me open it.",
        "I'll check the details of the {title}, it's rated {rating} stars.",
    ),
    "back": (
        "This one isn't quite right for me, so I'll go back to the results.",
        "Before deciding I want to compare a few more options, back to the list.",
    ),
    "colour": (
        "I'll pick the {arg} colour, that's the one I like.",
        "Selecting {arg} since that's the colour I was after.",
    ),
    "size": (
        "I need the {arg} size, so I'll select it.",
        "Let me choose {arg} before adding it.",
    ),
    "quantity": (
        "I need {arg} of these, so I'll set the quantity to {arg}.",
        "I'm buying {arg}, let me change the quantity.",
    ),
    "review_search": (
        "I care about {arg}, so I'll search the reviews for what people say about it.",
        "Let me see if reviewers mention the {arg} before buying.",
    ),
    "add_to_cart": (
        "The {title} fits my needs and my budget, so I'll add it to my cart.",
        "This is the one I want; adding it to the cart.",
        "Good price and good reviews, I'll put the {title} in my cart.",
    ),
    "buy_now": (
        "I'm convinced, I'll just buy the {title} right away.",
        "No need to keep looking, I'll use Buy Now.",
    ),
    "open_cart": (
        "Let me check what's in my cart.",
        "I'll open my cart to review what I've picked.",
    ),
    "coupon": (
        "I have the coupon {arg}, let me apply it before paying.",
        "I should use my code {arg} to save a little.",
    ),
    "cart_quantity": (
        "I actually need {qty}, so I'll update the quantity in the cart.",
        "Let me fix the quantity to {qty} before checking out.",
    ),
    "delete": (
        "I changed my mind about this item, I'll remove it from the cart.",
        "This one doesn't fit what I want after all; deleting it.",
    ),
    "checkout": (
        "Everything I need is in the cart, time to check out.",
        "I'm happy with my cart, let me proceed to checkout.",
    ),
    "continue": (
        "I'll keep browsing a bit before checking out.",
        "Let me go back and look around some more.",
    ),
    "shipping": (
        "{arg} works for me, I'll choose it.",
        "I'll go with {arg}.",
    ),
    "promo": (
        "I'll try my code {arg} here to get a discount.",
        "Let me enter the promo code {arg} before placing the order.",
    ),
    "place_order": (
        "Everything looks right, I'll place the order now.",
        "My saved address and the shipping are right, so I'll complete the purchase.",
    ),
    "return_to_cart": (
        "I want to double-check my cart before paying.",
    ),
    "terminate": (
        "I've spent enough time on this and haven't found what I want, so I'll leave without buying.",
        "Nothing here convinces me at the moment; I'll close the site without purchasing.",
        "I'm not ready to buy {a_noun} today, so I'm leaving the shop without buying.",
    ),
}

def _with_article(noun: str) -> str:
    if noun.endswith("s"):  # "headphones", "earbuds": no article
        return noun
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def write_rationale(kind: str, arg: Any, intent: Intent, rng: random.Random) -> str:
    """Return a first-person rationale for an action of ``kind`` about ``arg``.

    Args:
        kind: the candidate kind (see :mod:`shop_env.synthetic.shopper`).
        arg: what the action is about (product, query, value...).
        intent: the shopper's intent (noun, budget, colour...).
        rng: picks the phrasing.

    Raises:
        KeyError: an unknown ``kind``.
    """
    template = rng.choice(_TEMPLATES[kind])
    noun = intent.noun.lower()
    values: dict[str, Any] = {
        "noun": noun, "a_noun": _with_article(noun), "budget": intent.budget, "colour": intent.colour.lower(),
        "category": intent.category.replace("_", " "), "arg": arg, "arg_text": arg, "qty": intent.quantity,
    }
    if kind == "price_min":
        values["arg_text"] = int(intent.budget * 0.3)
    if isinstance(arg, Product):
        values.update(title=arg.title, price=f"{arg.price:.2f}", rating=arg.rating)
    return template.format(**values)
