"""The simulated shop's search engine: query -> a page of results (with spelling fixes).

Queries are matched to a category by their words (titles, nouns, synonyms, brands);
misspelled words are corrected against the catalog vocabulary, as real shops do.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import zlib
from functools import lru_cache

from shop_env.synthetic.catalog import CATEGORIES, Catalog, CategorySpec, Product
from shop_env.synthetic.views import SearchFilters, SearchView

PAGE_SIZE = 12
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)?")
_UNDER = re.compile(r"\b(?:under|below)\s+\$?(\d{1,6})\b")
#: Query words that are not product words but must not be "corrected" into one.
QUERY_WORDS = frozenset({"best", "cheap", "under", "below", "for", "with", "and", "the", "men", "women",
                         "kids", "new", "sale", "top", "rated", "good"})


def words(text: str) -> list[str]:
    """Lower-case word tokens of ``text`` (hyphenated words kept whole)."""
    return _WORD.findall(text.lower())


def _category_words(spec: CategorySpec) -> set[str]:
    bag = " ".join((spec.label, *spec.nouns, *spec.synonyms, *spec.brands, *spec.models))
    return set(words(bag))


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[dict[str, set[str]], list[str]]:
    per_category = {spec.key: _category_words(spec) for spec in CATEGORIES}
    vocab = sorted(set().union(*per_category.values()) | QUERY_WORDS | {w for s in CATEGORIES for f in s.features for w in words(f)}
                   | {w for s in CATEGORIES for c in s.colours for w in words(c)})
    return per_category, vocab


def correct(query: str) -> str | None:
    """Return the spelling-corrected query, or None when every word is known."""
    _, vocab = _vocabulary()
    known = set(vocab)
    fixed, changed = [], False
    for word in words(query):
        if word in known or word.isdigit():
            fixed.append(word)
            continue
        match = difflib.get_close_matches(word, vocab, n=1, cutoff=0.75)
        fixed.append(match[0] if match else word)
        changed = changed or bool(match)
    return " ".join(fixed) if changed else None


def detect_category(query: str) -> str | None:
    """The category whose words best overlap the query (None when nothing matches)."""
    per_category, _ = _vocabulary()
    tokens = set(words(query))
    best, best_score = None, 0
    for spec in CATEGORIES:
        score = len(tokens & per_category[spec.key])
        if score > best_score:
            best, best_score = spec.key, score
    return best


def _relevance(product: Product, tokens: set[str]) -> int:
    bag = set(words(" ".join((product.title, *product.features, *product.colours))))
    return len(tokens & bag)


def _passes(product: Product, f: SearchFilters) -> bool:
    return not (
        (f.brand and product.brand != f.brand)
        or (f.price_min is not None and product.price < f.price_min)
        or (f.price_max is not None and product.price > f.price_max)
        or (f.min_rating and product.rating < f.min_rating)
        or (f.colour and f.colour not in product.colours)
    )


_SORTS = {
    "price-asc": lambda p, r: (p.price, -r),
    "price-desc": lambda p, r: (-p.price, -r),
    "rating": lambda p, r: (-p.rating, -p.review_count),
}


def search(catalog: Catalog, query: str, filters: SearchFilters | None = None, sort: str = "relevance",
           page: int = 1, cart_count: int = 0) -> SearchView:
    """Run a search and return the requested page of results.

    Args:
        catalog: the shop's catalog.
        query: what the shopper typed (may contain typos).
        filters: brand/price/rating/colour filters.
        sort: ``relevance``, ``price-asc``, ``price-desc`` or ``rating``.
        page: 1-based page number (clamped to the available pages).
        cart_count: shown in the header.

    Returns:
        A :class:`SearchView` (possibly with no results).
    """
    filters = filters or SearchFilters()
    corrected = correct(query)
    effective = corrected or query
    under = _UNDER.search(effective.lower())
    if under and filters.price_max is None:  # "tent under 150" caps the price like the filter does
        filters = dataclasses.replace(filters, price_max=int(under.group(1)))
    key = detect_category(effective)
    tokens = set(words(effective))
    pool = catalog.by_category[key] if key else catalog.products
    scored = [(p, _relevance(p, tokens)) for p in pool]
    if key is None:
        scored = [(p, r) for p, r in scored if r > 0]
    matching = [(p, r) for p, r in scored if _passes(p, filters)]
    order = _SORTS.get(sort, lambda p, r: (-r, -p.rating * (1 + p.review_count) ** 0.1))
    matching.sort(key=lambda pr: order(*pr))
    n_pages = max(1, -(-len(matching) // PAGE_SIZE))
    page = min(max(1, page), n_pages)
    results = [p for p, _ in matching[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]]
    spec = next((s for s in CATEGORIES if s.key == key), None)
    # Sponsored slots: two category products that change with the query (not with filters).
    sponsored: list[Product] = []
    if key and page == 1:
        items = catalog.by_category[key]
        start = zlib.crc32(effective.encode()) % len(items)
        sponsored = [items[start], items[(start + 7) % len(items)]]
    brands = sorted({p.brand for p, _ in scored})[:8]
    colours = list(spec.colours) if spec else []
    return SearchView(query, results, sponsored, len(matching), page, n_pages, filters, sort, brands, colours,
                      corrected, cart_count)
