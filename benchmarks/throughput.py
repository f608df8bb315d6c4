"""Throughput benchmarks against the performance budgets of docs/architecture.md §11.

Sections:

1. ``pruning``: :func:`shop_env.webpage.prune.prune_html` against a bare lxml parse + serialise
   of the same raw page (median over repeats, ratio taken in the same run; budget
   <= 2x), the raw -> pruned character and rough token reduction (budget >= 10x), and
   whether every gold action target of simulated sessions survives pruning under its
   gold name. Pages: ``--page FILE`` (repeatable), else the simulated shop's 1.4 MB
   listing page (``shop_env.synthetic.sample_page("search")``), plus the dense
   stress-test listing of :mod:`benchmarks.html_sample` (60 cards, ~3,700 elements).
2. ``rewards``: ``benchmarks.reward_throughput.measure()`` (reward calls/s, our ROUGE-L vs rouge_score).
3. ``env``: ``benchmarks.env_throughput.measure()`` (env step latency), when present.

Usage: ``python -m benchmarks.throughput [--out results.json] [--quick]``.
Timings on a shared machine are noisy: CPU-time medians are reported next to wall time.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lxml import etree

from shop_env.webpage.prune import prune_html

PRUNE_BUDGET_RATIO = 2.0
REDUCTION_BUDGET = 10.0
# A rough BPE-like token count: words, numbers and single punctuation characters.
_ROUGH_TOKEN = re.compile(r"\w+|[^\w\s]")


def rough_tokens(text: str) -> int:
    """Approximate token count: words plus punctuation characters (BPE is within ~2x)."""
    return sum(1 for _ in _ROUGH_TOKEN.finditer(text))


def bare_parse_serialise(data: bytes) -> str:
    """The baseline: lxml's HTML parser and serialiser, nothing else."""
    return etree.tostring(etree.fromstring(data, etree.HTMLParser()), method="html", encoding="unicode")


def _time_once(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall and CPU seconds of one ``fn()`` call."""
    start, start_cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - start_cpu


def measure_page(raw: str, repeats: int = 21) -> dict[str, Any]:
    """Time pruning one page against the bare parse + serialise, and its size reduction.

    The two are interleaved (bare, prune, bare, prune, ...) after one warm-up call each,
    so that machine load affects both alike.
    """
    data = raw.encode("utf-8")
    bare_parse_serialise(data)
    page = prune_html(raw)
    bare_wall, bare_cpu, prune_wall, prune_cpu = [], [], [], []
    for _ in range(repeats):
        wall, cpu = _time_once(lambda: bare_parse_serialise(data))
        bare_wall.append(wall)
        bare_cpu.append(cpu)
        wall, cpu = _time_once(lambda: prune_html(raw))
        prune_wall.append(wall)
        prune_cpu.append(cpu)
    raw_tokens, pruned_tokens = rough_tokens(raw), rough_tokens(page.html)
    out = {
        "raw_bytes": len(data),
        "raw_chars": len(raw),
        "pruned_chars": len(page.html),
        "char_reduction": len(raw) / max(len(page.html), 1),
        "raw_rough_tokens": raw_tokens,
        "pruned_rough_tokens": pruned_tokens,
        "token_reduction": raw_tokens / max(pruned_tokens, 1),
        "elements_raw": sum(1 for _ in etree.fromstring(data, etree.HTMLParser()).iter()),
        "named_elements": len(page.elements),
        "repeats": repeats,
        "bare_ms": statistics.median(bare_wall) * 1e3,
        "prune_ms": statistics.median(prune_wall) * 1e3,
        "bare_cpu_ms": statistics.median(bare_cpu) * 1e3,
        "prune_cpu_ms": statistics.median(prune_cpu) * 1e3,
    }
    out["ratio"] = out["prune_ms"] / out["bare_ms"]
    out["ratio_cpu"] = out["prune_cpu_ms"] / max(out["bare_cpu_ms"], 1e-9)
    out["within_budget"] = out["ratio_cpu"] <= PRUNE_BUDGET_RATIO and out["token_reduction"] >= REDUCTION_BUDGET
    return out


def gold_targets_kept(n_sessions: int, seed: int = 0) -> dict[str, Any]:
    """Prune each raw page of simulated sessions; count gold targets kept under their name."""
    from shop_env.synthetic import generate_sessions

    sessions = generate_sessions(n_sessions, seed, keep_raw=True)
    total = kept = 0
    missing: list[str] = []
    for session in sessions:
        for step in session.steps:
            if step.action.type not in ("click", "type_and_submit"):
                continue
            total += 1
            if step.action.name in prune_html(step.meta["raw_html"]).elements:
                kept += 1
            elif len(missing) < 5:
                missing.append(f"{session.session_id}: {step.action.name}")
    return {"sessions": n_sessions, "gold_targets": total, "kept": kept,
            "kept_fraction": kept / total if total else 1.0, "missing_examples": missing}


def _load_pages(paths: Sequence[str]) -> dict[str, str]:
    if paths:
        return {Path(p).name: Path(p).read_text(encoding="utf-8", errors="replace") for p in paths}
    from benchmarks.html_sample import cluttered_listing_page

    pages = {}
    try:
        from shop_env.synthetic import sample_page

        pages["synthetic_search"] = sample_page("search", seed=0)
    except ImportError:  # the simulated shop is optional for this benchmark
        pass
    pages["dense_listing"] = cluttered_listing_page(n_products=60, seed=0)
    return pages


def _optional_measure(module_name: str, **kwargs: Any) -> dict[str, Any] | None:
    """Call ``module_name.measure(**kwargs)`` if that module exists; None if it does not."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            return None
        raise
    measure = getattr(module, "measure", None)
    return measure(**kwargs) if callable(measure) else None


def run(sections: Sequence[str], pages: Sequence[str] = (), repeats: int = 21, gold_sessions: int = 20,
        quick: bool = False) -> dict[str, Any]:
    """Run the chosen sections and return their figures as one JSON-ready dict."""
    results: dict[str, Any] = {"python": sys.version.split()[0], "lxml": ".".join(map(str, etree.LXML_VERSION)),
                               "libxml2": ".".join(map(str, etree.LIBXML_VERSION))}
    if "pruning" in sections:
        pruning: dict[str, Any] = {"budget_ratio": PRUNE_BUDGET_RATIO, "budget_reduction": REDUCTION_BUDGET,
                                   "pages": {}}
        for name, raw in _load_pages(pages).items():
            pruning["pages"][name] = measure_page(raw, repeats=max(3, repeats // 3) if quick else repeats)
        if gold_sessions > 0:
            try:
                pruning["gold"] = gold_targets_kept(min(gold_sessions, 5) if quick else gold_sessions)
            except ImportError:
                pruning["gold"] = None
        results["pruning"] = pruning
    if "rewards" in sections:
        kwargs = {"n": 300, "long_tokens": 300, "megabyte": False} if quick else {}
        results["rewards"] = _optional_measure("benchmarks.reward_throughput", **kwargs)
    if "env" in sections:
        kwargs = {"n_steps": 300, "vec_steps": 50} if quick else {}
        results["env"] = _optional_measure("benchmarks.env_throughput", **kwargs)
    return results


def format_table(results: dict[str, Any]) -> str:
    """A plain-text table of the headline figures."""
    lines = []
    pruning = results.get("pruning")
    if pruning:
        lines.append("Pruning (median; ratio = prune / bare lxml parse+serialise; budget <= "
                     f"{pruning['budget_ratio']:g}x, reduction >= {pruning['budget_reduction']:g}x)")
        lines.append(f"{'page':<18} {'raw MB':>7} {'elems':>6} {'bare ms':>8} {'prune ms':>9} {'ratio':>6} "
                     f"{'cpu ratio':>9} {'chars /':>8} {'tokens /':>9} {'named':>6}  ok")
        for name, row in pruning["pages"].items():
            lines.append(
                f"{name:<18} {row['raw_bytes'] / 1e6:>7.2f} {row['elements_raw']:>6} {row['bare_ms']:>8.2f} "
                f"{row['prune_ms']:>9.2f} {row['ratio']:>6.2f} {row['ratio_cpu']:>9.2f} "
                f"{row['char_reduction']:>8.1f} {row['token_reduction']:>9.1f} {row['named_elements']:>6}  "
                f"{'yes' if row['within_budget'] else 'NO'}")
        gold = pruning.get("gold")
        if gold:
            lines.append(f"gold targets kept under their name: {gold['kept']}/{gold['gold_targets']} "
                         f"({gold['sessions']} simulated sessions)")
    for section in ("rewards", "env"):
        if section in results:
            figures = results[section]
            lines.append("")
            if figures is None:
                lines.append(f"{section}: not available (module missing)")
                continue
            lines.append(f"{section}:")
            for key, value in figures.items():
                shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
                lines.append(f"  {key:<32} {shown}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the process exit status (1 if a pruning budget is missed)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="write all figures as JSON to this file")
    parser.add_argument("--sections", default="pruning,rewards,env",
                        help="comma-separated subset of pruning,rewards,env (default: all)")
    parser.add_argument("--page", action="append", default=[], metavar="FILE",
                        help="raw HTML page(s) to prune instead of the built-in listing pages")
    parser.add_argument("--repeats", type=int, default=21, help="timed repeats per page (default 21)")
    parser.add_argument("--gold-sessions", type=int, default=20,
                        help="simulated sessions whose gold targets are checked (0 to skip)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller workloads")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - {"pruning", "rewards", "env"})
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    results = run(sections, args.page, args.repeats, args.gold_sessions, args.quick)
    print(format_table(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"\nwrote {args.out}")
    pages = (results.get("pruning") or {}).get("pages", {})
    return 0 if all(row["within_budget"] for row in pages.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
