"""The compact page form of prompts: same actionable elements, fewer tokens, content first."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shop_env import load_sessions, prune_html
from shop_env.observations import build_observation
from shop_env.prompt import build_messages, page_text
from shop_env.prompt_settings import PROMPT_SETTINGS_FILE, PromptSettings
from shop_env.webpage.compact import PAGE_FORMATS, check_page_format, compact_page
from shop_env.webpage.reader import page_elements


@pytest.fixture(scope="module")
def sessions():
    return load_sessions("synthetic:12?seed=3")


def _elements(html):
    # An input's text is its label, which the compact form leaves to the line before it.
    return sorted((e.name, e.kind, e.text if e.kind == "click" else "") for e in page_elements(html))


def test_every_named_element_survives_with_its_kind_and_text(sessions):
    pages = [step.html for session in sessions for step in session.steps]
    assert len(pages) > 20
    for html in pages:
        assert _elements(compact_page(html)) == _elements(html)


def test_compact_pages_are_at_most_half_as_long(sessions):
    pages = [step.html for session in sessions for step in session.steps]
    assert sum(len(compact_page(h)) for h in pages) < 0.5 * sum(len(h) for h in pages)


def test_compacting_twice_changes_nothing(sessions):
    for session in sessions:
        for step in session.steps:
            once = compact_page(step.html)
            assert compact_page(once) == once


def test_state_is_kept_and_routing_is_dropped():
    page = prune_html(
        '<body><form><label for="q">Search</label><input id="q" type="search" value="red tent">'
        '<input type="number" aria-label="Quantity" value="2"></form><a href="/dp/P1/slug?ref=x">Open</a></body>'
    ).html
    page = page.replace("</body>", '<button name="blue" aria-pressed="true">Blue</button>'
                                   '<button name="red" aria-pressed="false">Red</button></body>')
    text = compact_page(page)
    assert 'value="red tent"' in text and 'type="number"' in text and 'label="Quantity"' in text
    assert 'aria-pressed="true">Blue' in text and 'aria-pressed' not in text.split("Blue", 1)[1]
    assert "href" not in text and "/dp/" not in text
    # The visible label right before the search box is not repeated as its label attribute.
    assert 'label="Search"' not in text and "Search" in text


def test_site_navigation_and_asides_come_after_the_main_content():
    page = ('<body><header><a name="header.home">Home</a></header><nav><a name="categories.tents">Tents</a></nav>'
            '<main><aside><a name="filters.red">Red</a></aside><nav><a name="breadcrumb.back">Back</a></nav>'
            '<p>Results</p><a name="results.first">First</a></main><footer><a name="footer.help">Help</a></footer>'
            '</body>')
    order = [line.split('"')[1] for line in compact_page(page).splitlines() if 'name="' in line]
    assert order == ["header.home", "breadcrumb.back", "results.first", "footer.help", "categories.tents",
                     "filters.red"]


def test_images_keep_alt_text_only_when_it_says_something_new():
    page = '<body><div><img alt="Blue Tent"><h2>Blue Tent</h2></div><div><img alt="Size chart"><p>Fits all</p></div></body>'
    text = compact_page(page)
    assert text.count("Blue Tent") == 1 and "[image: Size chart]" in text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list("<>/=\"' abn&;\x00\u2028\ud800") + [
    "<a name=", "<div>", "</div>", "<nav>", "<main>", "<aside>", "<img alt=", "<input value=", "</a>"]), max_size=80))
def test_any_text_gives_a_string_without_raising(pieces):
    out = compact_page("".join(pieces))
    assert isinstance(out, str)
    json.dumps(out)  # encodable: no lone surrogate survives


def test_unknown_page_format_is_rejected():
    assert check_page_format("compact") == "compact" and set(PAGE_FORMATS) == {"compact", "html"}
    with pytest.raises(ValueError, match="page_format must be one of compact, html"):
        check_page_format("markdown")
    with pytest.raises(ValueError, match="page_format"):
        build_messages({"url": "", "html": "", "history": "[]", "step": 0}, page_format="xml")


def test_prompts_show_the_compact_page_unless_html_is_asked_for(sessions):
    observation = build_observation(sessions[0], 1, context="latest-step")
    compact = build_messages(observation, context="latest-step")[1]["content"]
    html = build_messages(observation, context="latest-step", page_format="html")[1]["content"]
    assert page_text(observation["html"]) in compact and observation["html"] not in compact
    assert observation["html"] in html


def test_settings_saved_before_page_formats_existed_load_as_html(tmp_path):
    saved = PromptSettings("latest-step", 4, 640)
    saved.save(tmp_path)
    assert PromptSettings.load(tmp_path).page_format == "compact"
    data = json.loads((tmp_path / PROMPT_SETTINGS_FILE).read_text())
    del data["page_format"]
    (tmp_path / PROMPT_SETTINGS_FILE).write_text(json.dumps(data))
    assert PromptSettings.load(tmp_path).page_format == "html"
    with pytest.warns(UserWarning, match="page_format='compact' differs"):
        assert PromptSettings.load(tmp_path).resolve(page_format="compact").page_format == "compact"


def test_names_on_containers_survive_with_their_children():
    page = ('<body><ul name="results"><li name="results.a"><span>A</span><a name="results.a.view">View</a></li>'
            '<li name="results.b">B only</li></ul><div name="">x</div></body>')
    text = compact_page(page)
    assert [(e.name, e.tag, e.kind) for e in page_elements(text)] == [(e.name, e.tag, e.kind) for e in page_elements(page)]
    assert '<ul name="results">' in text and '<li name="results.b">B only</li>' in text and 'name=""' not in text
    assert compact_page(text) == text
