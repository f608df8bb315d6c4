"""Agents that answer ShopReplay observations with response text (docs/architecture.md §4).

``make_agent(spec)`` builds one from a spec string: ``random``, ``majority``,
``heuristic``, ``oracle``, ``bayes``, ``hf:<dir-or-id>``, ``openai:MODEL@URL``, ``vllm:<path>``.
``ChatCompletionsClient`` is the shared client for OpenAI-compatible chat endpoints.
Model-backed agents are loaded lazily: importing ``agents`` never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agents.base import Agent, BaseAgent
from agents.registry import AGENT_SPECS, make_agent
from shop_env.lazy import lazy_exports

if TYPE_CHECKING:  # editors and type checkers see the lazy names
    from agents.baselines import BayesAgent, HeuristicAgent, MajorityAgent, OracleAgent, RandomAgent
    from agents.chat_client import ChatCompletionsClient, ChatRequestError
    from agents.openai_agent import OpenAICompatibleAgent
    from agents.transformers_agent import Generation, TransformersAgent
    from agents.vllm_agent import VLLMAgent

__all__ = [
    "AGENT_SPECS",
    "Agent",
    "BaseAgent",
    "BayesAgent",
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
    "BayesAgent": "agents.baselines",
    "OpenAICompatibleAgent": "agents.openai_agent",
    "ChatCompletionsClient": "agents.chat_client",
    "ChatRequestError": "agents.chat_client",
    "TransformersAgent": "agents.transformers_agent",
    "Generation": "agents.transformers_agent",
    "VLLMAgent": "agents.vllm_agent",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, [n for n in __all__ if n not in _LAZY])
