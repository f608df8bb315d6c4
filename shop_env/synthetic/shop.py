"""The simulated shop's server side: which page a request shows (home, product, cart...).

Pages depend only on the catalog and the request, never on the shopper's hidden intent.
"""

from __future__ import annotations

import random
import zlib

from shop_env.synthetic.catalog import Catalog, Product
from shop_env.synthetic.intent import COUPONS
from shop_env.synthetic.render import SHIPPING_OPTIONS
from shop_env.synthetic.views import CartItem, CartView, CheckoutView, HomeView, ProductView, Review

_REVIEWERS = ("Jordan", "Casey", "Riley", "Morgan", "Taylor", "Avery", "Quinn", "Jamie", "Drew", "Sky")
_PRAISE = ("Exactly what I needed", "Great value", "Solid and well made", "Love it", "Does the job")
_GRIPES = ("Not as pictured", "Stopped working", "Smaller than expected", "Okay for the price")


def _rng(*key: object) -> random.Random:
    return random.Random(zlib.crc32(repr(key).encode()))


def home_page(catalog: Catalog, visit: int, cart_count: int) -> HomeView:
    """The home page; ``visit`` varies the recommendations between visits."""
    rng = _rng("home", visit)
    picks = rng.sample(catalog.products, 14)
    return HomeView(picks[:8], picks[8:], cart_count)


def related_products(catalog: Catalog, product: Product, n: int = 4) -> list[Product]:
    """Products shown as 'customers also viewed' (same category, fixed per product)."""
    items = [p for p in catalog.by_category[product.category] if p.product_id != product.product_id]
    return _rng("related", product.product_id).sample(items, min(n, len(items)))


def reviews_for(product: Product, query: str | None = None, n: int = 3) -> list[Review]:
    """Customer reviews of ``product`` (those mentioning ``query`` when given)."""
    rng = _rng("reviews", product.product_id, query)
    out = []
    for _ in range(n):
        stars = max(1, min(5, round(rng.gauss(product.rating, 1.0))))
        topic = query or rng.choice(product.features)
        title = rng.choice(_PRAISE if stars >= 4 else _GRIPES)
        verdict = "really good" if stars >= 4 else "disappointing"
        body = f"The {topic} is {verdict}. I bought the {rng.choice(product.colours).lower()} one."
        out.append(Review(rng.choice(_REVIEWERS), stars, title, body))
    return out


def product_page(catalog: Catalog, product: Product, cart_count: int, *, colour: str | None = None,
                 size: str | None = None, quantity: int = 1, zip_code: str | None = None,
                 review_query: str | None = None) -> ProductView:
    """A product detail page with the given selections (first colour, middle size preselected)."""
    size = size or (product.sizes[len(product.sizes) // 2] if product.sizes else None)
    return ProductView(product, colour or product.colours[0], size, quantity, zip_code, review_query,
                       reviews_for(product, review_query), related_products(catalog, product), cart_count)


def cart_page(catalog: Catalog, items: list[CartItem], coupon: str | None = None) -> CartView:
    """The cart; a coupon is valid when it is one the shop issued."""
    also = related_products(catalog, items[0].product, 4) if items else []
    return CartView(list(items), coupon, coupon in COUPONS if coupon else False, also)


def checkout_page(items: list[CartItem], fields: dict[str, str] | None = None, shipping: str | None = None,
                  promo: str | None = None) -> CheckoutView:
    """The checkout page with the fields filled so far (standard shipping preselected)."""
    return CheckoutView(list(items), dict(fields or {}), shipping or SHIPPING_OPTIONS[0], promo)
