"""A cluttered, realistic raw product-listing page for pruning tests and benchmarks.

:func:`cluttered_listing_page` builds the kind of page a real shop serves: a head full
of meta/link tags, inline and external scripts, big style blocks, an SVG sprite, tracking
pixels, a cookie banner, hidden modals, nav/footer boilerplate, ``data-*`` attributes
everywhere, filters, sponsored slots, product cards with options, and pagination. It is
the fallback page of ``benchmarks/throughput.py`` when ``shop_env.synthetic.sample_page``
is unavailable. Deterministic for a given seed.
"""

from __future__ import annotations

import html
import json
import random

__all__ = ["PRODUCT_TITLES", "cluttered_listing_page", "expected_card_names", "small_listing_page"]

_ADJECTIVES = ("Alpine", "Summit", "Trail", "Ridge", "Canyon", "Glacier", "Forest", "Coastal",
               "Desert", "Prairie", "Harbor", "Meadow")
_NOUNS = ("2-Person Tent", "Sleeping Bag", "Trekking Poles", "Headlamp", "Camp Stove",
          "Water Filter", "Daypack 28L", "Rain Jacket")
#: The product titles of the 96 possible cards, in card order.
PRODUCT_TITLES: tuple[str, ...] = tuple(f"{adjective} {noun}" for noun in _NOUNS for adjective in _ADJECTIVES)
_COLORS = ("Olive", "Slate", "Sand", "Rust", "Navy")
_SIZES = ("S", "M", "L", "XL")


def cluttered_listing_page(n_products: int = 60, seed: int = 0, target_bytes: int = 1_400_000) -> str:
    """Return a raw search-results page with ``n_products`` product cards.

    Args:
        n_products: product cards in the results grid (1..96); every fourth card after
            the first is preceded by a sponsored slot.
        seed: the random seed (prices, ratings, ids, tracking noise).
        target_bytes: an inline hydration script pads the page to about this many UTF-8
            bytes (the page is never cut below its natural size).

    Returns:
        The page as text.

    Raises:
        ValueError: ``n_products`` is outside 1..96.
    """
    if not 1 <= n_products <= len(PRODUCT_TITLES):
        raise ValueError(f"n_products must be in 1..{len(PRODUCT_TITLES)}, got {n_products}")
    rng = random.Random(seed)
    cards = []
    for index, title in enumerate(PRODUCT_TITLES[:n_products]):
        if index and index % 4 == 0:
            cards.append(_sponsored_slot(rng, index))
        cards.append(_product_card(rng, index, title))
    body = "\n".join([
        _cookie_banner(), _header(rng), _svg_sprite(), '<div class="page-grid" data-layout="s-grid">',
        _filters(rng), '<main id="main-content" class="s-main">',
        '<h1 class="s-title">Results for "tent"</h1>',
        '<div data-section="search_results" class="s-results" data-component="results">',
        *cards, "</div>", _pagination(), "</main></div>", _modals(rng), _footer(rng),
        _tracking(rng),
    ])
    page = _head(rng) + '<body class="search-page" data-page="search">\n' + body
    padding = target_bytes - len(page.encode("utf-8")) - 200
    page += _hydration_script(rng, padding) + "\n</body></html>\n"
    return page


def small_listing_page(n_products: int = 2, seed: int = 0) -> str:
    """A few-kilobyte page with the same parts as :func:`cluttered_listing_page`.

    Header with search form, filters, ``n_products`` product cards (0..96), pagination,
    hidden modals, footer and tracking pixels, but no big head, sprite or hydration
    script: cheap enough to fuzz the pruner on hundreds of thousands of variants.
    """
    if not 0 <= n_products <= len(PRODUCT_TITLES):
        raise ValueError(f"n_products must be in 0..{len(PRODUCT_TITLES)}, got {n_products}")
    rng = random.Random(seed)
    cards = "".join(_product_card(rng, index, title) for index, title in enumerate(PRODUCT_TITLES[:n_products]))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>tent</title>'
        '<script>window.x=1;</script></head><body class="search-page">'
        + _cookie_banner() + _header(rng) + _filters(rng)
        + '<main><div data-section="search_results">' + cards + "</div>" + _pagination() + "</main>"
        + _modals(rng) + _footer(rng) + _tracking(rng) + "</body></html>"
    )


def expected_card_names(n_products: int = 60) -> list[str]:
    """The names :func:`shop_env.webpage.prune.prune_html` gives each card's "View product" button."""
    from shop_env.webpage.prune import slugify

    return [f"search_results.{slugify(title)}.view_product" for title in PRODUCT_TITLES[:n_products]]


def _head(rng: random.Random) -> str:
    metas = "".join(
        f'<meta name="x-meta-{i}" content="{_token(rng, 40)}">' for i in range(30)
    )
    links = "".join(
        f'<link rel="preload" href="https://cdn.shop.example/assets/{_token(rng, 16)}.js" as="script">'
        for _ in range(25)
    )
    style = "<style>" + "".join(
        f".c-{_token(rng, 6)} .x-{i}{{margin:{i % 7}px;padding:{i % 5}px 0;color:#{rng.randrange(16**6):06x};"
        f"background:linear-gradient(90deg,#{rng.randrange(16**6):06x},#{rng.randrange(16**6):06x})}}\n"
        for i in range(1800)
    ) + "</style>"
    scripts = "".join(
        f'<script async src="https://tags.tracker.example/t/{_token(rng, 12)}.js"></script>' for _ in range(12)
    )
    inline = "<script>" + "".join(
        f"window.__cfg_{i}={{id:'{_token(rng, 20)}',flags:[{','.join(str(rng.randrange(99)) for _ in range(20))}]}};\n"
        for i in range(400)
    ) + "</script>"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>tent : Shop Example</title>" + metas + links + style + scripts + inline + "</head>\n"
    )


def _cookie_banner() -> str:
    return (
        '<div id="cookie-banner" class="cc-banner" role="dialog" aria-label="Cookie consent" data-cc="1">'
        "<p>We use cookies to improve your experience.</p>"
        '<button class="cc-accept" data-action="accept">Accept all</button>'
        '<button class="cc-reject" data-action="reject">Reject</button></div>'
    )


def _header(rng: random.Random) -> str:
    departments = ("Camping", "Hiking", "Climbing", "Cycling", "Water Sports", "Clothing", "Footwear", "Deals")
    items = "".join(
        f'<li class="nav-item" data-idx="{i}"><div class="nav-wrap"><span class="nav-label">'
        f'<a href="/c/{d.lower().replace(" ", "-")}?ref=nav_{_token(rng, 8)}" class="nav-link">{d}</a>'
        "</span></div></li>"
        for i, d in enumerate(departments)
    )
    return (
        '<header id="site-header" class="hdr" data-sticky="true"><div class="hdr-inner"><div class="logo-wrap">'
        '<a href="/?ref=logo" class="logo" aria-label="Shop Example home"><svg class="logo-svg" viewBox="0 0 10 10">'
        '<path d="M0 0L10 10"/></svg></a></div>'
        '<form role="search" aria-label="Site search" action="/s" method="get" class="search-form">'
        '<input type="hidden" name="ref" value="nb_sb"><input type="hidden" name="csrf" value="'
        + _token(rng, 64) + '">'
        '<input type="text" name="field-keywords" id="search-box" placeholder="Search Shop Example" '
        'autocomplete="off" class="search-input" value="tent">'
        '<button type="submit" class="search-btn" aria-label="Go"><svg><use href="#i-search"/></svg></button>'
        '</form><div class="hdr-right"><a href="/account?ref=hdr" class="acct">Account &amp; Lists</a>'
        '<a href="/cart?ref=hdr" class="cart-link" aria-label="Cart, 0 items"><span class="cart-count">0</span></a>'
        "</div></div>"
        f'<nav id="main-nav" aria-label="Departments" class="nav"><ul class="nav-list">{items}</ul></nav></header>'
    )


def _svg_sprite() -> str:
    symbols = "".join(
        f'<symbol id="i-{name}" viewBox="0 0 24 24"><path d="'
        + " ".join(f"M{i} {i * 2}L{i * 3} {i + 1}C{i} {i},{i + 2} {i},{i + 4} {i}" for i in range(60))
        + '"/></symbol>'
        for name in ("search", "star", "star-half", "cart", "heart", "chevron", "close", "filter")
    )
    return f'<svg xmlns="http://www.w3.org/2000/svg" style="display:none" aria-hidden="true">{symbols}</svg>'


def _filters(rng: random.Random) -> str:
    groups = []
    for group, options in (("Brand", ("NorthPeak", "TrailCo", "Summitry", "CampLite")),
                           ("Capacity", ("1 person", "2 person", "3 person", "4+ person")),
                           ("Price", ("Under $50", "$50 to $100", "$100 to $200", "$200 & above"))):
        rows = "".join(
            f'<li class="f-row" data-f="{_token(rng, 6)}"><div class="f-wrap"><label class="f-label">'
            f'<input type="checkbox" class="f-check" data-facet="{group.lower()}"> <span class="f-text">{opt}</span>'
            "</label></div></li>"
            for opt in options
        )
        groups.append(
            f'<div class="f-group" role="group" aria-label="{group}"><h3 class="f-title">{group}</h3>'
            f'<ul class="f-list">{rows}</ul></div>'
        )
    return (
        '<aside id="filters" class="s-filters" data-section="filters"><h2 class="f-h">Filters</h2>'
        + "".join(groups)
        + '<div class="f-more" style="display:none"><button class="f-more-btn">Show more</button></div></aside>'
    )


def _stars(rating: float) -> str:
    full = int(rating)
    icons = "".join('<svg class="star"><use href="#i-star"/></svg>' for _ in range(full))
    return f'<span class="stars" aria-label="{rating} out of 5 stars">{icons}</span>'


def _product_card(rng: random.Random, index: int, title: str) -> str:
    asin = _token(rng, 10).upper()
    price = rng.randrange(1999, 49999) / 100
    rating = round(rng.uniform(3.0, 5.0), 1)
    tracking = "&amp;".join(f"{k}={_token(rng, 24)}" for k in ("qid", "sr", "pf_rd", "ref_", "crid"))
    srcset = ", ".join(f"https://img.shop.example/i/{asin}_{w}.jpg {w}w" for w in (200, 320, 480, 640, 960))
    swatches = "".join(
        f'<li class="sw" data-color="{c.lower()}"><button class="sw-btn" aria-label="{c}" '
        f'data-sw="{_token(rng, 12)}"><span class="sw-dot" style="background:{c.lower()}"></span></button></li>'
        for c in rng.sample(_COLORS, 3)
    )
    sizes = "".join(f'<option value="{s.lower()}">{s}</option>' for s in _SIZES)
    state = html.escape(json.dumps({"asin": asin, "price": price, "i": index, "tok": _token(rng, 48)}))
    return (
        f'<div class="s-result-item s-asin" data-asin="{asin}" data-index="{index}" data-uuid="{_token(rng, 32)}" '
        f'data-component-type="s-search-result" data-state="{state}">'
        f'<div class="sg-col-inner"><div class="s-card-container"><div class="a-section a-spacing-base">'
        f'<article class="card" aria-label="{title}" data-cel="{_token(rng, 20)}">'
        f'<div class="img-wrap"><a class="img-link" href="/dp/{asin}?{tracking}" tabindex="-1">'
        f'<img class="s-image" src="https://img.shop.example/i/{asin}.jpg" srcset="{srcset}" alt="{title}" '
        f'data-image-latency="s-product-image" loading="lazy"></a></div>'
        f'<div class="title-wrap"><h2 class="a-size-base"><a class="title-link" href="/dp/{asin}?{tracking}">'
        f'<span class="a-text-normal">{title}</span></a></h2></div>'
        f'<div class="rating-row">{_stars(rating)}<span class="a-size-small">({rng.randrange(10, 9000)})</span></div>'
        f'<div class="price-row"><span class="a-price" data-a-size="xl"><span class="a-offscreen">${price:.2f}</span>'
        f'<span aria-hidden="true"><span class="a-price-symbol">$</span><span class="a-price-whole">{int(price)}</span>'
        f'<span class="a-price-fraction">{round(price % 1 * 100):02d}</span></span></span></div>'
        f'<div class="options"><ul class="swatches">{swatches}</ul>'
        f'<select class="size-select" aria-label="Size" data-track="{_token(rng, 10)}">{sizes}</select></div>'
        f'<div class="actions"><button class="btn-cart" data-asin="{asin}" onclick="addToCart(\'{asin}\')">'
        f'Add to cart</button><button class="btn-view" data-asin="{asin}">View product</button>'
        f'<button class="btn-wish" aria-label="Add to wish list"><svg><use href="#i-heart"/></svg></button></div>'
        f'<div class="quick-view" hidden><button>Quick view</button><p>{_token(rng, 200)}</p></div>'
        "</article></div></div></div>"
        f'<script type="application/json" class="card-state">{json.dumps({"asin": asin, "blob": _token(rng, 300)})}</script>'
        "</div>"
    )


def _sponsored_slot(rng: random.Random, index: int) -> str:
    return (
        f'<div class="s-sponsored" data-ad-slot="{_token(rng, 16)}" data-index="sp-{index}">'
        f'<div class="ad-label"><span>Sponsored</span></div>'
        f'<iframe src="https://ads.example/slot/{_token(rng, 20)}" width="300" height="250"></iframe>'
        f'<img src="https://ads.example/px/{_token(rng, 30)}.gif" width="1" height="1" alt="">'
        f'<noscript><img src="https://ads.example/nojs.gif"></noscript></div>'
    )


def _pagination() -> str:
    pages = "".join(f'<a class="pg" href="/s?k=tent&amp;page={p}&amp;ref=pg_{p}">{p}</a>' for p in range(2, 8))
    return (
        '<nav aria-label="Pagination" class="s-pagination"><span class="pg-current" aria-current="page">1</span>'
        f'{pages}<a class="pg-next" href="/s?k=tent&amp;page=2">Next</a></nav>'
    )


def _modals(rng: random.Random) -> str:
    return (
        '<div class="modal" id="signin-modal" style="display: none" role="dialog" aria-label="Sign in">'
        '<form><input type="email" placeholder="Email"><input type="password" placeholder="Password">'
        '<button>Sign in</button></form></div>'
        '<dialog class="newsletter"><p>Subscribe!</p><input type="email" placeholder="Your email"></dialog>'
        f'<div class="toast" aria-hidden="true" data-t="{_token(rng, 12)}">Added to cart</div>'
    )


def _footer(rng: random.Random) -> str:
    columns = []
    for heading in ("Get to Know Us", "Make Money with Us", "Payment Products", "Let Us Help You"):
        links = "".join(
            f'<li><a href="/help/{_token(rng, 8)}?ref=footer" class="ft-link">{heading.split()[0]} link {i}</a></li>'
            for i in range(8)
        )
        columns.append(f'<div class="ft-col"><div class="ft-h">{heading}</div><ul>{links}</ul></div>')
    return (
        '<footer id="site-footer" class="ft"><div class="ft-inner">' + "".join(columns)
        + '<a href="#top" class="back-top">Back to top</a><p class="ft-legal">&copy; 2026 Shop Example</p>'
        "</div></footer>"
    )


def _tracking(rng: random.Random) -> str:
    pixels = "".join(
        f'<img src="https://px.tracker.example/{_token(rng, 40)}.gif" width="1" height="1" '
        'style="position:absolute;left:-9999px" alt="">'
        for _ in range(20)
    )
    return pixels + '<!-- rendered by node-17 in 123ms -->'


def _hydration_script(rng: random.Random, size: int) -> str:
    chunk = json.dumps({"k": _token(rng, 64), "v": [rng.randrange(10**6) for _ in range(8)]})
    repeats = max(0, size // (len(chunk) + 1))
    return '<script id="__NEXT_DATA__" type="application/json">[' + ",".join([chunk] * repeats) + "]</script>"


def _token(rng: random.Random, length: int) -> str:
    return "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=length))
