"""benchmarks/compare.py: paired comparison of real evaluation directories."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agents import OracleAgent, RandomAgent
from agents.evaluation import evaluate
from benchmarks.compare import main
from shop_env.observations import build_states
from shop_env.synthetic import generate_sessions

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def evaluations(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("evals")
    states = build_states(generate_sessions(8, seed=4))
    metrics = {name: evaluate(agent, states, root / name, progress=False)
               for name, agent in (("random", RandomAgent(seed=1)), ("oracle", OracleAgent.from_states(states)))}
    evaluate(RandomAgent(seed=1), states[:5], root / "partial", progress=False)
    return root, metrics


def test_prints_the_paired_table_and_writes_json(evaluations, tmp_path, capsys) -> None:
    root, metrics = evaluations
    out = tmp_path / "cmp.json"
    assert main([str(root / "random"), str(root / "oracle"), "--json", str(out)]) == 0
    table = capsys.readouterr().out
    diff = metrics["oracle"]["exact_match"] - metrics["random"]["exact_match"]
    assert f"| {root / 'oracle'} | {100 * diff:+.1f} [" in table
    saved = json.loads(out.read_text())
    assert saved[str(root / "oracle")]["exact_match"]["diff"] == pytest.approx(diff)


def test_user_errors_exit_2(evaluations, tmp_path, capsys) -> None:
    root, _ = evaluations
    assert main([str(tmp_path / "absent"), str(root / "oracle")]) == 2
    assert "error: " in capsys.readouterr().err
    assert main([str(root / "random"), str(root / "partial")]) == 2
    assert "different states" in capsys.readouterr().err


def test_help_as_script() -> None:
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "compare.py"), "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "paired session bootstrap" in done.stdout
