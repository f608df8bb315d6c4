"""Read the named elements of a (pruned) page: the one reader of page names (docs/architecture.md §7).

The pruned pages of docs/architecture.md §7 give every interactive element a ``name``; data sets
that ship simplified pages (OPeRA) put names on any tag, containers included. The env's
candidate list, the baselines and the tests all read names here: the name, whether the
element takes typed text, and its visible text. An empty name (``name=""``) names nothing.
Parsing is lenient (any string, even broken HTML, yields a possibly empty list) and never
touches the network (the HTML parser reads no DTD and expands no external entities).
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

# <input type=...> values that are buttons or toggles: clicked, never typed into.
_CLICK_INPUT_TYPES = frozenset(
    {"submit", "button", "checkbox", "radio", "image", "reset", "hidden", "file", "color", "range"}
)

_INPUT_ROLES = frozenset({"textbox", "searchbox", "combobox"})


@dataclass(frozen=True, slots=True)
class PageElement:
    """One named interactive element: ``kind`` is ``"click"`` or ``"input"``."""

    name: str
    tag: str
    kind: str
    text: str


def element_name(node: etree._Element) -> str:
    """The name an element carries (``name``, else a data set's ``data-semantic-id``); ``""`` for none."""
    return node.get("name") or node.get("data-semantic-id") or ""


def page_element_names(page: str) -> list[str]:
    """The non-empty ``name``s of a page's elements, in document order, each once."""
    return [element.name for element in page_elements(page)]


def page_elements(html: str) -> list[PageElement]:
    """Return the page's elements that carry a ``name`` attribute, in document order.

    Args:
        html: the page HTML (pruned or raw); anything unparsable yields ``[]``.

    Returns:
        One :class:`PageElement` per distinct name (first occurrence wins).
    """
    if not isinstance(html, str) or "name" not in html:
        return []
    parser = etree.HTMLParser(no_network=True, remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(html.encode("utf-8", "replace"), parser)
    except (etree.LxmlError, ValueError):
        return []
    if root is None:
        return []
    seen: set[str] = set()
    out: list[PageElement] = []
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        name = element_name(node)
        if not name or name in seen:
            continue
        seen.add(name)
        tag = node.tag.lower()
        out.append(PageElement(name, tag, _kind(node, tag), _text(node)))
    return out


def _kind(node: etree._Element, tag: str) -> str:
    # The same split as shop_env.webpage.prune: text-entry controls are typed into, the rest clicked.
    if tag in ("textarea", "select") or (node.get("role") or "").lower() in _INPUT_ROLES:
        return "input"
    if tag == "input" and (node.get("type") or "text").lower() not in _CLICK_INPUT_TYPES:
        return "input"
    return "click"


def _text(node: etree._Element) -> str:
    text = " ".join("".join(node.itertext()).split())
    return text or (node.get("placeholder") or node.get("value") or node.get("aria-label") or "")
