"""Install hints for URL schemes served by plugins that are not installed."""

from __future__ import annotations

# scheme -> (backend description, extra of clearml-core that installs it)
OFFICIAL_BACKENDS: dict[str, tuple[str, str]] = {
    "s3": ("the S3 backend", "s3"),
    "azure": ("the Azure Blob backend", "azure"),
    "wasbs": ("the Azure Blob backend", "azure"),
    "wasb": ("the Azure Blob backend", "azure"),
    "abfs": ("the Azure Blob backend", "azure"),
    "abfss": ("the Azure Blob backend", "azure"),
    "gs": ("the Google Cloud Storage backend", "gs"),
    "gcs": ("the Google Cloud Storage backend", "gs"),
    "sftp": ("the SFTP backend", "sftp"),
}


def install_hint(scheme: str) -> str | None:
    """``s3:// needs the S3 backend: pip install 'clearml-core[s3]'``, or None for other schemes."""
    known = OFFICIAL_BACKENDS.get(scheme.lower())
    if known is None:
        return None
    what, extra = known
    return f"{scheme}:// needs {what}: pip install 'clearml-core[{extra}]'"
