"""Train a shopper simulator the Shop-R1 way: ``python training/grpo.py [--help]``.

The whole pipeline (data, model, SFT cold start, GRPO, evaluation, report) from the
command line; this file is a thin wrapper over :func:`training.cli.main` (also installed as
``shop-r1-train``), so the repository must be installed (``pip install -e .``).
"""

from __future__ import annotations

import sys

from training.cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
