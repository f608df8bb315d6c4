"""HTML pruning: raw page -> the simplified page the model reads (DESIGN §7).

:func:`prune_html` parses a raw page with lxml (no network, no DTD or entity
expansion, comments and processing instructions dropped), removes everything a shopper
cannot see or act on, and gives every interactive element a stable ``name``.

What is removed
    ``head`` (with meta/link/title), script, style, noscript, template, svg, math,
    iframe/frame/object/embed, canvas; comments; hidden elements (``hidden``,
    ``aria-hidden="true"``, inline ``display:none`` / ``visibility:hidden``,
    ``input[type=hidden]``, closed ``dialog``); tracking pixels (images 0-1 px wide or
    high) and images without ``alt``; every attribute not in :data:`KEPT_ATTRIBUTES`;
    empty non-interactive elements; attribute-less ``span`` (unwrapped) and
    attribute-less ``div`` whose only content is one element (wrapper chains collapse).
    Query strings and fragments are cut from ``href``; whitespace runs become one space.

Interactive elements
    ``a``, ``button``, ``input``, ``select``, ``textarea``, any element whose ``role`` is
    in :data:`INTERACTIVE_ROLES`, and any element with ``onclick`` (which is given
    ``role="button"`` so that the pruned page still says it is clickable). ``kind`` is
    ``"input"`` for text-entry controls (textual ``input`` types, ``textarea``,
    ``select``, roles textbox/searchbox/combobox) and ``"click"`` for the rest.

Naming rule (stable; other modules and datasets depend on it)
    1. An element that has ``data-semantic-id`` keeps it as its name; else one that has
       ``name`` keeps it. These are assigned first, in document order.
    2. Otherwise the name is ``<section path>.<label>`` (just ``<label>`` outside any
       section), where ``<label>`` is the slug of the element's visible text; when it has
       none, of the first non-empty of ``aria-label``, ``placeholder``, ``title``, ``alt``
       (its own, then of its first image), ``value`` (button-like inputs only), and
       finally the tag name. Form fields (input/select/textarea) use their
       ``aria-label``/``placeholder``/``title`` before their text.
    3. The *section path* is the slugs of the enclosing section containers, outermost
       first, joined with ``"."`` (at most the innermost :data:`MAX_SECTION_DEPTH`). An
       ancestor is a section container when it is not itself interactive and has (first
       match wins) ``data-section``; or ``aria-label`` and is a landmark/grouping element
       (:data:`SECTION_TAGS`, or a ``role`` in :data:`SECTION_ROLES`); or ``id`` and is a
       landmark element (:data:`LANDMARK_TAGS`).
    4. A slug is the text lowercased, with every run of non-word characters replaced by
       ``_``, stripped of leading/trailing ``_``, cut to :data:`MAX_LABEL_CHARS`
       characters at a ``_`` boundary where possible.
    5. Names are unique within the page: a repeated name gets ``_2``, ``_3``, ... (the
       first free suffix).

    So ``<section data-section="search_results"><article aria-label="Alpine 2-Person
    Tent"> ... <button>View product</button>`` is named
    ``search_results.alpine_2_person_tent.view_product``.

Robustness and limits
    Bytes are decoded by BOM, then ``<meta charset>`` in the first 4 KiB, else UTF-8;
    undecodable bytes become U+FFFD. Inputs over :data:`MAX_INPUT_BYTES` (UTF-8) are cut
    to that size and parsed as truncated HTML (``PrunedPage.truncated`` is set). libxml2
    caps nesting at 2048 levels: content nested deeper is dropped. Every traversal is
    iterative, so pruning never recurses in Python. The output is deterministic and
    idempotent: ``prune_html(prune_html(x).html)`` equals ``prune_html(x)``.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from lxml import etree

__all__ = [
    "Element",
    "KEPT_ATTRIBUTES",
    "MAX_INPUT_BYTES",
    "PrunedPage",
    "prune_html",
    "slugify",
]

#: Inputs longer than this (in UTF-8 bytes) are truncated before parsing.
MAX_INPUT_BYTES = 16 * 1024 * 1024
#: The longest label slug in a derived name (section names are cut the same way).
MAX_LABEL_CHARS = 48
#: At most this many (innermost) section names prefix a derived name.
MAX_SECTION_DEPTH = 4
#: Element text recorded in :class:`Element` is cut to this many characters.
MAX_ELEMENT_TEXT = 200
#: Attributes that survive pruning (``name`` is set on interactive elements only;
#: ``id`` survives on landmark elements only).
KEPT_ATTRIBUTES: frozenset[str] = frozenset({
    "name", "type", "value", "placeholder", "aria-label", "alt", "title", "href", "role",
    "checked", "selected", "disabled", "data-section", "aria-checked", "aria-selected",
    "aria-expanded",
})

INTERACTIVE_TAGS = frozenset({"a", "button", "input", "select", "textarea"})
INTERACTIVE_ROLES = frozenset({
    "button", "link", "checkbox", "radio", "tab", "menuitem", "menuitemcheckbox",
    "menuitemradio", "option", "switch", "textbox", "searchbox", "combobox", "slider",
    "spinbutton", "treeitem",
})
INPUT_ROLES = frozenset({"textbox", "searchbox", "combobox"})
#: ``input`` types that take typed text (kind "input"); other types are clicked.
TEXT_INPUT_TYPES = frozenset({
    "", "text", "search", "email", "number", "password", "tel", "url", "date",
    "datetime-local", "month", "week", "time",
})
BUTTON_INPUT_TYPES = frozenset({"submit", "button", "reset", "image"})
LANDMARK_TAGS = frozenset({"header", "nav", "main", "aside", "footer", "section", "form",
                           "article", "dialog"})
SECTION_TAGS = LANDMARK_TAGS | frozenset({"fieldset", "ul", "ol", "li", "table", "div"})
SECTION_ROLES = frozenset({
    "region", "navigation", "search", "main", "banner", "contentinfo", "complementary",
    "form", "dialog", "group", "list", "listitem", "article", "toolbar", "tabpanel",
    "menu", "menubar", "listbox", "radiogroup", "grid", "row",
})

# Whole subtrees that carry nothing a shopper sees (their tails are kept).
_DROPPED_TAGS = (
    "head", "script", "style", "noscript", "template", "svg", "math", "iframe", "frame",
    "frameset", "object", "embed", "canvas", "meta", "link", "base", "hr", "wbr", "audio",
    "video", "source", "track", "map",
)
_DROP = "shopr-drop"  # sentinel tag: elements renamed to it are stripped in one C call
_LOWER = "translate({}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ \t\n\r', 'abcdefghijklmnopqrstuvwxyz')"
_STYLE = _LOWER.format("@style")
_HIDDEN_XPATH = etree.XPath(
    "//*[not(self::html or self::body)]["
    " @hidden"
    f" or {_LOWER.format('@aria-hidden')} = 'true'"
    f" or contains({_STYLE}, 'display:none')"
    f" or contains({_STYLE}, 'visibility:hidden')"
    f" or (self::input and {_LOWER.format('@type')} = 'hidden')"
    " or (self::dialog and not(@open))"
    " or (self::img and (not(normalize-space(@alt))"
    "     or @width = '0' or @width = '1' or @height = '0' or @height = '1'"
    "     or contains(@width, '1px') or contains(@height, '1px')))"
    "]"
)
# Elements that stay even when empty.
_KEEP_EMPTY = frozenset({"br", "img"}) | INTERACTIVE_TAGS
_NON_WORD = re.compile(r"\W+")
_SPACES = re.compile(r"\s+")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))


@dataclass(frozen=True, slots=True)
class Element:
    """One interactive element of a pruned page.

    Attributes:
        name: its unique semantic name (the ``name`` attribute in the pruned HTML).
        tag: the lowercased tag name.
        kind: ``"click"`` or ``"input"`` (text entry / choice: a ``type_and_submit`` target).
        text: its visible text, whitespace-normalised, at most 200 characters.
        attrs: its attributes in the pruned HTML (``name`` included).
        section: the dotted section path it lies in (``""`` at top level).
    """

    name: str
    tag: str
    kind: str
    text: str
    attrs: dict[str, str] = field(default_factory=dict)
    section: str = ""


@dataclass(frozen=True, slots=True)
class PrunedPage:
    """A simplified page: ``html`` (a ``<body>`` element) and its named elements.

    ``elements`` maps each interactive element's name to its :class:`Element`, in
    document order. ``truncated`` is True when the input exceeded :data:`MAX_INPUT_BYTES`.
    """

    html: str
    elements: dict[str, Element]
    truncated: bool = False


def slugify(text: str, limit: int = MAX_LABEL_CHARS) -> str:
    """Lowercase ``text`` and replace every run of non-word characters with ``_``.

    Leading/trailing ``_`` are stripped; the result is cut to ``limit`` characters, at a
    ``_`` boundary when one lies in the second half. Returns ``""`` for text without
    word characters.
    """
    slug = _NON_WORD.sub("_", text[: limit * 4].lower()).strip("_")
    if len(slug) > limit:
        cut = slug.rfind("_", 0, limit + 1)
        slug = slug[: cut if cut > limit // 2 else limit].strip("_")
    return slug


def prune_html(raw: str | bytes) -> PrunedPage:
    """Simplify a raw HTML page and name its interactive elements (see module docs).

    Args:
        raw: the page, as text or as bytes (charset from BOM / ``<meta>``, else UTF-8).

    Returns:
        The :class:`PrunedPage`; an empty or unparsable page gives ``<body></body>``
        with no elements.

    Raises:
        TypeError: ``raw`` is neither ``str`` nor ``bytes``.
    """
    data, truncated = _to_utf8(raw)
    root = _parse(data)
    if root is None:
        return PrunedPage("<body></body>", {}, truncated)
    body = _strip_invisible(root)
    if body is None:
        return PrunedPage("<body></body>", {}, truncated)
    elements = _simplify_and_name(body)
    html = _SPACES.sub(" ", etree.tostring(body, method="html", encoding="unicode", with_tail=False))
    return PrunedPage(html, elements, truncated)


def _to_utf8(raw: str | bytes) -> tuple[bytes, bool]:
    if isinstance(raw, str):
        # "replace" turns lone surrogates (not encodable) into "?" instead of raising.
        data = raw.encode("utf-8", errors="replace")
    elif isinstance(raw, (bytes, bytearray, memoryview)):
        data = _decode(bytes(raw)).encode("utf-8", errors="replace")
    else:
        raise TypeError(f"prune_html expects str or bytes, got {type(raw).__name__}")
    truncated = len(data) > MAX_INPUT_BYTES
    if truncated:
        data = data[:MAX_INPUT_BYTES]  # a cut multi-byte char becomes U+FFFD when parsed
    return data, truncated


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
            except (LookupError, UnicodeDecodeError):
                encoding = "utf-8"
            if encoding.startswith(("utf-16", "utf-32")):
                encoding = "utf-8"  # a meta tag readable as ASCII means not UTF-16/32
    return data.decode(encoding, errors="replace")


def _parse(data: bytes) -> etree._Element | None:
    # A fresh parser per call: parsers are not thread-safe and hold state on errors.
    # no_network blocks fetches; the HTML parser never loads DTDs or expands declared
    # entities; huge_tree lifts the 256-level nesting cap to 2048 (inputs are already
    # size-capped, which is what huge_tree's other limits protect against).
    parser = etree.HTMLParser(
        encoding="utf-8", remove_comments=True, remove_pis=True, no_network=True,
        recover=True, collect_ids=False, default_doctype=False, huge_tree=True,
    )
    if not data.strip():
        return None
    try:
        return etree.fromstring(data, parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None


def _strip_invisible(root: etree._Element) -> etree._Element | None:
    """Drop invisible subtrees in C-level passes; return the body (None if absent)."""
    etree.strip_elements(root, *_DROPPED_TAGS, etree.Comment, etree.ProcessingInstruction,
                         etree.Entity, with_tail=False)
    hidden = _HIDDEN_XPATH(root)
    if hidden:
        for element in hidden:
            element.tag = _DROP
        etree.strip_elements(root, _DROP, with_tail=False)
    if root.tag == "body":
        return root
    return root.find("body")


def _simplify_and_name(body: etree._Element) -> dict[str, Element]:
    """Filter attributes, collapse wrappers, drop empties and name interactive elements.

    One post-order walk (reversed pre-order: children before parents) does the
    structural clean-up; one pre-order walk with a section stack does the naming.
    """
    for element in reversed(list(body.iter())):
        if not isinstance(element.tag, str):
            continue
        _filter_attributes(element)
        if element is body:
            break
        tag = element.tag
        has_text = bool(element.text and element.text.strip())
        if not has_text and len(element) == 0 and tag not in _KEEP_EMPTY and not _is_interactive(element):
            _remove_keep_tail(element)
        elif not element.attrib and (tag == "span" or (
                tag == "div" and len(element) == 1 and not has_text
                and not (element[0].tail and element[0].tail.strip()))):
            _unwrap(element)
    return _name_elements(body)


def _filter_attributes(element: etree._Element) -> None:
    attrib = element.attrib
    if not attrib:
        return
    interactive_by_click = "onclick" in attrib and not _is_interactive_static(element)
    semantic_id = (attrib.get("data-semantic-id") or "").strip()
    if semantic_id and _is_interactive(element):
        attrib["name"] = semantic_id  # a dataset's semantic id wins over a form-field name
    for key in list(attrib):
        if key not in KEPT_ATTRIBUTES and not (key == "id" and element.tag in LANDMARK_TAGS):
            del attrib[key]
    if interactive_by_click:
        attrib["role"] = "button"  # keeps "this is clickable" once onclick is gone
    for key, value in attrib.items():
        clean = _SPACES.sub(" ", value).strip()
        if key == "href":
            clean = _shorten_href(clean)
        if clean != value:
            attrib[key] = clean
    if "name" in attrib and not _is_interactive(element):
        del attrib["name"]


def _shorten_href(href: str) -> str:
    if href.lower().startswith("javascript:"):
        return ""
    try:
        parts = urlsplit(href)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    except ValueError:
        return href.split("?", 1)[0].split("#", 1)[0]


def _is_interactive_static(element: etree._Element) -> bool:
    return element.tag in INTERACTIVE_TAGS or (element.get("role") or "").strip().lower() in INTERACTIVE_ROLES


def _is_interactive(element: etree._Element) -> bool:
    return _is_interactive_static(element) or "onclick" in element.attrib


def _remove_keep_tail(element: etree._Element) -> None:
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail
    if tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(element)


def _unwrap(element: etree._Element) -> None:
    """Replace ``element`` by its content (text, children, tail) in its parent."""
    parent = element.getparent()
    if parent is None:
        return
    index = parent.index(element)
    text, tail = element.text or "", element.tail or ""
    children = list(element)
    # Text before the first child goes to the previous sibling's tail (or parent text).
    if text:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + text
        else:
            parent.text = (parent.text or "") + text
    if children:
        last = children[-1]
        last.tail = (last.tail or "") + tail
        parent[index:index + 1] = children
    else:
        parent.remove(element)
        if tail:
            # Tail joins whatever now precedes the removed element's position.
            if index > 0:
                previous = parent[index - 1]
                previous.tail = (previous.tail or "") + tail
            else:
                parent.text = (parent.text or "") + tail


def _name_elements(body: etree._Element) -> dict[str, Element]:
    """Walk the tree pre-order with a section stack; assign names (see module docs)."""
    found: list[tuple[etree._Element, str]] = []  # (element, section path) in document order
    sections: list[str] = []
    for event, element in etree.iterwalk(body, events=("start", "end")):
        if not isinstance(element.tag, str):
            continue
        interactive = _is_interactive(element)
        if event == "start":
            if interactive:
                found.append((element, ".".join(s for s in sections[-MAX_SECTION_DEPTH:] if s)))
            sections.append("" if interactive else _section_name(element))
        else:
            sections.pop()
    taken: set[str] = set()
    names: list[str | None] = []
    for element, _ in found:  # existing names first, so they win over derived ones
        given = (element.get("name") or "").strip()
        names.append(_unique(given, taken) if given else None)
    elements: list[Element] = []
    for (element, section), name in zip(found, names, strict=True):
        if name is None:
            label = _label(element)
            name = _unique(f"{section}.{label}" if section else label, taken)
        _set_name_first(element, name)
        elements.append(_describe(element, name, section))
    # Keep document order in the map.
    return {info.name: info for info in elements}


def _set_name_first(element: etree._Element, name: str) -> None:
    """Set ``name`` as the first attribute, so a reader sees the handle before the rest."""
    attrib = element.attrib
    others = [(key, value) for key, value in attrib.items() if key != "name"]
    attrib.clear()
    attrib["name"] = name
    for key, value in others:
        attrib[key] = value


def _section_name(element: etree._Element) -> str:
    explicit = element.get("data-section")
    if explicit is not None:
        return slugify(explicit)
    tag = element.tag
    role = (element.get("role") or "").strip().lower()
    label = element.get("aria-label")
    if label and (tag in SECTION_TAGS or role in SECTION_ROLES):
        return slugify(label)
    identifier = element.get("id")
    if identifier and tag in LANDMARK_TAGS:
        return slugify(identifier)
    return ""


def _label(element: etree._Element) -> str:
    tag = element.tag
    text = _text_of(element)
    candidates: list[str | None]
    if tag in ("input", "select", "textarea"):
        candidates = [element.get("aria-label"), element.get("placeholder"), element.get("title"),
                      element.get("alt")]
        if tag == "input" and (element.get("type") or "").lower() in BUTTON_INPUT_TYPES:
            candidates.append(element.get("value"))
        if tag != "select":
            candidates.append(text)
        candidates.append((element.get("type") or "").lower() if tag == "input" else None)
    else:
        image = element.find(".//img")
        candidates = [text, element.get("aria-label"), element.get("title"), element.get("alt"),
                      image.get("alt") if image is not None else None, element.get("value")]
    for candidate in candidates:
        slug = slugify(candidate) if candidate else ""
        if slug:
            return slug
    return slugify(tag) or "element"


def _unique(name: str, taken: set[str]) -> str:
    unique, counter = name, 1
    while unique in taken:
        counter += 1
        unique = f"{name}_{counter}"
    taken.add(unique)
    return unique


def _text_of(element: etree._Element) -> str:
    # itertext is C-level; join lazily-cut pieces so a huge subtree cannot blow up memory.
    pieces: list[str] = []
    size = 0
    for piece in element.itertext():
        pieces.append(piece)
        size += len(piece)
        if size > MAX_ELEMENT_TEXT * 4:
            break
    return _SPACES.sub(" ", "".join(pieces)).strip()[:MAX_ELEMENT_TEXT]


def _describe(element: etree._Element, name: str, section: str) -> Element:
    tag = element.tag
    role = (element.get("role") or "").strip().lower()
    if tag == "input":
        kind = "input" if (element.get("type") or "").strip().lower() in TEXT_INPUT_TYPES else "click"
    elif tag in ("textarea", "select") or role in INPUT_ROLES:
        kind = "input"
    else:
        kind = "click"
    return Element(name=name, tag=tag, kind=kind, text=_text_of(element),
                   attrs=dict(element.attrib), section=section)
