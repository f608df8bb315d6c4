"""Agents that answer ShopReplay observations with response text (docs/architecture.md §4).

``make_agent(spec)`` builds one from a spec string: ``random``, ``majority``,
``heuristic``, ``oracle``, ``hf:<dir-or-id>``, ``openai:MODEL@URL``, ``vllm:<path>``.
``ChatCompletionsClient`` is the shared client for OpenAI-compatible chat endpoints.
Model-backed agents are loaded lazily: importing ``agents`` never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from agents.base import AGENT_SPECS, Agent, BaseAgent, make_agent

__all__ = [
    "AGENT_SPECS",
    "Agent",
    "BaseAgent",
    "ChatCompletionsClient",
    "ChatRequestError",
    "Generation",
    "HeuristicAgent",
    "MajorityAgent",
    "OpenAICompatibleAgent",
    "OracleAgent",
    "RandomAgent",
    "TransformersAgent",
    "VLLMAgent",
    "make_agent",
]

_LAZY = {
    "RandomAgent": "agents.baselines",
    "MajorityAgent": "agents.baselines",
    "HeuristicAgent": "agents.baselines",
    "OracleAgent": "agents.baselines",
    "OpenAICompatibleAgent": "agents.openai_agent",
    "ChatCompletionsClient": "agents.chat_client",
    "ChatRequestError": "agents.chat_client",
    "TransformersAgent": "agents.transformers_agent",
    "Generation": "agents.transformers_agent",
    "VLLMAgent": "agents.vllm_agent",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
