"""Rationale writers: first-person reasons for logged actions, for SFT data that lacks them.

The paper asked Claude 3.5 Sonnet to explain each logged action in one first-person
sentence. Two writers implement :class:`RationaleWriter`:

* :class:`TemplateRationaleWriter` — the offline default; deterministic sentences grounded
  in the action and the page (``terminate`` means leaving without buying).
* :class:`OpenAIRationaleWriter` — any OpenAI-compatible ``/chat/completions`` endpoint
  through :class:`agents.chat_client.ChatCompletionsClient` (standard-library HTTP,
  retries with exponential backoff on 429/5xx/network errors, API key read from an
  environment variable and never logged).

:func:`fill_rationales` fills the missing rationales of sessions through a JSONL cache keyed
by session id, step and a hash of the prompt, so an interrupted run resumes where it
stopped and a re-run asks nothing twice. :func:`make_writer` parses ``"template"`` and
``"openai:MODEL@URL"``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html as html_lib
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from agents.chat_client import ChatCompletionsClient, ChatRequestError, ClientSetting
from shop_env.actions import Action
from shop_env.sessions import Session

log = logging.getLogger(__name__)

#: The annotation instruction (after the paper): one first-person sentence; terminate = leave.
INSTRUCTION = (
    "You annotate logged web-shopping sessions. You are shown the page a shopper was looking at, "
    "the actions they took before, and the action they took next. Explain in ONE short sentence, "
    "in the first person as if you were the shopper, why you took that next action. Ground the "
    "reason in what is on the page. The action 'terminate' means the shopper left the website "
    "without buying anything. Reply with the sentence only: no quotes, no preamble."
)


class RationaleError(RuntimeError):
    """A rationale could not be obtained (endpoint error after retries, empty answer)."""


class RationaleWriter(Protocol):
    """Writes the rationale of one logged step."""

    def cache_key(self, session: Session, index: int) -> str:
        """Return a hash of everything the rationale depends on (writer, model, prompt)."""
        ...

    def write(self, session: Session, index: int) -> str:
        """Return a first-person rationale for ``session.steps[index].action``."""
        ...


# --- template writer ----------------------------------------------------------------------

_TITLE = re.compile(r"<(title|h1)\b[^>]*>(.*?)</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]*>")
_NON_WORD = re.compile(r"[\W_]+")


class TemplateRationaleWriter:
    """Deterministic first-person rationales from the action and the page (offline default).

    The sentence depends on the action type, the words of the target element's name (and
    its visible text when the page has it), the page title, and a hash of the session id
    and step that picks among phrasings so the data is not one repeated sentence.
    """

    version = "template-v1"

    def cache_key(self, session: Session, index: int) -> str:
        """Return a hash of the writer version and the step's action and page."""
        step = session.steps[index]
        return _hash([self.version, step.action.to_dict(), step.url, step.html])

    def write(self, session: Session, index: int) -> str:
        """Return a first-person sentence explaining ``session.steps[index].action``.

        Raises:
            IndexError: ``index`` is not a step of ``session``.
        """
        step = session.steps[index]
        pick = int(hashlib.sha1(f"{session.session_id}/{index}".encode()).hexdigest(), 16)
        return _template_sentence(step.action, step.html, pick)


def _template_sentence(action: Action, page: str, pick: int) -> str:
    def choose(options: Sequence[str]) -> str:
        return options[pick % len(options)]

    title = _page_title(page)
    where = f" on the {title} page" if title else ""
    if action.type == "terminate":
        return choose((
            "I've seen enough and nothing here is worth buying right now, so I'm leaving the site without purchasing anything.",
            f"Nothing{where} convinces me to buy, so I'm closing the site without making a purchase.",
            "I'm not going to buy anything today, so I'm leaving the store now.",
        ))
    if action.type == "scroll":
        return choose(("I scroll down to see more of this page.", f"I want to see what else is{where or ' here'}, so I scroll."))
    section, label = _describe_target(action.name, page)
    if action.type == "type_and_submit":
        query = action.text.strip() or "something"
        field = label or "search"
        return choose((
            f"I'm looking for {query}, so I type \"{query}\" into the {field} box and submit it.",
            f"I want to find {query}, so I enter \"{query}\" in the {field} field.",
            f"Typing \"{query}\" into the {field} box should show me what I need.",
        ))
    target = label or "this option"
    lowered = f"{section} {label}".lower()
    if "cart" in lowered and "add" in lowered:
        return choose((f"This looks like what I want, so I'm adding it to my cart{where}.",
                       f"I like this item{where}, so I add it to my cart."))
    if any(word in lowered for word in ("checkout", "check out", "place order", "buy now", "pay")):
        return choose((f"I'm ready to buy, so I click \"{target}\" to complete my purchase.",
                       f"I've decided, so I go ahead with \"{target}\"."))
    if any(word in lowered for word in ("filter", "sort", "refine", "price range")):
        return choose((f"I want to narrow the results, so I use \"{target}\".",
                       f"There are too many options, so I click \"{target}\" to refine them."))
    context = f" in the {section}" if section else where
    return choose((
        f"\"{target}\"{context} looks relevant to what I want, so I click it to take a closer look.",
        f"I want to see more about \"{target}\", so I click it{context}.",
        f"\"{target}\" catches my eye{context}, so I open it.",
    ))


def _page_title(page: str) -> str:
    match = _TITLE.search(page or "")
    if not match:
        return ""
    text = " ".join(html_lib.unescape(_TAGS.sub(" ", match.group(2))).split())
    return text[:60]


def _describe_target(name: str, page: str) -> tuple[str, str]:
    """Return (section words, label words) of an element name, preferring its visible text."""
    parts = [p for p in name.split(".") if p]
    section = _words(parts[0]) if len(parts) > 1 else ""
    label = " ".join(_words(p) for p in parts[1:]) if len(parts) > 1 else (_words(parts[0]) if parts else "")
    visible = _element_text(name, page)
    return section, (visible or label)


def _element_text(name: str, page: str) -> str:
    if not name or not page:
        return ""
    pattern = re.compile(r"<(\w+)\b[^>]*\bname=\"" + re.escape(html_lib.escape(name, quote=True)) + r"\"[^>]*>(.*?)</\1\s*>",
                         re.DOTALL)
    match = pattern.search(page)
    if not match:
        return ""
    return " ".join(html_lib.unescape(_TAGS.sub(" ", match.group(2))).split())[:60]


def _words(part: str) -> str:
    return " ".join(_NON_WORD.sub(" ", part).split())


# --- OpenAI-compatible writer -------------------------------------------------------------

class OpenAIRationaleWriter:
    """Rationales from an OpenAI-compatible chat endpoint (``POST {base_url}/chat/completions``).

    Args:
        model: the model name sent in the request.
        base_url: the API root, e.g. ``https://api.openai.com/v1`` or ``http://127.0.0.1:8000/v1``.
        api_key_env: the environment variable holding the key (read at each request, sent
            as ``Authorization: Bearer``; an unset variable sends no header, for local servers).
        max_retries: retries after the first attempt on 429/5xx/timeouts/connection errors.
        backoff: the first retry's delay in seconds; doubled each retry, with jitter, capped
            at ``max_backoff``; a ``Retry-After`` header (seconds) is honoured up to the cap.
        timeout: seconds per HTTP request.
        max_page_chars: the page is cut to this many characters in the prompt.
        max_history: at most this many earlier actions are listed in the prompt.
        temperature, max_tokens: sampling settings sent to the endpoint.

    Attributes:
        client: the :class:`~agents.chat_client.ChatCompletionsClient` that sends requests;
            ``base_url``, ``api_key_env``, ``max_retries``, ``backoff``, ``max_backoff``
            and ``timeout`` read and write its attributes.

    Raises:
        ValueError: no model, a base URL that is not http(s), or a non-positive timeout.
    """

    # Connection settings live on ``self.client`` (one place); these names forward to it.
    base_url = ClientSetting("base_url")
    api_key_env = ClientSetting("api_key_env")
    max_retries = ClientSetting("max_retries")
    backoff = ClientSetting("backoff_base")
    max_backoff = ClientSetting("backoff_max")
    timeout = ClientSetting("timeout")

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key_env: str = "OPENAI_API_KEY",
        *,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        timeout: float = 60.0,
        max_page_chars: int = 12_000,
        max_history: int = 20,
        temperature: float = 0.0,
        max_tokens: int = 120,
    ) -> None:
        if not model:
            raise ValueError("OpenAIRationaleWriter needs a model name")
        self.client = ChatCompletionsClient(base_url, api_key_env=api_key_env, timeout=timeout,
                                            max_retries=max(0, int(max_retries)), backoff_base=backoff,
                                            backoff_max=max_backoff)
        self.model = model
        self.max_page_chars = int(max_page_chars)
        self.max_history = int(max_history)
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)

    def __repr__(self) -> str:  # never shows the key, only where it comes from
        return f"OpenAIRationaleWriter(model={self.model!r}, base_url={self.base_url!r}, api_key_env={self.api_key_env!r})"

    def messages(self, session: Session, index: int) -> list[dict[str, str]]:
        """Return the chat messages asking for the rationale of step ``index``."""
        step = session.steps[index]
        earlier = [s.action.to_json() for s in session.steps[:index]][-self.max_history:]
        page = step.html if len(step.html) <= self.max_page_chars else step.html[: self.max_page_chars] + "\n[... page cut ...]"
        history = "\n".join(f"{i + 1}. {a}" for i, a in enumerate(earlier)) or "(none: this is the first action)"
        user = (
            f"Earlier actions in this session:\n{history}\n\n"
            f"Current page ({step.url or 'unknown URL'}):\n{page}\n\n"
            f"Action the shopper took next:\n{step.action.to_json()}\n\n"
            "Why did you (the shopper) take this action? One first-person sentence."
        )
        return [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": user}]

    def cache_key(self, session: Session, index: int) -> str:
        """Return a hash of the model, sampling settings and prompt.

        The endpoint URL is left out on purpose: the same model served again on another
        port or host must reuse the cache.
        """
        return _hash([self.model, self.temperature, self.max_tokens, self.messages(session, index)])

    def write(self, session: Session, index: int) -> str:
        """Ask the endpoint for the rationale of step ``index``.

        Raises:
            RationaleError: the endpoint failed after all retries, answered with a
                non-retryable error, or returned no usable text. The message names the
                URL and status, never the API key.
        """
        try:
            content = self.client.complete(self.messages(session, index), model=self.model,
                                           temperature=self.temperature, max_tokens=self.max_tokens)
        except ChatRequestError as err:
            raise RationaleError(f"{self.client.endpoint}: {err}") from None
        text = _clean_sentence(content)
        if not text:
            raise RationaleError(f"{self.client.endpoint}: the model returned an empty rationale")
        return text


def _clean_sentence(text: str) -> str:
    text = " ".join(text.split())
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


# --- cache and filling --------------------------------------------------------------------


class RationaleCache:
    """An append-only JSONL cache of rationales keyed by (session_id, step, prompt hash).

    Each line is ``{"session_id", "step", "key", "rationale"}``, flushed as soon as it is
    written, so a crash loses at most the line being written; unreadable lines (a
    half-written last line) are skipped with a warning.
    """

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path is not None else None
        self._entries: dict[tuple[str, int, str], str] = {}
        if self.path is not None and self.path.exists():
            self._load(self.path)

    def _load(self, path: Path) -> None:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    entry = (str(row["session_id"]), int(row["step"]), str(row["key"]))
                    rationale = row["rationale"]
                except (ValueError, KeyError, TypeError):
                    log.warning("%s:%d: skipping an unreadable rationale cache line", path, number)
                    continue
                if isinstance(rationale, str) and rationale:
                    self._entries[entry] = rationale

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, session_id: str, step: int, key: str) -> str | None:
        """Return the cached rationale, or None."""
        return self._entries.get((session_id, step, key))

    def put(self, session_id: str, step: int, key: str, rationale: str) -> None:
        """Store a rationale (and append it to the file, if the cache has one)."""
        self._entries[(session_id, step, key)] = rationale
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"session_id": session_id, "step": step, "key": key, "rationale": rationale},
                          ensure_ascii=False)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()


def fill_rationales(
    sessions: Iterable[Session],
    writer: RationaleWriter,
    cache_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
    *,
    overwrite: bool = False,
) -> list[Session]:
    """Return copies of ``sessions`` whose steps all carry a rationale.

    Steps that already have a non-empty rationale keep it (unless ``overwrite``); the others
    get ``writer``'s, looked up first in the cache at ``cache_path`` and appended to it once
    written, so re-running after an interruption only asks for what is missing.

    Args:
        sessions: the sessions (left unchanged).
        writer: a :class:`RationaleWriter` (e.g. from :func:`make_writer`).
        cache_path: a JSONL cache file (created if missing); None keeps no cache.
        progress: show a tqdm progress bar over steps.
        overwrite: rewrite rationales that are already present.

    Returns:
        New :class:`Session` objects (steps copied; pages shared).

    Raises:
        RationaleError: the writer failed on a step (what was cached so far is kept).
    """
    sessions = list(sessions)
    cache = RationaleCache(cache_path)
    todo = sum(1 for s in sessions for step in s.steps if overwrite or not step.rationale)
    bar = _progress(todo, progress)
    out: list[Session] = []
    written = reused = 0
    try:
        for session in sessions:
            steps = []
            for index, step in enumerate(session.steps):
                if step.rationale and not overwrite:
                    steps.append(step)
                    continue
                key = writer.cache_key(session, index)
                rationale = cache.get(session.session_id, index, key)
                if rationale is None:
                    rationale = writer.write(session, index)
                    cache.put(session.session_id, index, key, rationale)
                    written += 1
                else:
                    reused += 1
                steps.append(dataclasses.replace(step, rationale=rationale, meta=dict(step.meta)))
                if bar is not None:
                    bar.update(1)
            out.append(dataclasses.replace(session, steps=steps))
    finally:
        if bar is not None:
            bar.close()
    log.info("rationales: %d written, %d reused from cache", written, reused)
    return out


def _progress(total: int, enabled: bool) -> Any:
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="rationales", unit="step")


def make_writer(spec: str, **kwargs: Any) -> RationaleWriter:
    """Build a rationale writer from a spec string.

    Args:
        spec: ``"template"`` or ``"openai:MODEL@URL"`` (e.g.
            ``openai:gpt-4o-mini@https://api.openai.com/v1``; MODEL may itself contain ``@``).
        **kwargs: passed to :class:`OpenAIRationaleWriter` (``api_key_env``, ``max_retries``, ...).

    Raises:
        ValueError: an unknown or malformed spec.
    """
    if not isinstance(spec, str):
        raise ValueError(f"rationale writer spec must be a string, got {type(spec).__name__}")
    spec = spec.strip()
    if spec == "template":
        return TemplateRationaleWriter()
    match = re.fullmatch(r"openai:(?P<model>.+)@(?P<url>https?://\S+)", spec)
    if match:
        return OpenAIRationaleWriter(match["model"], match["url"], **kwargs)
    raise ValueError(
        f"unknown rationale writer {spec!r}: expected 'template' or 'openai:MODEL@URL' "
        "(e.g. openai:gpt-4o-mini@https://api.openai.com/v1)"
    )


def _hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:20]
