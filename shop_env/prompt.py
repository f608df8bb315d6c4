"""Chat prompts for next-action prediction, under a token budget (docs/architecture.md §8).

* :func:`build_prompt` / :func:`build_messages`: the prompt of one state, used by GRPO,
  evaluation and every model agent. Under ``whole-session`` it is the multi-turn chat SFT
  trains on, up to the current step: the system prompt, then per past step a user turn
  (URL and page) and an assistant turn (that step's rationale and action), then the current
  page as the last user turn. Under ``latest-step`` it is the system prompt and one user
  message listing the past URLs and actions and showing the current page.
* :func:`session_chat`: a whole session as one multi-turn chat for SFT (user: page,
  assistant: :func:`format_target` JSON), whose prefix up to step *t* is the
  ``whole-session`` prompt of state *t*; :func:`step_chats`: one chat per step
  (:func:`build_messages` + the answer), for ``latest-step`` SFT.

Pages enter the prompt in the compact form of :mod:`shop_env.webpage.compact` (about half the
tokens of the pruned HTML) unless ``page_format="html"``. Over budget, the oldest past pages
are replaced by :data:`PAGE_DROPPED` first (their actions stay), then the current page is
cut and ends with a visible marker
(``[... page cut here: ...]``). Tokens are counted with the tokenizer when one is given
(through its chat template when it has one), else estimated as ``ceil(chars / 4)``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shop_env.actions import Action, Response
from shop_env.observations import ObservationBuilder, check_context, parse_history
from shop_env.sessions import Session
from shop_env.webpage.compact import check_page_format, compact_page

SYSTEM_PROMPT = """\
You are simulating a real person shopping on an e-commerce website. You see the shopping \
session so far (the pages this person looked at and what they did on each) and the page \
they are looking at now. Pages are simplified HTML; every element the person can use \
carries a `name` attribute.

Predict the one action this person takes next. Possible actions:
- click: click an element. Give the element's `name` exactly as it appears in the page.
- type_and_submit: type text into an input (for example a search box) and submit it. \
Give the input's `name` and the `text` typed.
- terminate: leave the website and end the session (done shopping, or giving up).

Answer with exactly one JSON object and nothing else, in this form:
{"rationale": "<one sentence, in the first person, saying why I take this action>", \
"action": {"type": "click" | "type_and_submit" | "terminate", \
"name": "<element name, for click and type_and_submit>", \
"text": "<the text typed, for type_and_submit>"}}"""

#: How pages are written into prompts unless a model's prompt settings say otherwise.
DEFAULT_PAGE_FORMAT = "compact"
#: Stands in for a past page dropped to fit the token budget.
PAGE_DROPPED = "[page omitted to fit the context budget]"
#: Ends a current page that was cut to fit the token budget.
CUT_MARKER = "\n[... page cut here: {cut} more characters omitted to fit the context budget ...]"
#: The closing instruction of the prompt's user message.
QUESTION = "What does this person do next? Answer with one JSON object as described."
#: Estimated template tokens per chat message when the tokenizer has no chat template.
MESSAGE_OVERHEAD_TOKENS = 4


@dataclass
class PromptBuild:
    """A built prompt and what was cut to fit the budget.

    Attributes:
        messages: role/content chat messages.
        dropped_pages: past pages replaced by :data:`PAGE_DROPPED`.
        truncated_current: whether the current (last) page was cut.
        n_tokens: the prompt's size in tokens (tokenizer count, or the chars/4 estimate).
        cut_chars: characters cut from the current page.
        over_budget: True when even with every page dropped or cut the fixed text (system
            prompt, URLs, actions) exceeds ``max_prompt_tokens``.
    """

    messages: list[dict[str, str]]
    dropped_pages: int = 0
    truncated_current: bool = False
    n_tokens: int = 0
    cut_chars: int = 0
    over_budget: bool = False


def format_target(rationale: str | None, action: Action | Mapping[str, Any]) -> str:
    """The assistant text for a step: the docs/architecture.md §4 response JSON.

    Args:
        rationale: the first-person rationale (None becomes ``""``).
        action: an :class:`Action` or its dict form.

    Raises:
        FormatError: ``action`` is a dict that is not a valid action.
    """
    if not isinstance(action, Action):
        action = Action.from_dict(dict(action))
    return Response(rationale or "", action).to_json()


def build_messages(
    observation: Mapping[str, Any],
    context: str = "whole-session",
    tokenizer: Any = None,
    max_prompt_tokens: int | None = None,
    page_format: str = DEFAULT_PAGE_FORMAT,
) -> list[dict[str, str]]:
    """The chat messages (system, user) for an observation; see :func:`build_prompt`."""
    # Without a budget the tokenizer changes nothing in the messages: skip counting with it.
    counter = tokenizer if max_prompt_tokens is not None else None
    return build_prompt(observation, context, counter, max_prompt_tokens, page_format).messages


def build_prompt(
    observation: Mapping[str, Any],
    context: str = "whole-session",
    tokenizer: Any = None,
    max_prompt_tokens: int | None = None,
    page_format: str = DEFAULT_PAGE_FORMAT,
) -> PromptBuild:
    """Build the prompt for an env observation, fitted to ``max_prompt_tokens``.

    Args:
        observation: an env observation (``url``, ``html``, ``history`` as the JSON
            string of :mod:`shop_env.observations` or a list of entries, ``step``).
        context: ``"whole-session"``: the multi-turn chat of past pages and answers (the
            history entries' ``rationale`` and ``action``); ``"latest-step"``: one user
            message with past URLs and actions only.
        tokenizer: counts tokens (a ``transformers`` tokenizer or a ``tokenizers.Tokenizer``);
            None uses ``ceil(chars / 4)``.
        max_prompt_tokens: the budget; None never cuts.
        page_format: ``"compact"`` (:func:`shop_env.webpage.compact.compact_page`, the default)
            or ``"html"`` (the pruned page as observed).

    Returns:
        A :class:`PromptBuild` with the messages and a report of what was cut.

    Raises:
        ValueError: an unknown context or page format, a bad budget, or a malformed
            observation (naming the key).
    """
    check_context(context)
    check_page_format(page_format)
    _check_budget(max_prompt_tokens)
    url, page, history, step = _read_observation(observation)
    if context == "whole-session":
        chat = _session_turns(url, page, history, step, page_format)
        return _fit(chat, _Counter(tokenizer), max_prompt_tokens, add_generation_prompt=True)
    user: list[_Piece] = []
    if history:
        user.append(_Piece("Session so far, oldest first:\n\n"))
    first = step - len(history) + 1
    for offset, entry in enumerate(history):
        user.append(_Piece(f"Step {first + offset}. URL: {entry['url']}\n"))
        if context == "whole-session" and entry["html"] is not None:
            user.append(_Piece("Page:\n"))
            user.append(_Piece(page_text(entry["html"], page_format), "page"))
            user.append(_Piece("\n"))
        user.append(_Piece(f"Action: {entry['action']}\n\n"))
    if not history:
        user.append(_Piece("This is the first page of the session.\n\n"))
    user.append(_Piece(f"Current page (step {step + 1}). URL: {url}\n"))
    user.append(_Piece(page_text(page, page_format), "current"))
    user.append(_Piece("\n\n" + QUESTION))
    chat = [_Message("system", [_Piece(SYSTEM_PROMPT)]), _Message("user", user)]
    return _fit(chat, _Counter(tokenizer), max_prompt_tokens, add_generation_prompt=True)


def session_chat(
    session: Session,
    context: str = "whole-session",
    tokenizer: Any = None,
    max_prompt_tokens: int | None = None,
    page_format: str = DEFAULT_PAGE_FORMAT,
) -> list[dict[str, str]]:
    """A whole session as one multi-turn chat for SFT (loss on the assistant turns).

    Messages: the system prompt, then per step a user turn (URL and page) and an
    assistant turn (:func:`format_target` of the step's rationale and action). Over
    ``max_prompt_tokens`` (counted over the whole chat), the oldest pages are dropped
    first, then the last page is cut.

    Args:
        session: the session; steps without a rationale get ``""``.
        context: only ``"whole-session"``: in one chat every turn sees the earlier pages,
            which is not the ``latest-step`` context; use :func:`step_chats` for that.
        tokenizer: counts tokens (see :func:`build_prompt`).
        max_prompt_tokens: the budget for the whole chat; None never cuts.
        page_format: as for :func:`build_prompt`.

    Raises:
        ValueError: ``context`` is not ``"whole-session"``, an unknown page format, a bad
            budget, or a session without steps.
    """
    check_context(context)
    check_page_format(page_format)
    if context != "whole-session":
        raise ValueError(
            f"session_chat builds one whole-session chat; context {context!r} would let each turn "
            "see earlier pages. Use step_chats(session, context='latest-step') for one chat per step."
        )
    _check_budget(max_prompt_tokens)
    if not session.steps:
        raise ValueError(f"session {session.session_id!r} has no steps")
    chat = [_Message("system", [_Piece(SYSTEM_PROMPT)])]
    last = len(session.steps) - 1
    for index, step in enumerate(session.steps):
        kind = "current" if index == last else "page"
        chat.append(_user_turn(index + 1, step.url, step.html, kind, page_format))
        chat.append(_Message("assistant", [_Piece(format_target(step.rationale, step.action))]))
    counter = _Counter(tokenizer if max_prompt_tokens is not None else None)
    return _fit(chat, counter, max_prompt_tokens, add_generation_prompt=False).messages


def step_chats(
    session: Session,
    context: str = "whole-session",
    tokenizer: Any = None,
    max_prompt_tokens: int | None = None,
    max_history: int | None = None,
    page_format: str = DEFAULT_PAGE_FORMAT,
) -> list[list[dict[str, str]]]:
    """One chat per step: :func:`build_messages` of the step's observation + the target.

    The per-step SFT form, for either context; the budget applies to the prompt part.

    Raises:
        ValueError: an unknown context or page format, bad budget or ``max_history``, or
            a session without steps.
    """
    builder = ObservationBuilder(session, context, max_history)
    chats = []
    for index, step in enumerate(session.steps):
        messages = build_messages(builder.observation(index), context, tokenizer, max_prompt_tokens, page_format)
        messages.append({"role": "assistant", "content": format_target(step.rationale, step.action)})
        chats.append(messages)
    return chats


# -- internals ----------------------------------------------------------------------------


def _user_turn(number: int, url: str, html: str | None, kind: str, page_format: str) -> _Message:
    """One step's user turn of a whole-session chat: ``Step k. URL: ...`` and the page."""
    if html is None:
        return _Message("user", [_Piece(f"Step {number}. URL: {url}\n")])
    return _Message("user", [_Piece(f"Step {number}. URL: {url}\nPage:\n"), _Piece(page_text(html, page_format), kind)])


def _session_turns(url: str, page: str, history: list[dict[str, Any]], step: int, page_format: str) -> list[_Message]:
    """The whole-session prompt: the SFT chat of :func:`session_chat` up to the current step.

    Each past step is a user turn (its page) and an assistant turn (its rationale and
    action, as SFT trained the model to answer); the current page is the last user turn.
    """
    chat = [_Message("system", [_Piece(SYSTEM_PROMPT)])]
    first = step - len(history) + 1
    for offset, entry in enumerate(history):
        chat.append(_user_turn(first + offset, entry["url"], entry["html"], "page", page_format))
        chat.append(_Message("assistant", [_Piece(format_target(entry["rationale"], entry["action_object"]))]))
    chat.append(_user_turn(step + 1, url, page, "current", page_format))
    return chat


@dataclass
class _Piece:
    text: str
    kind: str = "fixed"  # "fixed" | "page" (droppable) | "current" (cuttable)


@dataclass
class _Message:
    role: str
    pieces: list[_Piece] = field(default_factory=list)

    def render(self) -> dict[str, str]:
        return {"role": self.role, "content": "".join(p.text for p in self.pieces)}


def chat_token_ids(tokenizer: Any, messages: list[dict[str, str]], *, add_generation_prompt: bool = False) -> list[int]:
    """The token ids of a chat rendered by the tokenizer's chat template.

    The one place chats are tokenized for counting and budgets (prompts here, SFT chats,
    GRPO's prompt ids); transformers returns a list, a nested list or a BatchEncoding
    depending on version and tokenizer, all read here.

    Args:
        tokenizer: a tokenizer with a chat template.
        messages: ``{"role", "content"}`` dicts (extra keys are ignored by templates).
        add_generation_prompt: append the assistant turn's opening, as generation sees it.
    """
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt,
                                        return_dict=False)
    if isinstance(ids, Mapping) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    if ids and isinstance(ids[0], list):
        ids = ids[0]
    return list(ids)


class _Counter:
    """Counts tokens of texts (cached) and of whole chats."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._cache: dict[str, int] = {}
        self.templated = bool(getattr(tokenizer, "chat_template", None)) and hasattr(
            tokenizer, "apply_chat_template"
        )

    def text(self, text: str) -> int:
        if self.tokenizer is None:
            return math.ceil(len(text) / 4)
        count = self._cache.get(text)
        if count is None:
            encoded = self.tokenizer.encode(text, add_special_tokens=False)
            count = len(getattr(encoded, "ids", encoded))
            if len(text) < 4096:  # cache the small repeated pieces, not whole pages
                self._cache[text] = count
        return count

    def chat(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> int:
        if self.templated:
            return len(chat_token_ids(self.tokenizer, messages, add_generation_prompt=add_generation_prompt))
        if self.tokenizer is None:  # one estimate over the whole text, not per piece
            chars = sum(len(m["content"]) for m in messages)
            return math.ceil(chars / 4) + MESSAGE_OVERHEAD_TOKENS * len(messages)
        return sum(self.text(m["content"]) for m in messages) + MESSAGE_OVERHEAD_TOKENS * len(messages)


def _fit(chat: list[_Message], counter: _Counter, budget: int | None, *, add_generation_prompt: bool) -> PromptBuild:
    """Drop oldest pages, then cut the current page, until the chat fits ``budget``."""
    exact = counter.chat([m.render() for m in chat], add_generation_prompt)
    if budget is None or exact <= budget:
        return PromptBuild([m.render() for m in chat], n_tokens=exact)
    pieces = [p for m in chat for p in m.pieces]
    sizes = [counter.text(p.text) for p in pieces]
    total = exact  # the real count, then moved by per-piece differences as pages drop
    dropped = 0
    new = counter.text(PAGE_DROPPED)
    droppable = [i for i, p in enumerate(pieces) if p.kind == "page" and new < sizes[i]]  # shorter ones stay
    for i in droppable:  # oldest first: pieces are in chronological order
        if total <= budget:
            break
        pieces[i].text = PAGE_DROPPED
        total += new - sizes[i]
        dropped += 1
    if dropped:
        exact = counter.chat([m.render() for m in chat], add_generation_prompt)
    # Per-piece counts are not exactly additive: while the real count is still over, drop
    # the next oldest page before anything cuts the current one.
    while exact > budget and dropped < len(droppable):
        pieces[droppable[dropped]].text = PAGE_DROPPED
        dropped += 1
        exact = counter.chat([m.render() for m in chat], add_generation_prompt)
    current = next((p for p in pieces if p.kind == "current"), None)
    cut_chars = 0
    if exact > budget and current is not None and current.text:
        page = current.text
        allowed = counter.text(page) - (exact - budget)  # tokens the current page may keep
        # Re-measure after each cut: token counts are not exactly additive across pieces.
        for _ in range(4):
            keep = _longest_prefix(page, allowed, counter)
            cut_chars = len(page) - keep
            current.text = page[:keep] + (CUT_MARKER.format(cut=cut_chars) if cut_chars else "")
            exact = counter.chat([m.render() for m in chat], add_generation_prompt)
            if exact <= budget or keep == 0:
                break
            allowed -= exact - budget
    return PromptBuild(
        [m.render() for m in chat],
        dropped_pages=dropped,
        truncated_current=cut_chars > 0,
        n_tokens=exact,
        cut_chars=cut_chars,
        over_budget=exact > budget,
    )


def cut_page(page: str, allowed_tokens: int, tokenizer: Any) -> tuple[str, int]:
    """``page`` cut to its longest prefix that, with the cut marker, fits ``allowed_tokens``.

    The one page-cutting rule of prompts (here) and SFT chats (:mod:`training.sft`), so a
    model is trained on pages cut exactly as it is later prompted with them.

    Args:
        page: the page text (as :func:`page_text` gives it).
        allowed_tokens: tokens the page, marker included, may take.
        tokenizer: counts the tokens (None: ``ceil(chars / 4)``).

    Returns:
        ``(text, cut_chars)``: the kept prefix plus :data:`CUT_MARKER` when anything was cut
        (``page`` itself when it fits), and how many characters were cut.
    """
    keep = _longest_prefix(page, allowed_tokens, _Counter(tokenizer))
    cut = len(page) - keep
    return (page[:keep] + CUT_MARKER.format(cut=cut) if cut else page), cut


def _longest_prefix(page: str, allowed: int, counter: _Counter) -> int:
    """The most characters of ``page`` whose tokens plus the cut marker fit ``allowed``."""
    if counter.text(page) <= allowed:
        return len(page)
    marker = counter.text(CUT_MARKER.format(cut=len(page)))
    room = allowed - marker
    if room <= 0:
        return 0
    lo, hi = 0, len(page)  # invariant: prefix lo fits, prefix hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if counter.text(page[:mid]) <= room:
            lo = mid
        else:
            hi = mid
    return lo


def page_text(html: str, page_format: str = DEFAULT_PAGE_FORMAT) -> str:
    """A page as it appears in prompts: compacted (``"compact"``) or as observed (``"html"``)."""
    return compact_page(html) if page_format == "compact" else html


def _check_budget(max_prompt_tokens: Any) -> None:
    if max_prompt_tokens is None:
        return
    if isinstance(max_prompt_tokens, bool) or not isinstance(max_prompt_tokens, int) or max_prompt_tokens <= 0:
        raise ValueError(f"max_prompt_tokens must be None or an int > 0, got {max_prompt_tokens!r}")


def _read_observation(observation: Any) -> tuple[str, str, list[dict[str, Any]], int]:
    """Validate an observation; return url, page, history entries (url, html, action JSON), step."""
    if not isinstance(observation, Mapping):
        raise ValueError(f"observation must be a dict, got {type(observation).__name__}")
    for key in ("url", "html", "history", "step"):
        if key not in observation:
            raise ValueError(f"observation is missing key {key!r}")
    url, page, raw, step = (observation[k] for k in ("url", "html", "history", "step"))
    if not isinstance(url, str) or not isinstance(page, str):
        raise ValueError("observation 'url' and 'html' must be strings")
    if isinstance(step, bool) or not hasattr(step, "__index__") or int(step) < 0:
        raise ValueError(f"observation 'step' must be an int >= 0, got {step!r}")
    entries = parse_history(raw) if isinstance(raw, str) else raw
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        raise ValueError("observation 'history' must be a JSON string or a list of entries")
    history = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("action"), Mapping):
            raise ValueError(f"observation history[{i}] must be an object with an 'action' object")
        html = entry.get("html")
        if html is not None and not isinstance(html, str):
            raise ValueError(f"observation history[{i}].html must be a string or null")
        action = json.dumps(dict(entry["action"]), ensure_ascii=False)
        rationale = entry.get("rationale")
        history.append({"url": str(entry.get("url", "")), "html": html, "action": action,
                        "action_object": dict(entry["action"]),
                        "rationale": rationale if isinstance(rationale, str) else None})
    return url, page, history, int(step)
