"""Training run configuration: YAML presets resolved into :class:`TrainConfig`.

A preset is a YAML file in ``training/configs/`` (or any path). It may name another preset
with ``extends:``; its keys are deep-merged over that base, so an ablation is a one-line
switch rather than a copy. Command-line overrides (``grpo.steps=2``: dotted key, YAML value)
are applied last. Every key is checked: an unknown one fails at start-up naming the key and
the closest known one.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rewards import RewardConfig
from shop_env.observations import CONTEXTS
from shop_env.sessions import SPLIT_CHOICES
from shop_env.webpage.compact import PAGE_FORMATS
from training.precision import PRECISIONS

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_PRESET = "tiny-cpu"

class ConfigError(ValueError):
    """A preset or override that cannot be resolved (unknown key, wrong type, missing file)."""


def _key(default: Any = dataclasses.MISSING, help: str = "", *, choices: tuple[str, ...] | None = None,
         factory: Any = dataclasses.MISSING) -> Any:
    """A config field whose ``help`` (and allowed ``choices``) live in its metadata, as TRL does:
    ``--help``'s key list and the start-up choice checks are generated from them."""
    metadata = {"help": help, "choices": choices}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class DataConfig:
    """Where the sessions come from and how states become prompts."""

    sessions: str = _key("synthetic:200?seed=0", "session source: synthetic:N[?seed=S], opera:DIR, "
                         "shopcart:FILE or a JSONL path")
    context: str = _key("latest-step", "prompt context: the latest step with its history, or the whole "
                        "session as one chat", choices=CONTEXTS)
    max_history: int | None = _key(None, "past steps kept in a prompt (null: all that fit the budget)")
    max_prompt_tokens: int | None = _key(None, "prompt token budget (null: derived from sft.max_seq_tokens)")
    rationales: str = _key("template", "writer of missing rationales: template or openai:MODEL@URL")
    test_fraction: float = _key(0.2, "share of sessions held out for evaluation (sources without their "
                                "own split)")
    page_format: str = _key("compact", "how pages are shown to the model", choices=PAGE_FORMATS)


@dataclass
class SFTConfig:
    """Cold-start supervised fine-tuning.

    ``batch_size`` is the global batch (chats per optimizer step over all devices);
    ``micro_batch_size`` is what one device runs per forward/backward (None: all of its
    share), the rest is gradient accumulation (:mod:`training.batching`).
    """

    enabled: bool = _key(True, "run the SFT stage")
    epochs: float = _key(1.0, "passes over the training chats (fractions allowed)")
    learning_rate: float = _key(2e-5, "peak learning rate (AdamW, cosine schedule)")
    batch_size: int = _key(8, "global batch: chats per optimizer step over all devices")
    max_seq_tokens: int = _key(2048, "every training chat is fitted to this many tokens")
    max_steps: int | None = _key(None, "cap on optimizer steps (null: all epochs)")
    max_sessions: int | None = _key(None, "train on a seeded sample of this many training sessions (null: all)")
    micro_batch_size: int | None = _key(None, "chats per device per forward/backward (null: the device's "
                                        "whole share); the rest is gradient accumulation")
    gradient_checkpointing: bool = _key(False, "trade compute for activation memory")


@dataclass
class GRPOSection:
    """GRPO: ``batch_size`` is global and counts completions (prompts x num_generations).

    ``micro_batch_size`` completions go through one forward/backward per device (None: all
    of the device's share); the rest is gradient accumulation (:mod:`training.batching`).
    """

    enabled: bool = _key(True, "run the GRPO stage")
    steps: int = _key(10, "optimizer steps")
    learning_rate: float = _key(1e-6, "learning rate (AdamW)")
    batch_size: int = _key(8, "global batch in completions (prompts x num_generations), a multiple of "
                           "num_generations")
    num_generations: int = _key(4, "completions sampled per prompt (the group; >= 2)")
    temperature: float = _key(0.6, "sampling temperature of the rollouts")
    top_p: float = _key(1.0, "nucleus sampling of the rollouts")
    kl_beta: float = _key(0.001, "weight of the KL penalty to the SFT reference (0: no reference model)")
    max_completion_tokens: int = _key(128, "token cap of one completion")
    save_steps: int = _key(5, "checkpoint every N steps (and at the end)")
    self_certainty_chunk: int = _key(256, "tokens per chunk when self-certainty is computed from logits")
    loss_type: str = _key("dapo", "TRL loss aggregation (dapo: verl's token-mean over the batch)",
                          choices=("dapo", "grpo", "bnpo", "dr_grpo"))
    scale_rewards: str = _key("group", "advantage normalisation (group: by the std of each prompt's group; "
                              "batch: by the batch's std; none: r - group mean, so DARS's reward size reaches "
                              "the gradient)",
                              choices=("group", "batch", "none"))
    advantage_std_floor: float = _key(0.0, "with scale_rewards: group, divide each group's centred rewards by max(its "
                                      "std, this floor) instead of std + 1e-4, so a group whose rewards differ "
                                      "only by self-certainty (~0.01) keeps small advantages instead of unit ones "
                                      "(0: TRL's own normalisation; local backend only)")
    share_prompt_prefill: bool = _key(True, "prefill each distinct prompt of a rollout batch once and give its "
                                      "num_generations copies the same key/value cache (same samples, less "
                                      "compute); false: TRL's whole-batch prefill (local backend; verl's vLLM "
                                      "rollouts cache prefixes themselves)")
    micro_batch_size: int | None = _key(None, "completions per device per forward/backward (null: the "
                                        "device's whole share)")
    gradient_checkpointing: bool = _key(False, "trade compute for activation memory")


@dataclass
class EvalConfig:
    """Held-out evaluation of the zero-shot, SFT and Shop-R1 models."""

    split: str = _key("test", "the split evaluated", choices=SPLIT_CHOICES)
    batch_size: int = _key(8, "observations per generation batch")
    max_new_tokens: int = _key(128, "token cap of one answer")
    max_states: int | None = _key(None, "evaluate the first N states only (null: all)")
    zero_shot: bool = _key(True, "evaluate the base model before SFT (the zero-shot row); a later --resume "
                                 "with true adds the row to a finished run")


@dataclass
class TrainConfig:
    """One training run, resolved from a preset plus overrides.

    Every section is a typed dataclass, ``reward`` included: a :class:`rewards.RewardConfig`
    built (and validated) from the preset's ``reward:`` mapping, which needs to give only the
    fields that differ from the paper's defaults.
    """

    name: str = _key(DEFAULT_PRESET, "run name: output goes to OUT/NAME/")
    seed: int = _key(0, "seed of data order, sampling and initialisation")
    backend: str = _key("local", "local: TRL on this machine; verl: launch verl on Ray", choices=("local", "verl"))
    model: str = _key("tiny", "tiny, smollm2-135m, a preset model name, or a checkpoint directory")
    precision: str = _key("auto", "auto: bf16 where the CPU/GPU has it, else fp32", choices=PRECISIONS)
    data: DataConfig = _key(factory=DataConfig)
    sft: SFTConfig = _key(factory=SFTConfig)
    grpo: GRPOSection = _key(factory=GRPOSection)
    reward: RewardConfig = _key(factory=RewardConfig, help="the reward (rewards.RewardConfig); presets give the "
                                "fields that differ from the paper's defaults")
    eval: EvalConfig = _key(factory=EvalConfig)
    def to_dict(self) -> dict[str, Any]:
        """Return the config as plain data (what is written to ``config.yaml``)."""
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        """Return the resolved config as YAML."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def batch_plans(self, n_devices: int | None = None) -> dict[str, Any]:
        """The SFT and GRPO :class:`training.batching.BatchPlan` on ``n_devices`` (None: ``WORLD_SIZE``).

        Raises:
            ConfigError: a global batch the devices and micro-batch cannot divide.
        """
        from training.batching import resolve_batch, world_size

        try:
            n = world_size() if n_devices is None else n_devices
            return {
                "sft": resolve_batch(self.sft.batch_size, self.sft.micro_batch_size, n, key="sft.batch_size"),
                "grpo": resolve_batch(self.grpo.batch_size, self.grpo.micro_batch_size, n, key="grpo.batch_size",
                                      multiple_of=self.grpo.num_generations),
            }
        except ValueError as err:
            raise ConfigError(str(err)) from None

    def reward_config(self) -> RewardConfig:
        """The run's :class:`rewards.RewardConfig` (the ``reward`` section itself)."""
        return self.reward


def preset_names() -> list[str]:
    """Names of the bundled presets (``training/configs/*.yaml``)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def preset_path(name_or_path: str | os.PathLike[str]) -> Path:
    """Find a preset by bundled name or file path.

    Raises:
        ConfigError: neither a bundled preset nor an existing file (names close matches).
    """
    text = os.fspath(name_or_path)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    bundled = CONFIG_DIR / f"{text}.yaml"
    if bundled.is_file():
        return bundled
    hint = _close(text, preset_names())
    raise ConfigError(f"unknown config {text!r}: not a file and not a preset{hint}; presets: {', '.join(preset_names())}")


def read_preset(name_or_path: str | os.PathLike[str], *, follow_extends: bool = True) -> dict[str, Any]:
    """Read a preset as a raw dict, deep-merged over the presets it ``extends``.

    Args:
        name_or_path: bundled preset name or YAML path.
        follow_extends: False returns only the file's own keys (``extends`` removed).

    Raises:
        ConfigError: missing file, bad YAML, non-mapping content or an ``extends`` cycle.
    """
    chain: list[Path] = []
    path = preset_path(name_or_path)
    merged: dict[str, Any] = {}
    while True:
        if path in chain:
            raise ConfigError(f"{path}: 'extends' cycle through {', '.join(str(p) for p in chain)}")
        chain.append(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: invalid YAML: {err}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: a preset must be a YAML mapping, got {type(raw).__name__}")
        parent = raw.pop("extends", None)
        merged = deep_merge(merged, raw)  # what was read so far (the child) wins
        if not follow_extends or parent is None:
            return merged
        if not isinstance(parent, str):
            raise ConfigError(f"{path}: 'extends' must be a preset name or path")
        # A relative path in 'extends' is relative to the file that names it.
        candidate = path.parent / parent
        path = candidate if candidate.suffix in (".yaml", ".yml") and candidate.is_file() else preset_path(parent)


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``"grpo.steps=2"`` into the dotted key and its YAML-typed value.

    Raises:
        ConfigError: no ``=`` or an empty key.
    """
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value  # not YAML: take the literal string
    return key, parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``key=value`` overrides applied (dotted keys)."""
    out = deep_merge({}, raw)
    for item in overrides:
        key, value = parse_override(item)
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    return out


def load_config(
    name_or_path: str | os.PathLike[str] = DEFAULT_PRESET,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    name: str | None = None,
) -> TrainConfig:
    """Resolve a preset (with ``extends``) and overrides into a checked :class:`TrainConfig`.

    Args:
        name_or_path: bundled preset name or YAML path.
        overrides: ``"section.key=value"`` strings, values parsed as YAML.
        name: replaces the run name.

    Raises:
        ConfigError: unknown key (named, with a close match), wrong value type, bad file.
    """
    raw = apply_overrides(read_preset(name_or_path), list(overrides))
    if name is not None:
        raw["name"] = name
    return config_from_dict(raw)


def config_from_dict(raw: dict[str, Any]) -> TrainConfig:
    """Build a :class:`TrainConfig` from plain data, checking every key and value type.

    Raises:
        ConfigError: naming the offending dotted key.
    """
    if not isinstance(raw, dict):
        raise ConfigError("config must be a mapping")
    config = _build(TrainConfig, raw, "")
    _check_choices(config)
    return config


def _build(cls: type, raw: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"{prefix}{key}"
        if key not in known:
            raise ConfigError(f"unknown config key {where!r}{_close(key, known, prefix)}")
        hint = hints[key]
        if key == "reward" and cls is TrainConfig:
            kwargs[key] = _check_reward(value)
        elif dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {where!r} must be a mapping of {', '.join(f.name for f in dataclasses.fields(hint))}")
            kwargs[key] = _build(hint, value, f"{where}.")
        else:
            kwargs[key] = _coerce(value, hint, where)
    return cls(**kwargs)


def _check_reward(value: Any) -> RewardConfig:
    if value is None:
        return RewardConfig()
    if isinstance(value, RewardConfig):
        return value
    if not isinstance(value, dict):
        raise ConfigError("config key 'reward' must be a mapping of RewardConfig fields")
    known = [f.name for f in dataclasses.fields(RewardConfig)]
    for key in value:
        if key not in known:
            raise ConfigError(f"unknown config key 'reward.{key}'{_close(key, known, 'reward.')}")
    try:
        return RewardConfig.from_dict(dict(value))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"reward: {err}") from None


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a simple type hint; ints are accepted where floats are."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        if type(None) in allowed:
            return None
        raise ConfigError(f"config key {where!r} must not be null")
    for kind in allowed:
        if kind is bool and isinstance(value, bool):
            return value
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind is str and isinstance(value, str):
            return value
        if kind is float and isinstance(value, str):
            # PyYAML (YAML 1.1) reads 1e-4 as a string; users mean a number.
            try:
                number = float(value)
            except ValueError:
                continue
            if math.isfinite(number):
                return number
    names = " or ".join("null" if k is type(None) else k.__name__ for k in allowed)
    raise ConfigError(f"config key {where!r} must be {names}, got {value!r}")


def _choice_fields(section: Any, prefix: str = "") -> list[tuple[str, Any, tuple[str, ...]]]:
    """``(dotted key, value, allowed)`` of every field with ``choices`` metadata, recursively."""
    out = []
    for item in dataclasses.fields(section):
        value = getattr(section, item.name)
        if dataclasses.is_dataclass(value):
            out += _choice_fields(value, f"{prefix}{item.name}.")
        elif item.metadata.get("choices"):
            out.append((f"{prefix}{item.name}", value, item.metadata["choices"]))
    return out


def config_keys_help() -> str:
    """The ``config keys`` section of ``--help``, generated from the fields' metadata.

    One line per key: dotted name, help, allowed values and default; ``reward.*`` lists
    :class:`rewards.RewardConfig`'s fields with their defaults.
    """
    lines = ["config keys (--set KEY=VALUE, YAML-typed; defaults are the built-in ones, which presets override):"]
    defaults = TrainConfig()
    for item in dataclasses.fields(TrainConfig):
        value = getattr(defaults, item.name)
        if item.name == "reward":
            continue  # listed below, from RewardConfig itself
        if dataclasses.is_dataclass(value):
            for sub_field in dataclasses.fields(value):
                lines.append(_key_line(f"{item.name}.{sub_field.name}", sub_field, getattr(value, sub_field.name)))
        else:
            lines.append(_key_line(item.name, item, value))
    reward = RewardConfig()
    lines.append("  reward.<field>: a RewardConfig field (docs/architecture.md §5), default shown:")
    names = [f"{f.name}={getattr(reward, f.name)!r}" for f in dataclasses.fields(RewardConfig)]
    row = "    "
    for name in names:
        if len(row) + len(name) > 96:
            lines.append(row.rstrip())
            row = "    "
        row += name + " "
    lines.append(row.rstrip())
    return "\n".join(lines) + "\n"


def _key_line(key: str, item: dataclasses.Field, default: Any) -> str:
    choices = item.metadata.get("choices")
    allowed = f" [{'|'.join(choices)}]" if choices else ""
    shown = "null" if default is None else default
    return f"  {key:<28} {item.metadata.get('help', '')}{allowed} (default: {shown})"


def _check_choices(config: TrainConfig) -> None:
    for key, value, allowed in _choice_fields(config):
        if value not in allowed:
            raise ConfigError(f"config key {key!r} must be one of {', '.join(allowed)}, got {value!r}")
    positive = {
        "grpo.steps": config.grpo.steps, "grpo.batch_size": config.grpo.batch_size,
        "grpo.num_generations": config.grpo.num_generations,
        "grpo.max_completion_tokens": config.grpo.max_completion_tokens,
        "grpo.save_steps": config.grpo.save_steps, "sft.batch_size": config.sft.batch_size,
        "eval.batch_size": config.eval.batch_size, "eval.max_new_tokens": config.eval.max_new_tokens,
    }
    optional_positive = {
        "sft.max_steps": config.sft.max_steps, "sft.max_sessions": config.sft.max_sessions,
        "sft.max_seq_tokens": config.sft.max_seq_tokens, "eval.max_states": config.eval.max_states,
        "data.max_history": config.data.max_history, "data.max_prompt_tokens": config.data.max_prompt_tokens,
        "grpo.self_certainty_chunk": config.grpo.self_certainty_chunk,
        "sft.micro_batch_size": config.sft.micro_batch_size, "grpo.micro_batch_size": config.grpo.micro_batch_size,
    }
    positive.update({k: v for k, v in optional_positive.items() if v is not None})
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"config key {key!r} must be >= 1, got {value}")
    # Every float checked here, at start-up, not when a stage reaches it minutes later.
    ranges = {  # key: (value, low, low allowed, high, high allowed)
        "grpo.temperature": (config.grpo.temperature, 0.0, False, math.inf, False),
        "grpo.top_p": (config.grpo.top_p, 0.0, False, 1.0, True),
        "grpo.learning_rate": (config.grpo.learning_rate, 0.0, False, math.inf, False),
        "sft.learning_rate": (config.sft.learning_rate, 0.0, False, math.inf, False),
        "sft.epochs": (config.sft.epochs, 0.0, False, math.inf, False),
        "grpo.kl_beta": (config.grpo.kl_beta, 0.0, True, math.inf, False),
        "grpo.advantage_std_floor": (config.grpo.advantage_std_floor, 0.0, True, math.inf, False),
        "data.test_fraction": (config.data.test_fraction, 0.0, False, 1.0, False),
    }
    for key, (value, low, low_ok, high, high_ok) in ranges.items():
        above = value >= low if low_ok else value > low
        below = value <= high if high_ok else value < high
        if not (math.isfinite(value) and above and below):
            upper = f" and {'<=' if high_ok else '<'} {high}" if math.isfinite(high) else ", finite"
            raise ConfigError(f"config key {key!r} must be {'>=' if low_ok else '>'} {low}{upper}; got {value}")
    if config.grpo.advantage_std_floor > 0 and config.grpo.scale_rewards != "group":
        raise ConfigError("config key 'grpo.advantage_std_floor' floors the group std: it needs "
                          f"'grpo.scale_rewards' group, got {config.grpo.scale_rewards!r}")
    if config.grpo.advantage_std_floor > 0 and config.backend != "local":
        raise ConfigError("config key 'grpo.advantage_std_floor' is implemented by the local (TRL) backend only; "
                          f"set it to 0 for backend {config.backend!r}")
    if config.grpo.num_generations < 2:
        raise ConfigError("config key 'grpo.num_generations' must be >= 2 (GRPO compares completions in a group)")
    if config.grpo.batch_size % config.grpo.num_generations:
        raise ConfigError(
            f"config key 'grpo.batch_size' ({config.grpo.batch_size}) must be a multiple of "
            f"'grpo.num_generations' ({config.grpo.num_generations})"
        )


def deep_merge(top: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated by ``top`` recursively (neither is modified)."""
    out = {k: (deep_merge({}, v) if isinstance(v, dict) else v) for k, v in base.items()}
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(value, out[key])
        else:
            out[key] = deep_merge({}, value) if isinstance(value, dict) else value
    return out


def _close(word: str, options: list[str], prefix: str = "") -> str:
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not match:  # a prefix or fragment of a longer key: 'dars' -> 'dars_factor'
        match = [o for o in options if word and (o.startswith(word) or word in o)][:1]
    return f" (did you mean {prefix + match[0]!r}?)" if match else ""
