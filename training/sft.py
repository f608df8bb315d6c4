"""Cold-start SFT (docs/architecture.md §10): sessions -> chats -> TRL ``SFTTrainer`` with assistant-only loss.

* :class:`SFTSettings` — the knobs of one SFT run (:meth:`SFTSettings.from_config` builds
  them from the run config's ``sft``/``data`` sections and the batch plan).
* :func:`build_sft_dataset` — a ``datasets.Dataset`` with one ``messages`` chat per example:
  ``whole-session`` gives multi-turn chats (user: page, assistant: response JSON, as
  :func:`shop_env.prompt.session_chat` renders them); ``latest-step`` gives one chat per step
  with the prompt GRPO and evaluation use (:func:`shop_env.prompt.step_chats`). Every chat
  fits ``max_seq_tokens``. A whole session that does not fit becomes several chats, walking
  back from its last step: each chat trains the steps whose pages it keeps (the newest, the
  last one cut if needed) and shows the older steps as page-less context (URL + answer, with
  ``"train": False`` so no loss is put on an answer whose page is not visible). Every answer
  is trained exactly once, always with its page in view.
* :func:`run_sft` — trains with loss on assistant turns only, checkpoints in ``out_dir``,
  resumes from the last checkpoint, logs the loss per step to ``out_dir/metrics.jsonl``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trl import SFTTrainer

from shop_env.sessions import Session
from training.checkpoints import FINAL_DIR, METRICS_FILE, last_checkpoint, metrics_callback
from training.host_memory import host_memory_callback

log = logging.getLogger(__name__)

#: The final model directory inside ``out_dir``.
#: The per-step metrics file inside ``out_dir``.


@dataclass
class SFTSettings:
    """Settings of one SFT run.

    Attributes:
        epochs: passes over the data (fractions allowed).
        learning_rate: peak learning rate (AdamW).
        batch_size: examples per device per step.
        grad_accum: gradient accumulation steps (effective batch = batch_size * grad_accum).
        max_seq_tokens: every training chat is fitted to this many tokens.
        context: ``"whole-session"`` (one multi-turn chat per session) or ``"latest-step"``
            (one chat per step, as GRPO/evaluation prompts).
        max_history: past steps kept in ``latest-step`` prompts (None: all).
        max_prompt_tokens: prompt budget of ``latest-step`` chats (None: derived from
            ``max_seq_tokens``); not used by ``whole-session`` chats.
        warmup_ratio: fraction of steps of linear warm-up.
        lr_scheduler: a ``transformers`` scheduler name.
        weight_decay: AdamW weight decay.
        max_grad_norm: gradient clipping.
        max_steps: stop after this many optimizer steps (-1: run ``epochs``).
        logging_steps: log every N steps.
        save_steps: checkpoint every N steps (and at the end).
        save_total_limit: checkpoints kept.
        seed: data order and dropout seed.
        gradient_checkpointing: trade compute for memory (off for small models).
        rationales: writer for steps without a rationale (``"template"`` or ``"openai:MODEL@URL"``).
        precision: ``"auto"``, ``"fp32"`` or ``"bf16"`` (:mod:`training.precision`; bf16 trains
            under autocast with float32 master weights).
        page_format: how pages are written into the chats (``"compact"`` or ``"html"``;
            :mod:`shop_env.webpage.compact`), saved with the model as evaluation needs the same.
    """

    epochs: float = 1.0
    learning_rate: float = 2e-5
    batch_size: int = 8
    grad_accum: int = 1
    max_seq_tokens: int = 2048
    context: str = "whole-session"
    max_history: int | None = None
    max_prompt_tokens: int | None = None
    warmup_ratio: float = 0.05
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_steps: int = -1
    logging_steps: int = 1
    save_steps: int = 50
    save_total_limit: int = 2
    seed: int = 0
    gradient_checkpointing: bool = False
    rationales: str = "template"
    page_format: str = "compact"
    precision: str = "auto"

    @classmethod
    def from_config(cls, config: Any) -> SFTSettings:
        """The SFT settings of a run: its ``sft`` and ``data`` sections, seed and precision,
        with the global batch split for this process's world size (:mod:`training.batching`).

        This is the one place a :class:`training.config.TrainConfig` becomes SFT settings; the
        fields it does not set (schedule, logging, checkpoint cadence) keep their defaults.

        Raises:
            training.config.ConfigError: a batch that cannot be split over the world size.
        """
        plan = config.batch_plans()["sft"]
        return cls(
            epochs=config.sft.epochs,
            learning_rate=config.sft.learning_rate,
            batch_size=plan.per_device,
            grad_accum=plan.accumulation,
            gradient_checkpointing=config.sft.gradient_checkpointing,
            max_seq_tokens=config.sft.max_seq_tokens,
            max_steps=config.sft.max_steps if config.sft.max_steps is not None else -1,
            context=config.data.context,
            max_history=config.data.max_history,
            max_prompt_tokens=config.data.max_prompt_tokens,
            seed=config.seed,
            rationales=config.data.rationales,
            precision=config.precision,
            page_format=config.data.page_format,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SFTSettings:
        """Build settings from a dict of field values.

        Raises:
            ValueError: a key that is not a field (named in the message).
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown SFT setting(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as plain data."""
        return dataclasses.asdict(self)


def build_sft_dataset(sessions: Sequence[Session], tokenizer: Any, settings: SFTSettings) -> Any:
    """Turn sessions into a ``datasets.Dataset`` of chats fitted to ``settings.max_seq_tokens``.

    Steps without a rationale get one from ``settings.rationales`` first.

    Args:
        sessions: the training sessions.
        tokenizer: a tokenizer with a chat template (counts tokens).
        settings: uses ``context``, ``max_seq_tokens``, ``max_prompt_tokens``,
            ``max_history`` and ``rationales``.

    Returns:
        A ``datasets.Dataset`` with one column, ``messages`` (role/content dicts; assistant
        turns that are context only carry ``"train": False``, which the ChatML template of
        :mod:`training.tokenizer` honours; a template that ignores it trains those turns too).

    Raises:
        ValueError: no sessions, an unknown context, or a tokenizer without a chat template.
    """
    from datasets import Dataset

    from shop_env.observations import check_context

    check_context(settings.context)
    if not sessions:
        raise ValueError("build_sft_dataset needs at least one session")
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the tokenizer has no chat template; SFT renders chats through it")
    sessions = _with_rationales(sessions, settings.rationales)
    chats: list[list[dict[str, Any]]] = []
    for session in sessions:
        if settings.context == "whole-session":
            chats.extend(_session_chats(session, tokenizer, settings.max_seq_tokens, settings.page_format))
        else:
            chats.extend(_step_chats(session, tokenizer, settings))
    return Dataset.from_dict({"messages": chats})


def chat_tokens(tokenizer: Any, messages: list[dict[str, str]]) -> int:
    """Return the number of tokens of a chat rendered by the tokenizer's chat template."""
    from shop_env.prompt import chat_token_ids

    return len(chat_token_ids(tokenizer, messages))


def _with_rationales(sessions: Sequence[Session], spec: str) -> list[Session]:
    if all(step.rationale for session in sessions for step in session.steps):
        return list(sessions)
    from training.rationale_writers import fill_rationales, make_writer

    return fill_rationales(sessions, make_writer(spec), progress=False)


def _session_chats(session: Session, tokenizer: Any, budget: int,
                   page_format: str = "compact") -> list[list[dict[str, Any]]]:
    """Whole-session chats of one session that train every step exactly once, each within ``budget``.

    Walking back from the last step, each chat holds steps ``[start, end)``: the trained
    steps ``[first, end)`` keep their pages (the last page is cut if it alone is too long);
    the earlier steps show their URL and action with the page dropped and are context only
    (their assistant turns carry ``"train": False``, so no loss is put on an answer whose
    page the model cannot see); steps before ``start`` are left out only when even their
    page-less turns do not fit. The next chat ends where this one's trained steps begin.
    """
    from shop_env.prompt import PAGE_DROPPED, page_text, session_chat

    n_steps = len(session.steps)
    full = session_chat(session, "whole-session", page_format=page_format)  # unbudgeted: the exact texts, fast
    bare = session_chat(
        dataclasses.replace(session, steps=[dataclasses.replace(st, html=PAGE_DROPPED) for st in session.steps]),
        "whole-session", page_format="html",
    )
    system, users, answers = full[0], full[1::2], full[2::2]
    dropped = bare[1::2]
    size = _MessageSizer(tokenizer)
    fixed = size(system)
    kept_cost = [size(users[i]) + size(answers[i]) for i in range(n_steps)]
    bare_cost = [size(dropped[i]) + size(answers[i]) for i in range(n_steps)]
    chats: list[list[dict[str, Any]]] = []
    end = n_steps
    while end > 0:
        last = end - 1
        start, context = 0, sum(bare_cost[:last])
        while start < last and fixed + context + kept_cost[last] > budget:
            context -= bare_cost[start]
            start += 1
        first, total = last, fixed + context + kept_cost[last]
        while first > start and total - bare_cost[first - 1] + kept_cost[first - 1] <= budget:
            total += kept_cost[first - 1] - bare_cost[first - 1]
            first -= 1
        messages: list[dict[str, Any]] = [dict(system)]
        for i in range(start, end):
            messages.append(dict(users[i] if i >= first else dropped[i]))
            messages.append({**answers[i], "train": i >= first})
        chats.append(_cut_last_page(messages, page_text(session.steps[last].html, page_format), tokenizer, budget,
                                    session.session_id))
        end = first
    chats.reverse()
    return chats


class _MessageSizer:
    """Tokens of one chat message as rendered by the chat template (additive for ChatML)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def __call__(self, message: dict[str, Any]) -> int:
        return chat_tokens(self.tokenizer, [message])


def _cut_last_page(
    messages: list[dict[str, Any]], page: str, tokenizer: Any, budget: int, session_id: str
) -> list[dict[str, Any]]:
    """Cut the page of the last user turn (with the prompt's cut marker) until the chat fits."""
    return _cut_page(messages, len(messages) - 2, page, tokenizer, lambda m: chat_tokens(tokenizer, m) - budget,
                     session_id)[0]


def _cut_page(
    messages: list[dict[str, Any]],
    index: int,
    page: str,
    tokenizer: Any,
    overflow: Callable[[list[dict[str, Any]]], int],
    session_id: str,
) -> tuple[list[dict[str, Any]], int]:
    """Cut ``page`` inside ``messages[index]`` (keeping a prefix + the cut marker) until ``overflow`` <= 0.

    The cut itself is :func:`shop_env.prompt.cut_page`, the prompts' own rule.
    ``overflow(messages)`` says how many tokens are over budget. Returns the messages and
    their final overflow. Warns when even the whole page cut is not enough, unless
    ``session_id`` is empty.
    """
    from shop_env.prompt import cut_page

    content = messages[index]["content"]
    at = content.rfind(page) if page else -1
    head, body, tail = (content[:at], page, content[at + len(page):]) if at >= 0 else ("", content, "")
    page_tokens = len(tokenizer.encode(body, add_special_tokens=False))
    over = overflow(messages)
    allowed = page_tokens
    for _ in range(4):  # re-measure: token counts are not exactly additive at the cut
        if over <= 0:
            return messages, over
        allowed -= over
        text, cut = cut_page(body, allowed, tokenizer)
        messages[index] = {**messages[index], "content": head + text + tail}
        over = overflow(messages)
        if cut == len(body):
            break
    if session_id and over > 0:
        log.warning("session %s: a step does not fit the token budget even with its page cut; TRL truncates it",
                    session_id)
    return messages, over


def _step_chats(session: Session, tokenizer: Any, settings: SFTSettings) -> list[list[dict[str, Any]]]:
    """One ``latest-step`` chat per step (the GRPO/evaluation prompt + the answer), fitted to the budget.

    The prompt of ``latest-step`` holds one page, the current one; it is cut (with the
    prompt module's marker) until the prompt fits ``max_prompt_tokens`` and the whole chat
    fits ``max_seq_tokens``. A step whose list of past actions alone is over budget keeps
    only its most recent past actions (16, 8, ... 0).
    """
    from shop_env.prompt import chat_token_ids, page_text, step_chats

    def overflow(chat: list[dict[str, Any]]) -> int:
        # prompt + answer: the chat template renders each message on its own (ChatML). The
        # prompt is counted as generation sees it (with the assistant opening), as
        # shop_env.prompt counts its budget, so both cut a page at the same character.
        prompt = len(chat_token_ids(tokenizer, chat[:-1], add_generation_prompt=True))
        over = prompt + chat_tokens(tokenizer, chat[-1:]) - settings.max_seq_tokens
        if settings.max_prompt_tokens is not None:
            over = max(over, prompt - settings.max_prompt_tokens)
        return over

    def fitted(chat: list[dict[str, Any]], page: str, quiet: bool) -> bool:
        return _cut_page(chat, 1, page, tokenizer, overflow, "" if quiet else session.session_id)[1] <= 0

    fmt = settings.page_format
    chats = step_chats(session, "latest-step", None, None, settings.max_history, fmt)  # unbudgeted: fast
    for index, step in enumerate(session.steps):
        page = page_text(step.html, fmt)
        if fitted(chats[index], page, quiet=True):
            continue
        for history in (16, 8, 4, 2, 1, 0):
            if settings.max_history is not None and history >= settings.max_history:
                continue
            chat = step_chats(session, "latest-step", None, None, history, fmt)[index]
            if fitted(chat, page, quiet=history > 0) or history == 0:
                chats[index] = chat
                break
    return chats


# --- training ---------------------------------------------------------------------------


def run_sft(
    settings: SFTSettings,
    model: Any,
    tokenizer: Any,
    sessions: Sequence[Session],
    out_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress: bool = False,
) -> Path:
    """Fine-tune ``model`` on ``sessions`` with loss on assistant turns only.

    Args:
        settings: the run's :class:`SFTSettings`.
        model: a ``transformers`` causal LM (trained in place).
        tokenizer: its tokenizer; its chat template must mark assistant turns with
            ``{% generation %}`` (the ``tiny`` and ChatML models of :mod:`training.models` do).
        sessions: the training sessions.
        out_dir: checkpoints (``checkpoint-N``), ``metrics.jsonl`` and ``final/`` go here.
        resume: continue from the last ``checkpoint-N`` in ``out_dir`` (fresh start if none).
        progress: show the trainer's progress bar.

    Returns:
        ``out_dir/final``: the trained model and tokenizer (``from_pretrained``-loadable).

    Raises:
        ValueError: bad settings or data (see :func:`build_sft_dataset`).
    """
    trainer = build_trainer(settings, model, tokenizer, sessions, out_dir, progress=progress)
    checkpoint = last_checkpoint(out_dir) if resume else None
    if checkpoint:
        log.info("SFT: resuming from %s", checkpoint)
    trainer.train(resume_from_checkpoint=checkpoint)
    final = Path(out_dir) / FINAL_DIR
    trainer.save_model(str(final))
    tokenizer.save_pretrained(str(final))
    (final / "sft_settings.json").write_text(json.dumps(settings.to_dict(), indent=1), encoding="utf-8")
    from shop_env.prompt_settings import PromptSettings

    PromptSettings(settings.context, settings.max_history, settings.max_prompt_tokens,
                   page_format=settings.page_format).save(final)
    return final


def build_trainer(
    settings: SFTSettings,
    model: Any,
    tokenizer: Any,
    sessions: Sequence[Session],
    out_dir: str | os.PathLike[str],
    *,
    progress: bool = False,
    stock_trl: bool = False,
) -> Any:
    """Return the configured TRL ``SFTTrainer`` (dataset tokenized, labels masked) without training.

    ``trainer.train_dataset`` holds ``input_ids`` and ``labels`` (-100 outside assistant
    turns). See :func:`run_sft` for the arguments. ``stock_trl`` builds TRL's own
    ``SFTTrainer`` (its loss over every position, in float32) instead of
    :class:`SupervisedOnlySFTTrainer`: the baseline of ``benchmarks/train_throughput.py``.
    """
    from trl import SFTConfig

    from training.precision import default_device, resolve_precision

    dataset = build_sft_dataset(sessions, tokenizer, settings)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = default_device()
    precision = resolve_precision(settings.precision, device)
    config = SFTConfig(
        output_dir=str(out),
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.lr_scheduler,
        warmup_steps=settings.warmup_ratio,  # a float < 1 is a ratio of the total steps
        weight_decay=settings.weight_decay,
        max_grad_norm=settings.max_grad_norm,
        logging_steps=settings.logging_steps,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=settings.save_total_limit,
        seed=settings.seed,
        data_seed=settings.seed,
        assistant_only_loss=True,
        max_length=settings.max_seq_tokens,
        packing=False,
        padding_free=False,
        activation_checkpointing=settings.gradient_checkpointing,
        # The loss below runs its own autocast; the Trainer's would only wrap model.forward.
        bf16=False,
        fp16=False,
        use_cpu=device == "cpu",
        report_to=[],
        disable_tqdm=not progress,
        dataloader_num_workers=0,
        dataset_num_proc=None,
    )
    kwargs: dict[str, Any] = {
        "model": model, "args": config, "train_dataset": dataset, "processing_class": tokenizer,
        "callbacks": [host_memory_callback(), metrics_callback(out / METRICS_FILE, phase="sft")],
    }
    if stock_trl:  # float32: the Trainer's own autocast is off (bf16=False above)
        return SFTTrainer(**kwargs)
    return SupervisedOnlySFTTrainer(**kwargs, precision=precision)


class SupervisedOnlySFTTrainer(SFTTrainer):
    """TRL's ``SFTTrainer`` whose loss projects only the supervised positions through the LM head.

    Takes ``SFTTrainer``'s arguments plus ``precision`` (``"fp32"`` or ``"bf16"``, resolved).
    TRL's fused head scores every position on CPU (it compacts to the labelled ones on
    Triton devices only); a latest-step chat is ~85% page, so that is mostly wasted
    vocabulary projections. :func:`training.lm_head.supervised_nll` gathers the
    assistant positions first, and runs in ``precision`` under autocast.
    """

    def __init__(self, *args: Any, precision: str = "fp32", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.precision = precision

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        import torch

        from training.lm_head import supervised_nll
        from training.precision import autocast

        mode = "train" if self.model.training else "eval"
        device = inputs["input_ids"].device.type
        with autocast(self.precision, device):
            nll, n_tokens, n_correct = supervised_nll(
                model, inputs["input_ids"], inputs.get("attention_mask"), inputs["labels"]
            )
        denominator = n_tokens if num_items_in_batch is None else num_items_in_batch
        loss = nll / torch.as_tensor(denominator, device=nll.device).clamp(min=1)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes
        valid = int(n_tokens)
        self._metrics[mode]["mean_token_accuracy"].append(int(n_correct) / valid if valid else 0.0)
        if mode == "train" and "attention_mask" in inputs:
            self._total_train_tokens += int(inputs["attention_mask"].sum())
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
        if return_outputs:
            raise NotImplementedError("SupervisedOnlySFTTrainer computes no logits to return")
        return loss
