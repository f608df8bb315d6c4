"""What a training stage leaves on disk, for SFT and GRPO alike (docs/architecture.md §10).

A stage directory holds ``checkpoint-N/`` folders (the trainer's, for resuming), a
``metrics.jsonl`` log with one record per logging step (GRPO also ``rollouts.jsonl``, one
record per scored completion), and ``final/`` (the trained model,
its tokenizer and ``prompt_settings.json``). This module is the one home of those names,
of finding the newest complete checkpoint and of reading and writing the log.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

#: The trained model's directory inside a stage directory.
FINAL_DIR = "final"
#: The per-step training log inside a stage directory.
METRICS_FILE = "metrics.jsonl"
#: Every scored training completion of a GRPO stage, one JSON line each.
ROLLOUTS_FILE = "rollouts.jsonl"


def last_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """The newest complete ``checkpoint-N`` directly under ``directory`` (None if none).

    Complete means the trainer wrote its ``trainer_state.json``: a checkpoint cut short by a
    crash is passed over.
    """
    root = Path(directory)
    if not root.is_dir():
        return None
    done = [p for p in root.glob("checkpoint-*")
            if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (a torn last line from a crash is ignored)."""
    out: list[dict[str, Any]] = []
    target = Path(path)
    if not target.is_file():
        return out
    for line in target.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def truncate_metrics(path: str | os.PathLike[str], max_step: int) -> int:
    """Keep the records with ``step <= max_step`` (rewritten atomically); returns how many remain.

    A resumed run calls this with its checkpoint's step, so the log never holds a step twice.
    Any JSON-lines log whose records carry ``step`` works (``metrics.jsonl``, ``rollouts.jsonl``).
    """
    target = Path(path)
    kept = [r for r in read_metrics(target) if int(r.get("step", 0)) <= max_step]
    if target.exists():
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        os.replace(tmp, target)
    return len(kept)


def metrics_callback(path: str | os.PathLike[str], *, phase: str | None = None, summary: bool = True) -> Any:
    """A ``transformers`` callback appending each training log to ``path`` as a JSON line.

    Lines look like ``{"phase": "sft", "step": 3, "loss": 5.1, ...}``: numbers (non-finite
    ones as null) and strings of the log, with the step; only the world's main process
    writes.

    Args:
        path: the ``metrics.jsonl`` file (its folder is created).
        phase: written as ``"phase"`` in every record when given.
        summary: also write the trainer's end-of-training summary (``train_runtime``, ...).
    """
    from transformers import TrainerCallback

    target = Path(path)

    class MetricsJsonlCallback(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **_: Any) -> None:
            if not logs or not state.is_world_process_zero or (not summary and "train_runtime" in logs):
                return
            record: dict[str, Any] = {"phase": phase} if phase else {}
            record["step"] = int(state.global_step)
            for key, value in logs.items():
                if isinstance(value, bool) or value is None or isinstance(value, str):
                    record[key] = value
                elif isinstance(value, (int, float)):
                    record[key] = float(value) if math.isfinite(value) else None
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    return MetricsJsonlCallback()
