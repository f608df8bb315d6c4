"""prune_html: what is removed, what is kept, and how interactive elements are named."""

from __future__ import annotations

import pytest
from lxml import etree

import shop_env
from shop_env.webpage.prune import MAX_INPUT_SIZE, Element, PrunedPage, prune_html, slugify

CARD_PAGE = """<!DOCTYPE html><html><head><title>t</title><meta charset="utf-8">
<link rel="stylesheet" href="/a.css"><script>var tracking = 1;</script><style>.x{color:red}</style></head>
<body class="b" data-page="search">
<div data-section="search_results" class="grid">
  <article aria-label="Alpine 2-Person Tent" class="card" data-asin="B0" style="color: red">
    <img src="/t.jpg" alt="Alpine 2-Person Tent photo" srcset="/t2.jpg 2x">
    <h2><span>Alpine 2-Person Tent</span></h2><span class="price">$129.99</span>
    <button class="btn" data-track="1" onclick="go()">View product</button>
  </article>
</div>
</body></html>"""


def names(page: PrunedPage) -> list[str]:
    return list(page.elements)


def test_gold_example_name_from_design() -> None:
    page = prune_html(CARD_PAGE)
    assert names(page) == ["search_results.alpine_2_person_tent.view_product"]
    element = page.elements["search_results.alpine_2_person_tent.view_product"]
    assert element == Element(
        name="search_results.alpine_2_person_tent.view_product", tag="button", kind="click",
        text="View product", attrs={"name": "search_results.alpine_2_person_tent.view_product"},
        section="search_results.alpine_2_person_tent",
    )
    assert '<button name="search_results.alpine_2_person_tent.view_product">View product</button>' in page.html


def test_keeps_text_headings_prices_and_alt_but_drops_clutter() -> None:
    page = prune_html(CARD_PAGE)
    for kept in ("<h2>Alpine 2-Person Tent</h2>", "$129.99", 'alt="Alpine 2-Person Tent photo"'):
        assert kept in page.html
    for dropped in ("tracking", "color", "<title", "<meta", "<link", "class=", "data-asin", "data-track", "src", "onclick",
                    "style", "<script", "<style", "<head"):
        assert dropped not in page.html
    assert page.html.startswith("<body>") and page.html.endswith("</body>")


@pytest.mark.parametrize("hidden", [
    '<div hidden><button>Secret</button></div>',
    '<div aria-hidden="true"><button>Secret</button></div>',
    '<div aria-hidden=" TRUE "><button>Secret</button></div>',
    '<div style="display: none"><button>Secret</button></div>',
    '<div style="color:red;VISIBILITY:hidden"><button>Secret</button></div>',
    '<input type="hidden" name="Secret" value="x">',
    '<input type="HIDDEN" name="Secret">',
    '<dialog><button>Secret</button></dialog>',
    '<img src="https://px.example/p.gif" width="1" height="1" alt="Secret">',
    '<img src="https://px.example/p.gif" alt="">',
    '<noscript><a href="/x">Secret</a></noscript>',
    '<template><button>Secret</button></template>',
    '<iframe src="https://ads.example"></iframe><svg><text>Secret</text></svg>',
    '<!-- Secret --><script>document.write("Secret")</script>',
])
def test_hidden_and_invisible_content_is_removed(hidden: str) -> None:
    page = prune_html(f"<body><p>Visible</p>{hidden}<button>Buy</button></body>")
    assert "Secret" not in page.html and "secret" not in " ".join(page.elements)
    assert names(page) == ["buy"]
    assert "Visible" in page.html


def test_open_dialog_and_visible_style_are_kept() -> None:
    page = prune_html('<dialog open aria-label="Sign in"><button>Go</button></dialog>'
                      '<div style="display:block"><button>Buy</button></div>')
    assert names(page) == ["sign_in.go", "buy"]


def test_inline_content_that_libxml2_leaves_in_head_is_kept() -> None:
    page = prune_html("<meta charset=utf-8><script>x()</script>Hello <button>Buy</button>")
    assert names(page) == ["buy"]
    assert page.html == '<body>Hello <button name="buy">Buy</button></body>'
    page = prune_html("<html><head><title>T</title><a>Skip</a></head><body><p>Body</p></body></html>")
    assert page.html == '<body><a name="skip">Skip</a><p>Body</p></body>'


def test_text_around_removed_elements_survives() -> None:
    page = prune_html("<p>Price<script>x()</script> $10<span hidden>old</span> today</p>")
    assert "<p>Price $10 today</p>" in page.html


def test_every_interactive_kind_is_named() -> None:
    page = prune_html("""<body>
      <a href="/deals?ref=x#top">Deals</a><button>Buy now</button>
      <input type="search" placeholder="Search products"><textarea aria-label="Review"></textarea>
      <select aria-label="Size"><option>S</option><option>M</option></select>
      <div role="Button ">Close</div><span onclick="f()">More</span>
      <input type="checkbox" aria-label="Prime"><input type="submit" value="Place order">
      <li role="option">Red</li></body>""")
    kinds = {name: (el.tag, el.kind) for name, el in page.elements.items()}
    assert kinds == {
        "deals": ("a", "click"), "buy_now": ("button", "click"),
        "search_products": ("input", "input"), "review": ("textarea", "input"),
        "size": ("select", "input"), "close": ("div", "click"), "more": ("span", "click"),
        "prime": ("input", "click"), "place_order": ("input", "click"), "red": ("li", "click"),
    }
    assert page.elements["deals"].attrs["href"] == "/deals"
    assert page.elements["close"].attrs["role"] == "button"
    assert page.elements["more"].attrs == {"name": "more", "role": "button"}


def test_existing_name_and_semantic_id_are_kept() -> None:
    page = prune_html("""<form aria-label="Search"><input name="field-keywords" type="text">
        <button data-semantic-id="search_bar.submit" name="btn">Go</button></form>""")
    assert names(page) == ["field-keywords", "search_bar.submit"]
    assert page.elements["search_bar.submit"].section == "search"
    assert "data-semantic-id" not in page.html


def test_existing_names_win_collisions_over_derived_ones() -> None:
    page = prune_html('<button>Buy</button><button name="buy">Other</button><button>Buy</button>')
    assert names(page) == ["buy_2", "buy", "buy_3"]
    assert page.elements["buy"].text == "Other"


def test_duplicate_labels_get_numbered_suffixes() -> None:
    page = prune_html("<ul aria-label='Results'>" + "<li><a>View</a></li>" * 3 + "</ul>"
                      '<input type="radio" name="size"><input type="radio" name="size">')
    assert names(page) == ["results.view", "results.view_2", "results.view_3", "size", "size_2"]


def test_label_fallbacks_when_there_is_no_text() -> None:
    page = prune_html("""<button aria-label="Add to wish list"><svg></svg></button>
        <a href="/p"><img src="/x.jpg" alt="Blue Kettle"></a><button title="Close dialog"></button>
        <input placeholder="Zip code"><input type="email"><textarea>typed by user</textarea>
        <input type="button" value="Apply coupon"><button></button>""")
    assert names(page) == ["add_to_wish_list", "blue_kettle", "close_dialog", "zip_code", "email",
                           "textarea", "apply_coupon", "button"]


def test_form_fields_take_their_label_text() -> None:
    page = prune_html("""<form data-section="checkout">
        <label for="zip">ZIP / Postal code</label><input id="zip" type="text">
        <label><input type="checkbox"> Gift wrap</label>
        <label for="state">State</label><select id="state"><option>CA</option></select></form>""")
    assert names(page) == ["checkout.zip_postal_code", "checkout.gift_wrap", "checkout.state"]
    assert page.elements["checkout.zip_postal_code"].attrs["aria-label"] == "ZIP / Postal code"


def test_section_rule() -> None:
    page = prune_html("""
      <main id="main-content" class="x"><nav aria-label="Breadcrumbs"><a>Home</a></nav>
      <div aria-label="Not a landmark role"><section aria-label="Deals"><button>Shop</button></section></div>
      <span aria-label="ignored span"><button>Plain</button></span>
      <div data-section="A"><div data-section="B"><div data-section="C"><div data-section="D">
        <div data-section="E"><div data-section="---"><button>Deep</button></div></div></div></div></div></div>
      <a aria-label="Links are not sections" href="/x"><span role="button">Inner</span></a>
      <div role="group" aria-label="Colour"><button>Red</button></div></main>""")
    sections = {name: el.section for name, el in page.elements.items()}
    assert sections == {
        "breadcrumbs.home": "breadcrumbs",
        "not_a_landmark_role.deals.shop": "not_a_landmark_role.deals",
        "plain": "",
        "b.c.d.e.deep": "b.c.d.e",  # innermost four non-empty section slugs
        "inner": "",  # the link: its text comes before its aria-label
        "inner_2": "",  # a link is not a section container
        "colour.red": "colour",
    }


def test_slugify() -> None:
    assert slugify("Alpine 2-Person Tent") == "alpine_2_person_tent"
    assert slugify("  $200 & above!! ") == "200_above"
    assert slugify("Café crème") == "café_crème"
    assert slugify("---") == ""
    long = slugify("word " * 40)
    assert len(long) <= 48 and not long.endswith("_") and long.startswith("word_word")


def test_collapses_wrappers_and_drops_empties() -> None:
    page = prune_html("""<body><div><div><div class="a"><span class="b"><p>Deep text</p></span></div></div></div>
        <div><span>one</span> <span>two</span></div><div class="empty"><span> </span><i></i></div>
        <ul><li><br></li></ul><p>a<br>b</p></body>""")
    assert page.html == "<body><p>Deep text</p> <div>one two</div> <p>a<br>b</p></body>"


def test_empty_interactive_elements_are_kept() -> None:
    page = prune_html('<div class="x"><div><button class="icon"></button></div></div>')
    assert page.html == '<body><button name="button"></button></body>'


def test_href_is_shortened_and_script_links_dropped() -> None:
    page = prune_html('<a href="https://shop.example/dp/B01?tag=x&amp;ref=y#reviews">A</a>'
                      '<a href="javascript:void(0)">B</a><a href="#top">C</a>')
    assert [el.attrs.get("href") for el in page.elements.values()] == ["https://shop.example/dp/B01", None, None]


def test_deterministic_and_idempotent_on_a_realistic_page() -> None:
    from benchmarks.html_sample import cluttered_listing_page

    raw = cluttered_listing_page(n_products=12, target_bytes=200_000)
    first = prune_html(raw)
    assert prune_html(raw) == first
    again = prune_html(first.html)
    assert again.html == first.html
    assert again.elements == first.elements


def test_names_in_html_match_the_element_map() -> None:
    from benchmarks.html_sample import cluttered_listing_page

    page = prune_html(cluttered_listing_page(n_products=8, target_bytes=100_000))
    tree = etree.fromstring(page.html, etree.HTMLParser())
    named = [el.get("name") for el in tree.iter() if el.get("name") is not None]
    assert named == list(page.elements)
    assert len(set(named)) == len(named)


def test_accepts_bytes_and_decodes_declared_charset() -> None:
    raw = '<meta charset="iso-8859-1"><button>Crème brûlée</button>'.encode("latin-1")
    assert names(prune_html(raw)) == ["crème_brûlée"]
    raw = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
    assert names(prune_html((raw + "</head><body><a>Caf\u00e9 \u20ac5</a>").encode("cp1252"))) == ["café_5"]
    assert names(prune_html("<button>Crème</button>".encode("utf-8-sig"))) == ["crème"]
    assert names(prune_html("<button>Crème</button>".encode("utf-16"))) == ["crème"]


def test_invalid_utf8_bytes_become_replacement_characters() -> None:
    page = prune_html(b"<p>caf\xe9 \xff\xfe</p><button>Buy \xc3</button>")
    assert "\ufffd" in page.html
    assert names(page) == ["buy"]


def test_nul_control_characters_and_lone_surrogates_do_not_break_parsing() -> None:
    page = prune_html("<p>a\x00b\x01c</p><button>Go\ud800</button>")
    assert len(page.elements) == 1


@pytest.mark.parametrize("raw", ["", "   \n", b"", "<html></html>", "<!-- only a comment -->",
                                 "<frameset><frame src='a'></frameset>", "<script>only()</script>"])
def test_empty_pages(raw: str | bytes) -> None:
    page = prune_html(raw)
    assert page.html == "<body></body>" and page.elements == {}
    assert prune_html(page.html) == page


def test_fragments_and_truncated_html() -> None:
    assert names(prune_html("<button>Buy")) == ["buy"]
    page = prune_html('<div data-section="cart"><a href="/x">Check<')
    assert names(page) == ["cart.check"]
    assert names(prune_html("just text")) == [] and "just text" in prune_html("just text").html


def test_rejects_non_text_input() -> None:
    with pytest.raises(TypeError, match="str or bytes"):
        prune_html(123)  # type: ignore[arg-type]


def test_entity_bomb_is_not_expanded() -> None:
    bomb = ('<!DOCTYPE html [<!ENTITY a "aaaaaaaaaa">'
            + "".join(f'<!ENTITY {c} "{("&" + p + ";") * 10}">' for p, c in zip("abcdefgh", "bcdefghi", strict=True))
            + ']><html><body><p>&i;</p><button>Ok</button></body></html>')
    page = prune_html(bomb)
    assert len(page.html) < 1000
    assert names(page) == ["ok"]


def test_external_entities_and_network_are_never_fetched() -> None:
    page = prune_html('<!DOCTYPE html SYSTEM "http://127.0.0.1:9/evil.dtd"><!DOCTYPE x [<!ENTITY e SYSTEM '
                      '"file:///etc/passwd">]><p>&e;</p><button>Ok</button>')
    assert "root:" not in page.html
    assert names(page) == ["ok"]


def test_deep_nesting_does_not_recurse_or_hang() -> None:
    raw = '<div data-section="s" onclick="x()">' * 10_000 + "<button>Bottom</button>" + "</div>" * 10_000
    page = prune_html(raw)
    assert 0 < len(page.elements) <= 2048  # libxml2 keeps 2048 levels; deeper content is dropped
    assert all(name.count(".") <= 4 for name in page.elements)
    assert prune_html(page.html).html == page.html


def test_deep_nesting_of_text_wrappers() -> None:
    raw = "<span><b>" * 5_000 + "<a href='/x'>Deep link</a>" + "</b></span>" * 5_000
    page = prune_html(raw)
    assert len(page.html) < 100_000


def test_oversized_input_is_truncated_not_rejected() -> None:
    card = '<div class="card"><a href="/p?x=1">Product</a><p>' + "x" * 200 + "</p></div>"
    raw = "<html><body>" + card * (50 * 1024 * 1024 // len(card) + 1) + "</body></html>"
    assert len(raw) >= 50 * 1024 * 1024
    page = prune_html(raw)
    assert page.truncated
    assert 0 < len(page.elements) <= MAX_INPUT_SIZE // len(card) + 1
    assert not prune_html(card).truncated


def test_exported_lazily_from_shop_env() -> None:
    assert shop_env.prune_html is prune_html
    assert shop_env.PrunedPage is PrunedPage


def test_non_ascii_link_names_are_not_percent_escaped() -> None:
    page = prune_html('<nav aria-label="Catégories"><a href="/c/thé vert?x=1">Thé vert</a></nav>'
                      '<a-shopr>custom element</a-shopr><a>Ünïcode</a>')
    assert names(page) == ["catégories.thé_vert", "ünïcode"]
    assert '<a href="/c/th%C3%A9%20vert" name="catégories.thé_vert">Thé vert</a>' in page.html
    assert page.elements["catégories.thé_vert"].attrs["href"] == "/c/th%C3%A9%20vert"
    assert "<a-shopr>custom element</a-shopr>" in page.html
    assert prune_html(page.html) == page


def test_boolean_attributes_read_back_the_same() -> None:
    page = prune_html('<input type="checkbox" checked="checked" aria-label="Gift"><option selected>x</option>')
    assert page.elements["gift"].attrs == {"type": "checkbox", "checked": "", "aria-label": "Gift", "name": "gift"}
    assert prune_html(page.html) == page


@pytest.mark.parametrize("raw", [
    "<p><span><div>Buy</div></span></p>",  # <p><div> would re-parse as <p></p><div>
    "<p><span><div><a>x</a></div></span>",  # safe only once the inner div is gone
    "<p>" + "<span><div>" * 500 + "<a>deep</a>" + "</div></span>" * 500,
    "<a href='/x'><span><a>inner</a></span></a>",
    "<ul><li><span><li>nested item</li></span></li></ul>",
])
def test_unwrapping_never_creates_nesting_that_reparses_differently(raw: str) -> None:
    page = prune_html(raw)
    assert prune_html(page.html) == page


@pytest.mark.parametrize("raw", [b"<A \x01>", b'<a \x01 href="/x?y" title="t\x02">x</a><p {x=1 class=c>t</p>',
                                 '<div role="\x1b" data-semantic-id="a\x08b"><input type="\x08"></div>'])
def test_attribute_names_and_values_lxml_cannot_write(raw: str | bytes) -> None:
    page = prune_html(raw)
    assert prune_html(page.html) == page


def test_dataset_names_on_containers_survive_pruning() -> None:
    # OPeRA names click targets on any tag, containers included, some with name="".
    raw = """<body><div name="results"><ul name="results.list">
        <li name="results.tent" class="card"><span>Tent</span> <button>Add</button></li>
        <li name="">Blank</li></ul></div>
        <div data-semantic-id="banner.close"></div><div name="  ">Spaces</div>
        <form name="search"><input name="q" type="text"></form><br name="x"></body>"""
    page = prune_html(raw)
    kinds = {name: (element.tag, element.kind) for name, element in page.elements.items()}
    assert kinds == {
        "results": ("div", "click"), "results.list": ("ul", "click"), "results.tent": ("li", "click"),
        "add": ("button", "click"), "banner.close": ("div", "click"), "q": ("input", "input"),
    }
    assert page.elements["results.tent"].text == "Tent Add"
    assert '<div name="banner.close"></div>' in page.html  # an empty named element stays
    assert 'name=""' not in page.html and "Blank" in page.html and "Spaces" in page.html
    assert 'name="search"' not in page.html  # a form's own name is HTML markup, not a dataset's
    again = prune_html(page.html)
    assert again.html == page.html and again.elements == page.elements
