"""The hooks: describe the backend; the driver module is imported only when a dirstore:// URL is used."""

from pathlib import Path

from clearml_core import StorageBackendSpec, hookimpl


@hookimpl
def clearml_storage_backends():
    return [
        StorageBackendSpec(
            name="dirstore",
            schemes=("dirstore",),
            factory="clearml_dirstore.driver:DirStoreDriver",
            install_hint="pip install clearml-dirstore",
        )
    ]


@hookimpl
def clearml_config_defaults():
    return [Path(__file__).with_name("defaults.conf")]
