"""Loaders: OPeRA parquet tables, Shop-CART JSON, canonical JSONL, source strings."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shop_env import Action, Session, SessionFormatError, SkipReport, Step, load_sessions
from shop_env.datasets.tables import MissingColumnError
from shop_env.sessions import split_of, write_jsonl

# As published: names sit on any tag (containers included, some empty), pages are used as they are.
HTML = ('<html><body><div name="">header</div><input name="search_input"/>'
        '<ul name="results"><li name="results.tent"><span>Tent</span></li></ul></body></html>')
SURVEY = {"Demographic Information": {"Age": "25-34"}, "Self Description": "I compare prices.",
          "Personality": {"Big Five Scores": {"Openness": "4.2"}}}


def _action_rows(session_id, kinds, start="2025-03-01T10:00:00"):
    rows = []
    for i, kind in enumerate(kinds):
        rows.append({
            "session_id": session_id,
            "action_id": f"{session_id}-a{i}",
            "timestamp": f"2025-03-01T10:0{i}:00.{100 + i}Z",  # ISO, milliseconds, Z (all columns are strings)
            "action_type": kind,
            "click_type": "product_link" if kind == "click" else "",
            "semantic_id": {"click": "results.tent", "input": "search_input"}.get(kind),
            "input_text": "tent" if kind == "input" else "",
            "simplified_html": HTML,
            "rationale": "I want a tent." if i == 0 else "",  # usually "" in the release
            "url": "https://www.amazon.com/",
        })
    return rows


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


@pytest.fixture()
def opera_root(tmp_path):
    root = tmp_path / "OPeRA"
    base = root / "OPeRA_filtered"
    train = _action_rows("u1_100_200", ["input", "click", "terminate"])
    # Shuffle the rows: the loader must order by timestamp.
    _write(base / "action" / "train-00000-of-00001.parquet", [train[2], train[0], train[1]])
    _write(base / "action" / "test-00000-of-00001.parquet", _action_rows("u2_300_400", ["click", "terminate"]))
    _write(base / "session" / "train" / "train.parquet", [{"session_id": "u1_100_200", "user_id": "u1", "action_count": "3"}])
    _write(base / "session" / "test" / "test.parquet", [{"session_id": "u2_300_400", "user_id": "u2", "action_count": "2"}])
    _write(base / "user" / "train" / "train.parquet", [{"user_id": "u1", "survey": json.dumps(SURVEY)}])
    _write(base / "user" / "test" / "test.parquet", [{"user_id": "u2", "survey": "not json"}])
    full = _action_rows("u1_100_200", ["input", "scroll", "navigation", "click", "tab_activate"])
    _write(root / "OPeRA_full" / "action" / "train-00000-of-00001.parquet", full)
    return root


def test_opera_filtered_maps_vocabulary_and_order(opera_root):
    sessions = load_sessions(f"opera:{opera_root}")
    assert [s.session_id for s in sessions] == ["u1_100_200", "u2_300_400"]
    first = sessions[0]
    assert [step.action for step in first.steps] == [
        Action("type_and_submit", "search_input", "tent"), Action("click", "results.tent"), Action("terminate")]
    assert first.user_id == "u1" and first.persona == {"survey": SURVEY}
    assert first.steps[1].html == HTML  # the published simplified page, names on containers kept
    assert first.source == "opera" and first.steps[0].rationale == "I want a tent."
    assert first.steps[0].timestamp < first.steps[1].timestamp
    assert sessions[1].persona == {"survey": "not json"}


def test_opera_uses_its_own_splits(opera_root):
    assert [s.session_id for s in load_sessions(f"opera:{opera_root}", split="test")] == ["u2_300_400"]
    assert [s.session_id for s in load_sessions(f"opera:{opera_root}", split="train")] == ["u1_100_200"]


def test_opera_full_keeps_scroll_drops_browser_events(opera_root):
    report = SkipReport()
    sessions = load_sessions(f"opera:{opera_root}?version=full", report=report)
    assert [step.action.type for step in sessions[0].steps] == ["type_and_submit", "scroll", "click"]
    assert report.dropped == 2


def test_opera_missing_column_names_file_and_column(tmp_path):
    rows = _action_rows("s_1_2", ["click"])
    for row in rows:
        del row["simplified_html"]
    path = tmp_path / "O" / "OPeRA_filtered" / "action" / "train-0.parquet"
    _write(path, rows)
    with pytest.raises(MissingColumnError, match=r"train-0\.parquet.*simplified_html"):
        load_sessions(f"opera:{tmp_path / 'O'}")


def test_opera_bad_row_is_named_or_skipped(tmp_path):
    rows = _action_rows("s_1_2", ["click", "terminate"]) + _action_rows("s_3_4", ["hover"])
    _write(tmp_path / "O" / "OPeRA_filtered" / "action" / "train-0.parquet", rows)
    with pytest.raises(SessionFormatError, match=r"row 2.*action_type"):
        load_sessions(f"opera:{tmp_path / 'O'}")
    report = SkipReport()
    sessions = load_sessions(f"opera:{tmp_path / 'O'}", skip_invalid=True, report=report)
    assert [s.session_id for s in sessions] == ["s_1_2"] and report.skipped == 1


def test_opera_unknown_version_and_missing_root(tmp_path):
    with pytest.raises(ValueError, match="version"):
        load_sessions(f"opera:{tmp_path}?version=mini")
    with pytest.raises(FileNotFoundError):
        load_sessions(f"opera:{tmp_path / 'nowhere' / 'deep'}")


def _shopcart_session():
    return {"session_id": "c1", "user_id": "u9", "steps": [
        {"context": "<p>after search</p>", "action": {"type": "input", "target": "q", "value": "mug"}},
        {"context": "<p>after click</p>", "action": {"action_type": "click", "name": "results.mug"}},
        {"context": "<p>after leaving</p>", "action": '{"type": "terminate"}'},
    ]}


def test_shopcart_context_offset(tmp_path):
    path = tmp_path / "cart.json"
    path.write_text(json.dumps([_shopcart_session()]))
    aligned = load_sessions(f"shopcart:{path}")[0]
    assert [s.html for s in aligned.steps] == ["", "<p>after search</p>", "<p>after click</p>"]
    assert aligned.steps[0].action == Action("type_and_submit", "q", "mug")
    raw = load_sessions(f"shopcart:{path}?context_offset=0")[0]
    assert [s.html for s in raw.steps] == ["<p>after search</p>", "<p>after click</p>", "<p>after leaving</p>"]


def test_shopcart_per_step_lines_and_errors(tmp_path):
    path = tmp_path / "steps.jsonl"
    lines = [
        {"session_id": "c2", "step": 1, "context": "B", "action": {"type": "terminate"}},
        {"session_id": "c2", "step": 0, "context": "A", "action": {"type": "click", "name": "x"}},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n{oops\n")
    with pytest.raises(SessionFormatError, match=r"steps\.jsonl:3"):
        load_sessions(f"shopcart:{path}")
    report = SkipReport()
    session = load_sessions(f"shopcart:{path}?context_offset=0", skip_invalid=True, report=report)[0]
    assert [s.html for s in session.steps] == ["A", "B"] and report.skipped == 1
    with pytest.raises(ValueError, match="context_offset"):
        load_sessions(f"shopcart:{path}?context_offset=abc")


def test_jsonl_source_and_session_list(tmp_path):
    sessions = [Session(f"s{i}", [Step("u", "<p/>", Action("terminate"))]) for i in range(30)]
    path = tmp_path / "x.jsonl"
    write_jsonl(sessions, path)
    assert load_sessions(str(path)) == sessions
    assert load_sessions(f"jsonl:{path}") == sessions
    assert load_sessions(path) == sessions
    test = load_sessions(str(path), split="test")
    assert test == load_sessions(sessions, split="test") and len(test) < 30
    with pytest.raises(FileNotFoundError):
        load_sessions(str(tmp_path / "missing.jsonl"))
    with pytest.raises(ValueError, match="unknown option"):
        load_sessions(f"jsonl:{path}?seed=1")
    with pytest.raises(ValueError, match="unknown data source scheme"):
        load_sessions("ftp:whatever")
    with pytest.raises(TypeError):
        load_sessions(["not a session"])  # type: ignore[list-item]


def test_the_official_opera_split_is_used_by_training_export_env_and_evaluation(opera_root, tmp_path):
    """One split rule: a data set's own split wins over the session-id hash, everywhere."""
    import gymnasium as gym
    import pyarrow.parquet as pq

    from benchmarks.evaluate import main as evaluate_main
    from shop_env.sessions import select_split, split_rule
    from training.config import load_config
    from training.pipeline import prepare_data
    from training.verl_backend.export import export_dataset

    source = f"opera:{opera_root}"
    sessions = load_sessions(source)
    assert {s.session_id: s.split for s in sessions} == {"u1_100_200": "train", "u2_300_400": "test"}
    # With test_fraction 1.0 the hash would put every session in test: the published split must win.
    assert split_of("u1_100_200", 1.0) == "test"
    assert [s.session_id for s in select_split(sessions, "train", 1.0)] == ["u1_100_200"]
    assert split_rule(sessions) == "the data set's own train/test split"

    config = load_config("tiny-cpu", [f"data.sessions={source}", "data.test_fraction=0.99"])
    data = prepare_data(config)
    assert [s.session_id for s in data.train_sessions] == ["u1_100_200"]
    assert [s.session_id for s in data.test_sessions] == ["u2_300_400"]
    assert data.split_rule == "the data set's own train/test split"

    result = export_dataset(source, tmp_path / "verl", test_fraction=0.99, sft=False)
    test_ids = {row["extra_info"]["session_id"] for row in pq.read_table(result.rl["test"]).to_pylist()}
    train_ids = {row["extra_info"]["session_id"] for row in pq.read_table(result.rl["train"]).to_pylist()}
    assert (train_ids, test_ids) == ({"u1_100_200"}, {"u2_300_400"})

    env = gym.make("ShopReplay-v0", sessions=source, split="test")
    _, info = env.reset(seed=0)
    assert info["session_id"] == "u2_300_400"
    assert info["candidates"] == ["search_input", "results", "results.tent"]  # containers named, "" not

    out = tmp_path / "eval"
    assert evaluate_main(["--agent", "heuristic", "--data", source, "--split", "test", "--out", str(out),
                          "--no-progress"]) == 0
    scored = {json.loads(line)["session_id"] for line in (out / "predictions.jsonl").read_text().splitlines()}
    assert scored == {"u2_300_400"}


def test_a_session_file_keeps_its_split(tmp_path):
    path = tmp_path / "s.jsonl"
    write_jsonl([Session("a", [Step("u", HTML, Action("terminate"))], split="test"),
                 Session("b", [Step("u", HTML, Action("terminate"))])], path)
    loaded = load_sessions(str(path))
    assert [s.split for s in loaded] == ["test", None]
    expected = ["a"] + (["b"] if split_of("b") == "test" else [])
    assert [s.session_id for s in load_sessions(str(path), split="test")] == expected
    path.write_text(json.dumps({"session_id": "c", "split": "dev", "steps": [
        {"url": "u", "html": HTML, "action": {"type": "terminate"}}]}) + "\n")
    with pytest.raises(SessionFormatError, match="split"):
        load_sessions(str(path))


def test_a_null_semantic_id_skips_the_step_or_the_whole_session(tmp_path):
    root = tmp_path / "OPeRA"
    broken = _action_rows("u1_100_200", ["input", "click", "terminate"])
    broken[1]["semantic_id"] = None  # a click that names no element
    _write(root / "OPeRA_filtered" / "action" / "train-00000-of-00001.parquet",
           broken + _action_rows("u2_300_400", ["click", "terminate"]))
    with pytest.raises(SessionFormatError, match="semantic_id"):
        load_sessions(f"opera:{root}")
    by_step = SkipReport()
    steps = load_sessions(f"opera:{root}", skip_invalid=True, report=by_step)
    assert [len(s.steps) for s in steps] == [2, 2] and by_step.skipped == 1 and by_step.sessions_skipped == 0
    by_session = SkipReport()
    whole = load_sessions(f"opera:{root}?invalid=session", report=by_session)
    assert [s.session_id for s in whole] == ["u2_300_400"]
    assert (by_session.skipped, by_session.sessions_skipped) == (1, 1)
    assert "and 1 session(s) holding them" in by_session.summary()
    with pytest.raises(ValueError, match="invalid='drop'"):
        load_sessions(f"opera:{root}?invalid=drop")
