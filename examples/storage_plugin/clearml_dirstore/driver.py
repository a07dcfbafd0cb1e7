"""The driver: the five methods every backend implements; the base class derives the rest."""

from pathlib import Path

from clearml_core.storage.driver import (
    TEMP_SUFFIX,
    Capabilities,
    ObjectInfo,
    StorageDriver,
    open_range,
    write_atomically,
)
from clearml_core.storage.errors import ObjectNotFoundError


class DirStoreDriver(StorageDriver):
    capabilities = Capabilities(ranges=True, atomic_write=True)

    def __init__(self, config, url):
        super().__init__(config, url)
        root = config.get_str("sdk.storage.dirstore.root", "~/.clearml-dirstore")
        self.root = Path(root).expanduser() / (url.host or "default")

    def _path(self, url):
        return self.root / url.path.lstrip("/")

    def open_read(self, url, byte_range=None):
        try:
            return open_range(self._path(url).open("rb"), byte_range)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFoundError(f"no such object: {url}") from None

    def upload_stream(self, stream, url, *, size=None, content_type=None, extra=None):
        self._path(url).parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self._path(url), stream)

    def stat(self, url):
        if not self._path(url).is_file():
            raise ObjectNotFoundError(f"no such object: {url}")
        found = self._path(url).stat()
        return ObjectInfo(url, size=found.st_size, mtime=found.st_mtime)

    def list(self, url, *, recursive=False):
        base = self._path(url.as_folder())
        for path in sorted(base.rglob("*") if recursive else base.glob("*")):
            if path.name.endswith(TEMP_SUFFIX) or (recursive and path.is_dir()):
                continue
            name = path.relative_to(base).as_posix()
            child = url.as_folder().join(name + "/" if path.is_dir() else name)
            yield ObjectInfo(child, is_dir=True) if path.is_dir() else self.stat(child)

    def delete(self, url):
        if not self._path(url).is_file():
            raise ObjectNotFoundError(f"no such object: {url}")
        self._path(url).unlink()
