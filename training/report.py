"""Run reports: the results table (``report.md``, ``results.json``) and training plots (PNG)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewards.metrics import paired_section
from training.config import TrainConfig

#: Reward components plotted (``reward/<name>`` series of metrics.jsonl).
REWARD_SERIES = ("total", "format", "type", "attribute", "value", "self_certainty")


def results_table(rows: dict[str, dict[str, Any]]) -> str:
    """The paper-style markdown table of result rows (label -> metrics dict).

    Exact and type accuracy read ``12.3 [8.1, 16.9]`` (percent, 95% session-bootstrap
    interval) where the metrics carry intervals, the bare number where they do not (older
    ``results.json`` rows); the States and Sessions columns give the sample behind each row.
    """
    from rewards.metrics import markdown_table

    return markdown_table(rows)


def validity_table(rows: dict[str, dict[str, Any]]) -> str:
    """Invalid-output rate and mean reward per row (what moves first on a small model)."""
    lines = ["| Model | Invalid output % | Mean reward | Mean format reward |", "|---|---:|---:|---:|"]
    for label, metrics in rows.items():
        reward = metrics.get("reward") if isinstance(metrics.get("reward"), dict) else {}
        invalid = metrics.get("invalid_rate")
        cells = [f"{100 * invalid:.2f}" if isinstance(invalid, (int, float)) else "-"]
        cells += [f"{reward[k]:.3f}" if isinstance(reward.get(k), (int, float)) else "-" for k in ("total", "format")]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_training(metrics: Sequence[dict[str, Any]], out_dir: str | os.PathLike[str]) -> list[Path]:
    """Plot reward components, exact match per gold type and predicted-type shares over GRPO steps.

    Args:
        metrics: records of ``metrics.jsonl`` (``step`` plus ``reward/*``, ``exact_match/*``,
            ``predicted/*``).
        out_dir: where ``rewards.png``, ``exact_match.png``, ``kl_loss.png`` and
            ``predicted_types.png`` go.

    Returns:
        The PNG files written (none when there are no records).
    """
    import matplotlib

    matplotlib.use("Agg")  # headless: never open a window
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = [r for r in metrics if "step" in r]
    if not records:
        return []
    written = []
    # Separate panels where scales differ: the DARS-scaled value reward is ~1000x the others.
    groups = {
        "rewards.png": ("GRPO reward components (batch mean)", [f"reward/{k}" for k in REWARD_SERIES], True),
        "exact_match.png": (
            "Exact match per action type (training batches)",
            _keys_with(records, "exact_match/"),
            False,
        ),
        "kl_loss.png": ("KL to reference and loss", ["kl", "loss"], True),
        # Terminate hacking (the paper's failure without DARS) shows here as one type taking over.
        "predicted_types.png": (
            "Share of each predicted action type (training rollouts)",
            _keys_with(records, "predicted/"),
            False,
        ),
    }
    for filename, (title, keys, separate) in groups.items():
        series = {}
        for key in keys:
            points = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
            if points:
                series[key.split("/", 1)[-1]] = list(zip(*points, strict=True))
        panels = max(len(series), 1) if separate else 1
        cols = min(panels, 3)
        rows = -(-panels // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols if separate else 7, 2.8 * rows if separate else 4),
                                 squeeze=False, sharex=True)
        flat = list(axes.flat)
        for index, (label, (xs, ys)) in enumerate(series.items()):
            ax = flat[index if separate else 0]
            ax.plot(xs, ys, marker="o", markersize=3, label=label)
            if separate:
                ax.set_title(label, fontsize=9)
        for ax in flat[: panels]:
            ax.grid(alpha=0.3)
            ax.set_xlabel("GRPO step")
        for ax in flat[panels:]:
            ax.set_visible(False)
        if not separate and series:
            flat[0].legend(fontsize=8)
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(out / filename, dpi=100)
        plt.close(fig)
        written.append(out / filename)
    return written


ROLLOUT_GROUPINGS: tuple[str, ...] = ("gold", "page_type")


def rollout_type_shares(rollouts: Sequence[dict[str, Any]],
                        by: str = "gold") -> dict[str, dict[int, dict[str, float]]]:
    """Per gold action type (or page type) and GRPO step, the share of each predicted type
    among the rollouts.

    Args:
        rollouts: records of ``grpo/rollouts.jsonl`` (``step``, ``gold`` action JSON,
            ``predicted`` type, ``page_type`` where the data names one; see
            :class:`training.grpo_reward.ShopR1Reward`). Records without a step or a
            readable gold type (or page type) are skipped.
        by: ``"gold"`` (the logged action's type) or ``"page_type"``.

    Returns:
        ``{gold or page type: {step: {predicted type: share}}}``; each step's shares sum to 1.

    Raises:
        ValueError: an unknown ``by``.
    """
    if by not in ROLLOUT_GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(ROLLOUT_GROUPINGS)}, got {by!r}")
    counts: dict[str, dict[int, dict[str, int]]] = {}
    for record in rollouts:
        try:
            key = str(json.loads(record["gold"])["type"]) if by == "gold" else str(record["page_type"])
            step = int(record["step"])
        except (KeyError, TypeError, ValueError):
            continue  # a torn line, an older log, data without page types: nothing to place
        tally = counts.setdefault(key, {}).setdefault(step, {})
        kind = str(record.get("predicted", "invalid"))
        tally[kind] = tally.get(kind, 0) + 1
    return {key: {step: {kind: n / sum(tally.values()) for kind, n in tally.items()}
                  for step, tally in sorted(by_step.items())}
            for key, by_step in sorted(counts.items())}


def plot_rollout_types(rollouts: Sequence[dict[str, Any]], out_dir: str | os.PathLike[str]) -> list[Path]:
    """Plot :func:`rollout_type_shares`: one panel per gold type (and one figure more with a
    panel per page type, where the rollouts name page types), one line per predicted type.

    ``terminate`` rising on terminate-gold states is the policy learning when the shopper
    leaves; ``terminate`` taking over the click- and query-gold panels is terminate hacking.
    The batch-wide ``predicted_types.png`` cannot tell the two apart. By page type, leaving
    learnt by page rises on search results and stays low on cart and checkout pages.

    Args:
        rollouts: records of ``grpo/rollouts.jsonl``.
        out_dir: where ``rollout_types_by_gold.png`` (and ``rollout_types_by_page.png``) go.

    Returns:
        The PNGs written (none when no record can be placed).
    """
    written = []
    for by, label, name in (("gold", "gold", "rollout_types_by_gold.png"),
                            ("page_type", "page", "rollout_types_by_page.png")):
        shares = rollout_type_shares(rollouts, by=by)
        if shares:
            written.append(_plot_type_shares(shares, label, Path(out_dir) / name))
    return written


def _plot_type_shares(shares: dict[str, dict[int, dict[str, float]]], label: str, target: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = sorted({kind for by_step in shares.values() for row in by_step.values() for kind in row})
    fig, axes = plt.subplots(1, len(shares), figsize=(3.8 * len(shares), 3.2), squeeze=False, sharey=True)
    for ax, (key, by_step) in zip(axes[0], shares.items(), strict=True):
        steps = list(by_step)
        for kind in kinds:
            ax.plot(steps, [by_step[s].get(kind, 0.0) for s in steps], marker="o", markersize=3, label=kind)
        ax.set_title(f"{label}: {key}", fontsize=9)
        ax.set_xlabel("GRPO step")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("share of completions")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(f"Predicted type by {label} type (training rollouts)")
    fig.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=100)
    plt.close(fig)
    return target


def timings_section(timings: dict[str, float], wall_s: float | None, all_attempts: dict[str, float]) -> list[str]:
    """The "Timings (s)" section: seconds per stage of this invocation, plus a column with every
    attempt's seconds when a resumed run's earlier attempts took longer than this one."""
    resumed = any(all_attempts.get(k, v) > v + 0.05 for k, v in timings.items())
    if not resumed:
        lines = ["## Timings (s)", "", "| stage | seconds |", "|---|---:|"]
        lines += [f"| {k} | {v:.1f} |" for k, v in timings.items()]
        if wall_s is not None:
            lines.append(f"| **total** | {wall_s:.1f} |")
        return lines + [""]
    lines = ["## Timings (s)", "", "This run was resumed: *all attempts* adds the seconds of the earlier attempts, "
             "interrupted ones included, to this one's.", "",
             "| stage | this attempt | all attempts |", "|---|---:|---:|"]
    lines += [f"| {k} | {v:.1f} | {all_attempts.get(k, v):.1f} |" for k, v in timings.items()]
    if wall_s is not None:
        total = sum(all_attempts.get(k, v) for k, v in timings.items())
        lines.append(f"| **total** | {wall_s:.1f} | {total:.1f} |")
    return lines + [""]


def write_report(run_dir: str | os.PathLike[str], config: TrainConfig, rows: dict[str, dict[str, Any]],
                 *, timings: dict[str, float] | None = None, wall_s: float | None = None,
                 split_rule: str = "", comparisons: dict[str, dict[str, Any]] | None = None,
                 all_attempts: dict[str, float] | None = None) -> str:
    """Write ``report.md``, ``results.json`` and the plots of a run; return the table.

    ``timings`` are this invocation's seconds per stage; ``all_attempts`` the seconds of every
    attempt of a resumed run (shown in a second column where they differ).

    ``split_rule`` says how train and test were split (:func:`shop_env.sessions.split_rule`).
    ``comparisons`` (row label -> :func:`agents.evaluation.compare_predictions` against the
    SFT row) adds a table of paired differences to SFT.

    The plots come from ``<run_dir>/grpo/metrics.jsonl`` and ``grpo/rollouts.jsonl`` when
    GRPO ran.
    """
    from rewards.metrics import ci_note
    from training.checkpoints import METRICS_FILE, ROLLOUTS_FILE, read_metrics
    from training.precision import resolve_precision

    root = Path(run_dir)
    table = results_table(rows)
    metrics = read_metrics(root / "grpo" / METRICS_FILE)
    plots = plot_training(metrics, root / "plots") if metrics else []
    plots += plot_rollout_types(read_metrics(root / "grpo" / ROLLOUTS_FILE), root / "plots")
    lines = [
        f"# Shop-R1 run `{config.name}`",
        "",
        f"Model `{config.model}`, data `{config.data.sessions}`, context `{config.data.context}`, "
        f"{len(rows)} rows evaluated on split `{config.eval.split}`"
        + (f" ({config.eval.max_states} states max)." if config.eval.max_states else "."),
        f"Precision `{resolve_precision(config.precision)}` (setting `{config.precision}`).",
        *([f"Train/test split: {split_rule}."] if split_rule else []),
        "",
        "## Results",
        "",
        table,
        *([note, ""] if (note := ci_note(rows)) else []),
        validity_table(rows),
        "",
    ]
    lines += paired_section(comparisons or {}, "SFT")
    lines += page_type_section(rows)
    if timings:
        lines += timings_section(timings, wall_s, all_attempts or {})
    if plots:
        lines += ["## Training curves", ""] + [f"![{p.stem}](plots/{p.name})" for p in plots] + [""]
    lines += ["## Resolved config", "", "```yaml", config.to_yaml().rstrip(), "```", ""]
    root.mkdir(parents=True, exist_ok=True)
    (root / "report.md").write_text("\n".join(lines), encoding="utf-8")
    payload = {"name": config.name, "rows": rows, "timings": timings or {},
               "timings_all_attempts": all_attempts or {}, "wall_s": wall_s, "split_rule": split_rule,
               "versus_sft": comparisons or {}}
    (root / "results.json").write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    return table


def page_type_section(rows: dict[str, dict[str, Any]]) -> list[str]:
    """Report lines comparing the rows per page type: exact match and the share of answers
    that ``terminate`` (with the logged share first), for rows whose metrics have
    ``by_page_type`` (:func:`agents.evaluation.by_page_type`); none when no row has it."""
    paged = {label: m["by_page_type"] for label, m in rows.items() if m.get("by_page_type")}
    if not paged:
        return []
    pages = sorted({page for by_page in paged.values() for page in by_page})
    first = next(iter(paged.values()))
    lines = ["## By page type", "",
             "Exact match (%) / share of answers that `terminate` (%), per page type of the states.", "",
             "| Model | " + " | ".join(f"{p} ({first[p]['n']})" if p in first else p for p in pages) + " |",
             "|---|" + "---:|" * len(pages)]
    logged = " | ".join(f"- / {100 * first[p]['gold_type_share'].get('terminate', 0.0):.0f}" if p in first else "-"
                        for p in pages)
    lines.append(f"| logged actions | {logged} |")
    for label, by_page in paged.items():
        cells = " | ".join(
            f"{100 * by_page[p]['exact_match']:.1f} / {100 * by_page[p]['predicted_type_share'].get('terminate', 0.0):.0f}"
            if p in by_page else "-" for p in pages)
        lines.append(f"| {label} | {cells} |")
    return lines + [""]


def _keys_with(records: Sequence[dict[str, Any]], prefix: str) -> list[str]:
    """The metric keys starting with ``prefix`` that any record has, sorted."""
    return sorted({key for record in records for key in record if key.startswith(prefix)})
