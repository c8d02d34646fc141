"""``conveyor dashboard``: a small web app to watch and operate a store's durable queues.

A program, like ``cli/``: the core never imports it, and it needs the ``dashboard``
extra (Starlette and uvicorn), imported only here.  Its parts:

- ``_sampler.py``: the one reader of the store, on a timer, with the charts' history;
- ``_app.py``: the routes, the CSRF and token checks;
- ``static/``: the page (HTML, CSS and plain JavaScript, no build step), package data.

``conveyor.cli._dashboard`` parses the command line and serves it with uvicorn.
"""

from __future__ import annotations

from ._app import DashboardSettings, create_app
from ._sampler import Sampler

__all__ = ["DashboardSettings", "Sampler", "create_app"]
