"""Export env states and SFT chats to the parquet files verl's trainers read.

RL rows (one per (session, step) state, read by ``verl.utils.dataset.rl_dataset.RLHFDataset``):

* ``data_source``: ``"shop_r1/<session source>"`` (verl groups validation metrics by it),
* ``prompt``: the chat messages of :func:`shop_env.prompt.build_messages` (``data.prompt_key``),
* ``ability``: ``"web_shopping"``,
* ``reward_model``: ``{"style": "rule", "ground_truth": <gold action JSON>}``,
* ``extra_info``: ``{"session_id", "step", "split", "index", "reward_config": {RewardConfig
  fields}}``; :func:`training.verl_backend.reward.compute_score` reads the reward config there.

SFT rows (read by verl's multi-turn SFT dataset, ``data.messages_key=messages``): ``messages``
(a chat whose assistant turns carry the Shop-R1 response JSON), ``session_id``. Under
``whole-session`` one row is a whole session (:func:`shop_env.prompt.session_chat`); under
``latest-step`` one row per step (:func:`shop_env.prompt.step_chats`).

CLI: ``python -m training.verl_backend.export --data synthetic:200 --out data/verl/``.
Imports neither verl nor torch (pyarrow writes the files).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shop_env.observations import CONTEXTS
from shop_env.sessions import Session, select_split
from shop_env.webpage.compact import PAGE_FORMATS
from training.verl_backend.overrides import DEFAULT_MAX_PROMPT_TOKENS, TEMPLATE_MARGIN_TOKENS

ABILITY = "web_shopping"
DATA_SOURCE_PREFIX = "shop_r1/"
RL_FILES = {"train": "train.parquet", "test": "test.parquet"}
SFT_FILES = {"train": "sft_train.parquet", "test": "sft_test.parquet"}


@dataclass
class ExportResult:
    """What :func:`export_dataset` wrote.

    Attributes:
        out_dir: the output folder.
        rl: split -> RL parquet path.
        sft: split -> SFT parquet path (empty when SFT export was off).
        counts: ``"rl/train"``-style key -> rows written.
        overlong: split -> RL rows whose prompt, rendered as verl renders it, is longer than
            ``max_prompt_length`` (verl's ``filter_overlong_prompts`` drops them); only
            counted when the export had a tokenizer and a ``max_prompt_length``.
        sft_overlong: split -> SFT chats longer than ``sft_max_tokens`` (counted with a tokenizer).
    """

    out_dir: Path
    rl: dict[str, Path] = field(default_factory=dict)
    sft: dict[str, Path] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    overlong: dict[str, int] = field(default_factory=dict)
    sft_overlong: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line per file: path and row count (and the rows verl would drop)."""
        lines = [f"{path}  ({self.counts[f'rl/{split}']} RL rows"
                 + (f", {self.overlong[split]} over verl's prompt limit" if split in self.overlong else "") + ")"
                 for split, path in self.rl.items()]
        lines += [f"{path}  ({self.counts[f'sft/{split}']} SFT rows"
                  + (f", {self.sft_overlong[split]} over sft.max_seq_tokens" if split in self.sft_overlong else "")
                  + ")" for split, path in self.sft.items()]
        return "\n".join(lines)


def data_source_of(session: Session) -> str:
    """The ``data_source`` tag of a session's rows: ``shop_r1/<source>``."""
    return DATA_SOURCE_PREFIX + (session.source or "unknown")


def rl_rows(
    sessions: Sequence[Session],
    *,
    split: str,
    reward_config: Mapping[str, Any],
    context: str = "whole-session",
    max_history: int | None = None,
    tokenizer: Any = None,
    max_prompt_tokens: int | None = None,
    start_index: int = 0,
    page_format: str = "compact",
) -> list[dict[str, Any]]:
    """The RL rows of ``sessions``: one per (session, step) state, in state order.

    Args:
        sessions: the sessions of one split.
        split: the split name recorded in ``extra_info``.
        reward_config: every RewardConfig field (``RewardConfig.to_dict()``), stored per row.
        context, max_history: as for :func:`shop_env.observations.build_states`.
        tokenizer, max_prompt_tokens: the prompt budget of :func:`shop_env.prompt.build_messages`.
        start_index: ``extra_info.index`` of the first row.
        page_format: how pages enter the prompt (``"compact"`` or ``"html"``).

    Raises:
        ValueError: bad context/max_history/budget (from the prompt and state builders).
    """
    from shop_env.observations import build_states
    from shop_env.prompt import build_messages

    source_of = {s.session_id: data_source_of(s) for s in sessions}
    config = dict(reward_config)
    rows = []
    for offset, state in enumerate(build_states(sessions, context=context, max_history=max_history)):
        messages = build_messages(state.observation, context, tokenizer, max_prompt_tokens, page_format)
        rows.append(
            {
                "data_source": source_of[state.session_id],
                "prompt": [{"role": m["role"], "content": m["content"]} for m in messages],
                "ability": ABILITY,
                "reward_model": {"style": "rule", "ground_truth": state.gold.to_json()},
                "extra_info": {
                    "session_id": state.session_id,
                    "step": state.step,
                    "split": split,
                    "index": start_index + offset,
                    "reward_config": dict(config),
                },
            }
        )
    return rows


def sft_rows(
    sessions: Iterable[Session],
    *,
    context: str = "whole-session",
    max_history: int | None = None,
    tokenizer: Any = None,
    max_prompt_tokens: int | None = None,
    page_format: str = "compact",
) -> list[dict[str, Any]]:
    """The SFT rows of ``sessions`` (``messages`` + ``session_id``); see the module docstring.

    Raises:
        ValueError: bad context/max_history/budget.
    """
    from shop_env.prompt import session_chat, step_chats

    rows = []
    for session in sessions:
        if context == "whole-session":
            chats = [session_chat(session, context, tokenizer, max_prompt_tokens, page_format)]
        else:
            chats = step_chats(session, context, tokenizer, max_prompt_tokens, max_history, page_format)
        for chat in chats:
            rows.append(
                {
                    "messages": [{"role": m["role"], "content": m["content"]} for m in chat],
                    "session_id": session.session_id,
                }
            )
    return rows


#: Largest share of a split's RL rows that may be over verl's prompt limit before the export fails.
MAX_OVERLONG_SHARE = 0.01


def overlong_rows(rows: Sequence[Mapping[str, Any]], tokenizer: Any, max_prompt_length: int) -> list[int]:
    """Indices of the RL rows that verl's ``filter_overlong_prompts`` would drop.

    verl's ``RLHFDataset`` renders ``row["prompt"]`` with the tokenizer's chat template and
    the generation prompt, and keeps the row iff that is at most ``max_prompt_length``
    tokens; this counts exactly the same way (:func:`shop_env.prompt.chat_token_ids`).
    """
    from shop_env.prompt import chat_token_ids

    return [i for i, row in enumerate(rows)
            if len(chat_token_ids(tokenizer, list(row["prompt"]), add_generation_prompt=True)) > max_prompt_length]


def _refuse_losses(lost: Sequence[int], total: int, message: str) -> int:
    """How many of ``total`` rows are ``lost``; raises ``ValueError(message)``, its ``SHARE``
    replaced by the share (``"12.3%"``), when that is over :data:`MAX_OVERLONG_SHARE`."""
    if total and len(lost) > MAX_OVERLONG_SHARE * total:
        raise ValueError(message.replace("SHARE", f"{len(lost) / total:.1%}", 1))
    return len(lost)


def overlong_chats(rows: Sequence[Mapping[str, Any]], tokenizer: Any, max_length: int) -> list[int]:
    """Indices of the SFT rows whose whole chat (template included) is over ``max_length`` tokens."""
    from shop_env.prompt import chat_token_ids

    return [i for i, row in enumerate(rows) if len(chat_token_ids(tokenizer, list(row["messages"]))) > max_length]


def write_parquet(rows: list[dict[str, Any]], path: str | Path) -> int:
    """Write ``rows`` (dicts of one shape) to a parquet file; returns the row count.

    Raises:
        ValueError: ``rows`` is empty (an empty file has no schema verl can read).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not rows:
        raise ValueError(f"{path}: no rows to write (is the split empty?)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.Table.from_pylist(rows), tmp)
    tmp.replace(path)  # readers never see a half-written file
    return len(rows)


def export_dataset(
    data: str | Path | Sequence[Session],
    out_dir: str | Path,
    *,
    reward_config: Mapping[str, Any] | None = None,
    context: str = "whole-session",
    max_history: int | None = None,
    max_prompt_tokens: int | None = None,
    tokenizer: Any = None,
    test_fraction: float = 0.2,
    splits: Sequence[str] = ("train", "test"),
    sft: bool = True,
    sft_max_tokens: int | None = None,
    page_format: str = "compact",
    max_prompt_length: int | None = None,
) -> ExportResult:
    """Load sessions, split them and write the RL (and SFT) parquet files of each split.

    Args:
        data: a ``shop_env.load_sessions`` source string/path, or the sessions themselves.
        out_dir: folder for ``train.parquet``, ``test.parquet`` (+ ``sft_train.parquet``,
            ``sft_test.parquet``).
        reward_config: RewardConfig fields (only those that differ from the defaults need be
            given); every field is stored per row.
        context, max_history, max_prompt_tokens, tokenizer: prompt settings.
        test_fraction: share of sessions in ``test`` (hash split of ``shop_env.sessions``).
        splits: which splits to write.
        sft: also write the SFT chats.
        sft_max_tokens: token budget of one whole SFT chat (``sft.max_seq_tokens``): the prompt
            budget of whole-session chats; latest-step chats use ``max_prompt_tokens`` for the
            prompt, as GRPO does. With a tokenizer, chats over it are counted.
        page_format: how pages enter prompts and chats (``"compact"`` or ``"html"``).
        max_prompt_length: verl's ``data.max_prompt_length``; with a ``tokenizer`` (the one
            verl will load), every RL row is counted as verl counts it (:func:`overlong_rows`).

    Returns:
        An :class:`ExportResult`.

    Raises:
        ValueError: unknown reward key, bad prompt settings, an unknown or empty split, or
            more than :data:`MAX_OVERLONG_SHARE` of a split's rows over ``max_prompt_length``
            (verl would silently train on fewer prompts than exported), or more than that share
            of SFT chats over ``sft_max_tokens``.
        FileNotFoundError: a source path that does not exist.
    """
    from rewards import RewardConfig
    from shop_env.datasets import load_sessions

    full_config = RewardConfig.from_dict(dict(reward_config or {})).to_dict()
    sessions = load_sessions(list(data) if not isinstance(data, (str, Path)) else data)
    out = Path(out_dir)
    result = ExportResult(out_dir=out)
    for split in splits:
        part = select_split(sessions, split, test_fraction)
        rows = rl_rows(
            part, split=split, reward_config=full_config, context=context, max_history=max_history,
            tokenizer=tokenizer, max_prompt_tokens=max_prompt_tokens, page_format=page_format,
        )
        if tokenizer is not None and max_prompt_length is not None:
            if not getattr(tokenizer, "chat_template", None):
                # verl renders every prompt with this template; without one its dataset fails
                # on the first row, so say so here rather than with transformers' long message.
                raise ValueError(
                    f"the tokenizer {getattr(tokenizer, 'name_or_path', '') or ''} has no chat template; "
                    "verl renders every prompt with it (use an instruct/chat model or add one)"
                )
            over = overlong_rows(rows, tokenizer, max_prompt_length)
            result.overlong[split] = _refuse_losses(over, len(rows), (
                f"verl would drop {len(over)} of {len(rows)} {split} prompts (SHARE): "
                f"they are over data.max_prompt_length={max_prompt_length} tokens with this tokenizer and "
                "its chat template; raise the limit, lower data.max_prompt_tokens, or lower data.max_history "
                "(a page is cut away entirely before any history step is dropped)"))
        result.rl[split] = out / RL_FILES.get(split, f"{split}.parquet")
        result.counts[f"rl/{split}"] = write_parquet(rows, result.rl[split])
        if sft:
            # A latest-step chat is the GRPO/evaluation prompt (fitted to max_prompt_tokens)
            # plus its answer, as the local SFT builds it; a whole-session chat is one prompt
            # whose budget is the whole chat's.
            whole = context == "whole-session"
            chats = sft_rows(
                part, context=context, max_history=max_history, tokenizer=tokenizer,
                max_prompt_tokens=(sft_max_tokens if whole and sft_max_tokens is not None else max_prompt_tokens),
                page_format=page_format,
            )
            if tokenizer is not None and sft_max_tokens is not None:
                # verl's SFT dataset cuts a longer chat at data.max_length (truncation=right):
                # the answer, last in the chat, is what goes, and its row trains on nothing.
                lost = overlong_chats(chats, tokenizer, sft_max_tokens)
                result.sft_overlong[split] = _refuse_losses(lost, len(chats), (
                    f"{len(lost)} of {len(chats)} {split} SFT chats (SHARE) are over "
                    f"sft.max_seq_tokens={sft_max_tokens} tokens with this tokenizer: verl would cut their "
                    "answers away; raise sft.max_seq_tokens or lower data.max_prompt_tokens"))
            result.sft[split] = out / SFT_FILES.get(split, f"sft_{split}.parquet")
            result.counts[f"sft/{split}"] = write_parquet(chats, result.sft[split])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: export a data source to verl parquet files. Returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m training.verl_backend.export",
        description="Export Shop-R1 env states (GRPO) and session chats (SFT) to verl parquet files.",
    )
    parser.add_argument("--data", default=None, help="session source (default: the preset's data.sessions)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--config", default=None, help="training preset whose data/reward settings to use")
    parser.add_argument("--context", choices=CONTEXTS, default=None)
    parser.add_argument("--max-history", type=int, default=None)
    parser.add_argument("--max-prompt-tokens", type=int, default=None)
    parser.add_argument("--page-format", choices=PAGE_FORMATS, default=None,
                        help="how pages enter prompts (default: the preset's data.page_format, else compact)")
    parser.add_argument("--tokenizer", default=None, help="local tokenizer folder for the token budget")
    parser.add_argument("--no-sft", action="store_true", help="skip the SFT chat files")
    args = parser.parse_args(argv)

    data, context, max_history, budget, reward, test_fraction = (
        "synthetic:200?seed=0", "whole-session", None, None, {}, 0.2,
    )
    page_format = "compact"
    if args.config:
        from training.config import load_config

        cfg = load_config(args.config)
        data, context, max_history = cfg.data.sessions, cfg.data.context, cfg.data.max_history
        budget, reward, test_fraction = cfg.data.max_prompt_tokens, cfg.reward.to_dict(), cfg.data.test_fraction
        page_format = cfg.data.page_format
    data = args.data or data
    context = args.context or context
    max_history = args.max_history if args.max_history is not None else max_history
    budget = args.max_prompt_tokens if args.max_prompt_tokens is not None else budget
    page_format = args.page_format or page_format
    tokenizer = None
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    try:
        result = export_dataset(
            data, args.out, reward_config=reward, context=context, max_history=max_history,
            max_prompt_tokens=budget, tokenizer=tokenizer, test_fraction=test_fraction, sft=not args.no_sft,
            page_format=page_format,
            # the limit the launcher gives verl (budget + template room): checked with the tokenizer
            max_prompt_length=(budget or DEFAULT_MAX_PROMPT_TOKENS) + TEMPLATE_MARGIN_TOKENS,
        )
    except (ValueError, FileNotFoundError) as err:
        print(f"error: export failed: {err}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
