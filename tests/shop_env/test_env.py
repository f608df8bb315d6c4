"""ShopReplay-v0: Gymnasium API conformance, seeding, options, replay, info and errors."""

import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import shop_env
from shop_env import Action, Session, Step
from shop_env.env import AnyText, ShopReplayEnv
from shop_env.sessions import select_split, write_jsonl
from shop_env.webpage.reader import page_element_names

# Warnings check_env may raise that are about the checker, not the env.
ALLOWED_WARNINGS: tuple[str, ...] = ()


def _page(k, extra=""):
    return (
        f'<html><body><section data-section="results"><a name="results.item_{k}">Item {k}</a>'
        f'<input name="search_input" type="text"/>{extra}</section></body></html>'
    )


def make_sessions(n=12):
    """Small hand-made sessions of 1-4 steps, every step a real pruned-style page."""
    sessions = []
    for i in range(n):
        steps = [
            Step(f"https://shop.example/{i}/{k}", _page(k), Action("click", f"results.item_{k}"), f"I pick item {k}.")
            for k in range(i % 3)
        ]
        steps.append(Step(f"https://shop.example/{i}/search", _page(9), Action("type_and_submit", "search_input", "tent")))
        steps.append(Step(f"https://shop.example/{i}/end", "<html><body><p>Thanks</p></body></html>", Action("terminate")))
        sessions.append(Session(f"s-{i:03d}", steps[-4:], user_id=f"u{i}", source="synthetic"))
    return sessions


@pytest.fixture()
def sessions_path(tmp_path):
    path = tmp_path / "sessions.jsonl"
    write_jsonl(make_sessions(), path)
    return str(path)


def _gold_response(action, rationale="I do what I came for."):
    return json.dumps({"rationale": rationale, "action": action.to_dict()})


def _check(env):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    messages = [str(w.message) for w in caught]
    unexpected = [m for m in messages if not any(m.startswith(allowed) for allowed in ALLOWED_WARNINGS)]
    assert unexpected == []


def _package_env_ids():
    return sorted(
        env_id
        for env_id, spec in gym.registry.items()
        if isinstance(spec.entry_point, str) and spec.entry_point.startswith("shop_env")
    )


def test_package_registers_shop_replay():
    assert "ShopReplay-v0" in _package_env_ids()


@pytest.mark.parametrize("env_id", _package_env_ids())
def test_check_env_on_registered_ids_with_defaults(env_id):
    env = gym.make(env_id)
    _check(env.unwrapped)
    env.close()


@pytest.mark.parametrize("context", ["whole-session", "latest-step"])
def test_check_env_on_jsonl_file(sessions_path, context):
    env = gym.make("ShopReplay-v0", sessions=sessions_path, context=context, render_mode="ansi")
    _check(env.unwrapped)


def test_make_vec_sync_four_envs_steps_to_autoreset(sessions_path):
    envs = gym.make_vec("ShopReplay-v0", num_envs=4, vectorization_mode="sync", sessions=sessions_path)
    obs, info = envs.reset(seed=7)
    assert len(obs["html"]) == 4 and list(obs["step"]) == [0, 0, 0, 0]
    done = np.zeros(4, dtype=bool)
    for _ in range(6):
        obs, reward, terminated, truncated, info = envs.step(["not json"] * 4)
        assert reward.shape == (4,) and (reward == 0).all()
        assert not truncated.any()
        done |= terminated
    assert done.all()
    assert envs.observation_space["html"].contains(tuple(obs["html"]))
    envs.close()


def test_same_seed_same_episode(sessions_path):
    def episode(seed):
        env = gym.make("ShopReplay-v0", sessions=sessions_path)
        obs, _ = env.reset(seed=seed)
        trace = [obs]
        terminated = False
        while not terminated:
            obs, reward, terminated, _, info = env.step('{"rationale": "x", "action": {"type": "terminate"}}')
            trace.append((obs, reward, info))
        return trace

    assert episode(3) == episode(3)
    firsts = {gym.make("ShopReplay-v0", sessions=sessions_path).reset(seed=s)[0]["session_id"] for s in range(20)}
    assert len(firsts) > 1  # the seed does pick among sessions


def test_unseeded_reset_continues_the_seeded_stream(sessions_path):
    a = ShopReplayEnv(sessions=sessions_path)
    b = ShopReplayEnv(sessions=sessions_path)
    a.reset(seed=11)
    b.reset(seed=11)
    assert [a.reset()[0]["session_id"] for _ in range(5)] == [b.reset()[0]["session_id"] for _ in range(5)]


def test_reset_options_pick_the_session(sessions_path):
    env = ShopReplayEnv(sessions=sessions_path)
    obs, info = env.reset(options={"session_id": "s-005"})
    assert obs["session_id"] == info["session_id"] == "s-005"
    obs, _ = env.reset(options={"session_index": 2})
    assert obs["session_id"] == env.sessions[2].session_id
    obs, _ = env.reset(seed=1, options={"session_index": np.int64(0)})
    assert obs["session_id"] == env.sessions[0].session_id


@pytest.mark.parametrize(
    "options, message",
    [
        ({"session_id": "nope"}, "unknown session_id 'nope'"),
        ({"session_id": ["s-001"]}, "unknown session_id"),
        ({"session_index": 99}, "out of range"),
        ({"session_index": -1}, "out of range"),
        ({"session_index": "1"}, "must be an int"),
        ({"session_id": "s-001", "session_index": 1}, "not both"),
        ({"sessionid": "s-001"}, "unknown reset option"),
    ],
)
def test_bad_reset_options_raise_clear_errors(sessions_path, options, message):
    env = ShopReplayEnv(sessions=sessions_path)
    with pytest.raises(ValueError, match=message):
        env.reset(options=options)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"context": "whole"}, ValueError, "unknown context 'whole'"),
        ({"split": "dev"}, ValueError, "unknown split 'dev'"),
        ({"max_history": -1}, ValueError, "max_history"),
        ({"render_mode": "human"}, ValueError, "render_mode"),
        ({"reward": {"no_such_field": 1}}, ValueError, "no_such_field"),
        ({"reward": 3}, TypeError, "reward"),
    ],
)
@pytest.mark.filterwarnings("ignore:.*render_mode='human'.*:UserWarning")
def test_bad_kwargs_raise_clear_errors(sessions_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        gym.make("ShopReplay-v0", sessions=sessions_path, **kwargs)


def test_empty_split_and_empty_list_raise(tmp_path):
    sessions = make_sessions(1)
    missing = "test" if select_split(sessions, "test") == [] else "train"
    with pytest.raises(ValueError, match=f"no sessions to replay .*split='{missing}'"):
        ShopReplayEnv(sessions=sessions, split=missing)
    with pytest.raises(ValueError, match="no sessions"):
        ShopReplayEnv(sessions=[])
    with pytest.raises(TypeError, match=r"sessions\[0\] must be a Session"):
        ShopReplayEnv(sessions=[{"session_id": "x"}])
    with pytest.raises(ValueError, match="has no steps"):
        ShopReplayEnv(sessions=[Session("empty", [])])
    with pytest.raises(ValueError, match="duplicate session_id 's-000'"):
        ShopReplayEnv(sessions=make_sessions(1) * 2)
    with pytest.raises(FileNotFoundError):
        ShopReplayEnv(sessions=str(tmp_path / "missing.jsonl"))


def test_split_selects_the_hash_split(sessions_path):
    sessions = make_sessions()
    for split in ("train", "test"):
        expected = [s.session_id for s in select_split(sessions, split)]
        if expected:
            assert [s.session_id for s in ShopReplayEnv(sessions=sessions_path, split=split).sessions] == expected


def test_step_scores_gold_and_replays_the_logged_session(sessions_path):
    env = ShopReplayEnv(sessions=sessions_path)
    session = next(s for s in env.sessions if len(s.steps) == 4)
    obs, info = env.reset(options={"session_id": session.session_id})
    assert info["candidates"] == ["results.item_0", "search_input"]
    for index, step in enumerate(session.steps):
        assert obs["url"] == step.url and obs["html"] == step.html and obs["step"] == index
        # A wrong action still leads to the human's next page (replay).
        text = _gold_response(step.action) if index % 2 == 0 else '{"rationale": "r", "action": {"type": "scroll"}}'
        obs, reward, terminated, truncated, info = env.step(text)
        assert info["gold_action"] == step.action.to_dict()
        assert info["step"] == index and info["session_id"] == session.session_id
        assert info["parse_error"] is None
        assert info["exact_match"] is (index % 2 == 0)
        assert info["type_match"] is (index % 2 == 0)
        assert reward == pytest.approx(info["reward_breakdown"]["total"])
        assert reward == pytest.approx(env.score_response(text, step.action).total)
        assert info["candidates"] == page_element_names(step.html)
        assert terminated is (index == len(session.steps) - 1) and truncated is False
    assert obs == {
        "url": "",
        "html": "",
        "history": obs["history"],
        "session_id": session.session_id,
        "step": len(session.steps),
    }
    assert [e["action"] for e in json.loads(obs["history"])] == [s.action.to_dict() for s in session.steps]
    with pytest.raises(RuntimeError, match="reset"):
        env.step("anything")


def test_gold_answer_beats_invalid_answer(sessions_path):
    env = ShopReplayEnv(sessions=sessions_path)
    env.reset(options={"session_index": 0})
    gold = env.sessions[0].steps[0].action
    good = env.score_response(_gold_response(gold), gold)
    bad = env.score_response("I would click the tent", gold)
    assert good.total > 0 and bad.total == 0


def test_invalid_response_earns_zero_with_reason(sessions_path):
    env = ShopReplayEnv(sessions=sessions_path)
    env.reset(seed=0)
    _, reward, _, _, info = env.step('{"rationale": "x", "action": {"type": "fly"}}')
    assert reward == 0.0
    assert "not in the action space" in info["parse_error"]
    assert info["exact_match"] is False and info["type_match"] is False
    assert info["reward_breakdown"]["total"] == 0


def test_non_string_action_is_an_invalid_response(sessions_path):
    env = ShopReplayEnv(sessions=sessions_path)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(None)
    assert reward == 0.0 and "must be a string" in info["parse_error"]


def test_step_before_reset_raises():
    env = ShopReplayEnv(sessions=make_sessions(2))
    with pytest.raises(RuntimeError, match="reset"):
        env.step("{}")


def test_reward_config_from_dict_is_used(sessions_path):
    import rewards

    env = ShopReplayEnv(sessions=sessions_path, reward={"use_format": False})
    assert env.reward_config == rewards.RewardConfig.from_dict({"use_format": False})
    env.reset(options={"session_index": 0})
    gold = env.sessions[0].steps[0].action
    _, reward, _, _, info = env.step(_gold_response(gold))
    assert info["reward_breakdown"]["format"] == 0
    assert reward == pytest.approx(ShopReplayEnv(sessions=sessions_path).score_response(_gold_response(gold), gold).total - 1)


def test_fresh_dicts_on_every_call(sessions_path):
    env = ShopReplayEnv(sessions=sessions_path)
    obs1, info1 = env.reset(options={"session_index": 0})
    obs2, info2 = env.reset(options={"session_index": 0})
    assert obs1 == obs2 and obs1 is not obs2
    assert info1["candidates"] is not info2["candidates"]
    obs1["html"] = "changed"
    info1["candidates"].append("x")
    obs3, info3 = env.reset(options={"session_index": 0})
    assert obs3 == obs2 and info3 == info2


def test_render_ansi_shows_session_step_and_last_action(sessions_path):
    env = gym.make("ShopReplay-v0", sessions=sessions_path, render_mode="ansi")
    env.reset(options={"session_id": "s-002"})
    text = env.render()
    assert "s-002" in text and "step 0/" in text and "results.item_0" in text
    env.step('{"rationale": "x", "action": {"type": "click", "name": "results.item_0"}}')
    text = env.render()
    assert "agent:" in text and "human:" in text and "reward:" in text
    assert ShopReplayEnv(sessions=sessions_path).render() is None
    assert "not started" in ShopReplayEnv(sessions=sessions_path, render_mode="ansi").render()


def test_any_text_contains_any_string_and_samples_short():
    space = AnyText(sample_max_length=8, seed=0)
    for text in ["", "x" * 5_000_000, "\x00\ud800\U0010ffff", "<html>é</html>"]:
        assert space.contains(text) and text in space
    assert not space.contains(b"bytes") and not space.contains(3)
    assert all(len(space.sample()) <= 8 for _ in range(50))
    assert space == AnyText(sample_max_length=8) and space != AnyText(sample_max_length=9)


def test_page_element_names_decodes_entities_in_document_order():
    page = "<div><a href='x' name='b.two'>2</a><button class=\"c\" name=\"a.one &amp; more\">1</button>" \
           "<p>name=\"not.an.element\"</p><input data-name=\"nope\"/><a name=\"b.two\">again</a></div>"
    assert page_element_names(page) == ["b.two", "a.one & more"]


def test_candidates_match_prune_html_names_on_synthetic_pages():
    from shop_env.synthetic import generate_sessions

    session = generate_sessions(2, seed=3)[0]
    env = ShopReplayEnv(sessions=[session])
    _, info = env.reset(seed=0)
    pruned = shop_env.prune_html(session.steps[0].html)
    assert set(info["candidates"]) == set(pruned.elements)
    gold = session.steps[0].action
    if gold.type in ("click", "type_and_submit"):
        assert gold.name in info["candidates"]


def test_async_vector_env_needs_no_shared_memory_and_says_so(sessions_path):
    with pytest.raises(TypeError, match="shared_memory': False"):
        gym.make_vec("ShopReplay-v0", num_envs=2, vectorization_mode="async", sessions=sessions_path)
    envs = gym.make_vec("ShopReplay-v0", num_envs=2, vectorization_mode="async", sessions=sessions_path,
                        vector_kwargs={"shared_memory": False})
    try:
        obs, _ = envs.reset(seed=0)
        obs, reward, *_ = envs.step([_gold_response(Action("terminate"))] * 2)
        assert all(isinstance(h, str) and h.startswith("[") for h in obs["history"])
        assert reward.shape == (2,)
    finally:
        envs.close()


def test_flattening_the_unbounded_text_space_is_refused():
    from gymnasium.spaces.utils import flatdim, flatten

    space = ShopReplayEnv(sessions=make_sessions(2)).observation_space
    with pytest.raises((TypeError, ValueError)):
        flatdim(space)
    with pytest.raises(TypeError, match="any length"):
        flatten(space["html"], "x" * 100)


def test_candidates_keep_names_on_containers_and_never_an_empty_name():
    page = ('<body><div name="">wrapper</div><ul name="results"><li name="results.tent_1">Tent</li></ul>'
            '<span data-semantic-id="filters.red">Red</span><a name="">nothing</a></body>')
    assert page_element_names(page) == ["results", "results.tent_1", "filters.red"]
