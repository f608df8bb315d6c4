"""Fuzzing ``ShopReplayEnv.step``: any response text is scored, never raises, never hangs."""

import json
import math
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shop_env import Action, Session, Step, parse_response
from shop_env.env import ShopReplayEnv

PAGE = '<html><body><input name="search_input"/><a name="results.tent">Tent</a></body></html>'
GOLDS = [
    Action("type_and_submit", "search_input", "two person tent"),
    Action("click", "results.tent"),
    Action("terminate"),
]


def _env():
    steps = [Step(f"https://shop.example/{i}", PAGE, gold) for i, gold in enumerate(GOLDS)]
    env = ShopReplayEnv(sessions=[Session("fuzz", steps)])
    env.reset(seed=0)
    return env


ENV = _env()

# Near-miss JSON: valid shape with odd values, so the parser's deeper branches get hit.
json_like = st.fixed_dictionaries(
    {},
    optional={
        "rationale": st.one_of(st.text(), st.integers(), st.none(), st.lists(st.text(), max_size=2)),
        "action": st.one_of(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["click", "type_and_submit", "terminate", "scroll", "CLICK", "", "fly"])},
                optional={"name": st.one_of(st.text(), st.integers(), st.none()), "text": st.one_of(st.text(), st.floats())},
            ),
            st.text(),
            st.integers(),
        ),
        "extra": st.text(),
    },
).map(lambda d: json.dumps(d, ensure_ascii=False))
fenced = json_like.map(lambda body: f"```json\n{body}\n```")
# Up to ~2 MB: a short random text repeated many times (cheap for hypothesis to build).
huge = st.builds(lambda unit, times: unit * times, st.text(min_size=1, max_size=8), st.integers(1, 250_000))
responses = st.one_of(st.text(), st.text(alphabet=st.characters(codec="utf-8")), json_like, fenced, huge,
                      st.binary().map(lambda b: b.decode("utf-8", "replace")))


def _step(text):
    if ENV._step >= len(GOLDS):
        ENV.reset(seed=0)
    index = ENV._step
    obs, reward, terminated, truncated, info = ENV.step(text)
    return index, obs, reward, terminated, info


def _check_invariants(text, index, obs, reward, terminated, info):
    assert isinstance(reward, float) and math.isfinite(reward)
    assert info["gold_action"] == GOLDS[index].to_dict()
    assert obs["step"] == index + 1 and terminated is (index == len(GOLDS) - 1)
    try:
        parse_response(text)
        valid = True
    except ValueError:
        valid = False
    if valid:
        assert info["parse_error"] is None
    else:
        assert reward == 0.0 and info["reward_breakdown"]["total"] == 0
        assert isinstance(info["parse_error"], str) and info["parse_error"]
        assert info["exact_match"] is False and info["type_match"] is False


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(responses)
def test_step_never_raises_and_invalid_earns_zero(text):
    _check_invariants(text, *_step(text))


@pytest.mark.parametrize(
    "text",
    [
        "x" * 2_000_000,
        "{" * 1_000_000,
        "[" * 100_000 + "]" * 100_000,
        '{"rationale": "' + "é" * 1_000_000 + '", "action": {"type": "click", "name": "results.tent"}}',
        '{"rationale": "\\ud800", "action": {"type": "terminate"}}',
        "\x00\ufeff\u202e\U0001f6d2",
        "```\n" + "`" * 100_000,
        "",
        "   \n\t ",
        "null",
        '{"rationale": "r", "action": {"type": "click", "name": "results.tent"}} trailing',
        '{"rationale": "r", "action": {"type": "click", "name": "results.tent"}, "rationale": 3}',
    ],
    ids=["2MB-junk", "1M-open-braces", "deep-array", "1MB-rationale", "lone-surrogate", "odd-unicode",
         "backticks", "empty", "whitespace", "null", "trailing", "duplicate-key"],
)
def test_step_survives_hostile_responses(text):
    _check_invariants(text, *_step(text))


def test_megabyte_valid_response_is_scored():
    ENV.reset(seed=0)
    ENV.step("")  # step 0 (type_and_submit) -> step 1 (click results.tent)
    text = json.dumps({"rationale": "I " + "really " * 200_000 + "want it.", "action": GOLDS[1].to_dict()})
    _, reward, _, _, info = ENV.step(text)
    assert info["parse_error"] is None and info["exact_match"] is True and reward > 1


def test_fenced_whitespace_run_is_scored_quickly():
    # Run in a child process so a quadratic parse is cut off instead of hanging the suite.
    code = (
        "from shop_env.env import ShopReplayEnv\n"
        "from shop_env import Session, Step, Action\n"
        "env = ShopReplayEnv(sessions=[Session('s', [Step('u', '<p/>', Action('terminate'))])])\n"
        "env.reset(seed=0)\n"
        "print(env.step('```\\n' + '\\t' * 200_000 + 'x')[1])\n"
    )
    done = _run_with_timeout(code, 5)
    assert done is not None and done.returncode == 0 and done.stdout.strip() == "0.0"


def _run_with_timeout(code, seconds):
    try:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=seconds, check=False)
    except subprocess.TimeoutExpired:
        return None
