"""Web pages as the model reads them: pruning raw HTML, naming elements, the compact form.

* :mod:`shop_env.webpage.prune` -- ``prune_html(raw) -> PrunedPage`` (docs/architecture.md §7),
  with its clean-up passes in :mod:`~shop_env.webpage.clean` and the naming rule in
  :mod:`~shop_env.webpage.naming`;
* :mod:`shop_env.webpage.reader` -- the one reader of a simplified page's element names
  and kinds (env candidates, baselines, the compact form);
* :mod:`shop_env.webpage.compact` -- the compact page form prompts show (``page_format``).

The modules import lxml; ``shop_env`` loads them lazily.
"""
