"""A byte-level BPE tokenizer trained locally on session text, with a ChatML chat template.

The ``tiny`` model (see :mod:`training.models`) needs a tokenizer that exists without any
download. This module trains one with the ``tokenizers`` library on the texts the model
will read and write (pruned pages, rationales, action JSON, the system prompt) and wraps
it as a ``transformers.PreTrainedTokenizerFast``.

The chat template is ChatML. Assistant content *and* its end-of-turn token sit inside
``{% generation %}`` markers, so TRL's ``assistant_only_loss`` trains exactly the assistant
JSON plus ``<|im_end|>`` (the model learns to stop), and ``add_generation_prompt`` opens an
assistant turn for inference. An assistant message with ``"train": False`` renders the same
text without the markers: it is context, not a target (SFT uses this for turns whose page
was dropped to fit the budget).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

#: End of text / padding token.
PAD_TOKEN = "<|endoftext|>"
#: Opens a chat turn (followed by the role and a newline).
IM_START = "<|im_start|>"
#: Closes a chat turn; also the tokenizer's EOS, so generation stops at the end of a turn.
IM_END = "<|im_end|>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, IM_START, IM_END)

#: Pre-tokenizer words: a run of non-separators (with one leading space), a run of
#: separators, or a run of whitespace.
WORD_PATTERN = r' ?[^\s<>"=/]+|[<>"=/]+|\s+'

#: The fixed JSON of the answer format (docs/architecture.md §4) and of logged actions, each added as one
#: token: a tiny model then learns the format from bigrams instead of having to count
#: quotes and colons, which it fails to do within a CPU-sized training run.
JSON_SCAFFOLD: tuple[str, ...] = (
    '{"rationale": "',
    '", "action": {"type": "',
    '{"type": "',
    '", "name": "',
    '", "text": "',
    '"}}',
    '"}',
)

#: ChatML with TRL/transformers generation markers around the assistant content + end token.
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'assistant' and message.get('train') is not false %}"
    "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def train_bpe_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 3072,
    min_frequency: int = 2,
    added: Sequence[str] = JSON_SCAFFOLD,
) -> Any:
    """Train a byte-level BPE tokenizer and wrap it for ``transformers``.

    Args:
        texts: the training corpus (any iterable of strings; empty strings are skipped).
        vocab_size: the target vocabulary size, special tokens and the 256 byte symbols
            included; must be at least 300.
        min_frequency: a pair must occur this often to be merged.
        added: strings added as single (non-special) tokens after training, on top of
            ``vocab_size``; :data:`JSON_SCAFFOLD` by default.

    Returns:
        A ``transformers.PreTrainedTokenizerFast`` with ``eos_token`` ``<|im_end|>``,
        ``pad_token`` ``<|endoftext|>`` and :data:`CHATML_TEMPLATE` as its chat template.

    Raises:
        ValueError: ``vocab_size`` is too small or the corpus is empty.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 300:
        raise ValueError(f"vocab_size must be >= 300 (256 bytes + special tokens), got {vocab_size}")
    corpus = [text for text in texts if text]
    if not corpus:
        raise ValueError("cannot train a tokenizer on an empty corpus")
    core = Tokenizer(models.BPE())
    # Words are split at whitespace and HTML/JSON punctuation only, so element names such as
    # "search_results.alpine_tent.view_product" can merge into few tokens (about 4.2 chars per
    # token on pruned pages, against 3.2 with the GPT-2 split). No prefix space: the chat
    # template puts content right after "\n", and a prefix space would make a turn render
    # differently alone and inside a conversation.
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(WORD_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(corpus, trainer=trainer, length=len(corpus))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=None,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        unk_token=None,
        model_max_length=1_000_000,
        padding_side="left",  # batched generation pads on the left
        clean_up_tokenization_spaces=False,
    )
    tokenizer.add_tokens([AddedToken(text, normalized=False, special=False) for text in added])
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer
