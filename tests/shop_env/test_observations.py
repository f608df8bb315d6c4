"""States: the (session, step) observations shared by the env, GRPO prompts and evaluation."""

import json

import pytest

from shop_env import Action, Session, Step
from shop_env.env import ShopReplayEnv
from shop_env.observations import (
    OBSERVATION_KEYS,
    State,
    build_observation,
    build_states,
    parse_history,
)
from shop_env.sessions import read_jsonl, write_jsonl


def make_sessions():
    def step(i, k, action):
        return Step(f"https://shop.example/{i}/{k}", f'<p>page {i}.{k} "quoted" é</p><a name="a.{k}">go</a>', action,
                    rationale=f"reason {k}" if k % 2 == 0 else None, meta={"page_type": "search", "k": k})

    return [
        Session(f"s{i}", [step(i, k, Action("click", f"a.{k}")) for k in range(n)] + [step(i, n, Action("terminate"))])
        for i, n in enumerate([0, 1, 3, 5])
    ]


@pytest.fixture()
def sessions(tmp_path):
    path = tmp_path / "s.jsonl"
    write_jsonl(make_sessions(), path)
    return read_jsonl(path)  # through a real file, as users load them


@pytest.mark.parametrize("context", ["whole-session", "latest-step"])
@pytest.mark.parametrize("max_history", [None, 0, 2])
def test_states_equal_env_observations(sessions, context, max_history):
    states = build_states(sessions, context=context, max_history=max_history)
    assert len(states) == sum(len(s.steps) for s in sessions)
    env = ShopReplayEnv(sessions=sessions, context=context, max_history=max_history)
    by_key = {(s.session_id, s.step): s for s in states}
    for index, session in enumerate(sessions):
        obs, _ = env.reset(options={"session_index": index})
        for k, step in enumerate(session.steps):
            state = by_key[(session.session_id, k)]
            assert state.observation == obs
            assert tuple(obs) == OBSERVATION_KEYS
            assert state.gold == step.action and state.rationale == step.rationale
            assert state.meta == step.meta and state.meta is not step.meta
            obs, *_ = env.step("")


def test_history_json_honours_context_and_max_history(sessions):
    session = sessions[3]
    whole = parse_history(build_observation(session, 4)["history"])
    assert [e["url"] for e in whole] == [s.url for s in session.steps[:4]]
    assert [e["html"] for e in whole] == [s.html for s in session.steps[:4]]
    assert [e["action"] for e in whole] == [s.action.to_dict() for s in session.steps[:4]]
    latest = parse_history(build_observation(session, 4, context="latest-step")["history"])
    assert [e["html"] for e in latest] == [None] * 4
    assert [e["action"] for e in latest] == [e["action"] for e in whole]
    last_two = parse_history(build_observation(session, 4, max_history=2)["history"])
    assert last_two == whole[2:]
    assert parse_history(build_observation(session, 4, max_history=0)["history"]) == []
    assert parse_history(build_observation(session, 0)["history"]) == []


def test_final_observation_has_no_page(sessions):
    session = sessions[1]
    final = build_observation(session, len(session.steps))
    assert final["url"] == "" and final["html"] == "" and final["step"] == len(session.steps)
    assert len(json.loads(final["history"])) == len(session.steps)
    with pytest.raises(IndexError, match="outside session 's1'"):
        build_observation(session, len(session.steps) + 1)


def test_state_to_dict_is_json(sessions):
    state = build_states(sessions)[3]
    data = json.loads(json.dumps(state.to_dict()))
    assert data["gold"] == state.gold.to_dict() and data["observation"] == state.observation
    assert isinstance(state, State)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"context": "full"}, "unknown context 'full'"), ({"max_history": -2}, "max_history"),
     ({"max_history": 1.5}, "max_history")],
)
def test_bad_arguments_raise(sessions, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_states(sessions, **kwargs)


def test_session_without_steps_is_rejected():
    with pytest.raises(ValueError, match="'empty' has no steps"):
        build_states([Session("empty", [])])


def test_parse_history_rejects_non_arrays():
    for bad in ["{}", "not json", "[1]", '[{"a": 1}, 2]']:
        with pytest.raises(ValueError, match="history"):
            parse_history(bad)


def test_states_on_synthetic_default_sessions():
    from shop_env.synthetic import generate_sessions

    sessions = generate_sessions(3, seed=1)
    states = build_states(sessions)
    assert len(states) == sum(len(s.steps) for s in sessions)
    assert all(s.observation["html"] == sessions[0].steps[s.step].html for s in states if s.session_id == sessions[0].session_id)
    assert all("oracle_action" in s.meta for s in states)
