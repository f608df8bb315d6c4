"""tests/session_factory.py builds valid, deterministic sessions."""

from __future__ import annotations

from tests.session_factory import make_sessions


def test_make_sessions_is_deterministic_and_valid() -> None:
    first, again = make_sessions(4, seed=3), make_sessions(4, seed=3)
    assert [s.to_dict() for s in first] == [s.to_dict() for s in again]
    assert all(s.steps[-1].action.type == "terminate" for s in first)
