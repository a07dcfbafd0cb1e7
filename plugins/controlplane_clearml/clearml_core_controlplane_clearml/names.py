"""ClearML's ids of the queues and projects that clearml-core names: looked up by name through
the API, and remembered (a queue's id keeps its name after the queue is deleted, for the tasks
that were in it)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from clearml_core.controlplane import ControlPlaneError, QueueNotFoundError


def exactly(name: str) -> str:
    """A ClearML name filter (a regular expression) matching ``name`` alone."""
    return f"^{re.escape(name)}$"


class Names:
    """Queue and project ids ↔ names; ``call`` is the plane's API call (errors already mapped)."""

    def __init__(self, call: Callable[..., Any]) -> None:
        self._call = call
        self._lock = threading.Lock()
        self._queue_ids: dict[str, str] = {}
        self._queue_names: dict[str, str] = {}
        self._project_ids: dict[str, str] = {}
        self._project_names: dict[str, str] = {}

    def queue_id(self, name: str) -> str:
        with self._lock:
            known = self._queue_ids.get(name)
        if known:
            return known
        found = self.find_queue(name)
        if found is None:
            raise QueueNotFoundError(name)
        return str(found["id"])

    def find_queue(self, name: str) -> dict[str, Any] | None:
        queues = self._call("queues.get_all", {"name": exactly(name)}).get("queues") or []
        for doc in queues:
            self.remember_queue(doc)
        return next((doc for doc in queues if doc.get("name") == name), None)

    def remember_queue(self, doc: Mapping[str, Any]) -> None:
        with self._lock:
            self._queue_ids[str(doc["name"])] = str(doc["id"])
            self._queue_names[str(doc["id"])] = str(doc["name"])

    def forget_queue(self, name: str) -> None:
        """The name no longer names that queue; the id keeps its name (tasks that were in it)."""
        with self._lock:
            self._queue_ids.pop(name, None)

    def queue_name(self, queue_id: str) -> str:
        with self._lock:
            known = self._queue_names.get(queue_id)
        if known:
            return known
        try:
            doc = self._call("queues.get_by_id", {"queue": queue_id}, queue=queue_id)["queue"]
        except (QueueNotFoundError, ControlPlaneError, KeyError):
            return queue_id  # deleted since: the id is all there is
        self.remember_queue(doc)
        return str(doc["name"])

    def project_id(self, name: str, *, create: bool) -> str | None:
        if not name:
            return None
        with self._lock:
            known = self._project_ids.get(name)
        if known:
            return known
        projects = self._call("projects.get_all", {"name": exactly(name), "only_fields": ["id", "name"]})
        found = next((p for p in projects.get("projects") or [] if p.get("name") == name), None)
        if found is not None:
            project_id = str(found["id"])
        elif not create:
            return None
        else:
            try:
                project_id = str(self._call("projects.create", {"name": name, "description": ""})["id"])
            except ControlPlaneError:  # made by another client meanwhile
                again = self._call("projects.get_all", {"name": exactly(name), "only_fields": ["id", "name"]})
                matches = [p for p in again.get("projects") or [] if p.get("name") == name]
                if not matches:
                    raise
                project_id = str(matches[0]["id"])
        with self._lock:
            self._project_ids[name], self._project_names[project_id] = project_id, name
        return project_id

    def project_name(self, project_id: str) -> str:
        with self._lock:
            known = self._project_names.get(project_id)
        if known:
            return known
        try:
            doc = self._call("projects.get_by_id", {"project": project_id})["project"]
        except (ControlPlaneError, KeyError):
            return project_id
        name = str(doc.get("name") or project_id)
        with self._lock:
            self._project_names[project_id], self._project_ids[name] = name, project_id
        return name


__all__ = ["Names", "exactly"]
