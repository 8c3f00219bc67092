"""``ferry server``: a workspace behind an HTTP API on PostgreSQL, with MLflow's tracking API.

The pieces: :mod:`.config` (settings), :mod:`.services` (the store, blobs and workspace each
route uses), :mod:`.app` (the FastAPI app), :mod:`.auth` (tokens and scopes), :mod:`.boundary`
(the one error boundary), the routes (:mod:`.routes_store`, :mod:`.routes_files`,
:mod:`.routes_mlflow`), :mod:`.runfiles` (run folders), :mod:`.worker` (the supervisor pool)
and :mod:`.client` (the client side: tokens, URLs, the HTTP stores). Importing this package
imports no web framework; the server's parts need ``pip install 'ferry[server]'``.
"""

from __future__ import annotations

from ferry.server.config import API_VERSION, ServerConfig

__all__ = ["API_VERSION", "ServerConfig"]
