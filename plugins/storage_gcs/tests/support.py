"""Helpers of the GCS plugin's tests: the emulator handle, ports, clearml.conf snippets, fake keys."""

from __future__ import annotations

import json
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Variables that would let the developer's own Google / MLflow setup leak into a test.
GOOGLE_VARIABLES = (
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "CLOUDSDK_CONFIG",
    "STORAGE_EMULATOR_HOST",
    "MLFLOW_GCS_UPLOAD_CHUNK_SIZE",
    "MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE",
    "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT",
    "MLFLOW_GCS_DEFAULT_TIMEOUT",
)


def emulator_executable() -> str:
    beside = Path(sys.executable).with_name("gcp-storage-emulator")
    if beside.exists():
        return str(beside)
    found = shutil.which("gcp-storage-emulator")
    if found is None:
        raise RuntimeError("gcp-storage-emulator is not installed: uv sync installs it (dev group)")
    return found


def emulator_command(port: int) -> list[str]:
    return [emulator_executable(), "start", "-H", "127.0.0.1", "--port", str(port), "--in-memory"]


@dataclass
class Emulator:
    port: int
    pid: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        """A plain google-cloud-storage client, for arranging and checking state beside the driver."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project="test-project",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.endpoint},
        )

    def new_bucket(self, prefix: str = "kit") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(name)
        return name


def load(text: str, folder: Path) -> Any:
    """A configuration from clearml.conf text (and the defaults), ignoring CLEARML__ variables."""
    from clearml_core.settings import load_config

    path = folder / f"clearml-{uuid.uuid4().hex[:8]}.conf"
    path.write_text(text, encoding="utf-8")
    return load_config(path, environ={})


def hocon(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(str(value))


def entry(**fields: Any) -> str:
    return "{ " + ", ".join(f"{k}: {hocon(v)}" for k, v in fields.items()) + " }"


def google_conf(*entries: str, **settings: Any) -> str:
    body = "".join(f"{k}: {hocon(v)}\n" for k, v in settings.items())
    return f"sdk.google.storage {{\n{body}credentials: [ {', '.join(entries)} ]\n}}\n"


_KEY_CACHE: dict[str, str] = {}


def fake_service_account(email: str = "tester@test-project.iam.gserviceaccount.com") -> dict[str, Any]:
    """A service-account key made here (RSA 2048, never known to Google); its token_uri is loopback."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if "pem" not in _KEY_CACHE:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _KEY_CACHE["pem"] = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
    return {
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": _KEY_CACHE["pem"],
        "client_email": email,
        "client_id": "123456789012345678901",
        "token_uri": "http://127.0.0.1:9/token",
    }


__all__ = [
    "GOOGLE_VARIABLES",
    "Emulator",
    "emulator_command",
    "entry",
    "fake_service_account",
    "google_conf",
    "load",
]
