"""Tree clean-up passes of :func:`shop_env.webpage.prune.prune_html` (docs/architecture.md §7, §11).

Speed matters (a 1.4 MB page must prune in at most twice the time of a bare lxml parse
and serialise), so the work is split between lxml's C-level operations
(``strip_elements``, ``strip_attributes``, ``strip_tags``, compiled XPath) and one Python
pass over the elements that survive the bulk strip. Elements to delete or unwrap are
renamed to a sentinel tag and handled by one C call. Nothing here recurses in Python.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from urllib.parse import quote

from lxml import etree

from shop_env.webpage.naming import (
    BUTTON_INPUT_TYPES,
    INTERACTIVE_ROLES,
    INTERACTIVE_TAGS,
    is_section_container,
    section_slug,
    xml_safe,
)

__all__ = ["BLANK_CHARS", "DROPPED_TAGS", "KEPT_ATTRIBUTES", "MAX_TAG_ATTRIBUTES", "URI_SAFE", "cap_attributes",
           "clean_attributes", "collapse", "strip_invisible"]

#: Attributes that survive pruning (``name`` only on interactive and dataset-named elements).
KEPT_ATTRIBUTES: frozenset[str] = frozenset({
    "name", "type", "value", "placeholder", "aria-label", "alt", "title", "href", "role",
    "checked", "selected", "disabled", "data-section", "aria-checked", "aria-selected",
    "aria-expanded", "open",
})
#: Whole subtrees a shopper never reads or acts on (their tail text is kept).
DROPPED_TAGS: tuple[str, ...] = (
    "title", "script", "style", "noscript", "template", "svg", "math", "iframe", "frame",
    "frameset", "object", "embed", "canvas", "meta", "link", "base", "hr", "wbr", "audio",
    "video", "source", "track", "map",
)
#: Unwrapping rounds (see collapse); only adversarial nesting needs more than two.
MAX_UNWRAP_ROUNDS = 64
_FIELD_TAGS = frozenset({"input", "select", "textarea"})
_DROP = "shopr-drop"
_UNWRAP = "shopr-unwrap"
# Elements kept even without text (a <br> stays in place but keeps no parent alive).
_KEPT_EMPTY_TAGS = frozenset({"br", "img"}) | INTERACTIVE_TAGS
# "Blank" text: ASCII blanks plus &nbsp; and the other Unicode spaces, but not the C0
# controls that str.isspace() also counts. The serialiser collapses exactly these, so a
# second pruning pass sees the same blanks as the first.
_OTHER_SPACES = "".join(c for c in map(chr, range(0x20, 0x3001)) if c.isspace() and c != " ")
BLANK_CHARS = " \t\n\r" + _OTHER_SPACES
_HIDING_TAGS = frozenset({"img", "input", "dialog"})
_WRAPPER_TAGS = frozenset({"span", "div"})
# Tags and attributes that need a closer look in clean_attributes (the rest are skipped).
_SPECIAL_TAGS = _HIDING_TAGS | INTERACTIVE_TAGS | {"label"}
_SPECIAL_KEYS = frozenset({"hidden", "aria-hidden", "style", "role", "onclick", "name", "href",
                           "data-semantic-id", "id", "data-section", "aria-label"})
_NO_KEYS: tuple[str, ...] = ()
# What libxml2 leaves unescaped in URI attributes (xmlURIEscapeStr with its exceptions).
_URI_SAFE_MARKS = "-_.!~*'()@/:=?;#%&,+"
URI_SAFE = frozenset(string.ascii_letters + string.digits + _URI_SAFE_MARKS)
_QUERY_OR_FRAGMENT = re.compile(r"[?#]")
_LABEL_TEXT = etree.XPath(".//text()[not(ancestor::select or ancestor::textarea)]")
_HIDING_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_PIXEL_SIZE = re.compile(r"\s*[01](?:\.0*)?\s*(?:px)?\s*")
_SPACES = re.compile(r"\s+")
# Blanks that end no tag name (only ASCII whitespace does) but that the serialiser's blank
# collapse would rewrite inside one: a tag name holding one is renamed (see _stable_tag).
_TAG_BLANKS = re.compile(f"[{re.escape(_OTHER_SPACES)}]")
_ODD_TAG_CHARS = re.compile(r"[^a-z0-9-]")
_CLEAN_TAGS: set[str] = set()  # tag names seen without such blanks (bounded cache)
# Tags for which HTML itself defines ``name`` (a form control's field name, a frame's
# target, a meta key) or that hold no content: there ``name`` is markup, not a dataset's
# label. Anywhere else (``div``, ``li``, ``span``, ``ul`` as OPeRA names them) a
# non-empty ``name`` or ``data-semantic-id`` is a logged click target and must survive.
_HTML_NAME_TAGS = frozenset({"a", "button", "fieldset", "form", "frame", "iframe", "img", "input",
                             "map", "meta", "object", "output", "param", "select", "slot",
                             "textarea"})
_VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
                        "meta", "source", "track", "wbr"})
_NOT_DATASET_NAMED = _HTML_NAME_TAGS | _VOID_TAGS


def _stable_tag(element: etree._Element, tag: str) -> str:
    """The tag ``element`` keeps: ``tag``, or, when it holds a Unicode blank, a renamed one.

    libxml2 ends a tag name only at ASCII whitespace, so ``<a\u2028 href=x>`` is an
    unknown element named ``"a\u2028"``; the serialiser's blank collapse would write it as
    ``<a href="x">`` (a link) and break idempotency. Each blank becomes ``-``: still an
    unknown element (no HTML tag has a ``-``), written and re-parsed unchanged.
    """
    if not _TAG_BLANKS.search(tag):
        if len(_CLEAN_TAGS) < 4096:
            _CLEAN_TAGS.add(tag)
        return tag
    fixed = _TAG_BLANKS.sub("-", tag)
    try:
        element.tag = fixed
    except ValueError:  # a name lxml will not write ('"', "'", "<", "&", controls)
        fixed = _ODD_TAG_CHARS.sub("-", fixed.lower())
        element.tag = fixed
    return fixed


# --- attribute cap (before parsing) -------------------------------------------------------
#: A start tag with more attributes than this is rewritten before parsing to keep only the
#: attributes pruning reads (first occurrence of each): libxml2's tree builder appends each
#: attribute by walking the element's attribute list, so one element with N attributes costs
#: O(N^2) (20k: 1 s; 1M: never ends). Pruning's output is unchanged by the rewrite.
MAX_TAG_ATTRIBUTES = 32
#: The attributes pruning reads (kept ones, hiding and labelling ones).
READ_ATTRIBUTES: frozenset[str] = KEPT_ATTRIBUTES | _SPECIAL_KEYS | {"for", "width", "height"}
# An HTML5 tokenizer's view of tags (libxml2 >= 2.14 follows it): tag names and attribute
# names end at ASCII whitespace, "/" and ">" (and "=" for attributes); quoted values may
# hold anything; raw-text elements end only at their end tag; comments and bogus comments.
_WS = "\t\n\f\r "
_NAME_END = f"(?![^{_WS}/>])"
_VALUE = f"""(?:[{_WS}]*+=[{_WS}]*+(?:"[^"]*+"|'[^']*+'|[^{_WS}>]*+))"""
_ATTR = f"[^{_WS}/>][^{_WS}/=>]*+{_VALUE}?"
_SEP = f"[{_WS}/]*+"
_RAW_NAMES = ("script", "style", "xmp", "iframe", "noembed", "noframes", "textarea", "title", "plaintext")
_RAW_START = f"(?ai:{'|'.join(_RAW_NAMES)}){_NAME_END}"
# Consumes text, comments and tags of at most MAX_TAG_ATTRIBUTES attributes; stops (without
# backtracking: possessive) at a raw-text start tag, a longer tag, or the end.
_PREFIX = re.compile(
    "(?:"
    "[^<]++"
    "|<!--(?:-?>|.*?--!?>)"
    f"|<(?:/|(?!{_RAW_START}))[A-Za-z][^{_WS}/>]*+(?:{_SEP}{_ATTR}){{0,{MAX_TAG_ATTRIBUTES}}}+(?!{_SEP}[^{_WS}/>])"
    "|<(?:[!?]|/(?![A-Za-z]))[^>]*+>?"
    "|<(?![A-Za-z!?/])"
    ")*+",
    re.DOTALL,
)
_TAG_HEAD = re.compile(f"<(/?)([A-Za-z][^{_WS}/>]*+)")
_ATTRS = re.compile(f"(?:{_SEP}{_ATTR})*+")
_FEW_ATTRS = re.compile(f"(?:{_SEP}{_ATTR}){{0,{MAX_TAG_ATTRIBUTES}}}+(?!{_SEP}[^{_WS}/>])")
_READ_NAME = f"(?ai:{'|'.join(sorted(map(re.escape, READ_ATTRIBUTES), key=len, reverse=True))})(?![^{_WS}/=>])"
# From one attribute boundary: skip attributes pruning never reads, capture the next one it does.
_NEXT_READ = re.compile(f"(?:{_SEP}(?!{_READ_NAME}){_ATTR})*+{_SEP}((?=({_READ_NAME})){_ATTR})")
_SCRIPT_TOKENS = re.compile(f"<!--|-->|</?(?ai:script)(?=[{_WS}/>])")
_DASHES_GT = re.compile("-*>")
_RAW_ENDS = {name: re.compile(f"</(?ai:{name})(?=[{_WS}/>])") for name in _RAW_NAMES}


def cap_attributes(source: str) -> str:
    """``source`` with every tag of more than :data:`MAX_TAG_ATTRIBUTES` attributes cut down.

    Such a tag keeps its name and, in order, the first occurrence of each attribute in
    :data:`READ_ATTRIBUTES` (what pruning reads; libxml2 also keeps the first of duplicates),
    so the pruned page is the same as without the cut. The scan follows the HTML5
    tokenizer (raw-text and script content, comments, quoted values), so a tag cannot hide
    inside a quoted value or a script; it is linear in ``len(source)`` (one C-level regex
    pass; Python work only at raw-text elements and long tags). Pages without long tags are
    returned unchanged (the same object).
    """
    pieces: list[str] = []
    done = pos = 0
    end = len(source)
    while True:
        pos = _PREFIX.match(source, pos).end()
        if pos >= end:
            break
        head = _TAG_HEAD.match(source, pos)
        if head is None:  # unreachable: the prefix stops only at a tag  # pragma: no cover
            pos += 1
            continue
        attrs_start = head.end()
        attrs_end = _ATTRS.match(source, attrs_start).end()
        if not _FEW_ATTRS.match(source, attrs_start):
            pieces += [source[done:attrs_start], _read_attributes(source, attrs_start, attrs_end)]
            done = attrs_end
        pos = attrs_end
        name = head.group(2).lower() if not head.group(1) else ""
        if name == "plaintext":
            break  # everything after it is text
        if name == "script":
            pos = _script_end(source, pos)
        elif name in _RAW_ENDS:
            pos = _raw_end(source, pos, name)
    if not pieces:
        return source
    pieces.append(source[done:])
    return "".join(pieces)


def _read_attributes(source: str, start: int, end: int) -> str:
    """The attributes of ``source[start:end]`` that pruning reads, first of each name, as markup."""
    kept: dict[str, str] = {}
    while True:
        found = _NEXT_READ.match(source, start, end)
        if found is None:
            break
        kept.setdefault(found.group(2).lower(), found.group(1))
        start = found.end()
    return "".join(" " + attribute for attribute in kept.values())


def _script_end(source: str, pos: int) -> int:
    """Where the content of a ``<script>`` starting at ``pos`` ends (HTML5 script data states).

    ``<!--`` escapes, ``<script`` inside an escape double-escapes (then ``</script>`` does
    not close), ``-->`` ends either escape; ``<!-->`` opens and closes at once. The usual
    script, with no ``<!--`` before its end tag, costs two ``str.find`` scans.
    """
    end = _raw_end(source, pos, "script")
    escape = source.find("<!--", pos, end)
    if escape < 0:
        return end
    state = 0  # 0: script data, 1: escaped, 2: double escaped
    for token in _SCRIPT_TOKENS.finditer(source, escape):
        text = token.group()
        if text == "<!--":
            if _DASHES_GT.match(source, token.end()):
                state = 0
            elif state == 0:
                state = 1
        elif text == "-->":
            state = 0
        elif text[1] == "/":
            if state != 2:
                return token.start()
            state = 1
        elif state == 1:
            state = 2
    return len(source)


def _raw_end(source: str, pos: int, name: str) -> int:
    """Where the raw text of a ``name`` element starting at ``pos`` ends: its end tag, or the end."""
    closing = _RAW_ENDS[name]
    while True:
        found = source.find("</", pos)
        if found < 0:
            return len(source)
        if closing.match(source, found):
            return found
        pos = found + 2


def strip_invisible(root: etree._Element) -> etree._Element | None:
    """Drop invisible subtrees and comments in place; return the body (None without one).

    What is left in ``<head>`` after the strip moves to the start of the body: libxml2
    leaves inline content that follows a ``<meta>`` or ``<script>`` of a body-less
    fragment inside the head (``<meta charset=x><button>`` keeps the button there).
    """
    etree.strip_elements(root, *DROPPED_TAGS, etree.Comment, etree.ProcessingInstruction,
                         etree.Entity, with_tail=False)
    if root.tag == "body":
        return root
    body = root.find("body")
    head = root.find("head")
    if head is not None:
        if len(head) or not _blank(head.text):
            if body is None:
                body = etree.SubElement(root, "body")
            _move_to_start(head, body)
            etree.strip_tags(body, "html", "head", "body")  # libxml2 may nest these in head
        root.remove(head)
    return body


def _move_to_start(source: etree._Element, target: etree._Element) -> None:
    """Move ``source``'s text and children in front of ``target``'s content."""
    children = list(source)
    # xml_safe: lxml refuses to write control characters the parser let through.
    if children:
        last = children[-1]
        last.tail = xml_safe((last.tail or "") + (target.text or ""))
        target.text = xml_safe(source.text or "")
        target[0:0] = children
    else:
        target.text = xml_safe((source.text or "") + (target.text or ""))


def clean_attributes(
    body: etree._Element,
) -> tuple[list[etree._Element], dict[etree._Element, str], list[etree._Element], list[etree._Element]]:
    """One walk over ``body``: hidden elements, labels, roles, names, hrefs, attributes.

    * hidden elements (``hidden``, ``aria-hidden="true"``, hiding inline style,
      ``input[type=hidden]``, closed ``dialog``, images without ``alt`` or 0-1 px) are
      removed with their subtrees (tails kept; their content is not even visited);
    * roles are trimmed and lowercased; an ``onclick`` element that is not otherwise
      interactive gets ``role="button"``; an element carrying a dataset's name (a
      non-empty ``name`` or ``data-semantic-id`` on a tag where HTML gives ``name`` no
      meaning, e.g. OPeRA's named ``div``/``li``) counts as interactive, so its name
      survives and it is a click target; an interactive element's ``data-semantic-id``
      becomes its ``name``; other elements lose ``name`` (an empty one never names);
    * a form field without ``aria-label`` gets its ``<label>`` text as ``aria-label``;
    * ``href`` loses query and fragment (and is removed when nothing is left);
    * every attribute not in :data:`KEPT_ATTRIBUTES` is removed (one C call).

    Returns:
        The interactive elements in document order; section container -> slug
        (:mod:`shop_env.webpage.naming` rule 3), neither of which later clean-up removes;
        the visible ``span``/``div`` elements; and the elements that were or may have
        become childless (both for :func:`collapse`), each list in document order.
    """
    hidden: list[etree._Element] = []
    labels: list[etree._Element] = []
    interactive: list[etree._Element] = []
    sections: dict[etree._Element, str] = {}
    fields_by_id: dict[str, etree._Element] = {}
    seen_keys: set[str] = set()
    wrappers: list[etree._Element] = []
    leaves: list[etree._Element] = []  # childless elements, in document order
    # The first lines of the loop run for every element: locals spare global and
    # attribute look-ups there (a quarter of the walk's time on a dense page).
    add_leaf, add_wrapper, see_keys = leaves.append, wrappers.append, seen_keys.update
    plain_keys, wrapper_tags, special_tags = _SPECIAL_KEYS.isdisjoint, _WRAPPER_TAGS, _SPECIAL_TAGS
    walker = etree.iterwalk(body, events=("start",))
    clean_tags = _CLEAN_TAGS
    for _, element in walker:
        tag = element.tag
        if tag not in clean_tags:
            tag = _stable_tag(element, tag)
        if not len(element):
            add_leaf(element)
        keys = element.keys()
        if tag in wrapper_tags:
            add_wrapper(element)
        if keys:
            see_keys(keys)
            if plain_keys(keys):  # most elements carry only class/data-*
                if tag not in special_tags:
                    continue
                special = _NO_KEYS
            else:
                special = keys  # a short list: membership tests below stay cheap
        elif tag in special_tags:
            special = _NO_KEYS
        else:
            continue
        if (tag in _HIDING_TAGS or "hidden" in special or "aria-hidden" in special or "style" in special) \
                and element is not body and _is_hidden(element, tag, special):
            hidden.append(element)
            # Its parent may be left childless: a leaf candidate, still in document order
            # (everything walked since the parent is inside the parent).
            leaves.append(element.getparent())
            walker.skip_subtree()
            continue
        if tag == "label":
            labels.append(element)
        role = None
        if "role" in special:
            role = _SPACES.sub(" ", xml_safe(element.get("role"))).strip().lower()
            element.set("role", role)
        is_interactive = tag in INTERACTIVE_TAGS or role in INTERACTIVE_ROLES \
            or (("name" in special or "data-semantic-id" in special) and _has_dataset_name(element, tag))
        if not is_interactive and "onclick" in special:
            element.set("role", "button")  # keeps "clickable" once onclick is stripped
            is_interactive = True
        if is_interactive:
            interactive.append(element)
            if "data-semantic-id" in special:
                semantic_id = _SPACES.sub(" ", xml_safe(element.get("data-semantic-id"))).strip()
                if semantic_id:
                    element.set("name", semantic_id)  # a dataset's semantic id beats a field name
            if "id" in special and tag in _FIELD_TAGS:
                fields_by_id.setdefault(element.get("id"), element)
        else:
            if "name" in special:
                del element.attrib["name"]
            if is_section_container(tag, role, keys):
                sections[element] = section_slug(element)
        if "href" in special:
            href = _shorten_href(element.get("href"))
            if href:
                element.set("href", href)
            else:
                del element.attrib["href"]
    _rename_and(_strip_subtrees, body, hidden, _DROP)
    _label_fields(labels, fields_by_id)  # after: a hidden field must not take the label
    dropped = seen_keys - KEPT_ATTRIBUTES
    if dropped:
        _strip_attributes(body, dropped)
    return interactive, sections, wrappers, leaves


def collapse(body: etree._Element, wrappers: list[etree._Element], leaves: list[etree._Element]) -> None:
    """Drop empty non-interactive elements, then unwrap bare spans and wrapper divs.

    ``wrappers`` and ``leaves`` come from :func:`clean_attributes`; elements removed
    since have been renamed, so a tag test tells which are still in the tree.
    Spans go first, so ``<div><span>x</span></div>`` keeps its block: ``<div>x</div>``.
    A div is a wrapper when it has no attributes, exactly one child element and only
    blank text around it; all wrappers are found before any is unwrapped.
    """
    _drop_empty(body, leaves)
    # A wrapper refused as unsafe can become safe once wrappers inside it are gone
    # (<p><span><div><a> -> <p><span><a>), so rounds repeat while some were refused and
    # some unwrapped; without refusals one round reaches the fixed point.
    for _ in range(MAX_UNWRAP_ROUNDS):
        spans = [element for element in wrappers if element.tag == "span" and not element.keys()]
        chosen_spans, refused_spans = _safe_to_unwrap(spans)
        _rename_and(etree.strip_tags, body, chosen_spans, _UNWRAP)
        divs = [element for element in wrappers if element.tag == "div" and not element.keys()
                and len(element) == 1 and _blank(element.text) and _blank(element[0].tail)]
        chosen_divs, refused_divs = _safe_to_unwrap(divs)
        _rename_and(etree.strip_tags, body, chosen_divs, _UNWRAP)
        if not (refused_spans or refused_divs) or not (chosen_spans or chosen_divs):
            break


def _safe_to_unwrap(candidates: list[etree._Element]) -> tuple[list[etree._Element], bool]:
    """The candidates (in document order) whose children may move up to where they land.

    Unwrapping must not create a parent/child pair that libxml2 would re-parse
    differently (``<p><span><div>`` -> ``<p><div>`` reads back as ``<p></p><div>``),
    or pruning the pruned page would change it. A child lands in the nearest ancestor
    that is not unwrapped itself; ancestors come first in document order, so that is
    known when a candidate is checked. Returns the safe ones and whether any was refused.
    """
    landing: dict[etree._Element, etree._Element] = {}
    chosen = []
    refused = False
    nesting = _NESTING
    for wrapper in candidates:
        parent = wrapper.getparent()
        if parent is None:
            continue
        if len(wrapper):  # only text moves from a childless wrapper: always safe
            target = landing.get(parent, parent)
            target_tag = target.tag
            for child in wrapper:  # a plain loop: a generator in all() costs twice as much here
                child_tag = child.tag
                if not (nesting.get((target_tag, child_tag)) or _may_contain(target_tag, child_tag)):
                    refused = True
                    break
            else:
                landing[wrapper] = target
                chosen.append(wrapper)
            continue
        chosen.append(wrapper)
    return chosen, refused


_NESTING: dict[tuple[str, str], bool] = {}
_SIMPLE_TAG = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


def _may_contain(parent: object, child: object) -> bool:
    """Whether libxml2 keeps ``<child>`` directly inside ``<parent>`` (found once per pair)."""
    if not isinstance(child, str):
        return True  # a comment or similar: no parsing rule applies
    if parent == "body":
        return True
    key = (parent, child)
    known = _NESTING.get(key)
    if known is None:
        known = False
        if isinstance(parent, str) and _SIMPLE_TAG.fullmatch(parent) and _SIMPLE_TAG.fullmatch(child):
            probe = f"<html><body><{parent}><{child}>x</{child}></{parent}></body></html>"
            root = etree.fromstring(probe, etree.HTMLParser())
            holder = root.find(f".//{parent}") if root is not None else None
            known = holder is not None and holder.find(child) is not None
        _NESTING[key] = known
    return known


def _drop_empty(body: etree._Element, candidates: list[etree._Element | None]) -> None:
    """Remove non-interactive, unnamed elements that hold no text and nothing kept, bottom-up.

    ``candidates`` are the childless elements in document order (some may have gone or
    gained nothing since: each is re-checked). A removed element whose parent thereby
    may have become empty (it was the parent's last child) triggers a check of the
    parent, and so on upwards. Each parent is checked once: O(elements) overall, even
    for 2048-deep chains or thousands of empty siblings.
    """
    marked = []
    blank_chars, kept_tags = BLANK_CHARS, _KEPT_EMPTY_TAGS
    for leaf in candidates:
        # Inlined _blank(): this line runs for every childless element of the page.
        if leaf is None or leaf.tag == _DROP or len(leaf):
            continue
        text = leaf.text
        if text and text.strip(blank_chars):
            continue
        node = leaf
        while node is not body:
            tag = node.tag
            # _kept_empty(), inlined; a surviving ``name`` marks a dataset-named element.
            if tag in kept_tags or node.get("role") in INTERACTIVE_ROLES or node.get("name"):
                # A plain <br> leaf stays in place unless its parent goes (checked below).
                if not (node is leaf and tag == "br" and node.get("role") not in INTERACTIVE_ROLES):
                    break
            else:
                node.tag = _DROP
                marked.append(node)
            if node.getnext() is not None:
                break  # the parent still has a later child to settle first
            node = node.getparent()
            if node is None or not _blank(node.text) or not _only_dropped_children(node):
                break
    if marked:
        _strip_subtrees(body, _DROP)


def _has_dataset_name(element: etree._Element, tag: str) -> bool:
    """Whether ``element`` carries a dataset-provided name (see :data:`_HTML_NAME_TAGS`)."""
    if tag in _NOT_DATASET_NAMED:
        return False
    for key in ("data-semantic-id", "name"):
        value = element.get(key)
        if value and _SPACES.sub(" ", xml_safe(value)).strip():
            return True
    return False


def _only_dropped_children(element: etree._Element) -> bool:
    """Whether every child of ``element`` is marked dropped or a plain ``<br>``, with blank tails."""
    for child in element:  # a plain loop: a generator in all() costs twice as much here
        if not ((child.tag == _DROP or _is_plain_break(child)) and _blank(child.tail)):
            return False
    return True


def _is_plain_break(element: etree._Element) -> bool:
    return element.tag == "br" and element.get("role") not in INTERACTIVE_ROLES


def _blank(text: str | None) -> bool:
    return not text or not text.strip(BLANK_CHARS)


def _is_hidden(element: etree._Element, tag: str, special: list[str] | tuple[str, ...]) -> bool:
    """Whether ``element`` is hidden; ``special`` are its keys in :data:`_SPECIAL_KEYS` (or none)."""
    if tag == "img":
        # Values are read through xml_safe, as the page may later show them (see _strip_attributes).
        if not xml_safe(element.get("alt") or "").strip():
            return True  # unlabelled images say nothing to a text reader (pixels, spacers)
        for side in ("width", "height"):
            size = element.get(side)
            if size and _PIXEL_SIZE.fullmatch(size):
                return True
    elif tag == "dialog" and element.get("open") is None:
        return True
    elif tag == "input" and xml_safe(element.get("type") or "").strip().lower() == "hidden":
        return True
    # The keys spare a look-up of each attribute the element does not have.
    if "hidden" in special:
        return True
    if "aria-hidden" in special and (element.get("aria-hidden") or "").strip().lower() == "true":
        return True
    style = element.get("style") if "style" in special else None
    return bool(style and _HIDING_STYLE.search(style))


def _label_fields(labels: list[etree._Element], fields_by_id: dict[str, etree._Element]) -> None:
    """Give each unlabelled form field its ``<label for=id>`` or enclosing label's text."""
    for label in labels:
        target = label.get("for")
        control = fields_by_id.get(target) if target else None
        if control is None:
            control = next(label.iter("input", "select", "textarea"), None)
        if control is None or control.get("aria-label") or not _is_field(control):
            continue
        text = _SPACES.sub(" ", xml_safe("".join(_LABEL_TEXT(label)))).strip()[:200]
        if text:
            control.set("aria-label", text)


def _is_field(element: etree._Element) -> bool:
    return element.tag in ("select", "textarea") or (
        element.tag == "input" and xml_safe(element.get("type") or "").strip().lower() not in BUTTON_INPUT_TYPES)


def _shorten_href(href: str) -> str:
    """Cut query and fragment, and URI-escape the rest as libxml2's serialiser would.

    libxml2 percent-escapes ``href`` when it writes HTML; escaping first (idempotently:
    ``%`` is safe) makes the value we report equal the value the pruned page shows.
    """
    if "  " in href or not href.isprintable():
        href = _SPACES.sub(" ", href)
    href = href.strip()
    if href[:11].lower() == "javascript:":
        return ""
    cut = _QUERY_OR_FRAGMENT.search(href) if ("?" in href or "#" in href) else None
    if cut:
        href = href[: cut.start()].rstrip()
    return href if URI_SAFE.issuperset(href) else quote(href, safe=_URI_SAFE_MARKS)


def _strip_attributes(body: etree._Element, names: set[str]) -> None:
    try:
        etree.strip_attributes(body, *sorted(names))
        return
    except ValueError:
        pass  # a name lxml cannot take as a pattern or address ("{", control characters)
    # Rebuild the attributes of the elements concerned: clear() works on any name, and
    # every name put back is a kept one. lxml refuses to write back some characters, so
    # values lose them here: every decision on a value reads it through xml_safe, so that
    # this rebuild (which only some pages need) never changes a name, section or verdict.
    for element in body.iter():
        keys = element.keys()
        if names.isdisjoint(keys):
            continue
        kept = [(key, value) for key, value in element.items() if key not in names]
        element.attrib.clear()
        for key, value in kept:
            element.set(key, xml_safe(value))


def _strip_subtrees(body: etree._Element, tag: str) -> None:
    etree.strip_elements(body, tag, with_tail=False)


def _rename_and(operation: Callable[[etree._Element, str], None], body: etree._Element,
                elements: list[etree._Element], sentinel: str) -> None:
    """Apply a C-level strip ``operation`` to ``elements`` by renaming them to ``sentinel``."""
    if not elements:
        return
    for element in elements:
        element.tag = sentinel
    operation(body, sentinel)
