"""ferry studio: the web UI of a workspace (``ferry ui``), served by the server's app.

- :mod:`ferry.ui.routes` — the UI's API under ``/api/v1/ui``, live events, the pages;
- :mod:`ferry.ui.views`, :mod:`ferry.ui.runpage`, :mod:`ferry.ui.charts` — its read models;
- :mod:`ferry.ui.local` — ``ferry ui`` on a local workspace (loopback, a token in the URL);
- :mod:`ferry.ui.address` — where a serving UI is, for ``run.get_portal_url()`` (no web
  dependencies: any process imports it);
- ``static/`` — the pages (plain ES modules, no build step).
"""
