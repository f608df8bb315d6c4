"""HTML pruning: raw page -> the simplified page the model reads (docs/architecture.md §7).

:func:`prune_html` parses a raw page with lxml (no network access, no DTD loading or
entity expansion, comments and processing instructions dropped), removes everything a
shopper cannot see or act on, and gives every interactive element a stable ``name``
(the rule is in :mod:`shop_env.webpage.naming`). The result is one ``<body>`` element.

Removed
    title, meta, link, base, script, style, noscript, template, svg, math,
    iframe/frame/object/embed, canvas, audio/video, hr/wbr (anything else that libxml2
    left in ``<head>`` moves to the start of the body); comments; hidden elements
    (``hidden``, ``aria-hidden="true"``, inline ``display:none`` / ``visibility:hidden``,
    ``input[type=hidden]``, ``dialog`` without ``open``); tracking pixels (images 0 or 1
    px wide or high) and images without ``alt``; every attribute not in
    :data:`KEPT_ATTRIBUTES`; empty non-interactive elements; attribute-less ``span``
    (unwrapped) and attribute-less ``div`` whose only content is one element (so wrapper
    chains collapse), unless unwrapping would create a nesting that libxml2 re-parses
    differently (``<p><div>``). ``href`` loses its query string and fragment (and
    disappears when nothing is left) and is percent-escaped as libxml2 writes it;
    whitespace runs become one space.

Interactive elements
    ``a``, ``button``, ``input``, ``select``, ``textarea``, any element whose ``role`` is
    in :data:`~shop_env.webpage.naming.INTERACTIVE_ROLES`, and any element with ``onclick``
    (given ``role="button"`` so the pruned page still says it is clickable). A form field
    without ``aria-label`` gets the text of its ``<label for=id>`` or enclosing
    ``<label>`` as ``aria-label`` (its accessible name). ``kind`` is ``"input"`` for
    text entry and choice (textual ``input`` types, ``textarea``, ``select``, roles
    textbox/searchbox/combobox) and ``"click"`` otherwise. Names are written verbatim
    (libxml2 would percent-escape a non-ASCII ``<a name>``; see :func:`_serialize`).

Robustness and limits
    Bytes are decoded by BOM, else ``<meta charset>`` in the first 4 KiB, else UTF-8;
    undecodable bytes become U+FFFD. Input over :data:`MAX_INPUT_SIZE` (characters of
    text, bytes of bytes) is cut to that size and parsed as truncated HTML
    (``PrunedPage.truncated`` says so); a 50 MB page prunes in a few seconds. A page whose
    pruned form would exceed that size (names make pages grow) is pruned from a shorter
    source, so every output can be pruned again uncut. Lone surrogates in text input
    become U+FFFD (libxml2 would silently stop at one). A tag with more than
    :data:`~shop_env.webpage.clean.MAX_TAG_ATTRIBUTES` attributes keeps only those pruning
    reads (libxml2 builds attribute lists in quadratic time), so time stays linear in the
    input. A tag name holding a Unicode blank (``<a\u2028>``: an unknown element to
    HTML5) has each blank written as ``-``. libxml2
    caps nesting at 2048 levels: content nested deeper is dropped. The work is done by
    lxml's C-level operations plus Python loops that are linear in the elements left
    after the bulk strip; nothing recurses in Python. Deterministic, and idempotent:
    ``prune_html(prune_html(x).html)`` equals ``prune_html(x)`` (html and elements).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field

from lxml import etree

from shop_env.webpage.clean import (
    BLANK_CHARS,
    KEPT_ATTRIBUTES,
    URI_SAFE,
    cap_attributes,
    clean_attributes,
    collapse,
    strip_invisible,
)
from shop_env.webpage.naming import TextReader, assign_names, slugify

__all__ = ["Element", "KEPT_ATTRIBUTES", "MAX_INPUT_SIZE", "PrunedPage", "prune_html", "slugify"]

#: Inputs longer than this (characters of text, bytes of bytes) are cut before parsing:
#: this bounds time and memory (a real listing page is 1-3 MB).
MAX_INPUT_SIZE = 16 * 1024 * 1024
INPUT_ROLES = frozenset({"textbox", "searchbox", "combobox"})
#: ``input`` types that take typed text (kind ``"input"``); other types are clicked.
TEXT_INPUT_TYPES = frozenset({
    "", "text", "search", "email", "number", "password", "tel", "url", "date",
    "datetime-local", "month", "week", "time",
})
_BOOLEAN_ATTRIBUTES = frozenset({"checked", "selected", "disabled"})
_BLANK_RUNS = re.compile(f"[{re.escape(BLANK_CHARS)}]+")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))
_EMPTY_PAGE = "<body></body>"
_SURROGATES = re.compile("[\ud800-\udfff]")
# Characters that str.split() treats as whitespace but pruning keeps (not in BLANK_CHARS).
_SPACE_CONTROLS = "".join(c for c in map(chr, range(0x3001)) if c.isspace() and c not in BLANK_CHARS)


@dataclass(slots=True)  # not frozen: a page has hundreds, and frozen __init__ is ~2x slower
class Element:
    """One interactive element of a pruned page.

    Attributes:
        name: its page-unique semantic name (its ``name`` attribute in the pruned HTML).
        tag: the lowercased tag name.
        kind: ``"click"`` or ``"input"`` (text entry or choice: a ``type_and_submit`` target).
        text: its visible text, whitespace-normalised, at most 200 characters.
        attrs: its attributes in the pruned HTML (``name`` first).
        section: the dotted section path it lies in (``""`` outside any section).
    """

    name: str
    tag: str
    kind: str
    text: str
    attrs: dict[str, str] = field(default_factory=dict)
    section: str = ""


@dataclass(frozen=True, slots=True)
class PrunedPage:
    """A simplified page: ``html`` (one ``<body>`` element) and its named elements.

    ``elements`` maps each interactive element's name to its :class:`Element`, in
    document order. ``truncated`` is True when the input exceeded :data:`MAX_INPUT_SIZE`.
    """

    html: str
    elements: dict[str, Element]
    truncated: bool = False


def prune_html(raw: str | bytes) -> PrunedPage:
    """Simplify a raw HTML page and name its interactive elements (see module docs).

    Args:
        raw: the page, as text or bytes (charset from BOM, ``<meta>``, else UTF-8).

    Returns:
        The :class:`PrunedPage`. An empty page, or one without a body (e.g. a frameset),
        gives ``<body></body>`` and no elements.

    Raises:
        TypeError: ``raw`` is neither ``str`` nor bytes-like.
    """
    source, truncated = _to_text(raw)
    source = cap_attributes(source)
    # Pruning adds names (and end tags): a page near the cap can come out larger than the
    # cap, and pruning that again would cut it. Such a page is pruned from a shorter
    # source, so that every output fits and stays a fixed point.
    for _ in range(16):
        page = _prune_text(source, truncated)
        size = _output_size(page.html)
        if size <= MAX_INPUT_SIZE or not source:
            return page
        source = source[: min(len(source) - 1, int(len(source) * MAX_INPUT_SIZE / size * 0.98))]
        truncated = True
    return PrunedPage(_EMPTY_PAGE, {}, True)  # pragma: no cover - the loop shrinks geometrically


def _output_size(html: str) -> int:
    """The size re-pruning would measure: characters as text, UTF-8 bytes as bytes."""
    if len(html) * 4 <= MAX_INPUT_SIZE:
        return len(html)
    return len(html.encode("utf-8"))


def _prune_text(source: str, truncated: bool) -> PrunedPage:
    root = _parse(source)
    body = strip_invisible(root) if root is not None else None
    if body is None:
        return PrunedPage(_EMPTY_PAGE, {}, truncated)
    interactive, sections, wrappers, leaves = clean_attributes(body)
    collapse(body, wrappers, leaves)
    elements = {}
    escaped_links = []
    uri_safe = URI_SAFE.issuperset
    for element, name, section, text in assign_names(interactive, sections, TextReader(4 * len(source))):
        described = elements[name] = _describe(element, name, section, text)
        if described.tag == "a" and not uri_safe(name):
            escaped_links.append(element)
    return PrunedPage(_serialize(body, escaped_links, source), elements, truncated)


def _serialize(body: etree._Element, escaped_links: list[etree._Element], source: str) -> str:
    """Serialise ``body`` as HTML with whitespace runs collapsed.

    libxml2 percent-escapes the ``name`` of an ``<a>`` (an old URI rule), which would
    turn ``café`` into ``caf%C3%A9``; such links are written under a placeholder tag
    that the input does not contain, then renamed back in the text.
    """
    placeholder = ""
    if escaped_links:
        placeholder = "a-shopr"
        while re.search(placeholder, source, re.IGNORECASE):
            placeholder += "-x"
        for element in escaped_links:
            element.tag = placeholder
    html = etree.tostring(body, method="html", encoding="unicode", with_tail=False)
    if placeholder:
        html = html.replace(f"<{placeholder}", "<a").replace(f"</{placeholder}>", "</a>")
    # Every blank but " " is unprintable, so text that is printable and has no "  " has
    # no run to collapse: skip the work.
    if "  " in html or not html.isprintable():
        html = _collapse_blanks(html)
    return html


def _collapse_blanks(html: str) -> str:
    """``html`` with every run of :data:`BLANK_CHARS` replaced by one space.

    ``str.split()`` splits at runs of exactly those characters plus the six C0 controls
    of :data:`_SPACE_CONTROLS`; without those and without a blank at either end (a
    serialised element starts with ``<`` and ends with ``>``), split and join give the
    regex's result in half its time (the regex visits every single space).
    """
    if html[:1].isspace() or html[-1:].isspace() or any(c in html for c in _SPACE_CONTROLS):
        return _BLANK_RUNS.sub(" ", html)
    return " ".join(html.split())


def _to_text(raw: str | bytes) -> tuple[str, bool]:
    """The page as text, cut to :data:`MAX_INPUT_SIZE` (characters of text, bytes of bytes)."""
    if isinstance(raw, str):
        truncated = len(raw) > MAX_INPUT_SIZE
        return _without_surrogates(raw[:MAX_INPUT_SIZE] if truncated else raw), truncated
    if isinstance(raw, (bytes, bytearray, memoryview)):
        data = bytes(raw)
        truncated = len(data) > MAX_INPUT_SIZE
        # A multi-byte character cut at the end decodes as U+FFFD.
        return _decode(data[:MAX_INPUT_SIZE] if truncated else data), truncated
    raise TypeError(f"prune_html expects str or bytes, got {type(raw).__name__}")


def _without_surrogates(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD.

    libxml2 reads a ``str``'s own buffer and silently stops at a lone surrogate, which
    would drop the rest of the page; an ASCII text cannot hold one, and a strict UTF-8
    encode (C speed) finds out for the others.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", text)
    return text


def _decode(data: bytes) -> str:
    encoding = "utf-8"
    for bom, name in _BOMS:
        if data.startswith(bom):
            data, encoding = data[len(bom):], name
            break
    else:
        match = _META_CHARSET.search(data[:4096])
        if match:
            try:
                encoding = codecs.lookup(match.group(1).decode("ascii")).name
            except LookupError:
                encoding = "utf-8"
            if encoding.startswith(("utf-16", "utf-32")):
                encoding = "utf-8"  # a meta tag readable as ASCII rules out UTF-16/32
    return data.decode(encoding, errors="replace")


def _parse(text: str) -> etree._Element | None:
    if not text or text.isspace():
        return None
    # A fresh parser per call (parsers keep state and are not thread-safe). The HTML
    # parser never loads DTDs or expands declared entities; no_network forbids fetches;
    # huge_tree lifts the nesting cap from 256 to 2048 levels (its other limits guard
    # against huge inputs, which MAX_INPUT_SIZE already bounds).
    options = dict(remove_comments=True, remove_pis=True, no_network=True, recover=True,
                   collect_ids=False, default_doctype=False, huge_tree=True)
    try:
        # lxml hands a str's own buffer to libxml2: faster than encoding it first.
        return etree.fromstring(text, etree.HTMLParser(**options))
    except (etree.ParserError, etree.XMLSyntaxError):
        return None
    except ValueError:
        pass  # a text lxml refuses as such: parse its UTF-8 (surrogates are gone already)
    try:
        data = _without_surrogates(text).encode("utf-8")
        return etree.fromstring(data, etree.HTMLParser(encoding="utf-8", **options))
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None


def _describe(element: etree._Element, name: str, section: str, text: str) -> Element:
    tag = element.tag
    if tag == "li" and not element.text and len(element) == 0:
        element.text = ""  # else libxml2 writes "<li>" without "</li>", swallowing the tail
    attrs = dict(element.items())  # values already canonical (assign_names)
    if not _BOOLEAN_ATTRIBUTES.isdisjoint(attrs):
        for key in _BOOLEAN_ATTRIBUTES.intersection(attrs):
            attrs[key] = ""  # serialised minimised (``checked``), so it parses back as ""
    role = attrs.get("role", "")
    if tag == "input":
        kind = "input" if attrs.get("type", "").strip().lower() in TEXT_INPUT_TYPES else "click"
    elif tag in ("textarea", "select") or role in INPUT_ROLES:
        kind = "input"
    else:
        kind = "click"
    return Element(name, tag, kind, text, attrs, section)  # positional: ~2x faster than keywords
