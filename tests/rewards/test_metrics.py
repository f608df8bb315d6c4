"""compute_metrics, bootstrap_ci and markdown_table (docs/architecture.md §6, paper Tab. 2/3 layout)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards import RewardConfig
from rewards.metrics import (
    bootstrap_ci,
    ci_note,
    compute_metrics,
    markdown_table,
    paired_difference,
    paired_table,
    predicted_type_share,
    terminate_share,
)
from shop_env.actions import Action

C1, C2 = Action("click", "a.buy"), Action("click", "b.view")
T1 = Action("type_and_submit", "search.q", "red tent")
END = Action("terminate")


def test_hand_computed_example():
    golds = [C1, C1, C2, T1, T1, END]
    preds = [C1, C2, None, Action("type_and_submit", "search.q", "Red  TENT"), Action("click", "search.q"), END]
    m = compute_metrics(preds, golds)
    assert m["n"] == 6
    assert m["exact_match"] == pytest.approx(3 / 6)  # C1, T1 (normalised text), END
    assert m["type_accuracy"] == pytest.approx(4 / 6)
    assert m["invalid_rate"] == pytest.approx(1 / 6)
    # click: TP 2, predicted 3, actual 3 -> 2/3; type_and_submit: TP 1, pred 1, actual 2 -> 2/3;
    # terminate: 1.
    assert m["type_macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert m["per_type"] == {
        "click": {"n": 3, "exact_match": pytest.approx(1 / 3), "type_accuracy": pytest.approx(2 / 3)},
        "type_and_submit": {"n": 2, "exact_match": 0.5, "type_accuracy": 0.5},
        "terminate": {"n": 1, "exact_match": 1.0, "type_accuracy": 1.0},
    }
    assert list(m["per_type"]) == ["click", "type_and_submit", "terminate"]


def test_invalid_output_is_a_wrong_prediction_not_a_class():
    golds = [C1, END]
    all_invalid = compute_metrics([None, None], golds)
    assert all_invalid["type_macro_f1"] == 0 and all_invalid["invalid_rate"] == 1
    # A predicted type absent from the gold set is not a class either: it only lowers recall.
    m = compute_metrics([Action("scroll"), END], golds)
    assert m["type_macro_f1"] == pytest.approx((0 + 1) / 2)


def test_strict_text_and_threshold():
    golds = [Action("type_and_submit", "q", "alpine tent view product")]
    preds = [Action("type_and_submit", "q", "alpine tent buy product")]  # ROUGE-L = 0.75
    assert compute_metrics(preds, golds)["exact_match"] == 1
    assert compute_metrics(preds, golds, strict_text=True)["exact_match"] == 0
    assert compute_metrics(preds, golds, RewardConfig(rouge_threshold=0.8))["exact_match"] == 0


def test_empty_and_mismatched():
    m = compute_metrics([], [])
    assert m == {"n": 0, "exact_match": 0.0, "type_accuracy": 0.0, "type_macro_f1": 0.0,
                 "invalid_rate": 0.0, "per_type": {},
                 "predicted_type_share": {"click": 0.0, "type_and_submit": 0.0, "terminate": 0.0,
                                          "scroll": 0.0, "invalid": 0.0}}
    with_ci = compute_metrics([], [], session_ids=[])
    assert with_ci["n_sessions"] == 0 and with_ci["exact_match_ci"] == with_ci["type_accuracy_ci"] == [0.0, 0.0]
    with pytest.raises(ValueError, match="1 session ids for 2 gold"):
        compute_metrics([C1, C1], [C1, C1], session_ids=["a"])
    with pytest.raises(ValueError, match="2 predictions for 1 gold"):
        compute_metrics([C1, C1], [C1])


ACTIONS = st.sampled_from([C1, C2, T1, END, Action("scroll"), Action("click", "a.buy ")])


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(st.one_of(st.none(), ACTIONS), ACTIONS), min_size=1, max_size=40))
def test_macro_f1_matches_precision_recall_definition(pairs):
    preds, golds = [p for p, _ in pairs], [g for _, g in pairs]
    classes = {g.type for g in golds}
    f1s = []
    for kind in classes:
        tp = sum(p is not None and p.type == kind == g.type for p, g in pairs)
        predicted = sum(p is not None and p.type == kind for p in preds)
        actual = sum(g.type == kind for g in golds)
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    m = compute_metrics(preds, golds)
    assert m["type_macro_f1"] == pytest.approx(sum(f1s) / len(f1s))
    assert 0 <= m["exact_match"] <= m["type_accuracy"] <= 1
    assert m["invalid_rate"] == pytest.approx(sum(p is None for p in preds) / len(preds))
    assert sum(t["n"] for t in m["per_type"].values()) == len(golds)


def test_markdown_table_layout():
    golds = [C1, T1, END]
    rows = {
        "Zero-shot": compute_metrics([None, T1, C1], golds),
        "Shop-R1": compute_metrics([C1, T1, END], golds),
        "partial | row": {"exact_match": 0.123456},
    }
    table = markdown_table(rows)
    lines = table.strip().split("\n")
    assert lines[0] == ("| Model | Exact | Type acc | Type F1 | States | Click exact | Click type | "
                        "Type & submit exact | Type & submit type | Terminate exact | Terminate type |")
    assert lines[1] == "|---|" + "|".join(["---:"] * 10) + "|"
    assert lines[2] == "| Zero-shot | 33.33 | 33.33 | 33.33 | 3 | 0.00 | 0.00 | 100.00 | 100.00 | 0.00 | 0.00 |"
    assert lines[3] == ("| Shop-R1 | 100.00 | 100.00 | 100.00 | 3 | 100.00 | 100.00 | 100.00 | 100.00 | 100.00 "
                        "| 100.00 |")
    assert lines[4] == "| partial \\| row | 12.35 | – | – | – | – | – | – | – | – | – |"
    assert len(lines) == 5
    assert ci_note(rows) == ""  # no intervals, no note


def test_markdown_table_empty_rows():
    assert markdown_table({}) == "| Model | Exact | Type acc | Type F1 |\n|---|---:|---:|---:|\n"


def test_markdown_table_shows_intervals_counts_and_extra_columns():
    golds = [C1, T1, END, C2]
    rows = {
        "with ci": compute_metrics([C1, T1, C1, None], golds, session_ids=["s1", "s1", "s2", "s3"]),
        "old row": {"n": 4, "exact_match": 0.5, "type_accuracy": 0.75, "type_macro_f1": 0.1,
                    "confusion": {"click": {"terminate": 1, "invalid": 1}, "terminate": {"click": 2}}},
    }
    table = markdown_table(rows, extra=[("Terminate share", terminate_share), ("Broken", lambda m: m["nope"])])
    header, _, fresh, old = table.strip().split("\n")
    assert header.startswith("| Model | Exact | Type acc | Type F1 | Terminate share | Broken | States | Sessions |")
    low, high = rows["with ci"]["exact_match_ci"]
    assert fresh.startswith(f"| with ci | 50.0 [{100 * low:.1f}, {100 * high:.1f}] | ")
    cells = [c.strip() for c in fresh.strip("|").split("|")]
    assert cells[4:8] == ["0.00", "–", "4", "3"]  # no terminate predicted; the failing column is blank
    # A metrics dict from before the intervals: bare numbers, the share from its confusion table.
    assert [c.strip() for c in old.strip("|").split("|")][:8] == ["old row", "50.00", "75.00", "10.00", "25.00",
                                                                  "–", "4", "–"]
    note = ci_note(rows)
    assert "95% bootstrap confidence interval" in note and "1000 resamples of whole sessions" in note


def test_predicted_type_share_from_metrics_or_confusion():
    m = compute_metrics([C1, None, END, END], [C1, C1, T1, END])
    assert m["predicted_type_share"] == {"click": 0.25, "type_and_submit": 0.0, "terminate": 0.5, "scroll": 0.0,
                                         "invalid": 0.25}
    assert predicted_type_share(m) == m["predicted_type_share"] and terminate_share(m) == 0.5
    legacy = {"confusion": {"click": {"click": 1, "invalid": 1}, "type_and_submit": {"terminate": 1},
                            "terminate": {"terminate": 1}}}
    assert predicted_type_share(legacy) == {"click": 0.25, "invalid": 0.25, "terminate": 0.5}
    assert terminate_share({"confusion": {"click": {"click": 3}}}) == 0.0
    assert terminate_share({}) is None and terminate_share({"confusion": {}}) is None


# ------------------------------------------------------------------ bootstrap intervals


def _loop_reference(values, session_ids, n_resamples, seed, level):
    """bootstrap_ci spelled out with loops, from the same documented draws."""
    order = list(dict.fromkeys(session_ids))
    groups = {s: [v for v, t in zip(values, session_ids, strict=True) if t == s] for s in order}
    draws = np.random.default_rng(seed).integers(0, len(order), size=(n_resamples, len(order)))
    means = []
    for row in draws:
        picked = [v for i in row for v in groups[order[i]]]
        means.append(sum(picked) / len(picked))
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def test_bootstrap_hand_computed_two_sessions():
    # Sessions a = [1] and b = [0]: a resample's mean is 1 (aa), 0.5 (ab, ba) or 0 (bb) with
    # probabilities 1/4, 1/2, 1/4. The 95% interval spans [0, 1]; the 20% one (quantiles 0.4
    # and 0.6) sits on the 0.5 plateau.
    assert bootstrap_ci([1, 0], ["a", "b"]) == (0.0, 1.0)
    assert bootstrap_ci([1, 0], ["a", "b"], level=0.2) == (0.5, 0.5)
    # Uneven sessions a = [1, 1], b = [0]: means 1, 2/3, 0; the 20% interval is 2/3.
    low, high = bootstrap_ci([1, 1, 0], ["a", "a", "b"], level=0.2)
    assert low == pytest.approx(2 / 3) and high == pytest.approx(2 / 3)


def test_bootstrap_matches_a_loop_reference_and_is_deterministic():
    rng = np.random.default_rng(7)
    values = list((rng.random(60) < 0.4).astype(float))
    sessions = [f"s{i % 11}" for i in range(60)]
    got = bootstrap_ci(values, sessions, n_resamples=300, seed=3, level=0.9)
    assert got == pytest.approx(_loop_reference(values, sessions, 300, 3, 0.9))
    assert bootstrap_ci(values, sessions, n_resamples=300, seed=3, level=0.9) == got
    assert bootstrap_ci(values, sessions, n_resamples=300, seed=4, level=0.9) != got


def test_bootstrap_degenerate_and_invalid_input():
    assert bootstrap_ci([0.3] * 7, list("aabbccd")) == (0.3, 0.3)
    assert bootstrap_ci([1, 1, 1], None) == (1.0, 1.0)
    assert bootstrap_ci([], []) == (0.0, 0.0)
    with pytest.raises(ValueError, match="2 session ids for 3 values"):
        bootstrap_ci([1, 0, 1], ["a", "b"])
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci([1, 0], ["a", "b"], level=1.0)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci([1, 0], ["a", "b"], n_resamples=0)
    with pytest.raises(ValueError, match="one number per state"):
        bootstrap_ci([[1, 0]], ["a"])


def test_bootstrap_shrinks_with_more_sessions():
    pattern = [1, 0, 0, 1, 0]  # five sessions of one state each, mean 0.4
    widths = []
    for copies in (2, 8, 32):
        values = pattern * copies
        low, high = bootstrap_ci(values, [f"s{i}" for i in range(len(values))])
        assert low <= 0.4 <= high
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2] > 0


def test_session_resampling_is_wider_than_state_resampling_for_correlated_states():
    # 20 sessions of 10 states each; a session is all right or all wrong.
    values, sessions = [], []
    for s in range(20):
        values += [float(s % 3 == 0)] * 10
        sessions += [f"s{s}"] * 10
    by_session = bootstrap_ci(values, sessions)
    by_state = bootstrap_ci(values, None)
    assert by_state == bootstrap_ci(values, list(range(len(values))))  # None: each state its own session
    assert (by_session[1] - by_session[0]) > 2 * (by_state[1] - by_state[0])
    # Independent states: both ways agree roughly.
    rng = np.random.default_rng(0)
    flat = list((rng.random(200) < 0.35).astype(float))
    a, b = bootstrap_ci(flat, sessions), bootstrap_ci(flat, None)
    assert (a[1] - a[0]) == pytest.approx(b[1] - b[0], rel=0.5)


@settings(max_examples=150, deadline=None)
@given(data=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6)), min_size=1, max_size=60),
       seed=st.integers(0, 2**32 - 1))
def test_bootstrap_properties(data, seed):
    values = [float(v) for v, _ in data]
    sessions = [s for _, s in data]
    point = sum(values) / len(values)
    low, high = bootstrap_ci(values, sessions, n_resamples=200, seed=seed)
    assert 0.0 <= low <= point <= high <= 1.0
    if len(set(values)) == 1:
        assert low == high == point
    # Relabelling sessions (same grouping, same first-appearance order) changes nothing.
    assert bootstrap_ci(values, [f"x{s}" for s in sessions], n_resamples=200, seed=seed) == (low, high)
    m = compute_metrics([C1 if v else None for v in values], [C1] * len(values), session_ids=sessions)
    assert m["n_sessions"] == len(set(sessions))
    assert m["exact_match_ci"] == list(bootstrap_ci(values, sessions))
    assert m["exact_match_ci"][0] <= m["exact_match"] <= m["exact_match_ci"][1]


def test_paired_difference_is_tighter_than_the_rows_own_intervals_for_correlated_rows():
    # Two agents on 40 sessions x 5 states: B is A plus one extra hit in each of 16 hard
    # sessions. Session difficulty makes both rows' own intervals wide; the paired interval
    # sees the consistent gain.
    rng = np.random.default_rng(3)
    easy = np.repeat(rng.random(40) < 0.4, 5)
    sessions = np.repeat([f"s{i}" for i in range(40)], 5).tolist()
    a = easy.astype(float)
    b = a.copy()
    hard_starts = [5 * i for i in range(40) if not easy[5 * i]]
    b[hard_starts[:16]] = 1.0
    result = paired_difference(b, a, sessions)
    assert result["diff"] == pytest.approx(b.mean() - a.mean())
    assert result["n"] == 200 and result["n_sessions"] == 40 and result["resolved"]
    low_a, high_a = bootstrap_ci(a, sessions)
    low_b, high_b = bootstrap_ci(b, sessions)
    assert low_b < high_a  # the rows' own intervals overlap ...
    assert result["ci"][0] > 0  # ... yet the paired difference excludes 0
    assert result["ci"] == list(bootstrap_ci(b - a, sessions))


def test_paired_difference_edge_cases():
    same = paired_difference([1.0, 0.0, 1.0], [1.0, 0.0, 1.0], ["s", "s", "t"])
    assert same == {"diff": 0.0, "ci": [0.0, 0.0], "n": 3, "n_sessions": 2, "resolved": False}
    assert paired_difference([], [])["n"] == 0
    with pytest.raises(ValueError, match="same states"):
        paired_difference([1.0, 0.0], [1.0])
    with pytest.raises(ValueError, match="session ids"):
        paired_difference([1.0, 0.0], [1.0, 1.0], ["s"])


@settings(max_examples=100, deadline=None)
@given(data=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1), st.integers(0, 5)), min_size=1, max_size=50),
       seed=st.integers(0, 2**32 - 1))
def test_paired_difference_properties(data, seed):
    a = [float(x) for x, _, _ in data]
    b = [float(y) for _, y, _ in data]
    sessions = [s for _, _, s in data]
    result = paired_difference(a, b, sessions, n_resamples=200, seed=seed)
    low, high = result["ci"]
    assert -1.0 <= low <= result["diff"] <= high <= 1.0
    assert result["resolved"] == (low > 0 or high < 0)
    mirrored = paired_difference(b, a, sessions, n_resamples=200, seed=seed)
    assert mirrored["diff"] == pytest.approx(-result["diff"])


def test_paired_table_marks_resolved_differences():
    comparisons = {
        "RL": {"exact_match": {"diff": 0.05, "ci": [0.01, 0.09], "n": 400, "n_sessions": 150},
               "type_accuracy": {"diff": -0.02, "ci": [-0.06, 0.01], "n": 400, "n_sessions": 150},
               "per_type": {"terminate": {"exact_match": {"diff": 0.2, "ci": [0.1, 0.3]}},
                            "click": {"exact_match": {"diff": -0.01, "ci": [-0.05, 0.03]}}}},
    }
    table = paired_table(comparisons, "SFT")
    header, rule, row = table.strip().splitlines()
    assert header.split(" | ")[1] == "Exact Δ vs SFT"
    assert header.index("Click exact Δ") < header.index("Terminate exact Δ")  # canonical type order
    assert "| +5.0 [+1.0, +9.0]* | -2.0 [-6.0, +1.0] | 400 | 150 | -1.0 [-5.0, +3.0] | +20.0 [+10.0, +30.0]* |" in row
    assert paired_table({}, "SFT") == ""
