"""The env throughput benchmark runs and reports its figures (speed itself is not asserted)."""

from benchmarks.env_throughput import main, measure
from shop_env import Action, Session, Step

KEYS = {"step_median_us", "step_p95_us", "step_p99_us", "step_cpu_median_us", "step_cpu_p99_us", "step_mean_us",
        "cold_median_us", "vec_steps_per_s", "vec_env_steps_per_s", "num_envs", "n_steps", "mean_page_chars",
        "budget_median_us", "within_budget"}


def _sessions():
    page = '<div><a name="results.tent">Tent</a><input name="search_input"/></div>'
    return [Session(f"b{i}", [Step("u", page, Action("click", "results.tent")), Step("u2", page, Action("terminate"))])
            for i in range(3)]


def test_measure_reports_every_figure():
    result = measure(n_steps=40, sessions=_sessions(), vec_steps=5)
    assert set(result) == KEYS
    assert result["n_steps"] == 40 and result["num_envs"] == 4
    assert result["step_median_us"] > 0 and result["vec_env_steps_per_s"] > 0
    assert result["step_p99_us"] >= result["step_median_us"]


def test_cli_prints_json(capsys):
    assert main(["--steps", "20", "--sessions", "2", "--json"]) == 0
    assert '"step_median_us"' in capsys.readouterr().out
