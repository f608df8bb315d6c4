"""Static page clutter of the simulated shop, built once and reused by every page.

Real shop pages are mostly bytes the shopper never sees: vendor script bundles, CSS,
SVG sprites, tracking pixels, hidden modals. The renderer joins these cached blocks, so
pages are big (hundreds of KB to ~1.5 MB) yet cheap to produce. Most bytes sit in a few
large text nodes (scripts, styles), as on real pages, so parsing them stays fast.
"""

from __future__ import annotations

import random
from functools import cache

from shop_env.synthetic.catalog import CATEGORIES

SHOP_NAME = "ShopMart"
BASE_URL = "https://shop.example"

#: Size of one vendor script bundle in characters; pages include a number of them.
BUNDLE_CHARS = 90_000
N_BUNDLES = 14

_IDENTS = ("e", "t", "n", "r", "i", "o", "a", "s", "u", "c", "l", "f", "d", "p", "h", "m")
_WORDS = ("render", "track", "hydrate", "observe", "dispatch", "resolve", "prefetch", "lazy",
          "widget", "carousel", "consent", "metric", "beacon", "session", "viewport", "experiment")


def _js_statement(rng: random.Random) -> str:
    a, b, c = rng.choice(_IDENTS), rng.choice(_IDENTS), rng.choice(_IDENTS)
    word = rng.choice(_WORDS)
    n = rng.randint(0, 9999)
    forms = (
        f"function {word}{n}({a},{b}){{return {a}&&{a}.{word}?{a}.{word}({b}):{b}+{n}}}",
        f"var {a}{n}={b}.{word}||function({c}){{return{{type:\"{word}\",id:{n},v:{c}}}}};",
        f"{a}.prototype.{word}=function({b}){{this._q.push([{n},{b}]);return this}};",
        f"if({a}[{n}%{rng.randint(2, 97)}]){{{b}.{word}({{ts:Date.now(),k:\"{word}_{n}\"}})}}",
        f"window.__{word}__=window.__{word}__||[];window.__{word}__.push({n});",
    )
    return rng.choice(forms)


@cache
def vendor_bundle(index: int) -> str:
    """Return inline script bundle ``index`` (about :data:`BUNDLE_CHARS` characters)."""
    rng = random.Random(f"bundle-{index}")
    parts: list[str] = [f'<script data-bundle="vendor-{index}">/*! vendor chunk {index} */(function(){{']
    size = 0
    while size < BUNDLE_CHARS:
        stmt = _js_statement(rng)
        parts.append(stmt)
        size += len(stmt)
    parts.append("})();</script>\n")
    return "".join(parts)


@cache
def style_block() -> str:
    """Return the site's inline stylesheet (~60 KB)."""
    rng = random.Random("styles")
    rules = []
    for i in range(900):
        cls = f".{rng.choice(_WORDS)}-{i}"
        rules.append(
            f"{cls}{{margin:{rng.randint(0, 24)}px;padding:{rng.randint(0, 16)}px {rng.randint(0, 16)}px;"
            f"color:#{rng.randrange(16**6):06x};font-size:{rng.randint(10, 22)}px}}"
        )
    return "<style>" + "".join(rules) + "</style>\n"


@cache
def svg_sprite() -> str:
    """Return a hidden SVG icon sprite (~25 KB)."""
    rng = random.Random("sprite")
    symbols = []
    for i in range(40):
        path = " ".join(f"L{rng.randint(0, 240) / 10} {rng.randint(0, 240) / 10}" for _ in range(60))
        symbols.append(f'<symbol id="icon-{i}" viewBox="0 0 24 24"><path d="M0 0 {path}Z"/></symbol>')
    return '<svg xmlns="http://www.w3.org/2000/svg" style="display:none" aria-hidden="true">' + "".join(
        symbols) + "</svg>\n"


@cache
def head_block() -> str:
    """Return the static part of ``<head>``: meta, preload/stylesheet links and styles."""
    meta = "".join(
        f'<meta name="{name}" content="{value}">'
        for name, value in (
            ("viewport", "width=device-width, initial-scale=1"), ("theme-color", "#ff9900"),
            ("robots", "index,follow"), ("format-detection", "telephone=no"),
            ("og:site_name", SHOP_NAME), ("twitter:card", "summary_large_image"),
        )
    )
    links = "".join(
        f'<link rel="preload" href="https://cdn.shop.example/static/js/chunk-{i}.{i * 7919 % 99991:05x}.js" as="script">'
        for i in range(24)
    ) + '<link rel="stylesheet" href="https://cdn.shop.example/static/css/main.8f3a2c.css">'
    external = "".join(
        f'<script async src="https://{host}/tag.js?id=SM-{i}"></script>'
        for i, host in enumerate(("analytics.example", "ads.example", "pixel.example", "ab.example"))
    )
    return meta + links + external + style_block()


@cache
def hidden_overlays() -> str:
    """Return hidden modals, a dismissed cookie banner, mega-menu flyouts and tracking pixels."""
    menu = "".join(
        f'<div class="flyout" data-menu="{spec.key}" hidden style="display:none"><ul>'
        + "".join(f'<li><a href="/s?k={noun.replace(" ", "+")}">{noun}</a></li>' for noun in spec.nouns)
        + "</ul></div>"
        for spec in CATEGORIES
    )
    signin = (
        '<div id="signin-modal" class="modal" role="dialog" aria-hidden="true" hidden style="display:none">'
        '<h2>Sign in</h2><form><input type="email" name="email" placeholder="Email">'
        '<input type="password" name="password" placeholder="Password">'
        "<button>Continue</button></form><a href=\"/help\">Need help?</a></div>"
    )
    cookie = (
        '<div id="cookie-banner" class="consent" hidden style="display:none" aria-hidden="true">'
        "<p>We use cookies to improve your experience.</p><button>Accept all</button>"
        "<button>Manage preferences</button></div>"
    )
    quickview = (
        '<div id="quick-view" class="modal" aria-hidden="true" hidden style="display:none">'
        "<button>Close</button><div class=\"qv-body\"></div></div>"
    )
    pixels = "".join(
        f'<img src="https://px.tracker.example/p.gif?e=pv&amp;c={i}" width="1" height="1" alt="" '
        f'style="display:none" aria-hidden="true">'
        for i in range(6)
    )
    iframe = '<iframe src="https://ads.example/frame" title="ad" width="0" height="0" hidden></iframe>'
    return menu + signin + cookie + quickview + pixels + iframe


@cache
def footer_block() -> str:
    """Return the site footer (visible links, as on real pages)."""
    columns = {
        "Get to Know Us": ("About Us", "Careers", "Press Releases"),
        "Let Us Help You": ("Your Account", "Returns Centre", "Help"),
    }
    cols = "".join(
        f'<div class="footer-col"><h3>{title}</h3><ul>'
        + "".join(f'<li><a href="/help/{i}" class="footer-link">{text}</a></li>' for i, text in enumerate(links))
        + "</ul></div>"
        for title, links in columns.items()
    )
    return (
        f'<footer data-section="footer" aria-label="Footer" class="site-footer">{cols}'
        f'<p class="legal">&copy; 2026 {SHOP_NAME}, Inc. or its affiliates</p></footer>\n'
    )


def bundles_for(kind: str, key: str) -> str:
    """Return the vendor bundles a page of ``kind`` loads; how many varies with ``key``.

    Search pages carry 3-10 bundles (~0.4-1.0 MB), other pages 3-5 (~0.35-0.55 MB); the
    bigger the page, the longer pruning takes, so the generator stays in this range.
    """
    spread = sum(map(ord, key)) if key else 0
    count = 3 + spread % 8 if kind == "search" else 3 + spread % 3
    return "".join(vendor_bundle(i) for i in range(count))
