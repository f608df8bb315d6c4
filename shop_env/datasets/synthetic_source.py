"""``synthetic:N[?seed=S]``: sessions from the simulated shop, generated once and cached.

The cache key includes a hash of the generator's and the pruner's source code, so a change
to either regenerates the data instead of serving stale pages.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from shop_env.sessions import Session, read_jsonl, write_jsonl


def cache_dir() -> Path:
    """The data cache folder: ``$SHOP_R1_CACHE`` or ``~/.cache/shop-r1``."""
    return Path(os.environ.get("SHOP_R1_CACHE") or Path.home() / ".cache" / "shop-r1")


def _code_fingerprint() -> str:
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha1()
    files = sorted((root / "synthetic").glob("*.py")) + sorted((root / "webpage").glob("*.py"))
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def load_synthetic(n: int, seed: int = 0, *, cache: bool = True, progress: bool = False) -> list[Session]:
    """Return ``n`` simulated sessions for ``seed``, from the on-disk cache when present.

    Raises:
        ValueError: ``n`` < 1.
    """
    if n < 1:
        raise ValueError(f"synthetic:N needs N >= 1, got {n}")
    from shop_env.synthetic import generate_sessions

    if not cache:
        return generate_sessions(n, seed, progress=progress)
    path = cache_dir() / f"synthetic-n{n}-seed{seed}-{_code_fingerprint()}.jsonl"
    if path.exists():
        try:
            return read_jsonl(path)
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # a corrupt cache is regenerated, never trusted
    sessions = generate_sessions(n, seed, progress=progress)
    try:
        write_jsonl(sessions, path)
    except OSError:
        pass  # a read-only cache folder only costs a regeneration next time
    return sessions
