"""Fixtures of the verl backend's tests.

The modules that need verl itself start with ``pytest.importorskip("verl")``: the main
suite (no verl) reports them as skipped, and ``scripts/verl_ci.sh`` runs exactly those in
verl's own venv; the others (export, reward, certainty, launch plan) run in the main venv.
The folder is a package (``tests.training.verl_backend``), so it can never be imported as
``verl`` and shadow the real package.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@pytest.fixture(scope="session")
def sessions():
    from shop_env.synthetic import generate_sessions

    return generate_sessions(6, seed=3)


@pytest.fixture(scope="session")
def tokenizer_dir(sessions, tmp_path_factory) -> Path:
    """A byte-level BPE with a ChatML template, trained here on the sessions (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from shop_env.prompt import SYSTEM_PROMPT

    corpus = [SYSTEM_PROMPT] + [s.html for session in sessions for s in session.steps[:3]]
    corpus += [s.action.to_json() + (s.rationale or "") for session in sessions for s in session.steps]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    fast.chat_template = CHATML
    out = tmp_path_factory.mktemp("tokenizer")
    fast.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


@pytest.fixture(scope="session")
def exported(sessions, tmp_path_factory):
    from training.verl_backend.export import export_dataset

    out = tmp_path_factory.mktemp("verl-data")
    return export_dataset(sessions, out, reward_config={"dars_factor": 100}, context="latest-step",
                          max_history=2)
