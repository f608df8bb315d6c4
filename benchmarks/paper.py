"""Reproduce the paper's tables: Tab. 2 baselines, Tab. 4 ablations, Tab. 5 context.

    python benchmarks/paper.py --preset tiny              # every row on the tiny CPU model
    python benchmarks/paper.py --preset tiny --rows zero-shot,sft,shop-r1
    python benchmarks/paper.py --preset paper --rows shop-r1,no-dars

Each row is a preset (``training/configs/``) applied as a delta on the base preset
(``tiny`` -> ``tiny-cpu``, ``paper`` -> ``paper-qwen2.5-3b``), so an ablation here is the
same one-line switch as with ``training/grpo.py --config ablation-...``. Stages are
cached by the config sections they depend on: every SFT-based row shares one SFT
checkpoint, zero-shot shares the base model, and rows whose resolved settings coincide
share everything. Output: ``<out>/report.md`` (markdown table) and ``results.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.config import ConfigError, TrainConfig, config_from_dict, deep_merge, read_preset  # noqa: E402

BASES = {"tiny": "tiny-cpu", "paper": "paper-qwen2.5-3b"}


@dataclass(frozen=True)
class Row:
    """One table row: a label, the paper table it belongs to, the preset delta, the stage evaluated."""

    label: str
    table: str
    preset: str | None = None
    delta: tuple[tuple[str, Any], ...] = ()
    stage: str = "grpo"  # "base" (zero-shot), "sft" or "grpo"


ROWS: dict[str, Row] = {
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


def row_config(base: str, row: Row, overrides: Sequence[str] = ()) -> TrainConfig:
    """The resolved config of ``row``: the row preset's own keys (its ``extends`` ignored)
    and delta merged over ``base``, then ``overrides``.

    Raises:
        ConfigError: a bad preset, delta or override.
    """
    from training.config import apply_overrides

    raw = read_preset(base)
    if row.preset is not None:
        own = read_preset(row.preset, follow_extends=False)
        own.pop("name", None)
        raw = deep_merge(own, raw)
    for section, values in row.delta:
        raw = deep_merge({section: values}, raw)
    raw = apply_overrides(raw, list(overrides))
    return config_from_dict(raw)


def _key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str)
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
        base_key = _key("base", config.model, config.data.sessions, config.seed)
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
        from training.pipeline import eval_stage, load_saved

        path, model_key = self.model_dir(config, stage)
        data, data_key = self.prepare(config)
        out = self.out / f"eval-{_key(model_key, data_key, config.eval, config.data.context)}"
        done = out / "row-metrics.json"
        if done.is_file():
            return json.loads(done.read_text())
        model, tokenizer = load_saved(path)
        metrics = eval_stage(config, model, tokenizer, data, out, resume=True, progress=self.progress)
        done.write_text(json.dumps(metrics, default=str))
        return metrics


def run_rows(preset: str, rows: Sequence[str], out: Path, *, overrides: Sequence[str] = (),
             progress: bool = True) -> dict[str, dict[str, Any]]:
    """Train/evaluate the selected rows; returns label -> metrics (in ``rows`` order).

    Raises:
        ValueError: an unknown row or preset.
    """
    from tqdm.auto import tqdm

    if preset not in BASES:
        raise ValueError(f"unknown --preset {preset!r}: expected one of {', '.join(BASES)}")
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise ValueError(f"unknown row(s) {', '.join(unknown)}: choose from {', '.join(ROWS)}")
    configs = {name: row_config(BASES[preset], ROWS[name], overrides) for name in rows}  # fail fast on bad keys
    cache = StageCache(out, progress=progress)
    results: dict[str, dict[str, Any]] = {}
    bar = tqdm(rows, desc="paper rows", unit="row", disable=not progress)
    for name in bar:
        bar.set_postfix_str(name)
        started = time.perf_counter()
        row = ROWS[name]
        metrics = dict(cache.evaluate(configs[name], row.stage))
        metrics["seconds"] = round(time.perf_counter() - started, 1)
        results[row.label] = metrics
        _write(out, preset, rows, results)
    return results


def _write(out: Path, preset: str, rows: Sequence[str], results: dict[str, dict[str, Any]]) -> str:
    from rewards.metrics import markdown_table

    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Shop-R1 paper tables (preset `{preset}`)", ""]
    table_text = ""
    for table in ("Tab. 2", "Tab. 4", "Tab. 5"):
        labels = [ROWS[r].label for r in rows if ROWS[r].table == table and ROWS[r].label in results]
        if labels:
            part = markdown_table({label: results[label] for label in labels})
            lines += [f"## {table}", "", part, ""]
            table_text += f"{table}\n{part}\n\n"
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
    payload = {"preset": preset, "rows": {r: {"label": ROWS[r].label, "table": ROWS[r].table,
                                               "metrics": results.get(ROWS[r].label)} for r in rows}}
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
    parser.add_argument("--preset", choices=sorted(BASES), default="tiny",
                        help="base settings: tiny (tiny-cpu) or paper (paper-qwen2.5-3b)")
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
        if args.preset not in BASES or any(r not in ROWS for r in rows):
            raise ValueError(f"unknown row in {args.rows!r}: choose from {', '.join(ROWS)}")
        for name in rows:
            row_config(BASES[args.preset], ROWS[name], args.overrides)
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
