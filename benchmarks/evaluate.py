"""Command line of the evaluator (the library is :mod:`agents.evaluation`).

Run as a script or a module (the repository installed, e.g. ``pip install -e .``)::

    python benchmarks/evaluate.py --agent random --data synthetic:200 --split test --out runs/eval-random
    python -m benchmarks.evaluate --agent oracle

Every answer is scored and appended to ``<out>/predictions.jsonl`` batch by batch, so an
interrupted run resumes where it stopped (``--repair`` keeps the valid records of a file
with a corrupt line in the middle). At the end it writes ``metrics.json``, ``report.md`` and
``confusion.png``; exact match and type accuracy come with 95% confidence intervals from a
bootstrap over sessions.

User errors (missing data, a bad agent spec or reward config, a corrupt predictions file,
another agent's predictions in ``--out``) print ``error: ...`` and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from agents.evaluation import (
    CONFUSION,
    METRICS,
    PREDICTIONS,
    REPORT,
    PredictionsError,
    evaluate,
)
from agents.registry import AGENT_SPECS, make_agent
from rewards import RewardConfig
from shop_env.observations import CONTEXTS
from shop_env.sessions import SPLIT_CHOICES
from shop_env.webpage.compact import PAGE_FORMATS


def build_parser() -> argparse.ArgumentParser:
    """The ``evaluate`` command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/evaluate.py",
        description="Evaluate an agent on the (session, step) states of a data split and write "
        "predictions.jsonl, metrics.json, report.md and confusion.png. Reruns resume from "
        "predictions.jsonl.",
    )
    parser.add_argument("--agent", required=True,
                        help="agent spec, one of: " + ", ".join(AGENT_SPECS)
                        + " (e.g. openai:gpt-4o@http://127.0.0.1:8000/v1)")
    parser.add_argument("--data", default=None,
                        help="session source: path.jsonl, synthetic:N[?seed=S], opera:<root>, shopcart:<path> "
                        "(default: shop_env.datasets.DEFAULT_SOURCE)")
    parser.add_argument("--split", default="test", choices=SPLIT_CHOICES,
                        help="which sessions to evaluate on (default: test)")
    parser.add_argument("--out", default=None, help="output directory (default: runs/eval-<agent>)")
    parser.add_argument("--context", default=None, choices=CONTEXTS,
                        help="prompt context: every past page, or only the current page (paper Tab. 5); "
                             "default: what an hf:<dir> checkpoint was trained with, else whole-session")
    parser.add_argument("--max-history", type=int, default=None,
                        help="keep only the last N past steps (default: the checkpoint's, else all)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N states (quick checks)")
    parser.add_argument("--batch-size", type=int, default=8, help="observations per agent call and per flush of predictions.jsonl (openai: agents run up to --concurrency of them at once, so use a multiple of it)")
    parser.add_argument("--no-resume", action="store_true", help="ignore and overwrite existing predictions")
    parser.add_argument("--repair", action="store_true",
                        help="resume from a predictions.jsonl with corrupt lines: drop them (original kept as "
                        "predictions.jsonl.bak), keep the valid records, rerun only the missing states")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--skip-invalid", action="store_true", help="skip malformed session records (counted)")
    parser.add_argument("--reward-config", default=None,
                        help="JSON or YAML file with RewardConfig fields (default: the paper's Table 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random agent and of sampling")
    model = parser.add_argument_group("model agents (hf:, openai:, vllm:)")
    model.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    model.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling threshold")
    model.add_argument("--max-new-tokens", type=int, default=256, help="completion token limit")
    model.add_argument("--max-prompt-tokens", type=int, default=None,
                       help="prompt budget; oldest pages dropped first (default: the checkpoint's, else none)")
    model.add_argument("--page-format", choices=PAGE_FORMATS, default=None,
                       help="how pages enter prompts: compact text or the pruned HTML (default: the checkpoint's, "
                            "else compact)")
    model.add_argument("--device", default=None, help="torch device for hf: agents (default: cuda if available)")
    api = parser.add_argument_group("openai: agents")
    api.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    api.add_argument("--concurrency", type=int, default=8, help="requests in flight at once")
    api.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    api.add_argument("--max-retries", type=int, default=5, help="retries on 429/5xx/timeouts")
    return parser


def agent_kwargs(spec: str, args: argparse.Namespace, train_states: Any = None, states: Any = None) -> dict:
    """Constructor kwargs for ``make_agent(spec)`` from parsed CLI arguments."""
    kind = spec.partition(":")[0].strip().lower()
    common = {"temperature": args.temperature, "max_prompt_tokens": args.max_prompt_tokens,
              "context": args.context, "page_format": args.page_format}
    if kind == "random":
        return {"seed": args.seed}
    if kind == "majority":
        return {"states": train_states}
    if kind == "oracle":
        return {"states": states}
    if kind == "bayes":
        return {"states": states, "progress": not args.no_progress}
    if kind == "hf":
        return {**common, "top_p": args.top_p, "max_new_tokens": args.max_new_tokens,
                "batch_size": args.batch_size, "device": args.device, "seed": args.seed}
    if kind == "vllm":
        return {**common, "top_p": args.top_p, "max_new_tokens": args.max_new_tokens, "seed": args.seed}
    if kind == "openai":
        return {**common, "max_tokens": args.max_new_tokens, "api_key_env": args.api_key_env,
                "concurrency": args.concurrency, "timeout": args.timeout, "max_retries": args.max_retries}
    return {}


class UsageError(Exception):
    """A user error of the CLI: printed as ``error: <message>``, exit status 2."""


def main(argv: Iterable[str] | None = None) -> int:
    """CLI entry point; returns the exit status (2 on a user error, with ``error: ...`` on stderr)."""
    args = build_parser().parse_args(None if argv is None else list(argv))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _run(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from agents.chat_client import ChatRequestError
    from shop_env.datasets import DEFAULT_SOURCE, load_sessions
    from shop_env.observations import build_states

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.repair and args.no_resume:
        raise UsageError("--repair keeps records of an earlier run; it cannot go with --no-resume")
    _resolve_prompt_settings(args)
    data = args.data or DEFAULT_SOURCE
    split = None if args.split == "all" else args.split
    config = _load_reward_config(args.reward_config)  # before the data: a typo here should fail fast
    try:
        sessions = load_sessions(data, split, skip_invalid=args.skip_invalid)
        states = build_states(sessions, context=args.context, max_history=args.max_history)
    except (OSError, ValueError) as err:  # missing file, bad source, malformed record (named)
        hint = "" if args.skip_invalid or not isinstance(err, ValueError) else " (--skip-invalid skips malformed records)"
        raise UsageError(f"cannot load {data!r}: {err}{hint}") from None
    if args.limit is not None:
        states = states[: max(args.limit, 0)]
    if not states:
        raise UsageError(f"no states in split {args.split!r} of {data!r}")
    train_states = None
    try:
        if args.agent.strip().lower() == "majority":
            train = load_sessions(data, "train", skip_invalid=args.skip_invalid)
            train_states = build_states(train, context=args.context, max_history=args.max_history)
        agent = make_agent(args.agent, **agent_kwargs(args.agent, args, train_states, states))
    except (ImportError, OSError, ValueError) as err:  # bad spec, model not found, backend missing
        raise UsageError(f"cannot make agent {args.agent!r}: {err}") from None
    out = args.out or os.path.join("runs", "eval-" + _slug(args.agent))
    try:
        metrics = evaluate(agent, states, out, config=config, batch_size=args.batch_size,
                           resume=not args.no_resume, progress=not args.no_progress, name=args.agent,
                           repair=args.repair)
    except PredictionsError as err:
        raise UsageError(str(err)) from None
    except ChatRequestError as err:  # the server is down or refuses: finished batches are kept
        raise UsageError(f"{err} (the predictions so far are kept in {out}/{PREDICTIONS}; rerun to resume)") from None
    except OSError as err:  # e.g. an --out that cannot be created or written
        raise UsageError(f"cannot write to {out!r}: {err}") from None
    print((Path(out) / REPORT).read_text(encoding="utf-8"))
    print(f"wrote {out}/{{{PREDICTIONS},{METRICS},{REPORT},{CONFUSION}}}; "
          f"exact match {metrics['exact_match']:.4f} on {metrics['n']} states")
    return 0


def _resolve_prompt_settings(args: argparse.Namespace) -> None:
    """Fill ``--context``/``--max-history``/``--max-prompt-tokens`` from an ``hf:<dir>`` checkpoint's
    saved prompt settings where not given (a given one that differs is warned about)."""
    from shop_env.prompt_settings import resolve_prompt_settings

    kind, _, rest = args.agent.partition(":")
    model_dir = rest.strip() if kind.strip().lower() in ("hf", "vllm") else None
    try:
        settings = resolve_prompt_settings(model_dir, context=args.context, max_history=args.max_history,
                                           max_prompt_tokens=args.max_prompt_tokens, page_format=args.page_format)
    except ValueError as err:
        raise UsageError(str(err)) from None
    args.context, args.max_history = settings.context, settings.max_history
    args.max_prompt_tokens, args.page_format = settings.max_prompt_tokens, settings.page_format


def _load_reward_config(path: str | None) -> Any:
    """The RewardConfig of ``--reward-config`` (None: the defaults).

    Raises:
        UsageError: a missing or unreadable file, bad JSON/YAML, or bad fields.
    """
    if path is None:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8")
        if path.endswith((".yaml", ".yml")):
            import yaml

            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as err:
                raise ValueError(f"invalid YAML: {err}") from None
        else:
            data = json.loads(text)
        if isinstance(data, Mapping) and isinstance(data.get("reward"), Mapping):
            data = data["reward"]  # a whole training preset: take its reward section
        if data is not None and not isinstance(data, Mapping):
            raise ValueError(f"must hold a mapping of RewardConfig fields, got {type(data).__name__}")
        return RewardConfig.coerce(data or {})
    except (OSError, ValueError) as err:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise UsageError(f"--reward-config {path}: {err}") from None


def _slug(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", spec).strip("_")[:80] or "agent"


if __name__ == "__main__":
    sys.exit(main())
