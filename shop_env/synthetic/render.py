"""Raw HTML and URLs of the simulated shop's pages (home, search, product, cart, checkout).

Pages are built by joining cached clutter blocks (:mod:`~shop_env.synthetic.boilerplate`)
around a small page-specific body. Containers carry ``data-section``/``aria-label`` so the
pruner derives names like ``search_results.alpine_2_person_tent.view_product``; form fields
carry a semantic ``name`` attribute, which the pruner keeps.
"""

from __future__ import annotations

import json
import random
from html import escape
from urllib.parse import quote_plus

from shop_env.synthetic import boilerplate as bp
from shop_env.synthetic.catalog import CATEGORIES, Product, build_catalog, slugify
from shop_env.synthetic.views import (
    CartItem,
    CartView,
    CheckoutView,
    HomeView,
    ProductView,
    Review,
    SearchFilters,
    SearchView,
    View,
)

#: Sort keys -> the visible label of the sort link.
SORT_OPTIONS: dict[str, str] = {
    "relevance": "Featured",
    "price-asc": "Price: Low to High",
    "price-desc": "Price: High to Low",
    "rating": "Avg. Customer Review",
}
#: Minimum-rating filter values -> label.
RATING_FILTERS: dict[int, str] = {4: "4 Stars & Up", 3: "3 Stars & Up"}
#: Shipping options on the checkout page.
SHIPPING_OPTIONS: tuple[str, ...] = ("Standard Shipping", "Express Shipping", "Next-Day Delivery")
#: Checkout form fields: input name -> label, in the order shoppers fill them.
CHECKOUT_FIELDS: dict[str, str] = {
    "full_name": "Full name",
    "street_address": "Street address",
    "city": "City",
    "shipping_zip": "ZIP code",
    "phone_number": "Phone number",
}


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _stars(rating: float) -> str:
    return f"{rating:.1f} out of 5 stars"


def _input(name: str, label: str, value: str | None = None, kind: str = "text", *, named: bool = True) -> str:
    """A labelled text field; ``named=False`` leaves the pruner to derive its name from the label."""
    val = f' value="{escape(value)}"' if value else ""
    name_attr = f' name="{name}"' if named else ""
    return (
        f'<label for="f-{name}">{escape(label)}</label>'
        f'<input id="f-{name}" type="{kind}"{name_attr} aria-label="{escape(label)}" '
        f'placeholder="{escape(label)}" autocomplete="off" data-track="input-{name}"{val}>'
    )


def _card(product: Product, position: int) -> str:
    return (
        f'<div class="s-card" data-section="{product.slug}" aria-label="{escape(product.title)}" '
        f'data-asin="{product.product_id}" data-index="{position}" data-component-type="s-search-result">'
        f'<div class="s-image"><img src="https://img.shop.example/{product.product_id}._SX300_.jpg" '
        f'alt="{escape(product.title)}" loading="lazy"><svg class="icon" aria-hidden="true">'
        f'<use href="#icon-{position % 40}"></use></svg></div>'
        f'<h2 class="s-title">{escape(product.title)}</h2>'
        f' <span class="a-price">{_money(product.price)}</span> · '
        f'<span class="a-rating">{_stars(product.rating)} ({product.review_count:,})</span> '
        f'<a class="s-link" href="/dp/{product.product_id}/{product.slug.replace("_", "-")}" '
        f'data-click="card-{position}">View product</a></div>'
    )


def _header(cart_count: int, query: str = "") -> str:
    nav = "".join(
        f'<li><a href="/s?k={quote_plus(spec.synonyms[0])}" data-nav="{spec.key}">{spec.label}</a></li>'
        for spec in CATEGORIES
    )
    return (
        f'<header data-section="header" class="site-header"><a href="/" class="logo" aria-label="{bp.SHOP_NAME} home">'
        f'{bp.SHOP_NAME}</a>'
        f'<form data-section="search_bar" role="search" action="/s" method="get">'
        f'{_input("search_input", "Search " + bp.SHOP_NAME, query)}<button type="submit">Search</button></form>'
        f'<a href="/account" class="nav-account">Sign in</a><a href="/orders">Returns &amp; Orders</a>'
        f'<a href="/cart" class="nav-cart">Cart</a><span class="cart-count">{cart_count} items</span></header>'
        f'<nav data-section="categories" aria-label="Categories"><ul>{nav}</ul></nav>\n'
    )


def _page(kind: str, key: str, title: str, body: str, cart_count: int, state: dict, query: str = "") -> str:
    state_json = json.dumps(state, separators=(",", ":")).replace("</", "<\\/")
    return "".join((
        '<!DOCTYPE html><html lang="en-US" class="a-no-js" data-page-type="', kind, '"><head><meta charset="utf-8">',
        "<title>", escape(title), " | ", bp.SHOP_NAME, "</title>",
        bp.head_block(), "</head><body>", bp.svg_sprite(), bp.hidden_overlays(),
        _header(cart_count, query), '<main role="main">', body, "</main>", bp.footer_block(),
        '<script type="application/json" id="__PRELOADED_STATE__">', state_json, "</script>",
        bp.bundles_for(kind, key), "</body></html>",
    ))


def _state(kind: str, products: list[Product]) -> dict:
    return {"page": kind, "products": [
        {"id": p.product_id, "title": p.title, "price": p.price, "rating": p.rating,
         "reviews": p.review_count, "colours": list(p.colours), "sizes": list(p.sizes)}
        for p in products]}


def render_home(view: HomeView) -> str:
    """Render the landing page."""
    tiles = "".join(f'<a href="/s?k={quote_plus(spec.synonyms[0])}" class="tile">Shop {spec.label}</a>'
                    for spec in CATEGORIES[:6])
    body = (
        '<section data-section="hero" aria-label="Promotions" class="hero"><h1>Big Outdoor Sale</h1>'
        '<a href="/s?k=outdoor+sale">Shop the sale</a></section>'
        f'<section data-section="shop_by_category" aria-label="Shop by category">{tiles}</section>'
        '<section data-section="recommended" aria-label="Recommended for you"><h2>Recommended for you</h2>'
        + "".join(_card(p, i) for i, p in enumerate(view.recommended))
        + '</section><section data-section="todays_deals" aria-label="Today\'s deals"><h2>Today\'s deals</h2>'
        + "".join(_card(p, i) for i, p in enumerate(view.deals))
        + "</section>"
    )
    return _page("home", "home", f"{bp.SHOP_NAME}: Online Shopping", body, view.cart_count,
                 _state("home", view.recommended + view.deals))


def _filter_links(section: str, label: str, options: list[str], active: str | None) -> str:
    links = "".join(
        f'<li><a href="?{section}={quote_plus(opt)}" class="{"active" if opt == active else ""}">{escape(opt)}</a></li>'
        for opt in options
    )
    return f'<div data-section="{section}" aria-label="{label}"><h3>{label}</h3><ul>{links}</ul></div>'


def render_search(view: SearchView) -> str:
    """Render a page of search results with filters, sort, sponsored slots and pagination."""
    f = view.filters
    shown = view.corrected_query or view.query
    notice = (
        f'<p class="spell">Showing results for <b>{escape(shown)}</b>. '
        f'<a href="/s?k={quote_plus(view.query)}&amp;nfpr=1">Search instead for {escape(view.query)}</a></p>'
        if view.corrected_query else ""
    )
    first = (view.page - 1) * 12 + 1
    price = (
        '<div data-section="price" aria-label="Price"><h3>Price</h3>'
        + _input("price_min", "Min price", str(f.price_min) if f.price_min is not None else None)
        + _input("price_max", "Max price", str(f.price_max) if f.price_max is not None else None)
        + "</div>"
    )
    rating = _filter_links("rating", "Customer Review", list(RATING_FILTERS.values()),
                           RATING_FILTERS.get(f.min_rating) if f.min_rating else None)
    filters = (
        '<aside data-section="filters" aria-label="Filters">'
        + _filter_links("brand", "Brand", view.brands, f.brand) + price + rating
        + _filter_links("colour", "Colour", view.colours, f.colour)
        + ('<a href="?clear=1">Clear all filters</a>' if f != SearchFilters() else "")
        + "</aside>"
    )
    sort = "".join(f'<li><a href="?s={key}" class="{"active" if key == view.sort else ""}">{label}</a></li>'
                   for key, label in SORT_OPTIONS.items() if key != view.sort)
    pages = "".join(f'<a href="?page={n}">{n}</a>' for n in range(1, min(view.n_pages, 5) + 1) if n != view.page)
    if view.page < view.n_pages:
        pages += f'<a href="?page={view.page + 1}">Next</a>'
    if view.page > 1:
        pages = f'<a href="?page={view.page - 1}">Previous</a>' + pages
    sponsored = "".join(_card(p, 100 + i) for i, p in enumerate(view.sponsored))
    body = (
        filters
        + f'<div class="s-main"><div class="s-info"><span>{first}-{first + len(view.results) - 1} of {view.total} '
        f'results for "{escape(shown)}"</span>{notice}</div>'
        f'<div data-section="sort" aria-label="Sort by"><span>Sort by: {SORT_OPTIONS[view.sort]}</span><ul>{sort}</ul></div>'
        + (f'<div data-section="sponsored" aria-label="Sponsored">{sponsored}</div>' if sponsored else "")
        + '<div data-section="search_results" aria-label="Results">'
        + "".join(_card(p, i) for i, p in enumerate(view.results))
        + (f'</div><nav data-section="pagination" aria-label="Pagination">{pages}</nav></div>' if pages else "</div></div>")
    )
    return _page("search", search_url(view), f"{shown} - search", body, view.cart_count,
                 _state("search", view.sponsored + view.results), view.query)


def _review_html(review: Review) -> str:
    return (f'<div class="review"><span class="a-icon-alt">{review.stars} out of 5 stars</span>'
            f'<h4>{escape(review.title)}</h4><p>By {escape(review.author)}</p><p>{escape(review.body)}</p></div>')


def _options(section: str, label: str, values: tuple[str, ...], chosen: str | None) -> str:
    buttons = "".join(
        f'<button type="button" class="swatch{" selected" if v == chosen else ""}" '
        f'aria-pressed="{"true" if v == chosen else "false"}">{escape(v)}</button>'
        for v in values
    )
    shown = f"{label}: {escape(chosen)}" if chosen else f"{label}: select"
    return f'<div data-section="{section}" aria-label="{label}"><span>{shown}</span>{buttons}</div>'


def render_product(view: ProductView) -> str:
    """Render a product page: options, quantity, delivery ZIP, buy box, reviews, related items."""
    p = view.product
    spec_label = next(s.label for s in CATEGORIES if s.key == p.category)
    delivery = (f"<p>Delivery to {escape(view.zip_code)}: FREE delivery in 3-5 days</p>" if view.zip_code
                else "<p>Enter a ZIP code to see delivery dates</p>")
    review_note = (f"<p>Showing reviews mentioning \"{escape(view.review_query)}\"</p>" if view.review_query else "")
    body = (
        f'<nav data-section="breadcrumb" aria-label="Breadcrumb"><a href="/">Home</a>'
        f'<a href="/s?k={quote_plus(p.category)}">{spec_label}</a><a href="javascript:history.back()">Back to results</a></nav>'
        f'<div data-section="product" aria-label="Product details"><h1>{escape(p.title)}</h1>'
        f'<p>Brand: {escape(p.brand)}</p><span class="a-price">{_money(p.price)}</span> · '
        f'<span class="a-rating">{_stars(p.rating)} ({p.review_count:,} ratings)</span>'
        f'<p class="description">{escape(p.description)}</p>'
        f'<ul class="features">{"".join(f"<li>{escape(x.capitalize())}</li>" for x in p.features)}</ul></div>'
        + _options("colour_options", "Colour", p.colours, view.colour)
        + (_options("size_options", "Size", p.sizes, view.size) if p.sizes else "")
        + '<div data-section="buy_box" aria-label="Buy box">'
        + f'<span class="a-price">{_money(p.price * view.quantity)}</span>'
        + _input("quantity", "Quantity", str(view.quantity), "number")
        + _input("zip_code", "Delivery ZIP code", view.zip_code) + delivery
        + '<button type="submit" class="add-to-cart">Add to Cart</button>'
        + '<button type="button" class="buy-now">Buy Now</button>'
        + '<a href="/wishlist/add">Add to List</a></div>'
        + '<div data-section="reviews" aria-label="Customer reviews"><h2>Customer reviews</h2>'
        + _input("review_search", "Search customer reviews", view.review_query) + review_note
        + "".join(_review_html(r) for r in view.reviews)
        + '<a href="#reviews-all">See all reviews</a></div>'
        + '<section data-section="related_products" aria-label="Related products"><h2>Customers also viewed</h2>'
        + "".join(_card(r, 200 + i) for i, r in enumerate(view.related))
        + "</section>"
    )
    return _page("product", p.product_id, p.title, body, view.cart_count,
                 _state("product", [p] + view.related))


def _line(item: CartItem, with_controls: bool) -> str:
    p = item.product
    chosen = ", ".join(x for x in (item.colour, item.size) if x)
    controls = (
        _input(f"qty-{p.product_id}", "Quantity", str(item.quantity), "number", named=False)
        + '<button type="button">Delete</button><button type="button">Save for later</button>'
        if with_controls else f"<span>Qty: {item.quantity}</span>"
    )
    return (f'<div class="cart-line" data-section="{p.slug}" aria-label="{escape(p.title)}">'
            f'<h3>{escape(p.title)}</h3><span>{escape(chosen)}</span> · '
            f'<span class="a-price">{_money(p.price * item.quantity)}</span> {controls}</div>')


def _subtotal(items: list[CartItem]) -> float:
    return sum(item.product.price * item.quantity for item in items)


def render_cart(view: CartView) -> str:
    """Render the cart: lines with quantity/delete, coupon code, checkout button."""
    lines = "".join(_line(item, True) for item in view.items) or "<p>Your cart is empty.</p>"
    coupon_msg = ""
    if view.coupon:
        coupon_msg = (f"<p>Coupon {escape(view.coupon)} applied: 10% off</p>" if view.coupon_ok
                      else f"<p>The code {escape(view.coupon)} is not valid.</p>")
    body = (
        f'<div data-section="cart" aria-label="Shopping cart"><h1>Shopping Cart</h1>{lines}</div>'
        '<div data-section="coupon" aria-label="Coupon">' + _input("coupon_code", "Coupon code", view.coupon)
        + f"{coupon_msg}</div>"
        f'<div data-section="cart_summary" aria-label="Order summary"><p>Subtotal: {_money(_subtotal(view.items))}</p>'
        + ('<button type="submit">Proceed to Checkout</button>' if view.items else "")
        + '<a href="/">Continue shopping</a></div>'
        + '<section data-section="also_bought" aria-label="Customers also bought">'
        + "".join(_card(r, 300 + i) for i, r in enumerate(view.also_bought)) + "</section>"
    )
    return _page("cart", "cart", "Shopping Cart", body, view.cart_count,
                 _state("cart", [i.product for i in view.items]))


def render_checkout(view: CheckoutView) -> str:
    """Render checkout: shipping address fields, shipping speed, promo code, place order."""
    fields = "".join(_input(name, label, view.fields.get(name)) for name, label in CHECKOUT_FIELDS.items())
    speeds = "".join(
        f'<button type="button" aria-pressed="{"true" if s == view.shipping else "false"}">{s}</button>'
        for s in SHIPPING_OPTIONS)
    body = (
        f'<form data-section="shipping_address" aria-label="Shipping address"><h2>Shipping address</h2>{fields}</form>'
        f'<div data-section="shipping_speed" aria-label="Shipping speed"><h2>Choose a delivery option</h2>{speeds}</div>'
        '<div data-section="promo" aria-label="Promo code">' + _input("promo_code", "Promo code", view.promo) + "</div>"
        f'<div data-section="order_summary" aria-label="Order summary">{"".join(_line(i, False) for i in view.items)}'
        f'<p>Order total: {_money(_subtotal(view.items))}</p><button type="submit">Place your order</button>'
        '<a href="/cart">Return to cart</a></div>'
    )
    return _page("checkout", "checkout", "Checkout", body, view.cart_count,
                 _state("checkout", [i.product for i in view.items]))


def render(view: View) -> str:
    """Render any view to raw HTML.

    Raises:
        TypeError: ``view`` is not a known view type.
    """
    for kind, fn in _RENDERERS.items():
        if isinstance(view, kind):
            return fn(view)
    raise TypeError(f"cannot render {type(view).__name__}")


_RENDERERS = {HomeView: render_home, SearchView: render_search, ProductView: render_product,
              CartView: render_cart, CheckoutView: render_checkout}


def search_url(view: SearchView) -> str:
    """The URL of a search results page, with its query, filters, sort and page."""
    params = [("k", view.query)]
    f = view.filters
    for key, value in (("brand", f.brand), ("low-price", f.price_min), ("high-price", f.price_max),
                       ("rating", f.min_rating), ("colour", f.colour)):
        if value is not None:
            params.append((key, str(value)))
    if view.sort != "relevance":
        params.append(("s", view.sort))
    if view.page > 1:
        params.append(("page", str(view.page)))
    return f"{bp.BASE_URL}/s?" + "&".join(f"{k}={quote_plus(v)}" for k, v in params)


def page_url(view: View) -> str:
    """A realistic URL for the page of ``view``."""
    if isinstance(view, SearchView):
        return search_url(view)
    if isinstance(view, ProductView):
        p = view.product
        params = [f"{k}={quote_plus(v)}" for k, v in (("colour", view.colour), ("size", view.size)) if v]
        return f"{bp.BASE_URL}/dp/{p.product_id}/{p.slug.replace('_', '-')}" + ("?" + "&".join(params) if params else "")
    if isinstance(view, CartView):
        return f"{bp.BASE_URL}/cart"
    if isinstance(view, CheckoutView):
        return f"{bp.BASE_URL}/checkout/shipping"
    return f"{bp.BASE_URL}/"


def page_kind(view: View) -> str:
    """The page type of ``view``: home, search, product, cart or checkout."""
    return {HomeView: "home", SearchView: "search", ProductView: "product", CartView: "cart",
            CheckoutView: "checkout"}[type(view)]


def sample_page(kind: str = "search", seed: int = 0) -> str:
    """Return one raw page of the simulated shop, e.g. for pruning benchmarks.

    Args:
        kind: ``home``, ``search`` (~1.4 MB), ``product``, ``cart`` or ``checkout``.
        seed: picks the products shown.

    Raises:
        ValueError: an unknown ``kind``.
    """
    catalog = build_catalog(0)
    rng = random.Random(f"sample-{kind}-{seed}")
    products = rng.sample(catalog.products, 16)
    if kind == "home":
        return render_home(HomeView(products[:8], products[8:14]))
    if kind == "search":
        spec = CATEGORIES[seed % len(CATEGORIES)]
        items = catalog.by_category[spec.key]
        view = SearchView(
            spec.synonyms[0], items[:12], items[12:14], len(items), 1, 5, SearchFilters(), "relevance",
            sorted({p.brand for p in items}), list(spec.colours))
        # Pad the vendor-bundle choice so the sample is the large (~1.4 MB) kind of results page.
        raw = render_search(view)
        extra = 14 - raw.count('data-bundle="vendor-')
        return raw.replace("</body>", "".join(bp.vendor_bundle(i) for i in range(14 - extra, 14)) + "</body>", 1) \
            if extra > 0 else raw
    if kind == "product":
        p = products[0]
        reviews = [Review("Sam", 5, "Great", "Works as described."), Review("Alex", 3, "Okay", "A bit small.")]
        return render_product(ProductView(p, None, None, 1, None, None, reviews, products[1:7]))
    if kind == "cart":
        return render_cart(CartView([CartItem(products[0], products[0].colours[0], None, 1)],
                                    also_bought=products[1:5]))
    if kind == "checkout":
        return render_checkout(CheckoutView([CartItem(products[0], products[0].colours[0], None, 2)]))
    raise ValueError(f"unknown page kind {kind!r}: expected home, search, product, cart or checkout")


__all__ = ["render", "page_url", "page_kind", "sample_page", "slugify", "SORT_OPTIONS", "RATING_FILTERS",
           "SHIPPING_OPTIONS", "CHECKOUT_FIELDS"]
