"""``clearml-core storage``: copy, list, delete and fetch objects; explain credentials; the cache."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from clearml_core.cli.output import echo, echo_json, table

app = typer.Typer(help="Copy, list, delete and fetch objects on any storage.", no_args_is_help=True)
cache_app = typer.Typer(help="The local download cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")

F = TypeVar("F", bound=Callable[..., Any])


def _storage_errors(command: F) -> F:
    """A storage failure that is not the user's doing (network, server) prints one line, exits 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from clearml_core.errors import UserError
        from clearml_core.storage.errors import StorageError

        try:
            return command(*args, **kwargs)
        except StorageError as error:
            if isinstance(error, UserError):
                raise
            echo(f"error: {error}", err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return str(value)


def _time(value: float | None) -> str:
    if value is None:
        return "-"
    import datetime

    return datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@app.command("cp")
@_storage_errors
def cp(
    src: str = typer.Argument(..., help="Source URL or path."),
    dst: str = typer.Argument(..., help="Destination URL or path; ending in '/' means 'into this folder'."),
    recursive: bool = typer.Option(False, "-r", "--recursive", help="Copy a folder's contents."),
    jobs: int | None = typer.Option(
        None, "--jobs", "-j", min=1, help="Parallel transfers (default sdk.storage.transfer.max_workers)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON: each file's source, destination and size, and the totals."
    ),
) -> None:
    """Copy objects between any two locations (local paths, file://, http(s)://, s3://, …).

    A progress line shows on a terminal only (stderr); the sizes reported are the bytes copied.
    """
    from clearml_core.storage.manager import StorageManager

    report = StorageManager.copy(src, dst, recursive=recursive, jobs=jobs)
    count = len(report.done)
    if as_json:
        echo_json(
            {
                "files": [
                    {"source": job.source, "destination": job.target, "size": job.size} for job in report.done
                ],
                "count": count,
                "bytes": report.bytes,
            }
        )
        return
    echo(f"copied {count} file{'s' if count != 1 else ''} ({_size(report.bytes)})")


@app.command("ls")
@_storage_errors
def ls(
    url: str = typer.Argument(..., help="Folder (or object) URL."),
    recursive: bool = typer.Option(
        False, "-r", "--recursive", help="Everything below, not only the top level."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List a folder: size, modification time (UTC) and URL of each object."""
    from clearml_core.storage.manager import StorageManager

    infos = StorageManager.ls(url, recursive=recursive)
    if as_json:
        echo_json(
            [
                {
                    "url": str(info.url),
                    "name": info.name,
                    "size": info.size,
                    "mtime": info.mtime,
                    "etag": info.etag,
                    "content_type": info.content_type,
                    "is_dir": info.is_dir,
                }
                for info in infos
            ]
        )
        return
    table(
        ["SIZE", "MODIFIED", "URL"],
        [("DIR" if info.is_dir else _size(info.size), _time(info.mtime), str(info.url)) for info in infos],
    )


@app.command("rm")
@_storage_errors
def rm(
    url: str = typer.Argument(..., help="Object URL, or folder URL with -r."),
    recursive: bool = typer.Option(False, "-r", "--recursive", help="Delete everything under the folder."),
) -> None:
    """Delete an object (or, with -r, a folder's contents)."""
    from clearml_core.storage.manager import StorageManager

    count = StorageManager.delete(url, recursive=recursive)
    echo(f"deleted {count} object{'s' if count != 1 else ''}")


@app.command("get")
@_storage_errors
def get(
    url: str = typer.Argument(..., help="Object URL."),
    context: str | None = typer.Option(None, "--context", help="Cache context (default: global)."),
    extract: bool = typer.Option(False, "--extract", help="Extract an archive and print its folder."),
    force: bool = typer.Option(False, "--force", help="Download again even when cached."),
) -> None:
    """Download into the cache (once) and print the local path; local files print as they are."""
    from clearml_core.storage.manager import StorageManager

    path = StorageManager.get(url, cache_context=context, extract_archive=extract, force_download=force)
    echo(str(path))


@app.command("resolve")
def resolve(
    url: str = typer.Argument(..., help="Any storage URL."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Which backend serves a URL and which credentials it would use, and from where (masked)."""
    from clearml_core.credentials import explain
    from clearml_core.storage.resolution import describe_url, parse

    described = describe_url(url)
    resolution = explain(parse(url))
    extra = described.pop("details")
    # the backend's own fields (endpoint, region, …) sit beside the generic ones and win over them
    data = {**described, **resolution.to_json(), **extra}
    data["url"] = described["url"]
    if as_json:
        echo_json(data)
        return
    location = ", ".join(f"{k}={v}" for k, v in data["location"].items() if v not in (None, ""))
    tried = (
        ", ".join(f"{t['resolver']} ({'answered' if t['answered'] else 'no'})" for t in data["tried"]) or "-"
    )
    rows = [
        ("url", data["url"]),
        ("backend", f"{data['backend']} ({data['driver']})"),
        ("location", location or "-"),
        ("direct access", "yes" if data["direct_access"] else "no"),
        ("resolver", data["resolver"] or "none (anonymous / the backend's own defaults)"),
        ("source", data["source"] or "-"),
        ("key id", data["key_id"] or "-"),
        ("tried", tried),
    ]
    if data.get("substituted_from"):
        rows.insert(1, ("written as", data["substituted_from"]))
    shown = {"url", "backend", "resolver", "source"}
    rows += [(key, "-" if value is None else str(value)) for key, value in extra.items() if key not in shown]
    table(["FIELD", "VALUE"], rows)


@app.command("presign")
@_storage_errors
def presign(
    url: str = typer.Argument(..., help="Object URL (s3://…)."),
    method: str = typer.Option("get", "--method", help="get (download) or put (upload)."),
    expires: int = typer.Option(3600, "--expires", min=1, help="Seconds the URL stays valid."),
) -> None:
    """Print a URL that downloads (or uploads) the object without credentials, for a while."""
    from clearml_core.errors import UserError
    from clearml_core.storage.resolution import driver, parse

    if method.lower() not in ("get", "put"):
        raise UserError(f"--method must be get or put, not {method!r}")
    parsed = parse(url)
    echo(driver(parsed).presign(parsed, method=method.lower(), expires=expires))


@cache_app.command("ls")
def cache_ls(
    context: str | None = typer.Option(None, "--context", help="Only this cache context."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Cached entries, most recently used first."""
    from clearml_core.storage.cache import get_cache

    entries = get_cache().entries(context)
    if as_json:
        echo_json([entry.to_json() for entry in entries])
        return
    table(
        ["CONTEXT", "SIZE", "LAST USED", "URL / PATH"],
        [(e.context, _size(e.size), _time(e.last_access), e.url or str(e.path)) for e in entries],
    )


@cache_app.command("size")
def cache_size(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """How much the cache holds, per context, and the limits in force."""
    from clearml_core.storage.cache import get_cache

    data = get_cache().size()
    if as_json:
        echo_json(data)
        return
    echo(f"{data['path']}: {data['entries']} entries, {_size(data['bytes'])}")
    for name, stats in sorted(data["contexts"].items()):
        echo(f"  {name}: {stats['entries']} entries, {_size(stats['bytes'])}")
    limit = "none" if data["max_used_bytes"] < 0 else _size(data["max_used_bytes"])
    echo(
        f"limit: {limit}; keep free: {_size(data['min_free_bytes'])} (free now: {_size(data['free_bytes'])})"
    )


@cache_app.command("clear")
def cache_clear(
    context: str | None = typer.Option(None, "--context", help="Only this cache context."),
) -> None:
    """Remove cached entries (entries in use by another process are kept)."""
    from clearml_core.storage.cache import get_cache

    removed, freed, busy = get_cache().clear(context)
    echo(f"removed {removed} entr{'ies' if removed != 1 else 'y'}, freed {_size(freed)}")
    if busy:
        echo(f"kept {len(busy)} in use: {', '.join(busy)}", err=True)
