"""A simulated shopper's latent intent and the search queries it gives rise to."""

from __future__ import annotations

import random
from dataclasses import dataclass

from shop_env.synthetic.catalog import CATEGORIES, CATEGORY_BY_KEY, Catalog, Product

_FIRST = ("Maya", "Liam", "Sofia", "Noah", "Aisha", "Lucas", "Chloe", "Mateo", "Priya", "Ethan", "Hana", "Omar")
_LAST = ("Garcia", "Nguyen", "Smith", "Patel", "Kim", "Rossi", "Okafor", "Schmidt", "Silva", "Cohen")
_STREETS = ("Maple Ave", "Oak St", "Pine Rd", "Cedar Ln", "Elm St", "Lakeview Dr", "Hillside Blvd")
_CITIES = (("Portland", "97205"), ("Austin", "78701"), ("Denver", "80202"), ("Boston", "02108"),
           ("Seattle", "98101"), ("Chicago", "60601"), ("Madison", "53703"), ("Phoenix", "85004"))
COUPONS = ("SAVE10", "WELCOME15", "FREESHIP", "SPRING20")
STYLES = ("bargain hunter", "quality seeker", "brand loyal", "impulse buyer")


@dataclass(frozen=True)
class Intent:
    """What one simulated shopper wants and how they shop.

    Attributes:
        category: catalog category key.
        noun: the product noun they have in mind (``Dome Tent``).
        colour / size: preferred options (size None when the category has none).
        brand: a preferred brand, or None.
        feature: a feature they care about (used in queries and review searches).
        budget: the most they will pay, in whole dollars.
        min_rating: the lowest rating they accept.
        style: one of :data:`STYLES`.
        patience: steps after which they are very likely to leave (a handful: most
            visits are short).
        buy_propensity: how ready they are to buy (0-1); hesitant shoppers leave sooner.
        quantity: how many they want.
        reads_reviews / compares: shopping habits.
        coupon: a coupon code they hold, or None (rare).
        full_name, street_address, city, zip_code, phone_number: the account's saved
            shipping details, shown prefilled at checkout (never typed).
        typo_rate: chance a typed query has a typo.
    """

    category: str
    noun: str
    colour: str
    size: str | None
    brand: str | None
    feature: str
    budget: int
    min_rating: float
    style: str
    patience: int
    buy_propensity: float
    quantity: int
    reads_reviews: bool
    compares: int
    coupon: str | None
    full_name: str
    street_address: str
    city: str
    zip_code: str
    phone_number: str
    typo_rate: float

    def persona(self) -> dict[str, object]:
        """A short persona (what a dataset's user survey would say), derived from the intent."""
        spec = CATEGORY_BY_KEY[self.category]
        return {
            "shopping_for": self.noun.lower(),
            "category": spec.label,
            "budget_usd": self.budget,
            "style": self.style,
            "preferred_colour": self.colour.lower(),
            "preferred_brand": self.brand,
            "patience": "low" if self.patience < 4 else "medium" if self.patience < 7 else "high",
        }

    def utility(self, product: Product) -> float:
        """How well ``product`` fits the intent (about -3 .. 5; > 2 is a good fit)."""
        score = 0.0
        score += 1.0 if product.category == self.category else -3.0
        score += 1.0 if product.noun == self.noun else 0.0
        score += 1.0 if product.price <= self.budget else -1.5
        score += 0.7 if product.rating >= self.min_rating else -0.7
        score += 0.6 if self.colour in product.colours else 0.0
        score += 0.5 if self.feature in product.features else 0.0
        if self.brand:
            score += 0.8 if product.brand == self.brand else -0.3
        if self.size:
            score += 0.2 if self.size in product.sizes else -1.0
        return score


def sample_intent(rng: random.Random, catalog: Catalog, category: str | None = None) -> Intent:
    """Draw a shopper intent; budgets are anchored on the category's real prices.

    Args:
        rng: the random source (the session's own, in :func:`~shop_env.synthetic.generate_session`).
        catalog: the shop's catalog; the intent's target product is one of its products.
        category: draw from the prior conditioned on this category key (the rest of the draw
            is unchanged); None draws the category too, uniformly.

    Raises:
        KeyError: ``category`` is not a catalog category key.
    """
    spec = rng.choice(CATEGORIES) if category is None else CATEGORY_BY_KEY[category]
    target = rng.choice(catalog.by_category[spec.key])
    style = rng.choices(STYLES, weights=(4, 3, 2, 1))[0]
    budget = int(target.price * rng.uniform(0.9, 1.6)) + 1
    city, zip_code = rng.choice(_CITIES)
    return Intent(
        category=spec.key,
        noun=target.noun,
        colour=rng.choice(target.colours),
        size=rng.choice(target.sizes) if target.sizes else None,
        brand=target.brand if style == "brand loyal" or rng.random() < 0.15 else None,
        feature=rng.choice(target.features),
        budget=budget,
        min_rating=4.0 if style == "quality seeker" else rng.choice((3.0, 3.5, 4.0)),
        style=style,
        patience=rng.randint(2, 8) if rng.random() < 0.85 else rng.randint(9, 20),
        buy_propensity=rng.uniform(0.2, 0.9) if style != "impulse buyer" else rng.uniform(0.6, 1.0),
        quantity=rng.choices((1, 2, 3), weights=(12, 2, 1))[0],
        reads_reviews=rng.random() < 0.4 or style == "quality seeker",
        compares=rng.randint(1, 3),
        coupon=rng.choice(COUPONS) if rng.random() < 0.1 else None,
        full_name=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
        street_address=f"{rng.randint(10, 9999)} {rng.choice(_STREETS)}",
        city=city,
        zip_code=zip_code,
        phone_number=f"{rng.randint(200, 989)}-555-{rng.randint(0, 9999):04d}",
        typo_rate=rng.uniform(0.0, 0.25),
    )


def query_options(intent: Intent, attempt: int) -> list[tuple[str, float]]:
    """Queries the shopper might type on search ``attempt`` (0 = first), with weights.

    The first query names what they want plainly; reformulations add an attribute or
    switch to a synonym. Each option also has a lower-weight misspelled variant.
    """
    spec = CATEGORY_BY_KEY[intent.category]
    noun = intent.noun.lower()
    base = spec.synonyms[0]
    if attempt == 0:
        plain = [(noun, 0.6), (base, 0.25), (f"{intent.colour.lower()} {noun}", 0.15)]
    elif attempt == 1:
        plain = [(f"{intent.feature} {noun}", 0.5), (f"{intent.brand or intent.colour} {noun}".lower(), 0.3),
                 (spec.synonyms[1], 0.2)]
    else:
        plain = [(f"{spec.synonyms[-1]} under {intent.budget}", 0.45), (f"best {base}", 0.35),
                 (f"{intent.feature} {spec.synonyms[1]}", 0.2)]
    options: list[tuple[str, float]] = []
    for text, weight in plain:
        options.append((text, weight * (1 - intent.typo_rate)))
        options.append((misspell(text), weight * intent.typo_rate))
    return options


def misspell(text: str) -> str:
    """A deterministic typo: swap two inner letters of the longest word."""
    parts = text.split(" ")
    i = max(range(len(parts)), key=lambda k: len(parts[k]))
    word = parts[i]
    if len(word) >= 4:
        j = len(word) // 2
        word = word[: j - 1] + word[j] + word[j - 1] + word[j + 1:]
        if word == parts[i]:  # doubled letter: drop one instead
            word = word[:j] + word[j + 1:]
    parts[i] = word
    return " ".join(parts)
