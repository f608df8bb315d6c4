"""Reproduce the paper's tables: Tab. 2 baselines, Tab. 4 ablations, Tab. 5 context.

    python benchmarks/paper.py --preset tiny              # every row on the tiny CPU model
    python benchmarks/paper.py --preset tiny --rows zero-shot,sft,shop-r1
    python benchmarks/paper.py --preset paper --rows shop-r1,no-dars
    python benchmarks/paper.py --preset smollm2-cpu --rows sft,shop-r1

Each row is a preset (``training/configs/``) applied as a delta on the base preset
(``tiny`` -> ``tiny-cpu``, ``paper`` -> ``paper-qwen2.5-3b``, ``smollm2-cpu``, or any other
preset name), so an ablation here is the same one-line switch as with
``training/grpo.py --config ablation-...``: the delta is what the row preset changes
relative to the preset it extends, so the chosen base keeps its model and budgets. Stages
are cached by the config sections they depend on: every SFT-based row shares one SFT
checkpoint, zero-shot shares the base model, and rows whose resolved settings coincide
share everything. Output: ``<out>/report.md`` (markdown tables: exact match and type
accuracy with 95% session-bootstrap intervals, the share of predicted ``terminate``, the
number of states and sessions) and ``results.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewards.metrics import terminate_share
from training.config import (
    ConfigError,
    TrainConfig,
    config_from_dict,
    deep_merge,
    preset_names,
    preset_path,
    read_preset,
)

#: ``--preset`` aliases -> base preset; any other preset name of ``training/configs`` is its own base.
BASES = {"tiny": "tiny-cpu", "paper": "paper-qwen2.5-3b", "smollm2-cpu": "smollm2-cpu"}


@dataclasses.dataclass(frozen=True)
class Row:
    """One table row: a label, the paper table it belongs to, the preset delta, the stage evaluated."""

    label: str
    table: str
    preset: str | None = None
    delta: tuple[tuple[str, Any], ...] = ()
    stage: str = "grpo"  # "base" (zero-shot), "sft", "grpo", or "agent:<spec>" (a baseline agent)


ROWS: dict[str, Row] = {
    "random": Row("Random", "Tab. 2", stage="agent:random"),
    "heuristic": Row("Heuristic", "Tab. 2", stage="agent:heuristic"),
    "oracle": Row("Oracle ceiling", "Tab. 2", stage="agent:oracle"),
    "bayes": Row("Observable ceiling (Bayes)", "Tab. 2", stage="agent:bayes"),
    "zero-shot": Row("Zero-shot", "Tab. 2", stage="base"),
    "rl-binary": Row("RL (binary)", "Tab. 2", "rl-binary"),
    "sft": Row("SFT", "Tab. 2", stage="sft"),
    "sft-rl-binary": Row("SFT + RL (binary)", "Tab. 2", "sft-rl-binary"),
    "shop-r1": Row("Shop-R1", "Tab. 2"),
    "no-sft": Row("Shop-R1 w/o SFT", "Tab. 4", "ablation-no-sft"),
    "no-format": Row("Shop-R1 w/o format reward", "Tab. 4", "ablation-no-format"),
    "no-self-certainty": Row("Shop-R1 w/o self-certainty", "Tab. 4", "ablation-no-self-certainty"),
    "no-dars": Row("Shop-R1 w/o DARS", "Tab. 4", "ablation-no-dars"),
    "binary": Row("Shop-R1, binary action reward", "Tab. 4", "ablation-binary"),
    "whole-session": Row("Shop-R1, whole-session context", "Tab. 5", delta=(("data", {"context": "whole-session"}),)),
    "latest-step": Row("Shop-R1, latest-step context", "Tab. 5", "ablation-latest-step"),
}
#: The row the paired comparisons are made against, and the metrics key naming a row's predictions file.
SFT_LABEL = ROWS["sft"].label
PREDICTIONS_KEY = "predictions"


def base_preset(preset: str) -> str:
    """The base preset of a ``--preset`` value: a :data:`BASES` alias or a preset name.

    Raises:
        ValueError: neither (the message lists the choices).
    """
    if preset in BASES:
        return BASES[preset]
    if preset in preset_names():
        return preset
    choices = sorted(set(BASES) | set(preset_names()))
    raise ValueError(f"unknown --preset {preset!r}: expected one of {', '.join(choices)}")


def preset_delta(name: str) -> dict[str, Any]:
    """What a row preset changes: its resolved keys that differ from the root of its ``extends`` chain.

    A key the row preset repeats with its parent's value is no change, so it does not
    override the base the row is applied to; ``name`` is never part of the delta.

    Raises:
        ConfigError: a bad preset file.
    """
    full = read_preset(name)
    root = _chain_root(preset_path(name))
    delta = _diff(full, read_preset(root)) if root is not None else full
    delta.pop("name", None)
    return delta


def _chain_root(path: Path) -> Path | None:
    """The last preset of ``path``'s ``extends`` chain (None when ``path`` extends nothing)."""
    import yaml

    root = None
    seen = {path}
    while True:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        parent = raw.get("extends") if isinstance(raw, dict) else None
        if not isinstance(parent, str):
            return root
        candidate = path.parent / parent
        path = candidate if candidate.suffix in (".yaml", ".yml") and candidate.is_file() else preset_path(parent)
        if path in seen:  # read_preset has already rejected cycles; stay safe anyway
            return root
        seen.add(path)
        root = path


def _diff(top: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            sub = _diff(value, base[key])
            if sub:
                out[key] = sub
        elif key not in base or base[key] != value:
            out[key] = value
    return out


def row_config(base: str, row: Row, overrides: Sequence[str] = ()) -> TrainConfig:
    """The resolved config of ``row``: the row preset's delta over the preset it extends
    (:func:`preset_delta`) and the row's own delta merged over ``base``, then ``overrides``.

    Raises:
        ConfigError: a bad preset, delta or override.
    """
    from training.config import apply_overrides

    raw = read_preset(base)
    if row.preset is not None:
        raw = deep_merge(preset_delta(row.preset), raw)
    for section, values in row.delta:
        raw = deep_merge({section: values}, raw)
    raw = apply_overrides(raw, list(overrides))
    return config_from_dict(raw)


def _fingerprint(value: Any) -> Any:
    """``value`` as JSON-able data in which a dataclass lists only its fields that differ
    from their defaults, so adding a setting (with a default) to a config section keeps
    every cached stage valid. The flip side: changing a default in code needs a fresh
    ``--out``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changed: dict[str, Any] = {}
        for field in dataclasses.fields(value):
            current = getattr(value, field.name)
            if field.default is not dataclasses.MISSING:
                default = field.default
            elif field.default_factory is not dataclasses.MISSING:
                default = field.default_factory()
            else:
                default = dataclasses.MISSING
            if default is dataclasses.MISSING or current != default:
                changed[field.name] = _fingerprint(current)
        return {type(value).__name__: changed}
    if isinstance(value, dict):
        return {str(k): _fingerprint(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_fingerprint(v) for v in value]
    return value


def _key(*parts: Any) -> str:
    """A short hash of ``parts`` (config sections and names) naming one cached stage."""
    blob = json.dumps(_fingerprint(parts), sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


class StageCache:
    """Trains and evaluates each distinct stage once (in memory and on disk under ``out``)."""

    def __init__(self, out: Path, *, progress: bool) -> None:
        self.out = out
        self.progress = progress
        self.data: dict[str, Any] = {}
        self.models: dict[str, Path] = {}

    def prepare(self, config: TrainConfig) -> tuple[Any, str]:
        from training.pipeline import prepare_data

        key = _key(config.data, config.eval, config.seed)
        if key not in self.data:
            self.data[key] = prepare_data(config)
        return self.data[key], key

    def model_dir(self, config: TrainConfig, stage: str) -> tuple[Path, str]:
        """Directory of the model after ``stage`` ("base", "sft", "grpo") for ``config``."""
        from training.pipeline import base_model, grpo_stage, load_saved, sft_stage

        data, data_key = self.prepare(config)
        base_key = _key("base", config.model, config.data.sessions, config.seed, config.precision)
        keys = {"base": base_key}
        keys["sft"] = _key("sft", base_key, config.sft, config.data) if config.sft.enabled else base_key
        keys["grpo"] = _key("grpo", keys["sft"], config.grpo, config.reward, config.data)
        key = keys[stage]
        if key in self.models:
            return self.models[key], key
        if stage == "base":
            model, tokenizer = base_model(config, data, self.out / "cache")
            path = self.out / f"base-{key}"
            if not (path / "config.json").is_file():
                model.save_pretrained(path)
                tokenizer.save_pretrained(path)
        elif stage == "sft":
            if not config.sft.enabled:
                return self.model_dir(config, "base")
            start, _ = self.model_dir(config, "base")
            model, tokenizer = load_saved(start)
            _, _, path = sft_stage(config, model, tokenizer, data, self.out / f"sft-{key}", resume=True,
                                    progress=self.progress)
        else:
            start, _ = self.model_dir(config, "sft")
            model, tokenizer = load_saved(start)
            _, _, path = grpo_stage(config, model, tokenizer, data, self.out / f"grpo-{key}", resume=True,
                                    progress=self.progress)
        self.models[key] = path
        return path, key

    def evaluate(self, config: TrainConfig, stage: str) -> dict[str, Any]:
        """Metrics of the ``stage`` model of ``config`` on its evaluation states (cached)."""
        from agents.evaluation import PREDICTIONS
        from training.pipeline import baseline_stage, eval_stage, load_saved

        data, data_key = self.prepare(config)
        if stage.startswith("agent:"):  # a baseline: no model, cheap, never cached
            spec = stage.partition(":")[2]
            out = self.out / f"eval-{spec}-{data_key}"
            metrics = baseline_stage(config, data, spec, out, progress=self.progress)
            return {**metrics, PREDICTIONS_KEY: str(out / PREDICTIONS)}
        path, model_key = self.model_dir(config, stage)
        out = self.out / f"eval-{_key(model_key, data_key, config.eval, config.data.context)}"
        done = out / "row-metrics.json"
        if done.is_file():
            return {**self._refreshed(done, config), PREDICTIONS_KEY: str(out / PREDICTIONS)}
        model, tokenizer = load_saved(path)
        metrics = eval_stage(config, model, tokenizer, data, out, resume=True, progress=self.progress)
        done.write_text(json.dumps(metrics, default=str))
        return {**metrics, PREDICTIONS_KEY: str(out / PREDICTIONS)}

    @staticmethod
    def _refreshed(done: Path, config: TrainConfig) -> dict[str, Any]:
        """Cached row metrics; ones from before the confidence intervals are recomputed
        from the row's ``predictions.jsonl`` (no model run) and saved again."""
        from agents.evaluation import PREDICTIONS, load_predictions, summarize

        metrics = json.loads(done.read_text())
        predictions = done.parent / PREDICTIONS
        if "exact_match_ci" in metrics or not predictions.is_file():
            return metrics
        try:
            records = list(load_predictions(predictions).values())
        except ValueError:
            return metrics
        if len(records) != metrics.get("n"):
            return metrics
        fresh = summarize(records, config.reward_config())
        fresh["agent"] = metrics.get("agent")
        done.write_text(json.dumps(fresh, default=str))
        return fresh


def run_rows(preset: str, rows: Sequence[str], out: Path, *, overrides: Sequence[str] = (),
             progress: bool = True) -> dict[str, dict[str, Any]]:
    """Train/evaluate the selected rows; returns label -> metrics (in ``rows`` order).

    Raises:
        ValueError: an unknown row or preset.
    """
    from tqdm.auto import tqdm

    base = base_preset(preset)
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise ValueError(f"unknown row(s) {', '.join(unknown)}: choose from {', '.join(ROWS)}")
    configs = {name: row_config(base, ROWS[name], overrides) for name in rows}  # fail fast on bad keys
    cache = StageCache(out, progress=progress)
    results: dict[str, dict[str, Any]] = {}
    bar = tqdm(rows, desc="paper rows", unit="row", disable=not progress)
    for name in bar:
        bar.set_postfix_str(name)
        started = time.perf_counter()
        row = ROWS[name]
        try:
            metrics = dict(cache.evaluate(configs[name], row.stage))
        except ValueError as err:
            if not row.stage.startswith("agent:"):
                raise
            # e.g. the oracle on logged data: no shopper model, so no ceiling row
            print(f"[paper] row {name} skipped: {err}", file=sys.stderr, flush=True)
            continue
        metrics["seconds"] = round(time.perf_counter() - started, 1)
        results[row.label] = metrics
        _write(out, preset, rows, results)
    return results


#: Extra columns of the paper tables: how often a row's model ends the session.
COLUMNS = (("Terminate share", terminate_share),)


def versus_sft(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each row's paired difference to the SFT row (``{}`` when SFT was not run).

    Rows whose predictions are missing or cover other states (another split) are left out.
    """
    from agents.evaluation import compare_predictions, load_predictions

    sft = results.get(SFT_LABEL) or {}
    if not sft.get(PREDICTIONS_KEY) or not Path(sft[PREDICTIONS_KEY]).is_file():
        return {}
    baseline = load_predictions(sft[PREDICTIONS_KEY])
    out: dict[str, dict[str, Any]] = {}
    for label, metrics in results.items():
        path = metrics.get(PREDICTIONS_KEY)
        if label == SFT_LABEL or not path or not Path(path).is_file():
            continue
        try:
            out[label] = compare_predictions(load_predictions(path), baseline)
        except ValueError as err:
            print(f"[paper] row {label}: no paired comparison with SFT: {err}", file=sys.stderr, flush=True)
    return out


def _write(out: Path, preset: str, rows: Sequence[str], results: dict[str, dict[str, Any]]) -> str:
    from rewards.metrics import ci_note, markdown_table, paired_section

    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Shop-R1 paper tables (preset `{preset}`)", ""]
    table_text = ""
    for table in ("Tab. 2", "Tab. 4", "Tab. 5"):
        labels = [ROWS[r].label for r in rows if ROWS[r].table == table and ROWS[r].label in results]
        if labels:
            part = markdown_table({label: results[label] for label in labels}, extra=COLUMNS)
            lines += [f"## {table}", "", part, ""]
            table_text += f"{table}\n{part}\n\n"
    note = ci_note(results)
    if note:
        note += (" Terminate share: the fraction of all predictions (invalid ones included) whose "
                 "type is terminate.")
        lines += [note, ""]
    comparisons = versus_sft(results)
    lines += paired_section(comparisons, SFT_LABEL)
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
    payload = {"preset": preset, "rows": {r: {"label": ROWS[r].label, "table": ROWS[r].table,
                                               "metrics": results.get(ROWS[r].label)} for r in rows},
               "versus_sft": comparisons}
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    return table_text


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``benchmarks/paper.py``."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/paper.py",
        description="Train and evaluate the rows of the paper's Tab. 2 (baselines), Tab. 4 (ablations) and "
                    "Tab. 5 (context) from the training presets, sharing checkpoints between rows.",
        epilog="rows: " + ", ".join(f"{k} ({v.table}: {v.label})" for k, v in ROWS.items()),
    )
    parser.add_argument("--preset", default="tiny",
                        help="base settings: tiny (tiny-cpu), paper (paper-qwen2.5-3b), smollm2-cpu, or any "
                        "preset name of training/configs (default: tiny)")
    parser.add_argument("--rows", default="all", help="comma-separated row names, or 'all' (default)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key in every row (repeatable)")
    parser.add_argument("--out", default=None, help="output directory (default: runs/paper-<preset>)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice; 1 is fastest on a busy machine)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = build_parser().parse_args(argv)
    rows = list(ROWS) if args.rows == "all" else [r.strip() for r in args.rows.split(",") if r.strip()]
    out = Path(args.out or f"runs/paper-{args.preset}")
    try:  # check rows, preset and overrides before any training starts
        base = base_preset(args.preset)
        unknown = [r for r in rows if r not in ROWS]
        if unknown or not rows:
            raise ValueError(f"unknown row(s) {', '.join(unknown) or repr(args.rows)}: choose from "
                             f"{', '.join(ROWS)} or 'all'")
        for name in rows:
            row_config(base, ROWS[name], args.overrides)
    except (ConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.threads is not None:
        import torch

        torch.set_num_threads(max(1, args.threads))
    results = run_rows(args.preset, rows, out, overrides=args.overrides, progress=not args.no_progress)
    print(_write(out, args.preset, rows, results))
    print(f"written to {out}/report.md and {out}/results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
