"""The response parser: docs/architecture.md §4 validity rules and clear messages."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shop_env import Action, FormatError, Response, parse_response


def _resp(action, rationale="I want to see the tent."):
    return json.dumps({"rationale": rationale, "action": action})


@pytest.mark.parametrize(
    "text, expected",
    [
        (_resp({"type": "click", "name": "a.b"}), Action("click", "a.b")),
        (_resp({"type": "type_and_submit", "name": "search", "text": "tent"}),
         Action("type_and_submit", "search", "tent")),
        (_resp({"type": "terminate"}), Action("terminate")),
        (_resp({"type": "scroll"}), Action("scroll")),
        (_resp({"type": "click"}), Action("click")),  # missing name is valid format
        (_resp({"type": "click", "name": ""}), Action("click")),
        (_resp({"type": "click", "name": "x", "extra": 1}), Action("click", "x")),
        ("```json\n" + _resp({"type": "terminate"}) + "\n```", Action("terminate")),
        ("```\n" + _resp({"type": "terminate"}) + "\n```", Action("terminate")),
        ("  \n" + _resp({"type": "terminate"}) + "\n\t", Action("terminate")),
    ],
)
def test_valid_responses(text, expected):
    assert parse_response(text).action == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("hello", "JSON object"),
        ("[1, 2]", "JSON object"),
        ('{"rationale": "x"}', "action is missing"),
        ('{"action": {"type": "terminate"}}', "rationale is missing"),
        ('{"rationale": 3, "action": {"type": "terminate"}}', "rationale must be a string"),
        (_resp({"type": "buy"}), "action.type 'buy' is not in the action space: click, type_and_submit, terminate"),
        (_resp({"type": "click", "name": 5}), "action.name must be a string"),
        (_resp({"type": "click", "name": None}), "action.name must be a string"),
        (_resp({"type": "type_and_submit", "name": "q", "text": ["a"]}), "action.text must be a string"),
        (_resp("click"), "action must be a JSON object"),
        (_resp({"type": "terminate"}) + _resp({"type": "terminate"}), "not valid JSON"),
        (_resp({"type": "terminate"}) + " trailing", "not valid JSON"),
        ("```json\n```json\n" + _resp({"type": "terminate"}) + "\n```\n```", "JSON object"),
        ('{"rationale": "x", "action": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ],
)
def test_invalid_responses_say_what_is_wrong(text, message):
    with pytest.raises(FormatError, match=None) as err:
        parse_response(text)
    assert message in str(err.value)
    assert isinstance(err.value, ValueError)


def test_deep_nesting_is_a_format_error_not_a_crash():
    with pytest.raises(FormatError):
        parse_response('{"a":' * 200_000 + "1" + "}" * 200_000)


def test_non_string_input_is_a_format_error():
    with pytest.raises(FormatError):
        parse_response(None)  # type: ignore[arg-type]


def test_round_trip():
    response = Response("I am done.", Action("type_and_submit", "search_bar.q", "red tent"))
    assert parse_response(response.to_json()) == response


@given(st.text(max_size=300))
def test_any_text_parses_or_raises_format_error(text):
    try:
        parse_response(text)
    except FormatError:
        pass


@given(st.recursive(st.none() | st.booleans() | st.floats() | st.text(max_size=10),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                    max_leaves=20))
def test_any_json_value_parses_or_raises_format_error(value):
    try:
        parse_response(json.dumps({"rationale": "r", "action": value}))
    except FormatError:
        pass


@pytest.mark.parametrize("body", ["```\n" + " " * 200_000 + "x", "```\n" + "\t" * 200_000 + "```",
                                  "```" + "`" * 100_000, "```json" + " " * 100_000 + "\n{}\n```"])
def test_fence_stripping_is_linear_on_hostile_input(body):
    # These took seconds to hours with a backtracking regex; now they fail fast.
    with pytest.raises(FormatError):
        parse_response(body)


def test_single_line_fences():
    text = _resp({"type": "terminate"})
    assert parse_response("```" + text + "```").action == Action("terminate")
    assert parse_response("```json" + text + "```").action == Action("terminate")


@pytest.mark.parametrize("value", [
    Action("type_and_submit", "search_input", "tent"),
    '{"type": "type_and_submit", "name": "search_input", "text": "tent"}',
    b'{"type": "type_and_submit", "name": "search_input", "text": "tent"}',
    {"type": "type_and_submit", "name": "search_input", "text": "tent"},
])
def test_action_parse_reads_every_stored_form(value):
    assert Action.parse(value) == Action("type_and_submit", "search_input", "tent")


def test_action_parse_drops_absent_arrow_fields_and_names_the_field():
    assert Action.parse({"type": "terminate", "name": None, "text": None}) == Action("terminate")
    with pytest.raises(FormatError, match="ground_truth is not JSON"):
        Action.parse("{oops", field="ground_truth")
    with pytest.raises(FormatError, match="gold.type"):
        Action.parse({"type": "fly"}, field="gold")
    with pytest.raises(FormatError, match="must be a JSON object"):
        Action.parse("[1, 2]")
