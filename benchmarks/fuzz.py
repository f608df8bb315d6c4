"""Long fuzz campaign over the hardened surfaces: parser/reward, pruner, attribute cap, HTTP client.

Usage::

    python -m benchmarks.fuzz --inputs 100000 --seed 0
    python -m benchmarks.fuzz --surfaces pruner,attributes --inputs 2000

Each surface draws ``--inputs`` random inputs from a seeded generator and checks its
invariants; the run ends with a table of surface / inputs tried / failures / first
failure (exit status 1 when anything failed). ``--time-budget`` stops a surface early
(the table then says how many inputs it really ran).

Surfaces
    parser   ``parse_response`` raises only ``FormatError``; ``rewards.score`` and
             ``env.step`` never raise on any response (str subclasses with raising methods
             included) and return finite rewards; every accepted ``RewardConfig`` has a
             finite maximum, and any overflowing one is refused.
    pruner   windows of a real-looking listing page, mutated (control and Unicode-blank
             characters in names and tag names, lone surrogates, markup punctuation,
             blank runs, cut and duplicated spans): pruning is deterministic, idempotent,
             and the page's ``name`` attributes are exactly ``elements``, in order.
    attributes  one tag with up to thousands of attributes (duplicates, quoted ``>``,
             values with markup, behind scripts and comments): after the attribute cap no
             parsed element holds more than ``MAX_TAG_ATTRIBUTES`` attributes (bounded
             work), and the pruned page equals that of the tag with only the attributes
             pruning reads.
    client   a misbehaving loopback server (5xx, 429 with Retry-After, truncation,
             oversized bodies, slow drips, bodies echoing the API key at every offset
             around the read limits): the client answers or raises ``ChatRequestError``,
             within its deadline budget, and never shows the key.

The generators are shared with the property tests (``tests/*/test_campaign_*.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
import threading
import time
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lxml import etree

SURFACES = ("parser", "pruner", "attributes", "client")

# --- parser / reward ----------------------------------------------------------------------

_TYPES = ["click", "type_and_submit", "terminate", "scroll", "CLICK", "", "fly", None, 3]
_NAMES = ["search_input", "results.tent", "add to cart", "", " ", "a" * 300, "\ud800", "\x00", "café"]


class _RaisingStr(str):
    """A str whose Python-level methods raise: parse_response must not call them."""

    def strip(self, *args):  # noqa: D102
        raise RuntimeError("strip called")

    def lower(self):  # noqa: D102
        raise RuntimeError("lower called")

    def startswith(self, *args):  # noqa: D102
        raise RuntimeError("startswith called")

    def endswith(self, *args):  # noqa: D102
        raise RuntimeError("endswith called")

    def __getitem__(self, item):
        raise RuntimeError("getitem called")

    def __len__(self):
        raise RuntimeError("len called")

    def __eq__(self, other):
        raise RuntimeError("eq called")

    __hash__ = str.__hash__


def random_response(rng: random.Random) -> str:
    """A model output: valid, near-miss, fenced, junk, huge or a raising str subclass."""
    kind = rng.randrange(8)
    action: dict = {"type": rng.choice(_TYPES)}
    if rng.random() < 0.8:
        action["name"] = rng.choice(_NAMES + [rng.randrange(9)])
    if rng.random() < 0.5:
        action["text"] = rng.choice(["two person tent", "", 1.5, None, "tent " * rng.randrange(1, 50)])
    body = {"rationale": rng.choice(["I want a tent.", "", None, 7]), "action": action}
    if rng.random() < 0.1:
        del body[rng.choice(["rationale", "action"])]
    text = json.dumps(body, ensure_ascii=rng.random() < 0.5)
    if kind == 0:
        text = f"```json\n{text}\n```"
    elif kind == 1:
        text = text[: rng.randrange(len(text) + 1)]
    elif kind == 2:
        text = "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(40)))
    elif kind == 3:
        text = rng.choice(["[", "{", '{"a":', "```", "``` ```", "\ufeff{}"]) * rng.randrange(1, 3000)
    elif kind == 4:  # a long click name of short words: ROUGE-L must stay bounded
        words = rng.choice(["add to ", "cart ", "a b ", "x "])
        text = json.dumps({"rationale": "r", "action": {"type": "click", "name": words * rng.randrange(1, 200_000)}})
    elif kind == 5:
        text = _RaisingStr(text)
    return text


def random_config(rng: random.Random):
    """Mostly the default config; sometimes random (possibly huge) weights."""
    import rewards

    if rng.random() < 0.7:
        return rewards.RewardConfig()
    weights = {name: rng.choice([0.0, 0.5, 1.0, 1e3, 1e300, 1e308, 1.7e308])
               for name in ("type_reward", "click_name_attr", "input_name_value", "dars_factor", "format_weight",
                            "self_certainty_alpha")}
    weights["rouge_threshold"] = rng.choice([0.0, 1e-300, 0.5, 0.75, 1.0])
    weights["action_reward"] = rng.choice(["hierarchical", "binary"])
    return weights


def check_parser(rng: random.Random, env=None) -> None:
    """One parser/reward input; raises AssertionError (or anything) on a violated invariant."""
    import rewards
    from shop_env.actions import Action, FormatError, parse_response

    text = random_response(rng)
    try:
        parse_response(text)
    except FormatError:
        pass
    config = random_config(rng)
    if isinstance(config, dict):
        try:
            config = rewards.RewardConfig.from_dict(config)
        except ValueError:
            return  # refused: fine (an overflowing sum must be refused, checked below)
        assert math.isfinite(config.max_reward()), config
    gold = rng.choice([Action("click", "add to cart"), Action("type_and_submit", "search_input", "tent"),
                       Action("terminate"), Action("click", _RaisingStr("add to cart"))])
    certainty = rng.choice([None, 0.5, float("nan"), 1e308, -1e308, "x"])
    breakdown = rewards.score(text, gold, config, self_certainty=certainty)
    values = breakdown.to_dict()
    for key in ("format", "type", "attribute", "value", "self_certainty", "total"):
        assert math.isfinite(values[key]), (key, values)
    if certainty in (None, 0.5):  # max_reward plans for self-certainties up to SELF_CERTAINTY_BOUND
        assert values["total"] <= config.max_reward() * (1 + 1e-9) + 1e-9, values
    if env is not None:
        if env._step >= len(env._builder):
            env.reset(seed=0)
        _, reward, *_ = env.step(text)
        assert math.isfinite(reward)


def _fuzz_env():
    from shop_env import Session, Step
    from shop_env.actions import Action
    from shop_env.env import ShopReplayEnv

    page = '<html><body><input name="search_input"/><a name="results.tent">Tent</a></body></html>'
    golds = [Action("type_and_submit", "search_input", "tent"), Action("click", "results.tent"), Action("terminate")]
    env = ShopReplayEnv(sessions=[Session("fuzz", [Step(f"https://x/{i}", page, g) for i, g in enumerate(golds)])],
                        reward={"dars_factor": 1e300})
    env.reset(seed=0)
    return env


# --- pruner -------------------------------------------------------------------------------

_ODD_CHARS = ["\x01", "\x00", "\x0b", "\x0c", "\x1f", "\x7f", "\x85", "\xa0", "\u2028", "\u2029", "\u3000",
              "\ufffe", "\uffff", "\ud800", "\udfff", "\ufeff", "\t", "\n", "\r", "  ", "\u200b", "\u1680"]
_ODD_TOKENS = ["<", ">", '"', "'", "=", "/", "&", "</div>", "<p>", "<div>", "<!--", "-->", "<script>",
               "</script>", "&amp;", "&nbsp;", "<a href=/x?q=1#f>", "<button>", "</li>", "<li>", " hidden",
               ' style="display:none"', ' role="button"', ' name="a \x01 b"', ' data-section="a\ufffeb"',
               ' aria-label="  x  "', ' onclick="f()"', "<span>", "</span>", "<label>", "<input>", "<select>",
               "<textarea>", "<br>", "<img alt=x>", "<!x>", "<?p?>", "</ x>", "<h2>", "<table>", "<td>",
               ' data-x="1"', ' {odd="1"', ' a\x01b="2"', " x" * 40]


def mutate(rng: random.Random, text: str, edits: int | None = None) -> str:
    """``text`` with a few random edits: odd characters (also inside tag names), tokens, cuts."""
    for _ in range(edits if edits is not None else rng.randrange(1, 6)):
        where = rng.randrange(len(text) + 1)
        kind = rng.randrange(7)
        if kind == 0:
            text = text[:where] + rng.choice(_ODD_CHARS) + text[where:]
        elif kind == 1:
            text = text[:where] + rng.choice(_ODD_TOKENS) + text[where:]
        elif kind == 2:  # a character right after a tag name
            start = text.find("<", where)
            if start >= 0:
                end = start + 1
                while end < len(text) and text[end].isalnum():
                    end += 1
                text = text[:end] + rng.choice(_ODD_CHARS) + text[end:]
        elif kind == 3:
            text = text[:where] + text[where + rng.randrange(1, 200):]
        elif kind == 4:
            span = text[where : where + rng.randrange(1, 300)]
            text = text[:where] + span + text[where:]
        elif kind == 5:
            text = text[:where] + " " * rng.choice([2, 50, 300, 1000]) + text[where:]
        else:
            text = text[:where] + chr(rng.randrange(0x110000)) + text[where:]
    return text


_PAGES: dict[tuple[int, int], str] = {}


def real_looking_page(rng: random.Random, window: int = 4000) -> str:
    """A window (about ``window`` characters) of a small listing page, mutated."""
    from benchmarks.html_sample import small_listing_page

    key = (rng.randrange(3), rng.randrange(8))
    page = _PAGES.get(key)
    if page is None:
        page = _PAGES[key] = small_listing_page(*key)
    if rng.random() < 0.2:
        text = page
    else:
        start = rng.randrange(max(1, len(page) - window))
        text = page[start : start + rng.randrange(window // 4, window)]
    return mutate(rng, text)


def names_in_page(html: str) -> list[str]:
    """The ``name`` attributes of a pruned page, in document order."""
    tree = etree.fromstring(html, etree.HTMLParser())
    body = tree.find("body") if tree is not None else None
    return [el.get("name") for el in body.iter() if el.get("name") is not None] if body is not None else []


def check_pruned(raw: str | bytes) -> None:
    """Pruning ``raw`` is deterministic, idempotent and agrees with its own page."""
    from shop_env.webpage.prune import prune_html

    page = prune_html(raw)
    assert page.html.startswith("<body") and page.html.endswith("</body>"), page.html[:80]
    again = prune_html(page.html)
    assert again.html == page.html, _first_difference(page.html, again.html)
    assert again.elements == page.elements, _first_difference(str(list(page.elements.values())),
                                                             str(list(again.elements.values())))
    assert names_in_page(page.html) == list(page.elements)
    for name, element in page.elements.items():
        assert element.name == name == element.attrs["name"] and name == name.strip() and name


def _first_difference(a: str, b: str) -> str:
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return f"differ at {at}: {a[max(0, at - 40):at + 40]!r} vs {b[max(0, at - 40):at + 40]!r}"


def check_pruner(rng: random.Random) -> None:
    raw = real_looking_page(rng)
    check_pruned(raw.encode("utf-8", "surrogatepass") if rng.random() < 0.1 else raw)


# --- attribute cap ------------------------------------------------------------------------

_READ = ["name", "type", "value", "aria-label", "href", "role", "hidden", "style", "onclick", "title", "id",
         "data-section", "alt", "placeholder", "for", "width", "height", "data-semantic-id"]
_CONTEXTS = ["", "<script>var a = '<b x=\"';</script>", "<script><!--<script></script><p q=1></script>",
             "<!-- <a b=\" -->", "<textarea><a b=\"</textarea>", "<style>a>b{}</style>", "<!x \"<a b=\">",
             "<div title='</div>'>", "<noscript><p>", "<svg><style><a b=\"</style>", "<p>Text &amp; more"]


def attribute_page(rng: random.Random, count: int | None = None) -> tuple[str, str]:
    """A page with one many-attribute tag, and the same page with only the attributes pruning reads.

    The second keeps, in order, the first occurrence of each read attribute (what the cap
    keeps and what libxml2 keeps of duplicates), so both must prune identically.
    """
    if count is None:
        count = int(math.exp(rng.uniform(0, math.log(3000))))
    tag = rng.choice(["button", "a", "div", "input", "span", "li", "section", "select"])
    full, kept, seen = [], [], set()
    for i in range(count):
        if rng.random() < 0.05:
            name = rng.choice(_READ)
        else:
            name = rng.choice(["data-x", "class", "d"]) + str(rng.randrange(count * 2))
        value_kind = rng.randrange(5)
        if name == "hidden" or name == "style":
            value_kind = 0 if rng.random() < 0.9 else value_kind  # mostly keep the element visible
        value = ["", "=v" + str(i), '="a > b < c"', "='x\"y>'", '="<p a=1>"'][value_kind]
        if name in ("style",):
            value = '="color:red"'
        attribute = name + value
        previous = full[-1] if full else " "
        if previous.endswith(('"', "'")):
            separator = rng.choice(["", " ", "/"])  # a quoted value needs no separator
        elif "=" in previous:
            separator = rng.choice([" ", "\n", "\t"])  # "/" would continue an unquoted value
        else:
            separator = rng.choice([" ", "\n", "/", " / "])
        full.append(separator + attribute)
        if name in _READ and name not in seen:
            seen.add(name)
            kept.append(" " + attribute)
    context = rng.choice(_CONTEXTS)
    closing = f"</{tag}>" if tag not in ("input",) else ""
    before = f"<html><body>{context}<div data-section=\"grid\">"
    after = f">Buy now{closing}</div></body></html>"
    return before + f"<{tag}" + "".join(full) + after, before + f"<{tag}" + "".join(kept) + after


def check_attributes(rng: random.Random, count: int | None = None) -> None:
    from shop_env.webpage.clean import MAX_TAG_ATTRIBUTES, cap_attributes
    from shop_env.webpage.prune import prune_html

    raw, clean = attribute_page(rng, count)
    capped = cap_attributes(raw)
    tree = etree.fromstring(capped, etree.HTMLParser())
    most = max((len(el.attrib) for el in tree.iter() if isinstance(el.tag, str)), default=0)
    assert most <= MAX_TAG_ATTRIBUTES, f"an element kept {most} attributes"
    a, b = prune_html(raw), prune_html(clean)
    assert a.html == b.html, _first_difference(a.html, b.html)
    assert a.elements == b.elements


# --- HTTP client --------------------------------------------------------------------------

SECRET = "sk-fuzz/Zq9-very+secret-key-0123456789"


class _Scripted(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


class MisbehavingServer:
    """A loopback chat server answering from a shared, thread-safe script of replies.

    A reply is a dict: ``status``, ``body`` (bytes; ``{auth}`` becomes the request's
    Authorization header), ``headers``, ``drip`` (seconds between bytes), ``truncate``
    (promise more bytes than sent), ``length`` (a Content-Length to claim).
    """

    def __init__(self) -> None:
        self.script: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with server.lock:
                    reply = server.script.pop(0) if server.script else {"status": 200}
                body = reply.get("body")
                if body is None:
                    body = json.dumps({"choices": [{"message": {"content": "ok"}}]}).encode()
                body = body.replace(b"{auth}", self.headers.get("Authorization", "").encode())
                try:
                    self.send_response(reply.get("status", 200))
                    for key, value in reply.get("headers", {}).items():
                        self.send_header(key, value)
                    length = reply.get("length", len(body) + (50 if reply.get("truncate") else 0))
                    self.send_header("Content-Length", str(length))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    drip = reply.get("drip", 0.0)
                    if drip:
                        for i in range(len(body)):
                            self.wfile.write(body[i : i + 1])
                            self.wfile.flush()
                            time.sleep(drip)
                    else:
                        self.wfile.write(body)
                except OSError:
                    pass  # the client gave up
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = _Scripted(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def key_leaks(text: str, key: str = SECRET, window: int = 6) -> bool:
    """Whether ``text`` shows any ``window``-character piece of ``key`` (or of its JSON form)."""
    forms = {key, key.replace("/", "\\/")}
    return any(form[i : i + window] in text for form in forms for i in range(len(form) - window + 1))


def random_script(rng: random.Random) -> list[dict]:
    """One to three replies of a misbehaving server."""
    from agents.chat_client import ERROR_BODY_BYTES

    replies = []
    for _ in range(rng.randrange(1, 4)):
        kind = rng.randrange(9)
        if kind == 0:
            replies.append({"status": rng.choice([500, 502, 503, 504, 408])})
        elif kind == 1:
            replies.append({"status": 429, "headers": {"Retry-After": rng.choice(["0", "0.01", "x", "-5",
                                                                                "Wed, 21 Oct 2015 07:28:00 GMT"])}})
        elif kind == 2:  # the key echoed at an offset around a read or display limit
            edge = rng.choice([SHOWN_OFFSETS, [ERROR_BODY_BYTES], [ERROR_BODY_BYTES - len(SECRET) - 7]])
            offset = max(0, rng.choice(edge) + rng.randrange(-40, 40))
            body = b"x" * offset + b"{auth}" + b"y" * rng.randrange(0, 100)
            replies.append({"status": rng.choice([400, 401, 500, 200]), "body": body})
        elif kind == 3:
            replies.append({"status": 200, "truncate": True})
        elif kind == 4:
            replies.append({"status": 200, "body": b'{"choices": [{"message": {"content": "' + b"z" * 5000 + b'"}}]}'})
        elif kind == 5:
            replies.append({"status": 200, "length": 10**12, "body": b"{}"})
        elif kind == 6 and rng.random() < 0.15:
            replies.append({"status": 200, "drip": 0.05})
        elif kind == 7:
            replies.append({"status": 200, "body": b"not json " + b"{auth}" * rng.randrange(1, 3)})
        else:
            replies.append({"status": 200})
    return replies


SHOWN_OFFSETS = [80, 185, 200, 4096 - 10, 4096]


def check_client(rng: random.Random, server: MisbehavingServer, log: list[str]) -> None:
    """One request against a scripted misbehaving server."""
    import os

    from agents.chat_client import ChatCompletionsClient, ChatRequestError

    os.environ["SHOP_R1_FUZZ_KEY"] = SECRET
    script = random_script(rng)
    with server.lock:
        server.script[:] = script
    client = ChatCompletionsClient(server.base_url, api_key_env="SHOP_R1_FUZZ_KEY", timeout=1.0, deadline=0.3,
                                   max_retries=rng.randrange(3), backoff_base=0.0, backoff_max=0.01,
                                   max_reply_bytes=4000)
    started = time.monotonic()
    del log[:]
    try:
        answer = client.complete([{"role": "user", "content": "hi"}], model="m")
        assert isinstance(answer, str)
        shown = answer
        if "{auth}" not in json.dumps([r.get("body", b"").decode() for r in script]):
            assert answer == "ok", answer[:80]
    except ChatRequestError as err:
        shown = str(err)
    elapsed = time.monotonic() - started
    attempts = client.max_retries + 1
    assert elapsed < attempts * (0.3 + 0.05) + 1.0, f"took {elapsed:.2f}s"
    assert not key_leaks(shown + "".join(log) + repr(client)), shown[:300]


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


# --- driver -------------------------------------------------------------------------------


def run_surface(name: str, inputs: int, seed: int, budget: float | None = None,
                progress: bool = True) -> dict:
    """Run one surface; returns ``{"surface", "inputs", "failures", "first_failure"}``."""
    from tqdm import tqdm

    rng = random.Random(f"{seed}:{name}")
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    if name == "parser":
        env = _fuzz_env()
        step = lambda r, i: check_parser(r, env if i % 10 == 0 else None)  # noqa: E731
    elif name == "pruner":
        step = lambda r, i: check_pruner(r)  # noqa: E731
    elif name == "attributes":
        step = lambda r, i: check_attributes(r)  # noqa: E731
    elif name == "client":
        server = MisbehavingServer()
        log: list[str] = []
        handler = _ListHandler(log)
        logging.getLogger("agents.chat_client").addHandler(handler)
        step = lambda r, i: check_client(r, server, log)  # noqa: E731

        def cleanup() -> None:
            logging.getLogger("agents.chat_client").removeHandler(handler)
            server.close()
    else:
        raise ValueError(f"unknown surface {name!r}")
    failures, first, done = 0, "", 0
    started = time.monotonic()
    try:
        for i in tqdm(range(inputs), desc=name, disable=not progress, mininterval=1.0, file=sys.stderr):
            case_rng = random.Random(rng.getrandbits(64))
            try:
                step(case_rng, i)
            except Exception as err:  # noqa: BLE001 - a fuzz run reports, it does not stop
                failures += 1
                if not first:
                    where = traceback.extract_tb(err.__traceback__)[-1]
                    first = f"#{i}: {type(err).__name__}: {str(err)[:160]} ({where.name}:{where.lineno})"
            done = i + 1
            if budget is not None and time.monotonic() - started > budget:
                break
    finally:
        cleanup()
    return {"surface": name, "inputs": done, "failures": failures, "first_failure": first or "-",
            "seconds": round(time.monotonic() - started, 1)}


def format_table(rows: list[dict]) -> str:
    header = ("surface", "inputs tried", "failures", "seconds", "first failure")
    lines = [header] + [(r["surface"], f"{r['inputs']:,}", str(r["failures"]), str(r["seconds"]), r["first_failure"])
                        for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    out = []
    for n, line in enumerate(lines):
        out.append(" | ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(line)))
        if n == 0:
            out.append("-+-".join("-" * w for w in widths) + "-+-" + "-" * 13)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fuzz", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=100_000, help="inputs per surface (default 100000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--surfaces", default=",".join(SURFACES),
                        help=f"comma-separated subset of {','.join(SURFACES)} (default: all)")
    parser.add_argument("--time-budget", type=float, default=None,
                        help="stop each surface after this many seconds (the table shows inputs really run)")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    args = parser.parse_args(argv)
    surfaces = [s.strip() for s in args.surfaces.split(",") if s.strip()]
    unknown = [s for s in surfaces if s not in SURFACES]
    if unknown or args.inputs < 0:
        parser.error(f"unknown surface(s) {', '.join(unknown)}" if unknown else "--inputs must be >= 0")
    rows = [run_surface(s, args.inputs, args.seed, args.time_budget, not args.no_progress) for s in surfaces]
    print(format_table(rows))
    return 1 if any(r["failures"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
