"""What a page of the simulated shop shows: one small dataclass per page kind.

The shopper model builds views; :mod:`shop_env.synthetic.render` turns them into raw HTML
and URLs. Views are plain data so a page can be re-rendered from its state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shop_env.synthetic.catalog import Product


@dataclass(frozen=True)
class SearchFilters:
    """Filters applied to a search: brand, price bounds, minimum rating, colour."""

    brand: str | None = None
    price_min: int | None = None
    price_max: int | None = None
    min_rating: int | None = None
    colour: str | None = None


@dataclass
class HomeView:
    """The landing page: recommendations and deals."""

    recommended: list[Product]
    deals: list[Product]
    cart_count: int = 0


@dataclass
class SearchView:
    """A page of search results."""

    query: str
    results: list[Product]
    sponsored: list[Product]
    total: int
    page: int
    n_pages: int
    filters: SearchFilters
    sort: str
    brands: list[str]
    colours: list[str]
    corrected_query: str | None = None
    cart_count: int = 0


@dataclass
class Review:
    """One customer review."""

    author: str
    stars: int
    title: str
    body: str


@dataclass
class ProductView:
    """A product detail page with the shopper's current selections."""

    product: Product
    colour: str | None
    size: str | None
    quantity: int
    zip_code: str | None
    review_query: str | None
    reviews: list[Review]
    related: list[Product]
    cart_count: int = 0


@dataclass
class CartItem:
    """One line of the cart."""

    product: Product
    colour: str | None
    size: str | None
    quantity: int = 1


@dataclass
class CartView:
    """The shopping cart."""

    items: list[CartItem]
    coupon: str | None = None
    coupon_ok: bool = False
    also_bought: list[Product] = field(default_factory=list)

    @property
    def cart_count(self) -> int:
        return sum(item.quantity for item in self.items)


@dataclass
class CheckoutView:
    """The checkout form, with the fields the shopper has filled in so far."""

    items: list[CartItem]
    fields: dict[str, str] = field(default_factory=dict)
    shipping: str | None = None
    promo: str | None = None

    @property
    def cart_count(self) -> int:
        return sum(item.quantity for item in self.items)


View = HomeView | SearchView | ProductView | CartView | CheckoutView
