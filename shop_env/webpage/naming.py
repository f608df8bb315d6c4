"""The naming rule for interactive elements of a pruned page (docs/architecture.md §7).

Every interactive element gets a stable, page-unique ``name``. Other modules (the
simulated shop, dataset loaders, agents) derive gold action targets from it, so the rule
below is a contract; change it only together with them.

1. An element that already has a ``name`` keeps it (``shop_env.webpage.prune`` first copies a
   dataset's ``data-semantic-id`` into ``name``). These are assigned first, in document
   order, so they win collisions against derived names.
2. Otherwise the name is ``<section path>.<label>`` (just ``<label>`` outside any section).
   The label is the slug of the element's visible text; when it has none, of the first
   non-empty of ``aria-label``, ``title``, ``alt``, the ``alt`` of its first image,
   ``value``, and finally its tag name. Form fields (``input``/``select``/``textarea``)
   use ``aria-label``, ``placeholder``, ``title``, ``alt``, ``value`` (button-like inputs
   only), their ``type``, then their tag (never their text or typed value); before
   naming, ``shop_env.webpage.prune`` gives a field without ``aria-label`` the text of its
   ``<label for=id>`` or enclosing ``<label>`` as ``aria-label``.
3. The section path is the slugs of the enclosing *section containers*, outermost first,
   joined with ``"."``: containers whose slug is empty are skipped, and only the
   innermost :data:`MAX_SECTION_DEPTH` slugs are kept. A section container is a
   non-interactive ancestor with ``data-section``, or with ``aria-label`` when it is a landmark or
   grouping element (tag in :data:`SECTION_TAGS` or ``role`` in :data:`SECTION_ROLES`).
   ``data-section`` wins over ``aria-label``. Ids and classes never name sections.
4. A slug is the text lowercased, every run of non-word characters replaced by ``_``,
   leading/trailing ``_`` stripped, cut to :data:`MAX_LABEL_CHARS` characters (at a ``_``
   boundary when one lies in the second half).
5. A repeated name gets the first free suffix ``_2``, ``_3``, ...

Example: ``<div data-section="search_results"><article aria-label="Alpine 2-Person Tent">
... <button>View product</button>`` gives ``search_results.alpine_2_person_tent.view_product``.
"""

from __future__ import annotations

import re
from functools import lru_cache

from lxml import etree

__all__ = [
    "INTERACTIVE_ROLES",
    "INTERACTIVE_TAGS",
    "MAX_LABEL_CHARS",
    "MAX_SECTION_DEPTH",
    "SECTION_ROLES",
    "SECTION_TAGS",
    "TextReader",
    "assign_names",
    "canonicalize_values",
    "is_section_container",
    "section_slug",
    "slugify",
    "text_head",
    "xml_safe",
]

#: The longest label slug in a derived name (each section slug is cut the same way).
MAX_LABEL_CHARS = 48
#: At most this many (innermost, non-empty) section slugs prefix a derived name.
MAX_SECTION_DEPTH = 4
INTERACTIVE_TAGS = frozenset({"a", "button", "input", "select", "textarea"})
INTERACTIVE_ROLES = frozenset({
    "button", "link", "checkbox", "radio", "tab", "menuitem", "menuitemcheckbox",
    "menuitemradio", "option", "switch", "textbox", "searchbox", "combobox", "slider",
    "spinbutton", "treeitem",
})
SECTION_TAGS = frozenset({"header", "nav", "main", "aside", "footer", "section", "form",
                          "article", "dialog", "fieldset", "ul", "ol", "li", "table", "div"})
SECTION_ROLES = frozenset({
    "region", "navigation", "search", "main", "banner", "contentinfo", "complementary",
    "form", "dialog", "group", "list", "listitem", "article", "toolbar", "tabpanel",
    "menu", "menubar", "listbox", "radiogroup", "grid", "row",
})
BUTTON_INPUT_TYPES = frozenset({"submit", "button", "reset", "image"})
#: Text read from an element (for its label or description) is cut to this many characters.
MAX_TEXT_CHARS = 200

_NON_WORD = re.compile(r"\W+")
_SPACES = re.compile(r"\s+")


# Characters lxml refuses in attribute values (XML 1.0 invalid); the parser can still
# produce them, so every value we write back goes through xml_safe().
_XML_INVALID = {c: None for c in [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF]}


def xml_safe(value: str) -> str:
    """``value`` without the characters lxml refuses in attribute values (controls, U+FFFE/F)."""
    return value if value.isprintable() else value.translate(_XML_INVALID)


def canonicalize_values(element: etree._Element) -> None:
    """Write each attribute value of ``element`` as the pruned page will read it back.

    Characters lxml refuses go first (:func:`xml_safe`), then whitespace runs become one
    space. Done before naming, so names derive from the values the page shows.
    """
    # One test on all values (joined by a printable separator that "  " cannot span)
    # spares the per-attribute loop for the usual element that needs no change.
    probe = "|".join(element.values())
    if "  " not in probe and probe.isprintable():
        return
    for key, value in element.items():
        # Every whitespace character but " " is unprintable: only then is a regex needed.
        if "  " in value or not value.isprintable():
            element.set(key, _SPACES.sub(" ", xml_safe(value)))


def slugify(text: str, limit: int = MAX_LABEL_CHARS) -> str:
    """Lowercase ``text`` and replace every run of non-word characters with ``_``.

    Leading/trailing ``_`` are stripped and the result is cut to ``limit`` characters, at
    a ``_`` boundary when one lies in the second half. Returns ``""`` for text without
    word characters.
    """
    # The slug of a prefix, grown until it reaches past ``limit``: the result never depends
    # on where the text was cut (a run of blanks or symbols must not push words out of
    # view, or the serialised page, whose blank runs are collapsed, would name differently).
    size = limit * 4
    while True:
        slug = _NON_WORD.sub("_", text[:size].lower()).strip("_")
        if len(slug) > limit or size >= len(text):
            break
        size *= 4
    if len(slug) > limit:
        cut = slug.rfind("_", 0, limit + 1)
        slug = slug[: cut if cut > limit // 2 else limit].strip("_")
    return slug


# Pages repeat labels ("Add to cart", section names): memoise the default-limit slug.
_cached_slug = lru_cache(maxsize=4096)(slugify)


def is_section_container(tag: str, role: str | None, keys: list[str]) -> bool:
    """True for a non-interactive element that names a section (rule 3).

    Args:
        tag: the element's tag; role: its normalised role (or None); keys: its attribute names.
    """
    if tag in INTERACTIVE_TAGS or role in INTERACTIVE_ROLES:
        return False
    return "data-section" in keys or ("aria-label" in keys and (tag in SECTION_TAGS or role in SECTION_ROLES))


def section_slug(container: etree._Element) -> str:
    """The slug a section container contributes to section paths (may be empty)."""
    explicit = container.get("data-section")
    # Through xml_safe: the page shows the value so once an odd attribute forced a rebuild.
    return _cached_slug(xml_safe(explicit if explicit is not None else container.get("aria-label") or ""))


class TextReader:
    """Reads elements' visible text, whitespace-normalised, cut to :data:`MAX_TEXT_CHARS`.

    A leaf's text is read directly; whole-subtree text comes from lxml's C serialiser
    (fast); once the text read exceeds ``budget`` characters in total (nested clickable
    wrappers could make it quadratic), it falls back to reading pieces until enough is read.
    """

    def __init__(self, budget: int) -> None:
        self._budget = budget

    def __call__(self, element: etree._Element) -> str:
        if not len(element):
            # A leaf's only content is its text (comments and PIs are gone): read it
            # directly, which costs far less than a serialiser call.
            text = element.text or ""
            if self._budget > 0:
                self._budget -= len(text)
        elif self._budget > 0:
            text = etree.tostring(element, method="text", encoding="unicode", with_tail=False)
            self._budget -= len(text)
        else:
            pieces: list[str] = []
            size = 0
            limit = MAX_TEXT_CHARS * 4
            for piece in element.itertext():
                pieces.append(piece)
                size += len(piece)
                if size > limit:
                    text = "".join(pieces)
                    if len(_normal_head(text, size)) > MAX_TEXT_CHARS:
                        break
                    pieces, limit = [text], limit * 4  # blank runs: read on
            text = "".join(pieces)
        return text_head(text)


def _normal_head(text: str, size: int) -> str:
    head = text[:size]
    # Only single ASCII spaces (the common case) leave the regex nothing to do.
    if "  " in head or not head.isprintable():
        head = _SPACES.sub(" ", head)
    return head.lstrip()


def text_head(text: str) -> str:
    """``text`` whitespace-normalised and stripped, cut to :data:`MAX_TEXT_CHARS`.

    Normalises only a prefix, grown while blank runs leave it too short, so the result is
    that of normalising the whole text (whatever the cut) at the cost of the prefix.
    """
    size = MAX_TEXT_CHARS * 4
    while True:
        head = _normal_head(text, size)
        if len(head) > MAX_TEXT_CHARS or size >= len(text):
            return head.rstrip()[:MAX_TEXT_CHARS]
        size *= 4


def assign_names(
    interactive: list[etree._Element], sections: dict[etree._Element, str], read_text: TextReader,
) -> list[tuple[etree._Element, str, str, str]]:
    """Name the interactive elements of a cleaned tree (rules in the module docs).

    Args:
        interactive: the interactive elements, in document order.
        sections: section container -> its slug (:func:`section_slug`).
        read_text: reads an element's visible text.

    Returns:
        ``(element, name, section path, text)`` per interactive element, in document
        order. Each element's ``name`` attribute is set.
    """
    paths = _SectionPaths(sections)
    unique = _UniqueNames()
    names: list[str | None] = []
    for element in interactive:  # existing names first, so they win collisions
        canonicalize_values(element)
        given = element.get("name")
        if given is not None:
            given = given.strip()
        names.append(unique(given) if given else None)
    named = []
    add_named, inside = named.append, paths.inside
    joined: dict[tuple[str, ...], str] = {}  # paths are shared tuples: join each once
    for element, name in zip(interactive, names, strict=True):
        path = inside(element.getparent())
        section = joined.get(path)
        if section is None:
            section = joined[path] = ".".join(path)
        text = read_text(element)
        if name is None:
            label = _label(element, text)
            name = unique(f"{section}.{label}" if section else label)
        element.set("name", name)
        add_named((element, name, section, text))
    return named


class _SectionPaths:
    """Section paths of a tree, memoised per element so each node is climbed once.

    ``inside(node)`` is the path that content of ``node`` lies in. Climbing stops at the
    first ancestor already known, so a whole page costs O(elements) even at 2048 levels
    of nesting.
    """

    def __init__(self, slugs: dict[etree._Element, str]) -> None:
        self._slugs = slugs
        self._known: dict[etree._Element | None, tuple[str, ...]] = {None: ()}  # None: above the root

    def inside(self, node: etree._Element | None) -> tuple[str, ...]:
        climbed = []
        known = self._known
        while (path := known.get(node)) is None:
            climbed.append(node)
            node = node.getparent()
        for element in reversed(climbed):
            slug = self._slugs.get(element)
            if slug:
                path = (*path, slug)[-MAX_SECTION_DEPTH:]
            known[element] = path
        return path


def _label(element: etree._Element, text: str) -> str:
    tag = element.tag
    if tag in ("input", "select", "textarea"):
        kind = (element.get("type") or "").strip().lower()
        candidates = [element.get("aria-label"), element.get("placeholder"), element.get("title"),
                      element.get("alt"), element.get("value") if kind in BUTTON_INPUT_TYPES else None,
                      kind]  # never a field's text: that is what the user typed
        for candidate in candidates:
            slug = _cached_slug(candidate) if candidate else ""
            if slug:
                return slug
        return slugify(tag) or "element"
    slug = _cached_slug(text) if text else ""
    if slug:  # the common case: a link or button with visible text
        return slug
    for key in ("aria-label", "title", "alt"):  # read one by one: most stop at the first
        candidate = element.get(key)
        slug = _cached_slug(candidate) if candidate else ""
        if slug:
            return slug
    image = next(element.iter("img"), None)  # pruning left only images with alt
    for candidate in (image.get("alt") if image is not None else None, element.get("value")):
        slug = slugify(xml_safe(candidate)) if candidate else ""
        if slug:
            return slug
    return slugify(tag) or "element"


class _UniqueNames:
    """Hands out page-unique names: a repeat gets the first free suffix ``_2``, ``_3``, ...

    Remembers the last suffix per base name, so n repeats cost O(n), not O(n^2).
    """

    def __init__(self) -> None:
        self._taken: set[str] = set()
        self._last_suffix: dict[str, int] = {}

    def __call__(self, name: str) -> str:
        unique = name
        if unique in self._taken:
            counter = self._last_suffix.get(name, 1)
            while unique in self._taken:
                counter += 1
                unique = f"{name}_{counter}"
            self._last_suffix[name] = counter
        self._taken.add(unique)
        return unique
