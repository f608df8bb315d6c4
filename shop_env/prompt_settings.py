"""The prompt settings a model was trained with, saved beside its checkpoint.

A model trained on ``latest-step`` prompts of 640 tokens answers worse when evaluated on
``whole-session`` prompts: the settings are part of the model. Training writes
``prompt_settings.json`` into every saved model directory; agents and evaluation that load
a directory read it back, so nobody has to repeat ``--context`` and ``--max-prompt-tokens``.
A setting the user gives explicitly still wins, with a warning when it differs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shop_env.observations import check_context
from shop_env.webpage.compact import check_page_format

#: The file inside a model directory.
PROMPT_SETTINGS_FILE = "prompt_settings.json"


def prompt_version() -> str:
    """A short hash of the system prompt: a checkpoint trained on another wording says so."""
    from shop_env.prompt import SYSTEM_PROMPT

    return hashlib.sha256(SYSTEM_PROMPT.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class PromptSettings:
    """How observations become prompts for one model.

    Attributes:
        context: ``"whole-session"`` or ``"latest-step"``.
        max_history: past steps kept in the prompt (None: all).
        max_prompt_tokens: the prompt token budget (None: unbounded).
        prompt_version: :func:`prompt_version` of the system prompt the model saw.
        page_format: how pages were written into prompts (``"compact"`` or ``"html"``,
            see :mod:`shop_env.webpage.compact`); files saved before this field existed
            were trained on ``"html"`` and load so.
    """

    context: str = "whole-session"
    max_history: int | None = None
    max_prompt_tokens: int | None = None
    prompt_version: str = dataclasses.field(default_factory=prompt_version)
    page_format: str = "compact"

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``prompt_settings.json`` into ``directory`` (created if missing); returns its path."""
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        path = target / PROMPT_SETTINGS_FILE
        path.write_text(json.dumps(dataclasses.asdict(self), indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> PromptSettings | None:
        """The settings saved in ``directory``; None when it has none (or is not a directory).

        Raises:
            ValueError: the file exists but is not valid settings (named in the message).
        """
        path = Path(directory) / PROMPT_SETTINGS_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            known = {f.name for f in dataclasses.fields(cls)}
            data.setdefault("page_format", "html")  # saved before pages were compacted
            settings = cls(**{k: v for k, v in data.items() if k in known})
            check_context(settings.context)
            check_page_format(settings.page_format)
        except (OSError, ValueError, TypeError) as err:
            raise ValueError(f"{path}: not valid prompt settings ({err})") from None
        return settings

    def resolve(self, *, context: str | None = None, max_history: int | None = None,
                max_prompt_tokens: int | None = None, page_format: str | None = None,
                source: str = "the checkpoint") -> PromptSettings:
        """These settings with the explicitly given ones (not None) applied over them.

        Warns (``UserWarning``) for each explicit value that differs from the saved one, and
        when the system prompt changed since the model was trained.
        """
        asked = {"context": context, "max_history": max_history, "max_prompt_tokens": max_prompt_tokens,
                 "page_format": page_format}
        changes = {k: v for k, v in asked.items() if v is not None}
        for key, value in changes.items():
            if value != getattr(self, key):
                warnings.warn(f"{key}={value!r} differs from the {getattr(self, key)!r} that {source} was "
                              "trained with; answers may be worse", UserWarning, stacklevel=2)
        if self.prompt_version != prompt_version():
            warnings.warn(f"{source} was trained with another system prompt (version {self.prompt_version}, "
                          f"now {prompt_version()})", UserWarning, stacklevel=2)
        return dataclasses.replace(self, **changes)


def resolve_prompt_settings(model_dir: Any, *, context: str | None = None, max_history: int | None = None,
                            max_prompt_tokens: int | None = None, page_format: str | None = None) -> PromptSettings:
    """The prompt settings to use with the model in ``model_dir`` (a path, or anything else).

    The saved settings with explicit values applied over them (warning on a mismatch), or,
    for a directory without saved settings, the explicit values over the defaults.
    """
    saved = None
    if isinstance(model_dir, (str, os.PathLike)) and Path(model_dir).is_dir():
        saved = PromptSettings.load(model_dir)
    if saved is None:
        defaults = PromptSettings()
        return dataclasses.replace(defaults, **{k: v for k, v in {
            "context": context, "max_history": max_history, "max_prompt_tokens": max_prompt_tokens,
            "page_format": page_format,
        }.items() if v is not None})
    return saved.resolve(context=context, max_history=max_history, max_prompt_tokens=max_prompt_tokens,
                         page_format=page_format, source=str(model_dir))
