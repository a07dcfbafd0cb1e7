"""Projects: ClearML's folders of tasks, kept as documents in the control plane.

Tasks keep their project's *name* (clearml-core's CLI writes names too); a project's id is derived
from its name (:func:`~clearml_core.server.context.project_id`), so every server process gives one
project the same id without asking another. Renaming is not offered: it would change the id.
A project a task names but nobody created (clearml-core's ``task create --project``) is listed too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from clearml_core.controlplane import ControlPlane
from clearml_core.server.errors import api_error
from clearml_core.server.ids import project_id

KIND = "server.projects"


class Projects:
    def __init__(self, plane: ControlPlane, *, clock: Callable[[], float] = time.time) -> None:
        self.plane = plane
        self.clock = clock
        self._names: dict[str, str] = {}
        self._lock = threading.Lock()

    def name_of(self, pid: str) -> str:
        """The name of project ``pid``, or 400 invalid project id."""
        found = self._names.get(pid)
        if found is not None:
            return found
        found = next((doc["name"] for key, doc in self.all().items() if key == pid), None)
        if found is None:
            raise api_error("invalid_project_id", id=pid)
        return str(found)

    def create(self, name: str, *, user: str, company: str, **fields: Any) -> str:
        """A new project; an existing name is 400 expected unique data."""
        name = name.strip().strip("/")
        if not name:
            raise api_error("invalid_project_name", "a project needs a name", name=name)
        pid = project_id(name)
        record = {"name": name, "user": user, "company": company, "created": self.clock(), **fields}
        if not self.plane.put_document(KIND, pid, record, only_new=True) or pid in self._task_projects():
            raise api_error("expected_unique_data", "a project of that name exists", name=name)
        self._remember(pid, name)
        return pid

    def ensure(self, name: str, *, user: str, company: str) -> str:
        """The id of project ``name``, made when missing (tasks created with a project name)."""
        pid = project_id(name)
        if pid not in self._names:
            self.plane.put_document(
                KIND,
                pid,
                {"name": name, "user": user, "company": company, "created": self.clock()},
                only_new=True,
            )
            self._remember(pid, name)
        return pid

    def update(self, pid: str, fields: dict[str, Any]) -> dict[str, Any]:
        doc = self.all().get(pid)
        if doc is None:
            raise api_error("invalid_project_id", id=pid)
        if "name" in fields and fields["name"] != doc["name"]:
            raise api_error("not_supported", "this server cannot rename projects", project=pid)
        doc.update({key: value for key, value in fields.items() if key != "name"})
        doc["last_update"] = self.clock()
        self.plane.put_document(KIND, pid, doc)
        return doc

    def delete(self, pid: str) -> bool:
        with self._lock:
            self._names.pop(pid, None)
        return self.plane.delete_document(KIND, pid)

    def all(self) -> dict[str, dict[str, Any]]:
        """Every project by id: the created ones and the ones tasks name."""
        docs = self.plane.list_documents(KIND)
        for pid, name in self._task_projects().items():
            docs.setdefault(pid, {"name": name, "created": None})
        with self._lock:
            self._names = {pid: str(doc["name"]) for pid, doc in docs.items()}
        return docs

    def _task_projects(self) -> dict[str, str]:
        names = {task.project for task in self.plane.list_tasks() if task.project}
        return {project_id(name): name for name in names}

    def _remember(self, pid: str, name: str) -> None:
        with self._lock:
            self._names[pid] = name


__all__ = ["KIND", "Projects"]
