"""compute_metrics and markdown_table (DESIGN §6, paper Tab. 2/3 layout)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards import RewardConfig
from rewards.metrics import compute_metrics, markdown_table
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
                 "invalid_rate": 0.0, "per_type": {}}
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
    assert lines[0] == ("| Model | Exact | Type acc | Type F1 | Click exact | Click type | "
                        "Type & submit exact | Type & submit type | Terminate exact | Terminate type |")
    assert lines[1] == "|---|" + "|".join(["---:"] * 9) + "|"
    assert lines[2] == "| Zero-shot | 33.33 | 33.33 | 33.33 | 0.00 | 0.00 | 100.00 | 100.00 | 0.00 | 0.00 |"
    assert lines[3] == "| Shop-R1 | 100.00 | 100.00 | 100.00 | 100.00 | 100.00 | 100.00 | 100.00 | 100.00 | 100.00 |"
    assert lines[4] == "| partial \\| row | 12.35 | – | – | – | – | – | – | – | – |"
    assert len(lines) == 5


def test_markdown_table_empty_rows():
    assert markdown_table({}) == "| Model | Exact | Type acc | Type F1 |\n|---|---:|---:|---:|\n"
