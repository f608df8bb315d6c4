"""The Shop-R1 reward as a TRL ``GRPOTrainer`` reward function (docs/architecture.md §5, §10).

One callable object scores a batch of completions with :func:`rewards.score` (no second
implementation of the reward). Self-certainty is computed from the POLICY's own logits at
the tokens whose characters lie inside the rationale string (:func:`rewards.rationale_token_mask`),
averaged by :func:`rewards.self_certainty`. Two sources of those logits:

* :class:`GenerationCertainty`, installed on the policy's ``generate``, measures each
  sampled token's distribution while the rollout is generated (one ``[batch, vocab]`` row
  per step, reduced at once to one float per row): no second pass over prompt + completion;
* otherwise (rollouts from vLLM, a record that does not match the completions) one no-grad
  backbone pass over prompt + completion and the LM head only at the rationale tokens
  (:mod:`training.lm_head`; never a completion-wide logits tensor).

Faults never stop training: a sample whose scoring raises gets reward 0 and is counted in
``reward/errors`` and in :attr:`ShopR1Reward.errors`.

With ``rollout_log`` set, every scored completion is appended to a JSON-lines file (the
GRPO stage's ``rollouts.jsonl``): the step, the state, the gold action, the completion and its
reward breakdown, so a run's training signal can be read back sample by sample.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from shop_env.actions import ACTION_TYPES, Action

log = logging.getLogger(__name__)

#: Breakdown fields logged as ``reward/<field>`` means on every GRPO step.
COMPONENTS = ("format", "type", "attribute", "value", "self_certainty", "total")
# Upper bound on logits floats held at once by the self-certainty forward (~512 MB in fp32).
_LOGITS_BUDGET = 1 << 27


class ShopR1Reward:
    """TRL reward function: ``__call__(prompts, completions, completion_ids, gold_action, ...)``.

    Args:
        config: a :class:`rewards.RewardConfig` (None: its defaults).
        tokenizer: the policy's tokenizer (needed for self-certainty).
        model: the policy model, or a zero-argument callable returning it; may be set later
            with :meth:`attach` (the trainer's model). None disables self-certainty.
        chunk_size: tokens per chunk in :func:`rewards.self_certainty` and the LM head.
        precision: ``"fp32"`` or ``"bf16"`` (resolved, :mod:`training.precision`): the
            self-certainty forward runs under this autocast.
        temperature: the rollouts' sampling temperature; self-certainty is measured on
            ``softmax(z / T)`` with ``T = config.self_certainty_temperature`` when set, else
            this one (the distribution that produced the rationale, as on verl).
        recorder: a :class:`GenerationCertainty` installed on the policy's ``generate``;
            its record of the latest rollout replaces the forward pass when it matches.
        rollout_log: a JSON-lines file that gets one record per scored completion (see
            :meth:`__call__`); None writes nothing.

    The dataset column ``gold_action`` holds the gold action as JSON text.
    """

    __name__ = "shop_r1"

    def __init__(
        self,
        config: Any = None,
        tokenizer: Any = None,
        model: Any = None,
        *,
        chunk_size: int = 256,
        precision: str = "fp32",
        temperature: float = 1.0,
        recorder: GenerationCertainty | None = None,
        rollout_log: str | os.PathLike[str] | None = None,
    ) -> None:
        from rewards import RewardConfig

        self.config = config if config is not None else RewardConfig()
        self.tokenizer = tokenizer
        self._model: Callable[[], Any] | None = None
        if model is not None:
            self.attach(model)
        self.chunk_size = chunk_size
        self.precision = precision
        explicit = getattr(self.config, "self_certainty_temperature", None)
        self.certainty_temperature = float(explicit if explicit is not None else temperature)
        self.recorder = recorder
        self.rollout_log = Path(rollout_log) if rollout_log is not None else None
        #: How many completions had their self-certainty from the rollout's record / a forward pass.
        self.certainty_sources = {"generation": 0, "forward": 0}
        self.errors = 0
        self.last_breakdowns: list[Any] = []

    def attach(self, model: Any) -> None:
        """Use ``model`` (or ``model()`` when callable and not a torch module) as the policy."""
        import torch

        if isinstance(model, torch.nn.Module) or not callable(model):
            self._model = lambda: model
        else:
            self._model = model

    @property
    def uses_self_certainty(self) -> bool:
        """Whether self-certainty is paid and a policy is attached to compute it."""
        return bool(getattr(self.config, "use_self_certainty", True)) and self._model is not None

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Sequence[int]] | None = None,
        gold_action: Sequence[str] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        session_id: Sequence[str] | None = None,
        step: Sequence[int] | None = None,
        page_type: Sequence[str] | None = None,
        trainer_state: Any = None,
        **_: Any,
    ) -> list[float]:
        """Score one batch; returns one float per completion (never raises per sample).

        ``session_id`` and ``step`` (dataset columns) name each completion's state: the
        completions of one state form its GRPO group. ``reward/action_tied_groups`` is the
        share of groups whose members all earn the same reward before self-certainty: their
        advantages come from self-certainty alone (and ``scale_rewards: group`` blows those
        differences of ~0.01 up to unit size). Each ``rollout_log`` record holds
        ``step`` (the optimizer step the rollout trains, ``trainer_state.global_step + 1``),
        ``session_id``, ``state_step``, ``page_type`` (when the dataset's column names one),
        ``gold``, ``completion``, ``predicted`` (type,
        ``"invalid"``, or ``"error"`` for a sample whose scoring failed; ``exact`` null then),
        ``exact`` and the breakdown's ``format``/``type``/``attribute``/
        ``value``/``self_certainty``/``total``.

        Raises:
            ValueError: the dataset has no ``gold_action`` column (a setup error, not a sample fault).
        """
        from rewards import score_answer

        if gold_action is None:
            raise ValueError("the GRPO dataset needs a 'gold_action' column (gold action JSON per prompt)")
        texts = [completion_text(c) for c in completions]
        certainty: list[float | None] = [None] * len(texts)
        if self.uses_self_certainty and completion_ids is not None:
            certainty = self._self_certainties(prompts, completion_ids)
        out: list[float] = []
        breakdowns: list[Any] = []
        per_type: dict[str, list[float]] = {}
        predicted: list[str] = []
        exacts: list[bool | None] = []
        for text, gold_json, sc in zip(texts, gold_action, certainty, strict=True):
            try:
                gold = parse_gold(gold_json)
                scored = score_answer(text, gold, self.config, self_certainty=sc)
                out.append(float(scored.breakdown.total))
                breakdowns.append(scored.breakdown)
                per_type.setdefault(gold.type, []).append(float(scored.exact_match))
                predicted.append(scored.action.type if scored.action is not None else "invalid")
                exacts.append(bool(scored.exact_match))
            except Exception as err:  # one bad sample must not kill training
                self.errors += 1
                log.warning("reward for one completion failed (scored 0): %s: %s", type(err).__name__, err)
                out.append(0.0)
                breakdowns.append(None)
                predicted.append("error")
                exacts.append(None)
        self.last_breakdowns = breakdowns
        states = list(zip(session_id, step, strict=True)) if session_id is not None and step is not None else None
        if log_metric is not None:
            self._log(log_metric, breakdowns, per_type)
            if states is not None:
                log_metric("reward/action_tied_groups", action_tied_share(states, breakdowns))
            # What the policy answers, whatever the gold: terminate spam shows here first. Every
            # type is logged, zeros too: the trainer averages a key over the reward calls that
            # logged it, so a type missing from one micro-batch would inflate its share.
            for kind in (*ACTION_TYPES, "invalid"):
                log_metric(f"predicted/{kind}", predicted.count(kind) / len(texts))
        # One writer: under several processes rank 0 logs its own share of the rollouts.
        if self.rollout_log is not None and os.environ.get("RANK", "0") == "0":
            _append_rollouts(self.rollout_log, trainer_state, states, gold_action, texts, predicted, exacts,
                             breakdowns, page_type)
        return out

    def _log(self, log_metric: Callable[[str, float], None], breakdowns: list[Any], per_type: dict[str, list[float]]) -> None:
        scored = [b for b in breakdowns if b is not None]
        n = max(len(breakdowns), 1)
        for name in COMPONENTS:
            values = [float(getattr(b, name, 0.0) or 0.0) for b in scored]
            log_metric(f"reward/{name}", sum(values) / n)
        log_metric("reward/valid", sum(1.0 for b in scored if getattr(b, "valid", False)) / n)
        log_metric("reward/errors", float(len(breakdowns) - len(scored)))
        for kind, hits in sorted(per_type.items()):
            log_metric(f"exact_match/{kind}", sum(hits) / len(hits))
        all_hits = [h for hits in per_type.values() for h in hits]
        if all_hits:
            log_metric("exact_match/all", sum(all_hits) / len(all_hits))

    def _self_certainties(self, prompts: Sequence[Any], completion_ids: Sequence[Sequence[int]]) -> list[float | None]:
        """Self-certainty of each completion's rationale tokens under the policy (None on failure)."""
        try:
            model = self._model() if self._model is not None else None
            if model is None or self.tokenizer is None:
                return [None] * len(completion_ids)
            masks = [rationale_mask(self.tokenizer, ids) for ids in completion_ids]
            recorded = self.recorder.take(completion_ids) if self.recorder is not None else None
            if recorded is not None:
                self.certainty_sources["generation"] += len(completion_ids)
                return [_masked_mean(values, mask) for values, mask in zip(recorded, masks, strict=True)]
            prompt_ids = [prompt_token_ids(self.tokenizer, p) for p in prompts]
        except Exception as err:
            self.errors += 1
            log.warning("self-certainty setup failed (scored without it): %s: %s", type(err).__name__, err)
            return [None] * len(completion_ids)
        self.certainty_sources["forward"] += len(completion_ids)
        vocab = int(getattr(getattr(model, "config", None), "vocab_size", 0) or 32000)
        longest = max((len(c) for c in completion_ids), default=1) + 1
        rows = max(1, _LOGITS_BUDGET // (vocab * longest))
        out: list[float | None] = []
        for start in range(0, len(completion_ids), rows):
            sl = slice(start, start + rows)
            try:
                out.extend(self._forward(model, prompt_ids[sl], list(completion_ids[sl]), masks[sl]))
            except Exception as err:
                self.errors += 1
                log.warning("self-certainty forward failed (scored without it): %s: %s", type(err).__name__, err)
                out.extend([None] * len(completion_ids[sl]))
        return out

    def _forward(self, model: Any, prompts: list[list[int]], completions: list[list[int]], masks: list[list[bool]]) -> list[float]:
        import torch

        from rewards import self_certainty
        from training.lm_head import hidden_rows_logits
        from training.precision import autocast

        variant = getattr(self.config, "self_certainty_variant", "kl_p_u")
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        width_p = max(len(p) for p in prompts)
        width_c = max(max((len(c) for c in completions), default=0), 1)
        ids, attn, tok_mask = [], [], []
        for p, c, m in zip(prompts, completions, masks, strict=True):
            # Left-pad the prompt, right-pad the completion (as GRPOTrainer does), so every
            # completion starts at the same column and one slice of logits serves all rows.
            ids.append([pad] * (width_p - len(p)) + list(p) + list(c) + [pad] * (width_c - len(c)))
            attn.append([0] * (width_p - len(p)) + [1] * (len(p) + len(c)) + [0] * (width_c - len(c)))
            tok_mask.append(list(m)[: len(c)] + [False] * (width_c - min(len(m), len(c))))
        device = next(model.parameters()).device
        input_ids = torch.tensor(ids, device=device)
        attention = torch.tensor(attn, device=device)
        # The logit at column t predicts token t+1: completion token j is predicted at
        # column width_p - 1 + j. Only those columns of rationale tokens go through the head.
        where = torch.zeros(input_ids.shape, dtype=torch.bool, device=device)
        where[:, width_p - 1:width_p - 1 + width_c] = torch.tensor(tok_mask, dtype=torch.bool, device=device)
        was_training = model.training
        model.eval()  # the policy's distribution itself, without dropout noise
        try:
            with autocast(self.precision, device.type):
                logits = hidden_rows_logits(model, input_ids, attention, where, chunk_size=self.chunk_size)
            per_token = self_certainty(logits.unsqueeze(1), torch.ones(logits.shape[:1] + (1,), dtype=torch.bool),
                                       variant=variant, chunk_size=self.chunk_size,
                                       temperature=self.certainty_temperature)
            rows = where.nonzero(as_tuple=True)[0]
            sums = torch.zeros(len(ids), dtype=torch.float32).index_add_(0, rows.cpu(), per_token.cpu())
            counts = torch.bincount(rows.cpu(), minlength=len(ids)).to(torch.float32)
            values = torch.where(counts > 0, sums / counts.clamp(min=1.0), torch.zeros_like(sums))
        finally:
            model.train(was_training)
        return [float(v) for v in values.tolist()]


def _append_rollouts(path: Path, trainer_state: Any, states: list[tuple[str, int]] | None, golds: Sequence[str],
                     texts: list[str], predicted: list[str], exacts: list[bool | None],
                     breakdowns: list[Any], page_types: Sequence[str] | None = None) -> None:
    """Append one JSON line per completion to ``path`` (fields: :meth:`ShopR1Reward.__call__`)."""
    step = int(getattr(trainer_state, "global_step", -1)) + 1 if trainer_state is not None else None
    lines = []
    for i, (text, gold, kind, exact, b) in enumerate(zip(texts, golds, predicted, exacts, breakdowns, strict=True)):
        record: dict[str, Any] = {"step": step}
        if states is not None:
            record["session_id"], record["state_step"] = states[i][0], int(states[i][1])
        if page_types is not None and page_types[i]:
            record["page_type"] = str(page_types[i])
        record.update(gold=gold, completion=text, predicted=kind, exact=exact)
        for name in COMPONENTS:
            record[name] = None if b is None else float(getattr(b, name, 0.0) or 0.0)
        lines.append(json.dumps(record) + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(lines))


def action_tied_share(states: Sequence[tuple[str, int]], breakdowns: Sequence[Any]) -> float:
    """The share of GRPO groups (completions of one state) of two or more members whose
    rewards without self-certainty are all equal (0.0 when there is no such group).

    Args:
        states: ``(session_id, step)`` of each completion.
        breakdowns: each completion's reward breakdown, None for a failed sample (reward 0).
    """
    groups: dict[tuple[str, int], list[float]] = {}
    for state, b in zip(states, breakdowns, strict=True):
        action = 0.0 if b is None else float(b.total) - float(getattr(b, "self_certainty", 0.0) or 0.0)
        groups.setdefault((str(state[0]), int(state[1])), []).append(round(action, 9))
    sized = [values for values in groups.values() if len(values) > 1]
    return sum(1.0 for values in sized if len(set(values)) == 1) / len(sized) if sized else 0.0


def _masked_mean(values: Sequence[float], mask: Sequence[bool]) -> float:
    picked = [v for v, m in zip(values, mask, strict=False) if m]
    return sum(picked) / len(picked) if picked else 0.0


class GenerationCertainty:
    """Per-token self-certainty of a rollout, measured while the policy samples it.

    :meth:`install` wraps the model's ``generate`` so that every call adds a logits
    processor; at each step it sees the raw next-token logits of every row (before the
    temperature/top-p warpers, which transformers applies after custom processors) and
    keeps one float per row, :func:`rewards.self_certainty` of that step's distribution.
    It also keeps the token each row sampled at the previous step, so :meth:`take` can
    check that a batch of completions is the rollout it recorded.

    Args:
        variant: ``RewardConfig.self_certainty_variant``.
        temperature: measure ``softmax(z / temperature)`` (as :class:`ShopR1Reward`).
    """

    def __init__(self, variant: str = "kl_p_u", temperature: float = 1.0) -> None:
        self.variant = variant
        self.temperature = float(temperature)
        self._values: list[Any] = []
        self._tokens: list[Any] = []
        self._model: Any = None

    def reset(self) -> None:
        """Forget the current record (a new rollout starts)."""
        self._values, self._tokens = [], []

    def observe(self, input_ids: Any, scores: Any) -> None:
        """Record one generation step: ``scores`` ``[batch, vocab]`` raw logits, ``input_ids``
        ``[batch, prompt + step]``."""
        import torch

        from rewards import self_certainty

        if self._values:
            self._tokens.append(input_ids[:, -1].detach().to("cpu"))
        ones = torch.ones((scores.size(0), 1), dtype=torch.bool, device=scores.device)
        per_row = self_certainty(scores.detach().unsqueeze(1), ones, variant=self.variant,
                                 chunk_size=max(1, scores.size(0)), temperature=self.temperature)
        self._values.append(per_row.to("cpu"))

    def take(self, completion_ids: Sequence[Sequence[int]]) -> list[list[float]] | None:
        """Per-token values for each completion of the recorded rollout, then forget it.

        Returns None (use the forward pass) when nothing is recorded, the batch size differs,
        or a completion's tokens are not the ones the record saw sampled.
        """
        import torch

        values, tokens = self._values, self._tokens
        self.reset()
        if not values or values[0].numel() != len(completion_ids):
            return None
        table = torch.stack(values, dim=1)  # [batch, steps]
        seen = torch.stack(tokens, dim=1).tolist() if tokens else [[] for _ in completion_ids]
        for row, ids in zip(seen, completion_ids, strict=True):
            checked = min(len(ids), len(row))
            if list(ids[:checked]) != row[:checked] or len(ids) > table.size(1):
                return None
        return [table[i, :len(ids)].tolist() for i, ids in enumerate(completion_ids)]

    def install(self, model: Any) -> None:
        """Wrap ``model.generate`` (on the instance) so every call records; see :meth:`uninstall`."""
        from transformers import LogitsProcessor, LogitsProcessorList

        recorder = self

        class _Record(LogitsProcessor):
            def __call__(self, input_ids: Any, scores: Any) -> Any:
                recorder.observe(input_ids, scores)
                return scores

        original = model.generate

        def generate(*args: Any, **kwargs: Any) -> Any:
            recorder.reset()
            processors = LogitsProcessorList([*(kwargs.pop("logits_processor", None) or []), _Record()])
            return original(*args, logits_processor=processors, **kwargs)

        model.generate = generate
        self._model = model

    def uninstall(self) -> None:
        """Give the model its own ``generate`` back (the latest record stays until taken)."""
        if self._model is not None and "generate" in vars(self._model):
            del self._model.generate
        self._model = None


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or the content of chat messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    if isinstance(completion, (list, tuple)):
        return "".join(completion_text(m) for m in completion)
    return str(completion)


def parse_gold(value: Any) -> Action:
    """The gold action of a dataset row (JSON text, a dict or an :class:`Action`).

    Raises:
        FormatError: not a valid action.
    """
    return Action.parse(value, field="gold_action")


def prompt_token_ids(tokenizer: Any, prompt: Any) -> list[int]:
    """Token ids of a prompt as GRPOTrainer feeds it (chat template + generation prompt)."""
    from shop_env.prompt import chat_token_ids

    if isinstance(prompt, str):
        return list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    return chat_token_ids(tokenizer, prompt, add_generation_prompt=True)


def rationale_mask(tokenizer: Any, completion_ids: Sequence[int]) -> list[bool]:
    """Per completion token: does it lie inside the rationale JSON string value?"""
    from rewards import rationale_mask_for_ids

    return rationale_mask_for_ids(tokenizer, completion_ids)[1]

