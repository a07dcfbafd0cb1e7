"""Helpers of the S3 plugin's tests: the moto server handle, ports, clearml.conf snippets."""

from __future__ import annotations

import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# re-exported: benchmarks/storage_cloud.py imports them from here
from clearml_core.testing.servers import free_port, wait_for_port

# Variables that would let the developer's own AWS / MLflow setup leak into a test.
AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CA_BUNDLE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "MLFLOW_S3_ENDPOINT_URL",
    "MLFLOW_S3_IGNORE_TLS",
    "MLFLOW_S3_UPLOAD_EXTRA_ARGS",
)

KEY = "AKIAMOTOTESTKEY12345"
SECRET = "moto-test-secret-0123456789abcdefghij"


@dataclass
class MotoServer:
    port: int
    pid: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, **kwargs: Any) -> Any:
        """A plain boto3 client, for arranging and checking server state beside the driver."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
            **kwargs,
        )

    def new_bucket(self, prefix: str = "bucket") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


def moto_executable() -> str:
    beside = Path(sys.executable).with_name("moto_server")
    if beside.exists():
        return str(beside)
    found = shutil.which("moto_server")
    if found is None:
        raise RuntimeError("moto_server is not installed: uv sync installs moto[server] (dev group)")
    return found


def moto_command(port: int) -> list[str]:
    return [moto_executable(), "-H", "127.0.0.1", "-p", str(port)]


def load(text: str, folder: Path) -> Any:
    """A configuration from clearml.conf text (and the defaults), ignoring CLEARML__ variables."""
    from clearml_core.settings import load_config

    path = folder / f"clearml-{uuid.uuid4().hex[:8]}.conf"
    path.write_text(text, encoding="utf-8")
    return load_config(path, environ={})


def endpoint_conf(server: MotoServer, **extra: Any) -> str:
    """clearml.conf text with one credentials entry for the moto server (http, path style)."""
    fields = {"host": server.netloc, "key": KEY, "secret": SECRET, "secure": False, **extra}
    body = ", ".join(f"{k}: {_hocon(v)}" for k, v in fields.items())
    return f"sdk.aws.s3.credentials: [ {{ {body} }} ]\n"


def _hocon(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}": {_hocon(v)}' for k, v in value.items()) + "}"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


__all__ = [
    "KEY",
    "SECRET",
    "MotoServer",
    "endpoint_conf",
    "free_port",
    "load",
    "moto_command",
    "moto_executable",
    "wait_for_port",
]
