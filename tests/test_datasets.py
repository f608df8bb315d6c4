"""Loaders: OPeRA parquet tables, Shop-CART JSON, canonical JSONL, source strings."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shop_env import Action, Session, SessionFormatError, SkipReport, Step, load_sessions
from shop_env.datasets.tables import MissingColumnError
from shop_env.sessions import write_jsonl

HTML = '<html><body><input name="search_input"/><a name="results.tent">Tent</a></body></html>'


def _action_rows(session_id, kinds, start="2025-03-01T10:00:00"):
    rows = []
    for i, kind in enumerate(kinds):
        rows.append({
            "session_id": session_id,
            "action_id": f"{session_id}-a{i}",
            "timestamp": f"2025-03-01T10:0{i}:00+00:00",
            "action_type": kind,
            "click_type": "product_link" if kind == "click" else None,
            "semantic_id": {"click": "results.tent", "input": "search_input"}.get(kind),
            "input_text": "tent" if kind == "input" else None,
            "simplified_html": HTML,
            "rationale": "I want a tent." if i == 0 else None,
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
    _write(base / "session" / "train" / "train.parquet", [{"session_id": "u1_100_200", "user_id": "u1", "action_count": 3}])
    _write(base / "session" / "test" / "test.parquet", [{"session_id": "u2_300_400", "user_id": "u2", "action_count": 2}])
    _write(base / "user" / "train" / "train.parquet", [{"user_id": "u1", "survey": json.dumps({"age": "25-34"})}])
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
    assert first.user_id == "u1" and first.persona == {"survey": {"age": "25-34"}}
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
