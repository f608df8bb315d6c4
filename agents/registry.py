"""Agents from spec strings: :func:`make_agent` and the forms it accepts (:data:`AGENT_SPECS`).

Apart from :mod:`agents.base` so that the agent modules, which subclass
:class:`~agents.base.BaseAgent`, never import the registry that imports them.
"""

from __future__ import annotations

from typing import Any

from agents.base import Agent

#: The spec forms :func:`make_agent` accepts, for error messages and ``--help``.
AGENT_SPECS: tuple[str, ...] = (
    "random",
    "majority",
    "heuristic",
    "oracle",
    "bayes",
    "hf:<dir-or-hub-id>",
    "openai:MODEL@URL",
    "vllm:<path>",
)


def make_agent(spec: str, **kwargs: Any) -> Agent:
    """Build an agent from a spec string.

    Args:
        spec: one of :data:`AGENT_SPECS`:
            ``random``, ``majority``, ``heuristic``, ``oracle``, ``bayes`` (baselines),
            ``hf:<dir-or-hub-id>`` (:class:`~agents.transformers_agent.TransformersAgent`),
            ``openai:MODEL@URL`` (:class:`~agents.openai_agent.OpenAICompatibleAgent`, e.g.
            ``openai:gpt-4o@http://127.0.0.1:8000/v1``) and ``vllm:<path>``
            (:class:`~agents.vllm_agent.VLLMAgent`).
        **kwargs: passed to the agent's constructor. ``majority`` needs ``states`` (the
            training states it is fitted on); ``oracle`` needs ``states`` or ``sessions``
            carrying ``meta["oracle_action"]``; ``bayes`` needs ``states`` of synthetic sessions.

    Returns:
        The agent.

    Raises:
        ValueError: an unknown or malformed spec (the message lists the valid forms), or
            a baseline missing the data it needs.
        ImportError: ``vllm:`` without vLLM installed.
    """
    if not isinstance(spec, str):
        raise ValueError(f"agent spec must be a string, got {type(spec).__name__}; {_valid_forms()}")
    kind, sep, rest = spec.partition(":")
    kind = kind.strip().lower()
    if not sep:
        return _make_baseline(spec.strip().lower(), kwargs)
    if not rest.strip():
        raise ValueError(f"agent spec {spec!r} has nothing after {kind + ':'!r}; {_valid_forms()}")
    if kind == "hf":
        from agents.transformers_agent import TransformersAgent

        return TransformersAgent(rest.strip(), **kwargs)
    if kind == "openai":
        model, at, url = rest.rpartition("@")
        if not at or not model.strip() or not url.strip():
            raise ValueError(f"agent spec {spec!r} must look like openai:MODEL@URL; {_valid_forms()}")
        from agents.openai_agent import OpenAICompatibleAgent

        return OpenAICompatibleAgent(model.strip(), url.strip(), **kwargs)
    if kind == "vllm":
        from agents.vllm_agent import VLLMAgent

        return VLLMAgent(rest.strip(), **kwargs)
    raise ValueError(f"unknown agent spec {spec!r}; {_valid_forms()}")


def _make_baseline(name: str, kwargs: dict[str, Any]) -> Agent:
    from agents import baselines

    if name == "random":
        return baselines.RandomAgent(**kwargs)
    if name == "heuristic":
        return baselines.HeuristicAgent(**kwargs)
    if name == "majority":
        states = kwargs.pop("states", None)
        if states is None:
            raise ValueError("make_agent('majority') needs states=<training states> to fit on")
        return baselines.MajorityAgent.fit(states, **kwargs)
    if name == "oracle":
        states = kwargs.pop("states", None)
        sessions = kwargs.pop("sessions", None)
        if states is not None:
            return baselines.OracleAgent.from_states(states, **kwargs)
        if sessions is not None:
            return baselines.OracleAgent.from_sessions(sessions, **kwargs)
        raise ValueError("make_agent('oracle') needs states=... or sessions=... carrying meta['oracle_action']")
    if name == "bayes":
        states = kwargs.pop("states", None)
        if states is None:
            raise ValueError("make_agent('bayes') needs states=<states of synthetic sessions>")
        return baselines.BayesAgent.from_states(states, **kwargs)
    raise ValueError(f"unknown agent spec {name!r}; {_valid_forms()}")


def _valid_forms() -> str:
    return "valid forms: " + ", ".join(AGENT_SPECS)
