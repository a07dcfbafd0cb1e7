"""Documents in Redis: one hash per kind, key → JSON (what a front end keeps beside the records)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from clearml_core.controlplane import ControlPlaneError
from clearml_core_controlplane_redis.base import RedisStore


class DocumentStore(RedisStore):
    """The document operations of the protocol (:meth:`ControlPlane.put_document` …)."""

    def put_document(
        self, kind: str, key: str, document: Mapping[str, Any], *, only_new: bool = False
    ) -> bool:
        data = json.dumps(dict(document))
        with self._redis() as client:
            if only_new:
                return bool(client.hsetnx(self.keys.documents(kind), key, data))
            client.hset(self.keys.documents(kind), key, data)
        return True

    def get_document(self, kind: str, key: str) -> dict[str, Any] | None:
        with self._redis() as client:
            text = client.hget(self.keys.documents(kind), key)
        return None if text is None else self._parse(kind, key, text)

    def list_documents(self, kind: str) -> dict[str, dict[str, Any]]:
        with self._redis() as client:
            found = client.hgetall(self.keys.documents(kind))
        return {key: self._parse(kind, key, found[key]) for key in sorted(found)}

    def delete_document(self, kind: str, key: str) -> bool:
        with self._redis() as client:
            return bool(client.hdel(self.keys.documents(kind), key))

    def _parse(self, kind: str, key: str, text: str) -> dict[str, Any]:
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise ControlPlaneError(
                f"the {kind} document {key!r} in Redis at {self.where} is not JSON clearml-core wrote; "
                "another program may use the same key prefix: give clearml-core its own with ?prefix=NAME"
            )
        return document


__all__ = ["DocumentStore"]
