"""The logged result of one reward computation (docs/architecture.md §5)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RewardBreakdown:
    """Each component's contribution to the reward, and why it is what it is.

    The components are *contributions*: ``total == format + self_certainty + type +
    attribute + value`` (``self_certainty`` is already multiplied by alpha). In binary
    action-reward mode the whole action reward (0 or 1) is reported under ``type``.

    Attributes:
        format: ``format_weight`` for a valid response with ``use_format``, else 0.
        type: the action-type reward (or the binary action reward).
        attribute: the reward for non-empty name/text fields.
        value: the (DARS-scaled) similarity reward of name/text.
        self_certainty: ``alpha * self_certainty`` of the rationale.
        total: the sum of the above; 0 for an invalid response.
        valid: whether the response followed the output format.
        error: the format error message of an invalid response, else None.
    """

    format: float = 0.0
    type: float = 0.0
    attribute: float = 0.0
    value: float = 0.0
    self_certainty: float = 0.0
    total: float = 0.0
    valid: bool = True
    error: str | None = None

    @property
    def action(self) -> float:
        """The action reward: ``type + attribute + value``."""
        return self.type + self.attribute + self.value

    def to_dict(self) -> dict[str, Any]:
        """Return the fields (plus ``action``) as a JSON-ready dict."""
        out = asdict(self)
        out["action"] = self.action
        return out
