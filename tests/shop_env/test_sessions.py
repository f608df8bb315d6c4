"""Canonical JSONL: round trip, streaming, and errors that name file, line and field."""

import json

import pytest

from shop_env import Action, Session, SessionFormatError, SkipReport, Step
from shop_env.sessions import read_jsonl, select_split, split_of, write_jsonl


def _session(i: int) -> Session:
    steps = [
        Step("https://shop.example/", "<html><input name='q'/></html>", Action("type_and_submit", "q", "tent"),
             "I need a tent.", 1.0 + i),
        Step("https://shop.example/s?k=tent", "<html><a name='r.t'>T</a></html>", Action("click", "r.t"), None, 2.0),
        Step("https://shop.example/p/1", "<html/>", Action("terminate"), "Too pricey.", None, {"k": 1}),
    ]
    return Session(f"s-{i:03d}", steps, user_id="u-1", persona={"age": 30}, source="synthetic")


def test_round_trip(tmp_path):
    sessions = [_session(i) for i in range(5)]
    path = tmp_path / "d" / "s.jsonl"
    assert write_jsonl(sessions, path) == 5
    assert read_jsonl(path) == sessions
    assert not list(tmp_path.glob("d/*.tmp-*"))


def _write_lines(path, lines):
    path.write_bytes(b"\n".join(lines) + b"\n")


GOOD = json.dumps(_session(0).to_dict()).encode()
GOOD_1 = json.dumps(_session(1).to_dict()).encode()


@pytest.mark.parametrize(
    "line, field",
    [
        (b"{not json", "<line>"),
        (b"\xff\xfe garbage", "<line>"),
        (b"[1,2]", "<record>"),
        (json.dumps({"steps": []}).encode(), "session_id"),
        (json.dumps({"session_id": "a", "steps": []}).encode(), "steps"),
        (json.dumps({"session_id": "a", "steps": [{"url": "", "html": "", "action": {"type": "fly"}}]}).encode(),
         "steps[0].action.type"),
        (json.dumps({"session_id": "a", "steps": [{"url": 1, "html": "", "action": {"type": "terminate"}}]}).encode(),
         "steps[0].url"),
        (json.dumps({"session_id": "a", "steps": [{"html": "", "action": {"type": "terminate"},
                                                   "timestamp": "yesterday"}]}).encode(), "steps[0].timestamp"),
    ],
)
def test_bad_record_names_file_line_and_field(tmp_path, line, field):
    path = tmp_path / "bad.jsonl"
    _write_lines(path, [GOOD, b"", line, GOOD])
    with pytest.raises(SessionFormatError) as err:
        read_jsonl(path)
    assert err.value.where == f"{path}:3"
    assert err.value.field == field
    assert str(path) in str(err.value)


def test_skip_invalid_counts_and_reports(tmp_path):
    path = tmp_path / "mixed.jsonl"
    _write_lines(path, [GOOD, b"{broken", b"\xff", GOOD_1, b'{"session_id": "x", "steps": 3}'])
    report = SkipReport()
    sessions = read_jsonl(path, skip_invalid=True, report=report)
    assert len(sessions) == 2
    assert report.skipped == 3
    assert "skipped 3" in report.summary() and ":2" in report.reasons[0]


def test_truncated_last_line(tmp_path):
    path = tmp_path / "trunc.jsonl"
    path.write_bytes(GOOD + b"\n" + GOOD[: len(GOOD) // 2])
    with pytest.raises(SessionFormatError, match=":2"):
        read_jsonl(path)


def test_split_is_deterministic_and_disjoint():
    sessions = [_session(i) for i in range(200)]
    train, test = select_split(sessions, "train"), select_split(sessions, "test")
    assert len(train) + len(test) == 200
    assert 20 <= len(test) <= 60
    assert {s.session_id for s in train}.isdisjoint(s.session_id for s in test)
    assert all(split_of(s.session_id) == "test" for s in test)
    with pytest.raises(ValueError, match="unknown split"):
        select_split(sessions, "dev")
