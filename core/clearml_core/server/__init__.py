"""A ClearML server over clearml-core's control planes: ClearML's own SDK and clearml-agent use it.

* :mod:`.api` — the REST API (``/v2.X/service.action``), with :mod:`.services` one module a service;
* :mod:`.fileserver` — uploads, downloads and deletes, as ClearML's file server;
* :mod:`.web` — a page listing queues, workers and tasks, over the API;
* :mod:`.config` / :mod:`.settings` — ClearML server's configuration files and overrides;
* :mod:`.auth`, :mod:`.accounts`, :mod:`.fixed_users`, :mod:`.tokens`, :mod:`.ratelimit` — who calls;
* :mod:`.taskview` — ClearML's task document over the control plane's task record;
* :mod:`.app` — running the roles in one process, or one per process (``clearml-core server``).

Everything is stored through :func:`clearml_core.controlplane.open_control_plane`, so server
processes sharing one control plane serve the same queues. See docs/server.md.
"""

from __future__ import annotations
