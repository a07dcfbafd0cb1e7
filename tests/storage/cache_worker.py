"""Run one cache fetch in its own process (the cache tests start several at once).

python cache_worker.py CACHE_DIR SOURCE LOG NAME [--delay S] [--start-file F [--ready-file R]] [--force] [--stay]

The "download" copies SOURCE in 64 KiB chunks, sleeping ``--delay`` seconds between chunks, and
appends one line to LOG per download, so the test can count downloads across processes. With
``--start-file`` the worker touches ``--ready-file`` (when given) and waits until the start file
exists, so the test lets every worker go at once. Prints the cached path; with ``--stay`` it then
waits to be killed, so a test that kills it at some point of the fetch never finds it gone.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from clearml_core.storage.cache import Cache, CacheSettings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("cache_dir")
    parser.add_argument("source")
    parser.add_argument("log")
    parser.add_argument("name")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--start-file")
    parser.add_argument("--ready-file")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--stay", action="store_true")
    args = parser.parse_args()

    if args.start_file:  # all workers wait here, then go at once
        if args.ready_file:
            Path(args.ready_file).touch()
        while not os.path.exists(args.start_file):
            time.sleep(0.005)

    def download(partial: Path) -> None:
        with open(args.log, "a") as log:
            log.write(f"{os.getpid()}\n")
        with open(args.source, "rb") as src, open(partial, "wb") as out:
            while chunk := src.read(64 * 1024):
                out.write(chunk)
                out.flush()
                if args.delay:
                    time.sleep(args.delay)

    cache = Cache(CacheSettings(base_dir=Path(args.cache_dir), default_file_limit=1000))
    path = cache.fetch(None, args.name, download, url=f"test://{args.name}", force=args.force)
    sys.stdout.write(f"{path}\n")
    sys.stdout.flush()
    while args.stay:
        signal.pause()


if __name__ == "__main__":
    main()
