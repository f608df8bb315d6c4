"""The simulated shop: a generated catalog, realistic raw pages and a stochastic shopper.

It produces the project's default data set (``synthetic:N?seed=S``): sessions whose
``Step.html`` is the pruned page the shopper acted on and whose ``Step.meta`` records the
shopper model's most likely action (``oracle_action``) and its probability (``oracle_prob``).

Public API: :func:`generate_sessions`, :func:`generate_session` (one session, optionally with
the shopper's whole action distribution per step), :func:`parse_session_id`,
:func:`sample_page`, :func:`oracle_ceiling`, :func:`build_catalog`. CLI: ``python -m shop_env.synthetic --help``.
:mod:`shop_env.synthetic.posterior` gives what an observer can know of the next action: the
Bayes posterior predictive given the session so far (the oracle knows the shopper's intent).
"""

from shop_env.synthetic.catalog import CATEGORIES, Catalog, Product, build_catalog
from shop_env.synthetic.generate import (
    generate_session,
    generate_sessions,
    oracle_ceiling,
    parse_session_id,
    session_id,
)
from shop_env.synthetic.render import sample_page

__all__ = [
    "CATEGORIES",
    "Catalog",
    "Product",
    "build_catalog",
    "generate_session",
    "generate_sessions",
    "oracle_ceiling",
    "parse_session_id",
    "sample_page",
    "session_id",
]
