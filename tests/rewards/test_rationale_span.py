"""rationale_char_span / rationale_token_mask: which characters and tokens are the rationale."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards import rationale_char_span, rationale_token_mask
from shop_env.actions import FormatError, parse_response


def span_text(text: str) -> str:
    span = rationale_char_span(text)
    assert span is not None
    return text[span[0]:span[1]]


def test_plain_response():
    text = '{"rationale": "I want it", "action": {"type": "terminate"}}'
    assert span_text(text) == "I want it"


def test_fenced_and_padded_response():
    text = '\n  ```json\n{"action": {"type": "terminate"},\n "rationale" :  "Cheap \\"tent\\"" }\n```  \n'
    assert span_text(text) == 'Cheap \\"tent\\"'  # raw, still JSON-escaped


def test_duplicate_key_uses_the_last_like_json_loads():
    text = '{"rationale": "first", "action": {"type": "terminate"}, "rationale": "second"}'
    assert span_text(text) == "second"
    text = '{"rationale": "first", "action": {"type": "terminate"}, "rationale": 3}'
    assert rationale_char_span(text) is None


def test_escaped_key_is_recognised():
    assert span_text('{"rati\\u006fnale": "r", "action": {}}') == "r"


def test_empty_rationale_is_an_empty_span():
    text = '{"rationale": "", "action": {"type": "terminate"}}'
    start, end = rationale_char_span(text)
    assert start == end == text.index('""') + 1


@pytest.mark.parametrize("text", [
    "", "no json", "[]", "{}", '{"action": {}}', '{"rationale": 5}', '{"rationale": "x"} extra',
    '{"rationale": "x", }', '{"rationale": "x"', '{"rationale": "unterminated}', '{"a" 1}',
    '{"rationale": "x" "b": 1}', '{"rationale": "bad\ncontrol"}', "```\n{\"rationale\": \"x\"}", None, 12,
    '{"a": ' + "[" * 50_000 + "]" * 50_000 + ', "rationale": "x"}',
])
def test_unparseable_gives_none(text):
    result = rationale_char_span(text)
    # Deep nesting may still parse fine; everything else here is not one JSON object with a string rationale.
    if isinstance(text, str) and text.startswith('{"a": ['):
        assert result is None or text[result[0]:result[1]] == "x"
    else:
        assert result is None


ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=40)


@settings(max_examples=300, deadline=None)
@given(rationale=ANY_TEXT, name=ANY_TEXT, fence=st.booleans(), ascii_only=st.booleans(),
       indent=st.sampled_from([None, 0, 2]), order=st.booleans())
def test_span_decodes_to_the_parsed_rationale(rationale, name, fence, ascii_only, indent, order):
    data = {"rationale": rationale, "action": {"type": "click", "name": name}}
    if order:
        data = {"action": data["action"], "rationale": rationale}
    text = json.dumps(data, ensure_ascii=ascii_only, indent=indent)
    if fence:
        text = f"```json\n{text}\n```"
    start, end = rationale_char_span(text)
    assert json.loads('"' + text[start:end] + '"') == rationale
    assert text[start - 1] == '"' and text[end] == '"'


@settings(max_examples=300, deadline=None)
@given(text=st.lists(st.sampled_from(['{', '}', '"', ':', ',', ' ', 'rationale', 'action', '"x"', '[]',
                                      '```', '\n', '\\', '1']), max_size=30).map("".join))
def test_never_raises_and_agrees_with_parser(text):
    span = rationale_char_span(text)
    try:
        response = parse_response(text)
    except FormatError:
        return
    assert span is not None
    assert json.loads('"' + text[span[0]:span[1]] + '"') == response.rationale


def test_token_mask_overlap_rule():
    span = (10, 20)
    offsets = [(0, 0), (0, 10), (8, 11), (10, 12), (19, 20), (20, 21), (19, 25), (15, 15), (25, 30)]
    assert rationale_token_mask(offsets, span) == [False, False, True, True, True, False, True, False, False]
    assert rationale_token_mask(offsets, None) == [False] * len(offsets)
    assert rationale_token_mask([], span) == []


def test_token_mask_with_a_real_tokenizer():
    """A byte-level BPE tokenizer trained here: the selected tokens are exactly the rationale."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["[UNK]"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = ['{"rationale": "I want the cheapest tent", "action": {"type": "click", "name": "x"}}'] * 20
    tokenizer.train_from_iterator(corpus, trainer)

    text = '```json\n{"rationale": "I want the cheapest tent, é!", "action": {"type": "terminate"}}\n```'
    encoding = tokenizer.encode(text)
    span = rationale_char_span(text)
    mask = rationale_token_mask(encoding.offsets, span)
    chosen = [off for off, keep in zip(encoding.offsets, mask, strict=True) if keep]
    assert chosen and min(s for s, _ in chosen) <= span[0] and max(e for _, e in chosen) >= span[1]
    covered = set()
    for start, end in chosen:
        covered.update(range(start, end))
    assert covered >= set(range(*span))
    # Nothing selected lies wholly outside the rationale (e.g. the quotes or "action").
    assert all(end > span[0] and start < span[1] for start, end in chosen)
