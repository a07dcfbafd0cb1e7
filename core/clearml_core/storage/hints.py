"""Install hints for URL schemes served by plugins, or by fsspec clients, that are not installed."""

from __future__ import annotations

import importlib.util

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


# fsspec schemes whose client fsspec loads only when it is first used, so fsspec knows the scheme
# without the package: scheme -> (what it is, module it needs, what to pip install)
FSSPEC_PACKAGES: dict[str, tuple[str, str, str]] = {
    "hdfs": ("fsspec's HDFS client", "pyarrow", "pyarrow"),
    "arrow_hdfs": ("fsspec's HDFS client", "pyarrow", "pyarrow"),
}


def fsspec_install_hint(scheme: str) -> str | None:
    """``hdfs:// needs pyarrow …: pip install pyarrow`` when that package is missing, else None."""
    known = FSSPEC_PACKAGES.get(scheme.lower())
    if known is None:
        return None
    what, module, requirement = known
    try:
        if importlib.util.find_spec(module) is not None:
            return None
    except (ImportError, ValueError):
        pass
    return f"{scheme}:// needs {module} ({what} is built on it): pip install {requirement}"
