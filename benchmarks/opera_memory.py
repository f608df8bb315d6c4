"""Peak memory of loading OPeRA at full size, on a generated copy of the published layout.

The published full train split is 5.4 GB: 24,773 action rows whose ``simplified_html`` is
~100k characters at the median, up to 626k, plus ``simplified_html_new_page`` and
``page_meta`` columns the loader never needs. This benchmark writes a fixture of that schema
(string columns, ISO timestamps with milliseconds and ``Z``, ``{user}_{start}_{end}`` session
ids, nullable ``semantic_id``, nested survey JSON, ``action/train-0000N-of-0000M.parquet``
shards). It then loads it in a fresh process with ``load_sessions("opera:<dir>?version=full")``
and reports the process's peak RSS. For comparison it also reads the same shards whole
(``pyarrow.parquet.read_table(...).to_pylist()``, what the loader did before it streamed).

    python -m benchmarks.opera_memory                 # ~5 GB fixture (a few minutes, ~3 GB disk)
    python -m benchmarks.opera_memory --size-gb 0.5   # a quick look

Results go to ``benchmarks/results/opera_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "opera_memory.json"
_WORDS = ("tent", "stove", "lamp", "shoe", "jacket", "bottle", "filter", "price", "review", "cart", "deal",
          "brand", "colour", "size", "add", "view", "results", "sponsored", "delivery", "rating")


def _page(rng: random.Random, chars: int) -> str:
    """A simplified-HTML-looking page of about ``chars`` characters (names on containers too)."""
    parts, size, k = ["<body>"], 6, 0
    while size < chars:
        word = rng.choice(_WORDS)
        block = (f'<div name="{word}_{k}"><span>{word} {rng.randrange(10**6)}</span>'
                 f'<a name="results.{word}_{k}.view">View {word}</a></div>')
        parts.append(block)
        size += len(block)
        k += 1
    parts.append("</body>")
    return "".join(parts)


def write_fixture(root: Path, size_gb: float, seed: int = 0, shards: int = 8) -> dict[str, Any]:
    """Write an OPeRA_full copy of about ``size_gb`` GB of column text under ``root``; return its stats."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    rng = random.Random(seed)
    base = root / "OPeRA_full"
    target = int(size_gb * 1e9)
    written, rows, sessions, users = 0, 0, [], []
    pages = [_page(rng, n) for n in (20_000, 60_000, 100_000, 100_000, 140_000, 250_000, 626_000)]
    per_shard = target // shards
    bar = tqdm(total=target, unit="B", unit_scale=True, desc="fixture")
    for shard in range(shards):
        batch: list[dict[str, Any]] = []
        shard_bytes = 0
        path = base / "action" / f"train-{shard:05d}-of-{shards:05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = None
        while shard_bytes < per_shard:
            user = f"user{len(users):05d}"
            users.append(user)
            start = 1_700_000_000 + rows
            session_id = f"{user}_{start}_{start + 600}"
            n_steps = rng.randint(2, 6)
            sessions.append({"session_id": session_id, "user_id": user, "action_count": str(n_steps)})
            for step in range(n_steps):
                kind = "terminate" if step == n_steps - 1 else rng.choice(("click", "input", "click", "navigation"))
                html = rng.choice(pages)
                row = {
                    "session_id": session_id, "action_id": f"{session_id}-{step}",
                    "timestamp": f"2025-03-01T10:{step:02d}:00.{rng.randrange(1000):03d}Z",
                    "action_type": kind, "click_type": "product_link" if kind == "click" else "",
                    "semantic_id": (f"results.tent_{step}.view" if kind in ("click", "input") else None),
                    "input_text": "tent" if kind == "input" else "", "rationale": "",
                    "url": "https://www.amazon.com/s?k=tent", "simplified_html": html,
                    "simplified_html_new_page": rng.choice(pages)[:80_000],
                    "page_meta": json.dumps({"title": "Amazon", "links": ["x" * 40] * rng.randint(100, 4000)}),
                }
                size = sum(len(v) for v in row.values() if isinstance(v, str))
                batch.append(row)
                shard_bytes += size
                rows += 1
                bar.update(size)
            if len(batch) >= 200:
                table = pa.Table.from_pylist(batch)
                writer = writer or pq.ParquetWriter(path, table.schema)
                writer.write_table(table)
                batch = []
        if batch:
            table = pa.Table.from_pylist(batch)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
        if writer is not None:
            writer.close()
        written += shard_bytes
    bar.close()
    survey = {"Demographic Information": {"age": "25-34"}, "Personality": {"Big Five Scores": {"openness": 4.2}}}
    for folder, records in (("session", sessions), ("user", [{"user_id": u, "survey": json.dumps(survey)} for u in users])):
        path = base / folder / "train" / "train.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(records), path)
    disk = sum(p.stat().st_size for p in base.rglob("*.parquet"))
    return {"text_bytes": written, "rows": rows, "sessions": len(sessions), "disk_bytes": disk}


_CHILD = {
    "loader": "from shop_env import load_sessions\n"
              "sessions = load_sessions({source!r})\n"
              "print(len(sessions), sum(len(s.steps) for s in sessions))",
    "whole-table read": "import pyarrow.parquet as pq, pathlib\n"
                        "rows = [r for p in sorted(pathlib.Path({action!r}).glob('*.parquet'))"
                        " for r in pq.read_table(p).to_pylist()]\n"
                        "print(len(rows), 0)",
}


def measure(kind: str, root: Path) -> dict[str, Any]:
    """Run one loader in a fresh process; return its peak RSS (GB), seconds and counts."""
    code = _CHILD[kind].format(source=f"opera:{root}?version=full", action=str(root / "OPeRA_full" / "action"))
    wrapper = ("import resource, runpy, sys, time\nstart = time.perf_counter()\n"
               f"exec(compile({code!r}, 'child', 'exec'))\n"
               "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
               "print('RESULT', peak, time.perf_counter() - start)\n")
    done = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"kind": kind, "error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    lines = done.stdout.strip().splitlines()
    first, steps = lines[0].split()
    _, peak, seconds = lines[-1].split()
    return {"kind": kind, "peak_rss_gb": int(peak) / 1e9, "seconds": float(seconds), "items": int(first),
            "steps": int(steps)}


def main(argv: list[str] | None = None) -> int:
    """CLI; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.opera_memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=5.0, help="column text to generate (default 5 GB)")
    parser.add_argument("--dir", default=None, help="where to write the fixture (default: a temporary folder)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the whole-table read (it needs ~2x the RAM)")
    parser.add_argument("--out", default=str(RESULTS), help=f"results JSON (default {RESULTS})")
    args = parser.parse_args(argv)
    if args.size_gb <= 0:
        print("error: --size-gb must be > 0", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp) / "OPeRA"
        started = time.perf_counter()
        fixture = write_fixture(root, args.size_gb)
        fixture["write_seconds"] = time.perf_counter() - started
        kinds = ["loader"] + ([] if args.no_baseline else ["whole-table read"])
        runs = [measure(kind, root) for kind in kinds]
    result = {"fixture": fixture, "runs": runs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(f"fixture: {fixture['text_bytes'] / 1e9:.2f} GB of column text, {fixture['rows']} rows, "
          f"{fixture['sessions']} sessions, {fixture['disk_bytes'] / 1e9:.2f} GB on disk")
    print("| reader | peak RSS (GB) | seconds | rows/sessions |\n|---|---:|---:|---:|")
    for run in runs:
        if "error" in run:
            print(f"| {run['kind']} | error: {run['error']} | | |")
        else:
            print(f"| {run['kind']} | {run['peak_rss_gb']:.2f} | {run['seconds']:.1f} | {run['items']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
