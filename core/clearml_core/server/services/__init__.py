"""The API's services, one module each; importing this package registers their endpoints."""

from __future__ import annotations

from clearml_core.server.services import auth, events, projects, queues, server, tasks, users, workers

__all__ = ["auth", "events", "projects", "queues", "server", "tasks", "users", "workers"]
