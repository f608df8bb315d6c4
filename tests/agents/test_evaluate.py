"""agents.evaluation and its CLI benchmarks/evaluate.py: scoring, output files, resume, on real synthetic sessions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents import BaseAgent, OracleAgent, RandomAgent
from agents.evaluation import (
    CONFUSION,
    METRICS,
    PREDICTIONS,
    REPORT,
    PredictionsError,
    compare_predictions,
    evaluate,
    load_predictions,
    prediction_record,
)
from benchmarks.evaluate import main
from rewards import RewardConfig
from shop_env.observations import build_states
from shop_env.sessions import write_jsonl
from shop_env.synthetic import generate_sessions, oracle_ceiling

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sessions() -> list:
    return generate_sessions(12, seed=5)


@pytest.fixture(scope="module")
def states(sessions: list) -> list:
    return build_states(sessions, context="latest-step")


class CountingAgent(BaseAgent):
    """Wraps an agent and records which observations it was asked about."""

    def __init__(self, inner: BaseAgent) -> None:
        self.inner = inner
        self.name = inner.name  # the same agent, as far as resuming is concerned
        self.seen: list[tuple[str, int]] = []

    def act(self, observation: dict) -> str:
        self.seen.append((observation["session_id"], observation["step"]))
        return self.inner.act(observation)


class FixedAgent(BaseAgent):
    """Answers the same (possibly broken) outputs in turn."""

    name = "fixed"

    def __init__(self, answers: list) -> None:
        self.answers = answers
        self.calls = 0

    def act_batch(self, observations: list) -> list:
        out = []
        for _ in observations:
            out.append(self.answers[self.calls % len(self.answers)])
            self.calls += 1
        return out


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_evaluate_writes_predictions_metrics_report_and_plot(states: list, tmp_path: Path) -> None:
    metrics = evaluate(RandomAgent(seed=1), states, tmp_path, batch_size=5, progress=False)
    for name in (PREDICTIONS, METRICS, REPORT, CONFUSION):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / CONFUSION).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    records = lines_of(tmp_path / PREDICTIONS)
    assert [(r["session_id"], r["step"]) for r in records] == [(s.session_id, s.step) for s in states]
    assert all(r["valid"] and r["reward"]["format"] == 1.0 for r in records)
    assert json.loads((tmp_path / METRICS).read_text()) == metrics
    assert metrics["n"] == len(states)
    for key in ("exact_match", "type_accuracy", "type_macro_f1", "invalid_rate"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["invalid_rate"] == 0.0
    assert set(metrics["per_type"]) == {s.gold.type for s in states}
    assert metrics["exact_match"] == pytest.approx(sum(r["exact_match"] for r in records) / len(records))
    assert metrics["reward"]["total"] == pytest.approx(sum(r["reward"]["total"] for r in records) / len(records))
    assert sum(sum(row.values()) for row in metrics["confusion"].values()) == len(states)
    report = (tmp_path / REPORT).read_text()
    assert "| Model | Exact | Type acc | Type F1" in report and "random" in report and CONFUSION in report
    # 95% session-bootstrap intervals, and the sample they rest on.
    assert metrics["n_sessions"] == len({s.session_id for s in states})
    for key in ("exact_match", "type_accuracy"):
        low, high = metrics[f"{key}_ci"]
        assert 0.0 <= low <= metrics[key] <= high <= 1.0
    assert metrics["ci"] == {"level": 0.95, "resamples": 1000, "seed": 0, "unit": "session"}
    low, high = metrics["type_accuracy_ci"]
    assert f"{100 * metrics['type_accuracy']:.1f} [{100 * low:.1f}, {100 * high:.1f}]" in report
    assert f"| {len(states)} | {metrics['n_sessions']} |" in report and "bootstrap" in report
    share = metrics["predicted_type_share"]
    assert sum(share.values()) == pytest.approx(1.0) and share["invalid"] == 0.0
    predicted = [r["pred"]["type"] for r in records]
    assert share["terminate"] == pytest.approx(predicted.count("terminate") / len(records))


def test_the_report_breaks_answers_down_by_page_type(states: list, tmp_path: Path) -> None:
    metrics = evaluate(OracleAgent.from_states(states), states, tmp_path, progress=False)
    records = lines_of(tmp_path / PREDICTIONS)
    assert [r["page_type"] for r in records] == [s.meta["page_type"] for s in states]
    pages = metrics["by_page_type"]
    assert sum(row["n"] for row in pages.values()) == len(states)
    home = [r for r in records if r["page_type"] == "home"]
    assert pages["home"]["exact_match"] == pytest.approx(sum(r["exact_match"] for r in home) / len(home))
    for row in pages.values():
        assert sum(row["predicted_type_share"].values()) == pytest.approx(1.0)
        assert sum(row["gold_type_share"].values()) == pytest.approx(1.0)
    report = (tmp_path / REPORT).read_text()
    assert "By page type" in report and "| home |" in report and "terminate: logged / answered" in report
    # Data without page types (real logs) get no section.
    bare = [type(s)(s.session_id, s.step, s.observation, s.gold) for s in states]
    assert "by_page_type" not in evaluate(RandomAgent(seed=1), bare, tmp_path / "bare", progress=False)
    assert "By page type" not in (tmp_path / "bare" / REPORT).read_text()


def test_oracle_scores_close_to_the_ceiling(sessions: list, states: list, tmp_path: Path) -> None:
    metrics = evaluate(OracleAgent.from_states(states), states, tmp_path, progress=False)
    ceiling = oracle_ceiling(sessions)
    assert 0.3 < ceiling < 1.0
    assert metrics["exact_match"] == pytest.approx(ceiling, abs=0.1)
    assert metrics["exact_match"] > evaluate(RandomAgent(), states, tmp_path / "r", progress=False)["exact_match"]


def test_resume_after_an_interrupted_run(states: list, tmp_path: Path) -> None:
    full = evaluate(RandomAgent(seed=2), states, tmp_path / "full", progress=False)
    # Simulate a kill halfway: 7 complete records, then half of the 8th.
    path = tmp_path / "part" / PREDICTIONS
    path.parent.mkdir()
    raw = (tmp_path / "full" / PREDICTIONS).read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(raw[:7]) + raw[7][: len(raw[7]) // 2], encoding="utf-8")
    agent = CountingAgent(RandomAgent(seed=2))
    resumed = evaluate(agent, states, tmp_path / "part", batch_size=4, progress=False)
    assert agent.seen == [(s.session_id, s.step) for s in states[7:]]
    assert len(lines_of(path)) == len(states)  # the partial line was cut, not kept
    for key in ("exact_match", "type_accuracy", "type_macro_f1", "invalid_rate", "per_type", "reward", "confusion"):
        assert resumed[key] == full[key]
    # A finished run resumes to nothing and keeps its numbers.
    again = CountingAgent(RandomAgent(seed=2))
    assert evaluate(again, states, tmp_path / "part", progress=False)["exact_match"] == full["exact_match"]
    assert again.seen == []


def test_no_resume_starts_over(states: list, tmp_path: Path) -> None:
    evaluate(RandomAgent(), states[:5], tmp_path, progress=False)
    agent = CountingAgent(RandomAgent())
    evaluate(agent, states[:5], tmp_path, resume=False, progress=False)
    assert len(agent.seen) == 5 and len(lines_of(tmp_path / PREDICTIONS)) == 5


def test_corrupt_middle_record_names_file_and_line(states: list, tmp_path: Path) -> None:
    evaluate(RandomAgent(), states[:4], tmp_path, progress=False)
    path = tmp_path / PREDICTIONS
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    with pytest.raises(PredictionsError, match=r"predictions\.jsonl:2: .*--repair.* keep the 4 valid record"):
        evaluate(RandomAgent(), states[:4], tmp_path, progress=False)
    assert len(load_predictions(tmp_path / "missing.jsonl")) == 0


def test_repair_keeps_the_valid_records(states: list, tmp_path: Path) -> None:
    full = evaluate(RandomAgent(seed=3), states[:6], tmp_path, progress=False)
    path = tmp_path / PREDICTIONS
    original = path.read_text().splitlines()
    broken = [original[0], "{not json", original[1], '{"session_id": 3}', *original[3:]]  # record 3 lost
    path.write_text("\n".join(broken) + "\n")
    agent = CountingAgent(RandomAgent(seed=3))
    repaired = evaluate(agent, states[:6], tmp_path, progress=False, repair=True)
    assert agent.seen == [(states[2].session_id, states[2].step)]  # only the lost state is rerun
    assert (tmp_path / (PREDICTIONS + ".bak")).read_text() == "\n".join(broken) + "\n"
    assert len(lines_of(path)) == 6
    assert repaired["n"] == 6 and load_predictions(path).keys() == {(s.session_id, s.step) for s in states[:6]}
    assert full["n"] == 6


def test_bad_outputs_are_scored_invalid_not_crashes(states: list, tmp_path: Path) -> None:
    answers = ["", "not json \ud800", None, '{"rationale": 1, "action": {}}', "```json\n{\"rationale\": \"x\", "
               '"action": {"type": "terminate"}}\n```']
    metrics = evaluate(FixedAgent(answers), states[:10], tmp_path, progress=False)
    records = lines_of(tmp_path / PREDICTIONS)
    assert [r["valid"] for r in records] == [False, False, False, False, True] * 2
    assert all(r["error"] for r in records if not r["valid"])
    assert all(r["reward"]["total"] == 0.0 for r in records if not r["valid"])
    assert metrics["invalid_rate"] == pytest.approx(0.8)
    assert sum(row.get("invalid", 0) for row in metrics["confusion"].values()) == 8


def test_agent_returning_wrong_count_is_an_error(states: list, tmp_path: Path) -> None:
    class Short(BaseAgent):
        def act_batch(self, observations: list) -> list:
            return []

    with pytest.raises(ValueError, match="0 answers for 3"):
        evaluate(Short(), states[:3], tmp_path, batch_size=3, progress=False)


def test_reward_config_is_used(states: list, tmp_path: Path) -> None:
    oracle = OracleAgent.from_states(states)
    binary = evaluate(oracle, states, tmp_path / "b", config={"action_reward": "binary"}, progress=False)
    assert binary["reward"]["type"] == pytest.approx(binary["exact_match"])
    hier = evaluate(oracle, states, tmp_path / "h", config=RewardConfig(), progress=False)
    assert hier["reward"]["value"] > binary["reward"]["value"] == 0.0
    with pytest.raises(ValueError, match="unknown reward config key"):
        evaluate(oracle, states, tmp_path / "x", config={"dars": 1}, progress=False)


def test_cli_runs_random_and_majority(sessions: list, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "sessions.jsonl"
    write_jsonl(sessions, data)
    for spec in ("random", "majority", "heuristic", "oracle"):
        out = tmp_path / spec
        assert main(["--agent", spec, "--data", str(data), "--split", "all", "--out", str(out),
                     "--context", "latest-step", "--limit", "20", "--no-progress"]) == 0
        assert json.loads((out / METRICS).read_text())["n"] == 20
    assert "| Model | Exact" in capsys.readouterr().out


def test_cli_help_as_script_and_module() -> None:
    for command in (["benchmarks/evaluate.py"], ["-m", "benchmarks.evaluate"]):
        result = subprocess.run([sys.executable, *command, "--help"], cwd=ROOT, capture_output=True,
                                text=True, timeout=120, check=True)
        for flag in ("--agent", "--data", "--split", "--out", "--no-resume", "default: test"):
            assert flag in result.stdout


def test_resume_refuses_another_agents_predictions(states: list, tmp_path: Path) -> None:
    evaluate(RandomAgent(), states[:4], tmp_path, progress=False)
    with pytest.raises(PredictionsError, match="holds predictions of agent 'random'"):
        evaluate(OracleAgent.from_states(states), states[:4], tmp_path, progress=False)
    assert evaluate(OracleAgent.from_states(states), states[:4], tmp_path, resume=False, progress=False)["n"] == 4


def test_resume_rescores_with_the_current_config(states: list, tmp_path: Path) -> None:
    oracle = OracleAgent.from_states(states)
    evaluate(oracle, states[:6], tmp_path, progress=False)
    binary = evaluate(oracle, states[:6], tmp_path, config={"action_reward": "binary"}, progress=False)
    assert binary["reward"]["value"] == 0.0
    assert binary["reward"]["type"] == pytest.approx(binary["exact_match"])


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=300), st.none(), st.integers(), st.builds(
    lambda r, t, n: json.dumps({"rationale": r, "action": {"type": t, "name": n}}),
    st.text(max_size=20), st.sampled_from(["click", "type_and_submit", "terminate", "scroll", "jump"]),
    st.text(max_size=20))))
def test_prediction_record_never_raises_and_agrees_with_the_parser(states: list, text: object) -> None:
    record = prediction_record(states[0], text, RewardConfig())
    json.dumps(record)  # always serialisable
    assert record["valid"] == (record["pred"] is not None) == record["reward"]["valid"]
    assert record["valid"] or record["reward"]["total"] == 0.0


# ------------------------------------------------------------------ CLI user errors: "error: ..." and exit 2


def _cli(args: list, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = main([*args, "--no-progress"])
    return code, capsys.readouterr().err


@pytest.fixture()
def data_file(sessions: list, tmp_path: Path) -> Path:
    path = tmp_path / "sessions.jsonl"
    write_jsonl(sessions, path)
    return path


def test_cli_missing_data_file_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, err = _cli(["--agent", "random", "--data", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o")],
                     capsys)
    assert code == 2 and err.startswith("error: ") and "nope.jsonl" in err and "does not exist" in err
    assert "Traceback" not in err
    code, err = _cli(["--agent", "random", "--data", "bogus:1", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and err.startswith("error: ") and "bogus" in err


def test_cli_malformed_record_is_a_user_error(data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    lines = data_file.read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([lines[0], '{"session_id": "x", "steps": 7}', *lines[1:]]) + "\n", encoding="utf-8")
    code, err = _cli(["--agent", "random", "--data", str(bad), "--split", "all", "--out", str(tmp_path / "o")],
                     capsys)
    assert code == 2 and err.startswith("error: ") and "bad.jsonl" in err and "--skip-invalid" in err
    assert main(["--agent", "random", "--data", str(bad), "--split", "all", "--out", str(tmp_path / "o"),
                 "--skip-invalid", "--limit", "3", "--no-progress"]) == 0


@pytest.mark.parametrize("spec, words", [("nonsense", "unknown agent spec"), ("openai:gpt-4o", "openai:MODEL@URL"),
                                         ("hf:", "nothing after")])
def test_cli_bad_agent_spec_is_a_user_error(spec: str, words: str, data_file: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    code, err = _cli(["--agent", spec, "--data", str(data_file), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and err.startswith("error: ") and words in err
    assert not (tmp_path / "o").exists()


def test_cli_bad_reward_config_is_a_user_error(data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cases = {"missing.json": None, "bad.json": "{nope", "bad.yaml": "a: [1", "keys.json": '{"dars": 1}',
             "list.json": "[1, 2]"}
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text, encoding="utf-8")
        code, err = _cli(["--agent", "random", "--data", str(data_file), "--reward-config", str(path),
                          "--out", str(tmp_path / "o")], capsys)
        assert code == 2 and err.startswith(f"error: --reward-config {path}"), (name, err)


def test_cli_corrupt_predictions_offer_repair(data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "o"
    args = ["--agent", "random", "--data", str(data_file), "--split", "all", "--limit", "5", "--out", str(out)]
    assert _cli(args, capsys)[0] == 0
    path = out / PREDICTIONS
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "garbage", *lines[1:]]) + "\n")
    code, err = _cli(args, capsys)
    assert code == 2 and err.startswith("error: ") and f"{PREDICTIONS}:2: corrupt" in err
    assert "--repair" in err and "keep the 5 valid record" in err and "Traceback" not in err
    assert _cli([*args, "--repair"], capsys)[0] == 0
    assert len(lines_of(path)) == 5 and (out / (PREDICTIONS + ".bak")).is_file()
    assert _cli([*args, "--repair", "--no-resume"], capsys)[0] == 2


def test_cli_other_agents_predictions_is_a_user_error(data_file: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "o"
    common = ["--data", str(data_file), "--split", "all", "--limit", "4", "--out", str(out)]
    assert _cli(["--agent", "random", *common], capsys)[0] == 0
    code, err = _cli(["--agent", "heuristic", *common], capsys)
    assert code == 2 and err.startswith("error: ") and "holds predictions of agent 'random'" in err
    assert "--no-resume" in err


def test_cli_bad_batch_size_and_empty_split(data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, err = _cli(["--agent", "random", "--data", str(data_file), "--batch-size", "0", "--out", str(tmp_path)],
                     capsys)
    assert code == 2 and "--batch-size" in err
    code, err = _cli(["--agent", "random", "--data", str(data_file), "--limit", "0", "--out", str(tmp_path)], capsys)
    assert code == 2 and err.startswith("error: no states")


def test_cli_script_prints_no_traceback(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "benchmarks/evaluate.py", "--agent", "random", "--data",
                           str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o"), "--no-progress"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "error: " in done.stderr and "Traceback" not in done.stderr


def test_compare_predictions_pairs_two_evaluations_of_one_split(states: list, tmp_path: Path) -> None:
    oracle = evaluate(OracleAgent.from_states(states), states, tmp_path / "oracle", progress=False)
    rand = evaluate(RandomAgent(seed=4), states, tmp_path / "random", progress=False)
    better = load_predictions(tmp_path / "oracle" / PREDICTIONS)
    worse = load_predictions(tmp_path / "random" / PREDICTIONS)
    comparison = compare_predictions(better, worse)
    exact = comparison["exact_match"]
    assert exact["diff"] == pytest.approx(oracle["exact_match"] - rand["exact_match"])
    assert exact["n"] == len(states) and exact["n_sessions"] == oracle["n_sessions"]
    assert exact["ci"][0] <= exact["diff"] <= exact["ci"][1]
    assert comparison["type_accuracy"]["diff"] == pytest.approx(oracle["type_accuracy"] - rand["type_accuracy"])
    for kind, entry in comparison["per_type"].items():
        assert entry["exact_match"]["diff"] == pytest.approx(
            oracle["per_type"][kind]["exact_match"] - rand["per_type"][kind]["exact_match"])
    assert compare_predictions(worse, worse)["exact_match"]["ci"] == [0.0, 0.0]
    subset = dict(list(worse.items())[:-1])
    with pytest.raises(ValueError, match="different states"):
        compare_predictions(better, subset)
    with pytest.raises(ValueError, match="no predictions"):
        compare_predictions({}, worse)
    key = next(iter(worse))
    relabelled = {**worse, key: {**worse[key], "gold": {"type": "click", "name": "elsewhere"}}}
    with pytest.raises(ValueError, match="different data"):
        compare_predictions(relabelled, worse)
