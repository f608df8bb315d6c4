"""Hypothesis fuzzing of prune_html: never raises, deterministic, idempotent, consistent."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from shop_env.webpage.prune import PrunedPage, prune_html

TAGS = ["div", "span", "p", "a", "button", "input", "select", "option", "textarea", "label", "ul", "li",
        "section", "nav", "article", "form", "h2", "b", "img", "br", "script", "style", "svg", "iframe",
        "dialog", "table", "tr", "td", "head", "body", "html", "meta", "title", "noscript", "template", "p"]
ATTRIBUTES = ["class", "id", "name", "role", "aria-label", "aria-hidden", "hidden", "style", "onclick",
              "href", "type", "value", "placeholder", "alt", "data-section", "data-semantic-id", "for",
              "data-x", "open", "width", "title"]
VALUES = st.one_of(
    st.sampled_from(["", "x", "true", "button", "link", "group", "hidden", "display:none", "1", "Buy now",
                     "search", "checkbox", "/p?q=1#f", "javascript:x()", "A  b\n c", "Röd", "a.b", "_2"]),
    st.text(max_size=12),
)
TEXT = st.one_of(st.sampled_from(["", " ", "Buy", "View product", "$12.99", "a  b", "&amp;", "&nbsp;", "<",
                                  "]]>", "-->"]),
                 st.text(max_size=10))


def attribute_markup(pairs: list[tuple[str, str]]) -> str:
    return "".join(f' {key}="{value.replace(chr(34), "&quot;")}"' for key, value in pairs)


@st.composite
def html_fragments(draw: st.DrawFn, depth: int = 0) -> str:
    """Tag soup: nested, sometimes unclosed or misnested, with random attributes and text."""
    parts = []
    for _ in range(draw(st.integers(0, 4 if depth < 4 else 1))):
        kind = draw(st.integers(0, 9))
        if kind < 3 or depth >= 5:
            parts.append(draw(TEXT))
            continue
        tag = draw(st.sampled_from(TAGS))
        attrs = draw(st.lists(st.tuples(st.sampled_from(ATTRIBUTES), VALUES), max_size=3))
        inner = draw(html_fragments(depth + 1))
        closing = draw(st.sampled_from([f"</{tag}>", f"</{tag}>", "", "</div>"]))
        parts.append(f"<{tag}{attribute_markup(attrs)}>{inner}{closing}")
    return "".join(parts)


def assert_consistent(page: PrunedPage) -> None:
    assert page.html.startswith("<body") and page.html.endswith("</body>")
    tree = etree.fromstring(page.html, etree.HTMLParser())
    body = tree.find("body")
    named = [el.get("name") for el in body.iter() if el.get("name") is not None] if body is not None else []
    assert named == list(page.elements)  # every element named in the html, in order
    for name, element in page.elements.items():
        assert element.name == name and element.attrs["name"] == name
        assert element.kind in ("click", "input")
        assert name.strip() == name and name


def assert_idempotent(page: PrunedPage) -> None:
    again = prune_html(page.html)
    assert again.html == page.html
    assert again.elements == page.elements


@settings(max_examples=300)
@given(html_fragments())
def test_tag_soup_prunes_consistently_and_idempotently(raw: str) -> None:
    page = prune_html(raw)
    assert prune_html(raw) == page
    assert_consistent(page)
    assert_idempotent(page)


@settings(max_examples=200)
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(raw: str) -> None:
    page = prune_html(raw)
    assert_consistent(page)
    assert_idempotent(page)


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    page = prune_html(raw)
    assert_consistent(page)
    assert_idempotent(page)


@settings(max_examples=100)
@given(st.lists(st.sampled_from(["<", ">", "</", "<!--", "-->", "<!DOCTYPE", "<![CDATA[", "]]>", "&", "#",
                                 ";", '"', "'", "=", "a", "button", "div", " ", "\x00", "\ufffd", "<?", "?>",
                                 "<!ENTITY x 'y'>", "&x;", "[", "]"]), max_size=60).map("".join))
def test_markup_punctuation_soup_never_raises(raw: str) -> None:
    page = prune_html(raw)
    assert_consistent(page)
    assert_idempotent(page)


@settings(max_examples=200)
@given(st.lists(st.one_of(st.sampled_from([b"<", b">", b"</", b"<a ", b"<div ", b"=", b'"', b" ", b"x"]),
                          st.binary(max_size=3)), max_size=40).map(b"".join))
def test_byte_soup_with_odd_attribute_names_never_raises(raw: bytes) -> None:
    page = prune_html(raw)
    assert_consistent(page)
    assert_idempotent(page)
