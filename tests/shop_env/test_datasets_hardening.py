"""Regressions of the loader/CLI defects an adversarial campaign found (items 8-10)."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shop_env import Action, Session, SessionFormatError, SkipReport, Step, load_sessions
from shop_env.datasets.__main__ import main
from shop_env.sessions import read_jsonl, write_jsonl

HTML = '<html><body><input name="search_input"/><a name="results.tent">Tent</a></body></html>'


def _record(sid, action=None, **extra):
    step = {"url": "https://shop.example/", "html": HTML, "action": action or {"type": "terminate"}}
    return {"session_id": sid, "steps": [step], **extra}


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# -- 8: the CLI on a directory / an unreadable file; an unreadable OPeRA folder --------------


def test_cli_on_a_directory_is_a_user_error(tmp_path, capsys):
    assert main([str(tmp_path), "--no-oracle"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "directory" in err and "Traceback" not in err


def test_cli_on_an_unreadable_file_is_a_user_error(tmp_path, capsys, monkeypatch):
    path = _jsonl(tmp_path / "locked.jsonl", [_record("a")])
    real_open = open

    def guarded(file, *args, **kwargs):  # as root, chmod 000 does not stop reading
        if os.fspath(file) == os.fspath(path):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", guarded)
    assert main([str(path), "--no-oracle"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {path}: Permission denied\n"


def test_cli_on_a_missing_file_and_a_bad_record(tmp_path, capsys):
    assert main([str(tmp_path / "nope.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{broken\n", encoding="utf-8")
    assert main([str(bad)]) == 2
    assert f"{bad}:1" in capsys.readouterr().err


def test_unreadable_opera_action_folder_says_so(tmp_path, monkeypatch):
    action = tmp_path / "O" / "OPeRA_filtered" / "action"
    action.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{"session_id": "s"}]), action / "train-0.parquet")

    def denied(top, *args, onerror=None, **kwargs):
        onerror(PermissionError(13, "Permission denied", os.fspath(top)))
        yield from ()

    monkeypatch.setattr("shop_env.datasets.tables.os.walk", denied)
    with pytest.raises(ValueError, match=r"cannot read OPeRA folder .*action: Permission denied"):
        load_sessions(f"opera:{tmp_path / 'O'}")


def test_opera_missing_or_empty_action_folder_messages(tmp_path):
    with pytest.raises(ValueError, match=r"no OPeRA action folder .*OPeRA_filtered/action"):
        load_sessions(f"opera:{tmp_path}")
    (tmp_path / "OPeRA_filtered" / "action").mkdir(parents=True)
    with pytest.raises(ValueError, match="no OPeRA action tables .* for any split"):
        load_sessions(f"opera:{tmp_path}")
    with pytest.raises(ValueError, match="for split 'test'"):
        load_sessions(f"opera:{tmp_path}", split="test")


# -- 9: an OPeRA row without a session id ----------------------------------------------------


def _opera_row(sid, kind="terminate", i=0):
    return {"session_id": sid, "action_id": f"a{i}", "timestamp": f"2025-03-01T10:0{i}:00+00:00",
            "action_type": kind, "semantic_id": None, "input_text": None, "simplified_html": HTML,
            "rationale": None, "url": "https://www.amazon.com/"}


def test_opera_null_session_id_is_rejected_or_skipped(tmp_path):
    path = tmp_path / "O" / "OPeRA_filtered" / "action" / "train-0.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([_opera_row("s_1_2"), _opera_row(None, i=1)]), path)
    with pytest.raises(SessionFormatError, match=r"train-0\.parquet:row 1.*session_id.*missing") as err:
        load_sessions(f"opera:{tmp_path / 'O'}")
    assert err.value.field == "session_id"
    report = SkipReport()
    sessions = load_sessions(f"opera:{tmp_path / 'O'}", skip_invalid=True, report=report)
    assert [s.session_id for s in sessions] == ["s_1_2"] and report.skipped == 1
    assert "None" not in [s.session_id for s in sessions]


# -- 10: lone surrogates, clicks without a name, duplicate session ids ----------------------


def test_lone_surrogate_is_rejected_at_load_with_file_and_line(tmp_path):
    path = tmp_path / "s.jsonl"
    good = json.dumps(_record("a"))
    bad = json.dumps(_record("b", {"type": "type_and_submit", "name": "search_input", "text": "x\ud800"}))
    assert "\\ud800" in bad  # json escapes it: the file itself is valid UTF-8
    path.write_text(good + "\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(SessionFormatError) as err:
        read_jsonl(path)
    assert err.value.where == f"{path}:2" and err.value.field == "steps[0].action.text"
    assert "surrogate" in str(err.value)
    report = SkipReport()
    assert [s.session_id for s in read_jsonl(path, skip_invalid=True, report=report)] == ["a"]
    assert report.skipped == 1


def test_surrogate_pairs_are_fine_and_round_trip(tmp_path):
    path = _jsonl(tmp_path / "emoji.jsonl",
                  [_record("a", {"type": "type_and_submit", "name": "search_input", "text": "tent \U0001F3D5"})])
    sessions = read_jsonl(path)
    out = tmp_path / "out.jsonl"
    write_jsonl(sessions, out)
    assert read_jsonl(out) == sessions


def test_cli_out_never_crashes_on_a_surrogate(tmp_path, capsys):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(_record("a", persona={"note": "\udc80"})) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main([str(path), "--out", str(out), "--no-oracle"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"{path}:1" in err and "persona.note" in err
    assert not out.exists()


def test_write_jsonl_names_the_session_with_a_surrogate(tmp_path):
    sessions = [Session("ok", [Step("u", "h", Action("terminate"))]),
                Session("bad", [Step("u", "h", Action("type_and_submit", "q", "\ud83d"))])]
    with pytest.raises(ValueError, match=r"session 'bad'.*steps\[0\]\.action\.text.*surrogate"):
        write_jsonl(sessions, tmp_path / "x.jsonl")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("action", [{"type": "click"}, {"type": "click", "name": "  "},
                                    {"type": "type_and_submit", "text": "tent"}])
def test_gold_action_without_a_name_is_rejected(tmp_path, action):
    path = _jsonl(tmp_path / "n.jsonl", [_record("a"), _record("b", action)])
    with pytest.raises(SessionFormatError) as err:
        read_jsonl(path)
    assert err.value.where == f"{path}:2" and err.value.field == "steps[0].action.name"


def test_shopcart_click_without_a_name_is_rejected(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"session_id": "c", "steps": [{"context": "", "action": {"type": "click"}}]}) + "\n",
                    encoding="utf-8")
    with pytest.raises(SessionFormatError, match=r"c\.jsonl:1.*steps\[0\]\.action\.name"):
        load_sessions(f"shopcart:{path}")


def test_duplicate_session_ids_are_rejected_at_load(tmp_path):
    path = _jsonl(tmp_path / "d.jsonl", [_record(1), _record("2"), _record("1")])
    with pytest.raises(SessionFormatError) as err:
        read_jsonl(path)
    assert err.value.where == f"{path}:3" and err.value.field == "session_id"
    assert "duplicate session id '1'" in str(err.value) and "line 1" in str(err.value)
    report = SkipReport()
    assert [s.session_id for s in load_sessions(path, skip_invalid=True, report=report)] == ["1", "2"]
    assert report.skipped == 1


def test_shopcart_duplicate_session_ids_are_rejected(tmp_path):
    path = tmp_path / "c.jsonl"
    rec = {"session_id": 7, "steps": [{"context": "", "action": {"type": "terminate"}}]}
    path.write_text(json.dumps(rec) + "\n" + json.dumps({**rec, "session_id": "7"}) + "\n", encoding="utf-8")
    with pytest.raises(SessionFormatError, match=r"c\.jsonl:2.*duplicate session id '7'"):
        load_sessions(f"shopcart:{path}")
