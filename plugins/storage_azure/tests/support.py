"""Helpers of the Azure plugin's tests: the Azurite handle, ports, clearml.conf snippets."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
ACCOUNT = "devstoreaccount1"
# Azurite's published development key: Azurite accepts only this one for its default account.
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# A well-formed key Azurite refuses (base64 of other bytes).
WRONG_KEY = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3Jvbmc9PQ=="

# Variables that would let the developer's own Azure / MLflow setup leak into a test.
AZURE_VARIABLES = (
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_ACCOUNT",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "IDENTITY_ENDPOINT",
    "MSI_ENDPOINT",
)


def azurite_executable() -> str:
    """azurite-blob from the project-local npm folder (scripts/test.sh installs it), else PATH."""
    local = ROOT / ".local" / "node" / "node_modules" / ".bin" / "azurite-blob"
    if local.exists():
        return str(local)
    found = shutil.which("azurite-blob")
    if found is None:
        raise RuntimeError(
            "Azurite is not installed: scripts/test.sh installs it (npm install --prefix .local/node azurite)"
        )
    return found


def azurite_command(port: int, memory_mb: int = 256, location: Path | None = None) -> list[str]:
    """In memory (extents capped at ``memory_mb``), or on disk under ``location``.

    Run it with a temporary working folder: Azurite may write a debug log there.
    """
    storage = (
        ["--location", str(location)]
        if location
        else ["--inMemoryPersistence", "--extentMemoryLimit", str(memory_mb)]
    )
    return [
        azurite_executable(),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        *storage,
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--loose",
        "--silent",
    ]


@dataclass
class Azurite:
    port: int
    pid: int

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def account_url(self) -> str:
        return f"http://{self.netloc}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint={self.account_url};"
        )

    def service(self) -> Any:
        """A plain azure-storage-blob client, for arranging and checking server state beside the driver."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def new_container(self, prefix: str = "kit") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.service().create_container(name)
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
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def entry(**fields: Any) -> str:
    return "{ " + ", ".join(f"{k}: {hocon(v)}" for k, v in fields.items()) + " }"


def containers_conf(*entries: str, **settings: Any) -> str:
    """``sdk.azure.storage`` text with these container entries and transfer settings."""
    body = "".join(f"{k}: {hocon(v)}\n" for k, v in settings.items())
    return f"sdk.azure.storage {{\n{body}containers: [ {', '.join(entries)} ]\n}}\n"


def azurite_conf(server: Azurite, **settings: Any) -> str:
    """One account-wide entry that sends devstoreaccount1 to the Azurite server."""
    return containers_conf(
        entry(account_name=ACCOUNT, account_key=KEY, account_url=server.account_url), **settings
    )


__all__ = [
    "ACCOUNT",
    "AZURE_VARIABLES",
    "KEY",
    "WRONG_KEY",
    "Azurite",
    "azurite_command",
    "azurite_conf",
    "containers_conf",
    "entry",
    "load",
]
