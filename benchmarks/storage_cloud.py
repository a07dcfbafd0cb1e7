"""clearml-core's cloud backends against hand-tuned SDK code and ClearML, on loopback servers.

One section per cloud; each starts its own server on 127.0.0.1, runs the same workloads through
three clients, each in its own process, and adds rows to one table:

* **clearml-core** — ``StorageManager`` with a clearml.conf entry for the server;
* **hand-tuned SDK** — the cloud's SDK used the way an expert would (S3: boto3, 16 threads of
  ``put_object`` / ``get_object`` for small files, ``TransferConfig`` with 16 threads for one
  large object);
* **ClearML** — ``clearml.StorageManager`` from the ``clearml`` package, installed by this script
  into its own virtual environment (``.local/bench-clearml-s3``), never the project's.

S3 targets (moto server): 500 x 64 KiB ``upload_folder`` / ``download_folder`` and one 200 MB
object up and down at ≥ 0.9x the hand-tuned SDK's speed; ClearML shown beside (the issue expects
≥ 1.2x its upload and ≥ 2x its download); requests per small object counted at the server
through a counting proxy (1 PUT per upload, 1 GET per download, no HEAD).

moto is the bottleneck here (one Werkzeug process), so the numbers compare clients on equal
terms rather than measure S3. Run: ``uv run python benchmarks/storage_cloud.py`` (``--quick``
for a smoke run, ``--rounds N``). Exits 1 when a target fails.

Azure (Azurite from npm, on disk) and GCS (gcp-storage-emulator, in memory): one 200 MB object up
and down through clearml-core and through the SDK used directly (azure-storage-blob with the same
``max_concurrency``, google-cloud-storage's ``upload_from_filename`` / ``download_to_filename``),
at ≥ 0.9x the SDK (``--clouds azure,gcs``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clearml_core.testing.proxy import CountingProxy  # noqa: E402
from plugins.storage_s3.tests.support import KEY, SECRET, free_port, moto_executable, wait_for_port  # noqa: E402

BASELINE_VENV = ROOT / ".local" / "bench-clearml-s3"


@dataclass
class Row:
    target: str
    ours: str
    sdk: str
    clearml: str
    ratio: str
    goal: str
    passed: bool | None  # None: shown for information, not a target


# -- the baseline environment ------------------------------------------------------------------


def baseline_python(venv: Path, install: bool, packages: list[str]) -> tuple[str, str]:
    """ClearML's interpreter (installed with ``packages`` on first use) and ClearML's version."""
    python = venv / "bin" / "python"
    if not python.exists():
        if not install:
            sys.exit(f"no baseline environment at {venv}; run without --no-install to create it")
        uv = shutil.which("uv")
        if uv is None:
            sys.exit("uv is needed to build the baseline environment (pip install uv)")
        print(f"installing {' '.join(packages)} into {venv} (once) …", file=sys.stderr)
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
        subprocess.run([uv, "pip", "install", "-q", "--python", str(python), *packages], check=True)
    version = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('clearml'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return str(python), version


def run_snippet(python: str, code: str, env: dict[str, str], *args: str) -> dict[str, float]:
    """Run ``code`` in a fresh interpreter; it prints one JSON object on its last line."""
    completed = subprocess.run(
        [python, "-c", code, *args], capture_output=True, text=True, env=env, timeout=1800, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark client failed ({python}):\n{completed.stdout}\n{completed.stderr}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def isolated_env(home: Path, conf: str, *, clearml: bool) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "clearml.conf").write_text(conf)
    drop = ("CLEARML", "PYTHON", "AWS_", "MLFLOW_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(HOME=str(home), AWS_EC2_METADATA_DISABLED="true", PYTHONPATH=str(ROOT))
    if clearml:
        env["CLEARML_OFFLINE_MODE"] = "1"  # no ClearML server; storage works offline
    else:
        env["CLEARML_CACHE_DIR"] = str(home / "cache")
    return env


# -- S3 -----------------------------------------------------------------------------------------

S3_CONF = """\
api {{
  api_server: "http://127.0.0.1:9"
  web_server: "http://127.0.0.1:9"
  files_server: "http://127.0.0.1:9"
  credentials {{ access_key: "benchmark", secret_key: "benchmark" }}
}}
sdk.aws.s3.credentials: [ {{ host: "{netloc}", key: "{key}", secret: "{secret}", secure: false }} ]
"""

OURS_FOLDER = """
import json, sys, time
from clearml_core.storage.manager import StorageManager
action, local, remote = sys.argv[1:4]
StorageManager.exists_file(remote + "warm-up")  # set-up outside the timer: config, plugins, client
start = time.perf_counter()
if action == "upload":
    StorageManager.upload_folder(local, remote)
else:
    StorageManager.download_folder(remote, local)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""

CLEARML_FOLDER = """
import json, logging, sys, time
logging.disable(logging.WARNING)
from clearml import StorageManager
action, local, remote = sys.argv[1:4]
StorageManager.exists_file(remote + "warm-up")  # set-up outside the timer: config, client
start = time.perf_counter()
if action == "upload":
    StorageManager.upload_folder(local, remote)
else:
    StorageManager.download_folder(remote, local)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""

BOTO3_FOLDER = """
import json, os, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import boto3
from botocore.config import Config
action, local, remote, endpoint = sys.argv[1:5]
bucket, _, prefix = remote.split("/", 3)[3].partition("/")
client = boto3.client(
    "s3", endpoint_url=endpoint, region_name="us-east-1",
    aws_access_key_id=os.environ["BENCH_KEY"], aws_secret_access_key=os.environ["BENCH_SECRET"],
    config=Config(max_pool_connections=32, signature_version="s3v4", s3={"addressing_style": "path"},
                  request_checksum_calculation="when_required", response_checksum_validation="when_required"),
)
root = Path(local)
try:  # set-up outside the timer, as the other clients do: one request opens a connection
    client.head_object(Bucket=bucket, Key="warm-up")
except Exception:
    pass
start = time.perf_counter()
if action == "upload":
    files = [p for p in root.rglob("*") if p.is_file()]
    def put(path):
        with open(path, "rb") as body:
            client.put_object(Bucket=bucket, Key=prefix + path.relative_to(root).as_posix(), Body=body)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, files))
else:
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", ())]
    def get(key):
        target = root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        with open(target, "wb") as out:
            for chunk in iter(lambda: body.read(1 << 20), b""):
                out.write(chunk)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(get, keys))
print(json.dumps({"seconds": time.perf_counter() - start}))
"""

OURS_LARGE = """
import json, sys, time
from clearml_core.storage.manager import StorageManager
action, local, remote = sys.argv[1:4]
StorageManager.exists_file(remote + ".warm-up")  # set-up outside the timer: config, plugins, client
start = time.perf_counter()
if action == "upload":
    StorageManager.upload_file(local, remote)
else:
    from clearml_core.storage.backends import driver_for
    from clearml_core.storage.url import parse_url
    url = parse_url(remote)
    driver_for(url).download_file(url, local)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""

BOTO3_LARGE = """
import json, os, sys, time
import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
action, local, remote, endpoint = sys.argv[1:5]
bucket, _, key = remote.split("/", 3)[3].partition("/")
client = boto3.client(
    "s3", endpoint_url=endpoint, region_name="us-east-1",
    aws_access_key_id=os.environ["BENCH_KEY"], aws_secret_access_key=os.environ["BENCH_SECRET"],
    config=Config(max_pool_connections=32, signature_version="s3v4", s3={"addressing_style": "path"},
                  request_checksum_calculation="when_required", response_checksum_validation="when_required"),
)
transfer = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20, max_concurrency=16)
try:  # set-up outside the timer, as the other clients do: one request opens a connection
    client.head_object(Bucket=bucket, Key="warm-up")
except Exception:
    pass
start = time.perf_counter()
if action == "upload":
    client.upload_file(local, bucket, key, Config=transfer)
else:
    client.download_file(bucket, key, local, Config=transfer)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""

CLEARML_LARGE = """
import json, logging, sys, time
logging.disable(logging.WARNING)
from clearml import StorageManager
action, local, remote = sys.argv[1:4]
StorageManager.exists_file(remote + ".warm-up")  # set-up outside the timer: config, client
start = time.perf_counter()
if action == "upload":
    StorageManager.upload_file(local, remote)
else:
    import os
    StorageManager.download_file(remote, os.path.dirname(local), overwrite=True)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


class MotoProcess:
    def __init__(self, work: Path) -> None:
        self.port = free_port()
        self.log = (work / "moto.log").open("wb")
        self.process = subprocess.Popen(
            [moto_executable(), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, self.process)

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=f"http://{self.netloc}",
            region_name="us-east-1",
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.log.close()


def _empty_prefix(client, bucket: str, prefix: str) -> None:  # type: ignore[no-untyped-def]
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", ())]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def _make_folder(root: Path, files: int, size: int) -> Path:
    root.mkdir(parents=True)
    for index in range(files):
        path = root / f"part-{index % 10}" / f"file-{index:04d}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(os.urandom(size))
    return root


def _speed_ratio(ours: float, other: float) -> float:
    """How many times faster ours is (other's time / ours)."""
    return other / ours if ours > 0 else float("inf")


def s3_section(args: argparse.Namespace, work: Path) -> list[Row]:
    clearml_python, clearml_version = baseline_python(
        args.baseline_venv, not args.no_install, ["clearml", "boto3"]
    )
    args.clearml_version = clearml_version
    moto = MotoProcess(work)
    rows: list[Row] = []
    try:
        bucket = "bench"
        moto.client().create_bucket(Bucket=bucket)
        conf = S3_CONF.format(netloc=moto.netloc, key=KEY, secret=SECRET)
        sides: dict[str, tuple[str, dict[str, str]]] = {
            "ours": (
                sys.executable,
                _only_plugin(isolated_env(work / "home-ours", conf, clearml=False), "storage_s3"),
            ),
            "sdk": (sys.executable, isolated_env(work / "home-sdk", conf, clearml=False)),
            "clearml": (clearml_python, isolated_env(work / "home-clearml", conf, clearml=True)),
        }
        for _python, env in sides.values():
            env.update(BENCH_KEY=KEY, BENCH_SECRET=SECRET)
        endpoint = f"http://{moto.netloc}"
        folder_code = {"ours": OURS_FOLDER, "sdk": BOTO3_FOLDER, "clearml": CLEARML_FOLDER}
        large_code = {"ours": OURS_LARGE, "sdk": BOTO3_LARGE, "clearml": CLEARML_LARGE}

        # -- 500 x 64 KiB, folder up and down ----------------------------------------------------
        source = _make_folder(work / "small-src", args.files, args.file_kib * 1024)
        times: dict[str, dict[str, list[float]]] = {s: {"upload": [], "download": []} for s in sides}
        names = list(sides)
        for round_ in range(args.rounds):
            # the order rotates every round, and each client's objects are deleted after it, so no
            # client always runs first, last, or against a fuller server
            for side in names[round_ % len(names) :] + names[: round_ % len(names)]:
                python, env = sides[side]
                remote = f"s3://{moto.netloc}/{bucket}/small-{side}-{round_}/"
                print(f"S3 folder, round {round_ + 1}/{args.rounds}: {side} …", file=sys.stderr)
                up = run_snippet(python, folder_code[side], env, "upload", str(source), remote, endpoint)
                target = work / f"small-dst-{side}-{round_}"
                down = run_snippet(python, folder_code[side], env, "download", str(target), remote, endpoint)
                got = [p for p in target.rglob("*") if p.is_file()]
                if len(got) != args.files:
                    raise RuntimeError(f"{side} downloaded {len(got)} of {args.files} files")
                times[side]["upload"].append(up["seconds"])
                times[side]["download"].append(down["seconds"])
                shutil.rmtree(target)
                _empty_prefix(moto.client(), bucket, f"small-{side}-{round_}/")
        label = f"{args.files} x {args.file_kib} KiB"
        for action in ("upload", "download"):
            best = {side: min(times[side][action]) for side in sides}
            vs_sdk = _speed_ratio(best["ours"], best["sdk"])
            vs_clearml = _speed_ratio(best["ours"], best["clearml"])
            rows.append(
                Row(
                    f"S3 {action}_folder {label}",
                    f"{best['ours']:.2f} s",
                    f"{best['sdk']:.2f} s",
                    f"{best['clearml']:.2f} s",
                    f"{vs_sdk:.2f}x boto3, {vs_clearml:.2f}x ClearML",
                    "≥ 0.90x boto3",
                    vs_sdk >= 0.9,
                )
            )
            goal = 1.2 if action == "upload" else 2.0
            rows.append(
                Row(
                    f"S3 {action}_folder vs ClearML",
                    f"{best['ours']:.2f} s",
                    "",
                    f"{best['clearml']:.2f} s",
                    f"{vs_clearml:.2f}x",
                    f"≥ {goal:.1f}x ClearML (issue, informative)",
                    None,
                )
            )

        # -- one large object up and down --------------------------------------------------------
        big = work / "large.bin"
        with big.open("wb") as out:
            for _ in range(args.large_mb):
                out.write(os.urandom(1 << 20))
        large_times: dict[str, dict[str, list[float]]] = {
            s: {"upload": [], "download": []} for s in ("ours", "sdk")
        }
        for round_ in range(args.rounds):
            for side in ("ours", "sdk") if round_ % 2 == 0 else ("sdk", "ours"):
                python, env = sides[side]
                remote = f"s3://{moto.netloc}/{bucket}/large-{side}.bin"
                print(f"S3 {args.large_mb} MB, round {round_ + 1}/{args.rounds}: {side} …", file=sys.stderr)
                up = run_snippet(python, large_code[side], env, "upload", str(big), remote, endpoint)
                local = work / f"large-{side}.out"
                down = run_snippet(python, large_code[side], env, "download", str(local), remote, endpoint)
                if local.stat().st_size != big.stat().st_size:
                    raise RuntimeError(
                        f"{side} downloaded {local.stat().st_size} bytes of {big.stat().st_size}"
                    )
                local.unlink()
                large_times[side]["upload"].append(up["seconds"])
                large_times[side]["download"].append(down["seconds"])
                moto.client().delete_object(Bucket=bucket, Key=f"large-{side}.bin")
        for action in ("upload", "download"):
            ours, sdk = min(large_times["ours"][action]), min(large_times["sdk"][action])
            ratio = _speed_ratio(ours, sdk)
            rows.append(
                Row(
                    f"S3 one {args.large_mb} MB object, {action}",
                    f"{ours:.2f} s ({args.large_mb / ours:.0f} MB/s)",
                    f"{sdk:.2f} s ({args.large_mb / sdk:.0f} MB/s)",
                    "",
                    f"{ratio:.2f}x boto3",
                    "≥ 0.90x boto3",
                    ratio >= 0.9,
                )
            )
        big.unlink()

        # -- requests per small object, counted at the server ---------------------------------------
        proxy = CountingProxy(moto.port).start()
        try:
            count_source = _make_folder(work / "count-src", args.count_files, 4096)
            proxied = S3_CONF.format(netloc=proxy.netloc, key=KEY, secret=SECRET)
            counts: dict[str, dict[str, str]] = {}
            for side, (python, _env) in sides.items():
                env = isolated_env(work / f"home-count-{side}", proxied, clearml=side == "clearml")
                if side == "ours":
                    _only_plugin(env, "storage_s3")
                env.update(BENCH_KEY=KEY, BENCH_SECRET=SECRET)
                remote = f"s3://{proxy.netloc}/{bucket}/count-{side}/"
                counts[side] = {}
                for action, local in (("upload", count_source), ("download", work / f"count-dst-{side}")):
                    proxy.reset()
                    run_snippet(
                        python, folder_code[side], env, action, str(local), remote, f"http://{proxy.netloc}"
                    )
                    counts[side][action] = _per_object(proxy, bucket, args.count_files)
            for action in ("upload", "download"):
                expected = "1 PUT" if action == "upload" else "1 GET"
                ours = counts["ours"][action]
                rows.append(
                    Row(
                        f"S3 requests per small object, {action}",
                        ours,
                        counts["sdk"][action],
                        counts["clearml"][action],
                        "",
                        expected + " (listing aside)",
                        ours == expected,
                    )
                )
        finally:
            proxy.stop()
    finally:
        moto.stop()
    return rows


def _per_object(proxy: CountingProxy, bucket: str, objects: int) -> str:
    """``1 PUT`` / ``2 HEAD + 1 GET``: object requests per object, listing requests left out."""
    tally: dict[str, int] = {}
    with proxy._lock:
        requests = list(proxy.requests)
    for method, path, query in requests:
        if path.rstrip("/") == f"/{bucket}" or "list-type" in query or method == "POST":
            continue  # listing (and multipart bookkeeping, none here)
        if path.endswith("warm-up"):
            continue  # each client's set-up request, made before it is timed
        tally[method] = tally.get(method, 0) + 1
    parts = [f"{count / objects:g} {method}" for method, count in sorted(tally.items(), key=lambda kv: kv[0])]
    return " + ".join(parts) or "0"


# -- Azure and GCS: one large object up and down --------------------------------------------------

AZURE_SDK_LARGE = """
import json, os, sys, time
from azure.storage.blob import BlobServiceClient
action, local, remote = sys.argv[1:4]
parts = remote.split("/")
container, blob = parts[3], "/".join(parts[4:])
concurrency = int(os.environ["BENCH_CONCURRENCY"])
service = BlobServiceClient.from_connection_string(os.environ["BENCH_CONNECTION_STRING"])
client = service.get_blob_client(container, blob)
service.get_container_client(container).get_container_properties()  # set-up outside the timer
start = time.perf_counter()
if action == "upload":
    with open(local, "rb") as data:
        client.upload_blob(data, overwrite=True, max_concurrency=concurrency)
else:
    with open(local, "wb") as out:
        client.download_blob(max_concurrency=concurrency).readinto(out)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""

GCS_SDK_LARGE = """
import json, sys, time
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
action, local, remote = sys.argv[1:4]
bucket_name, _, key = remote[len("gs://"):].partition("/")
client = storage.Client(project="bench", credentials=AnonymousCredentials())  # STORAGE_EMULATOR_HOST
bucket = client.bucket(bucket_name)
bucket.get_blob("warm-up")  # set-up outside the timer: one request opens a connection
start = time.perf_counter()
if action == "upload":
    bucket.blob(key).upload_from_filename(local)
else:
    bucket.blob(key).download_to_filename(local)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


class ServerProcess:
    """A loopback server started for one section, stopped by its PID."""

    def __init__(self, command: list[str], port: int, work: Path, name: str) -> None:
        self.port = port
        self.log = (work / f"{name}.log").open("wb")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, cwd=work)
        wait_for_port(port, self.process)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.log.close()


def _only_plugin(env: dict[str, str], plugin: str) -> dict[str, str]:
    """Only ``plugin`` loads in a clearml-core client: another workspace plugin never weighs in."""
    from importlib.metadata import entry_points

    others = sorted({ep.name for ep in entry_points(group="clearml_core.plugins")} - {plugin})
    env["CLEARML_CORE_DISABLE_PLUGINS"] = ",".join(others)
    return env


def _large_file(work: Path, megabytes: int) -> Path:
    big = work / "large.bin"
    if not big.exists():
        with big.open("wb") as out:
            for _ in range(megabytes):
                out.write(os.urandom(1 << 20))
    return big


def large_object_rows(
    args: argparse.Namespace,
    work: Path,
    cloud: str,
    sdk_name: str,
    sides: dict[str, tuple[str, dict[str, str], str]],
    remote_for: Callable[[str], str],
    forget: Callable[[str], None],
) -> list[Row]:
    """One ``args.large_mb`` MB object up and down through each side; best of the rounds."""
    big = _large_file(work, args.large_mb)
    times: dict[str, dict[str, list[float]]] = {s: {"upload": [], "download": []} for s in sides}
    for round_ in range(args.rounds):
        # alternate who goes first: a loopback emulator may slow down as it serves more data
        order = list(sides) if round_ % 2 == 0 else list(sides)[::-1]
        for side in order:
            python, env, code = sides[side]
            remote = remote_for(side)
            print(f"{cloud} {args.large_mb} MB, round {round_ + 1}/{args.rounds}: {side} …", file=sys.stderr)
            up = run_snippet(python, code, env, "upload", str(big), remote)
            local = work / f"large-{side}.out"
            down = run_snippet(python, code, env, "download", str(local), remote)
            if local.stat().st_size != big.stat().st_size:
                raise RuntimeError(f"{side} downloaded {local.stat().st_size} bytes of {big.stat().st_size}")
            local.unlink()
            forget(remote)
            times[side]["upload"].append(up["seconds"])
            times[side]["download"].append(down["seconds"])
    rows = []
    for action in ("upload", "download"):
        ours, sdk = min(times["ours"][action]), min(times["sdk"][action])
        ratio = _speed_ratio(ours, sdk)
        rows.append(
            Row(
                f"{cloud} one {args.large_mb} MB object, {action}",
                f"{ours:.2f} s ({args.large_mb / ours:.0f} MB/s)",
                f"{sdk:.2f} s ({args.large_mb / sdk:.0f} MB/s)",
                "",
                f"{ratio:.2f}x {sdk_name}",
                f"≥ 0.90x {sdk_name}",
                ratio >= 0.9,
            )
        )
    return rows


def azure_section(args: argparse.Namespace, work: Path) -> list[Row]:
    """Azurite (npm, on disk): clearml-core vs azure-storage-blob, both max_concurrency N."""
    from plugins.storage_azure.tests.support import ACCOUNT, Azurite, azurite_command, azurite_conf

    port = free_port()
    # on disk: in memory, Azurite frees deleted blobs' extents only after a while
    data = work / "azurite-data"
    data.mkdir()
    server = ServerProcess(azurite_command(port, location=data), port, work, "azurite")
    try:
        azurite = Azurite(port, server.process.pid)
        container = "bench"
        azurite.service().create_container(container)
        concurrency = args.azure_concurrency
        conf = azurite_conf(azurite, max_connections=concurrency)
        sdk_env = isolated_env(work / "home-azure-sdk", "", clearml=False)
        sdk_env.update(BENCH_CONNECTION_STRING=azurite.connection_string, BENCH_CONCURRENCY=str(concurrency))
        sides = {
            "ours": (
                sys.executable,
                _only_plugin(isolated_env(work / "home-azure-ours", conf, clearml=False), "storage_azure"),
                OURS_LARGE,
            ),
            "sdk": (sys.executable, sdk_env, AZURE_SDK_LARGE),
        }
        service = azurite.service()

        def forget(remote: str) -> None:
            service.get_blob_client(container, remote.rsplit("/", 1)[1]).delete_blob()

        return large_object_rows(
            args,
            work,
            "Azure",
            f"azure-storage-blob (max_concurrency={concurrency})",
            sides,
            lambda side: f"azure://{ACCOUNT}.blob.core.windows.net/{container}/large-{side}.bin",
            forget,
        )
    finally:
        server.stop()


def gcs_section(args: argparse.Namespace, work: Path) -> list[Row]:
    """gcp-storage-emulator (in memory): clearml-core vs google-cloud-storage used directly."""
    from plugins.storage_gcs.tests.support import Emulator, emulator_command

    port = free_port()
    server = ServerProcess(emulator_command(port), port, work, "gcs-emulator")
    try:
        emulator = Emulator(port, server.process.pid)
        bucket = "bench"
        emulator.client().create_bucket(bucket)
        sides: dict[str, tuple[str, dict[str, str], str]] = {}
        for side, code in (("ours", OURS_LARGE), ("sdk", GCS_SDK_LARGE)):
            env = isolated_env(work / f"home-gcs-{side}", "", clearml=False)
            env["STORAGE_EMULATOR_HOST"] = emulator.endpoint
            sides[side] = (sys.executable, _only_plugin(env, "storage_gcs"), code)
        client = emulator.client()

        def forget(remote: str) -> None:
            client.bucket(bucket).blob(remote.rsplit("/", 1)[1]).delete()

        return large_object_rows(
            args,
            work,
            "GCS",
            "google-cloud-storage",
            sides,
            lambda side: f"gs://{bucket}/large-{side}.bin",
            forget,
        )
    finally:
        server.stop()


SECTIONS: dict[str, Callable[[argparse.Namespace, Path], list[Row]]] = {
    "s3": s3_section,
    "azure": azure_section,
    "gcs": gcs_section,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clouds", default=",".join(SECTIONS), help="comma-separated: " + ", ".join(SECTIONS)
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one round (a smoke run)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best of each is kept")
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--file-kib", type=int, default=64)
    parser.add_argument("--large-mb", type=int, default=200)
    parser.add_argument("--count-files", type=int, default=20)
    parser.add_argument(
        "--azure-concurrency", type=int, default=4, help="max_concurrency of both Azure clients"
    )
    parser.add_argument(
        "--baseline-venv", type=Path, default=BASELINE_VENV, help="where ClearML is installed"
    )
    parser.add_argument(
        "--no-install", action="store_true", help="fail instead of creating the baseline venv"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.files, args.large_mb, args.count_files = 1, 50, 20, 5
    args.clearml_version = "?"
    work = Path(tempfile.mkdtemp(prefix="clearml-core-cloud-bench-"))
    rows: list[Row] = []
    started = time.monotonic()
    try:
        for name in args.clouds.split(","):
            rows += SECTIONS[name.strip()](args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(
        f"cloud storage benchmark: clearml-core vs hand-tuned SDKs and ClearML {args.clearml_version}; "
        f"python {platform.python_version()}, {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs; "
        f"{time.monotonic() - started:.0f} s"
    )
    headers = (
        "target",
        "clearml-core",
        "hand-tuned SDK",
        f"ClearML {args.clearml_version}",
        "ratio",
        "goal",
        "result",
    )
    table = [headers] + [
        (
            r.target,
            r.ours,
            r.sdk,
            r.clearml,
            r.ratio,
            r.goal,
            "-" if r.passed is None else "PASS" if r.passed else "FAIL",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    for row in table:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    print(
        textwrap.dedent(
            f"""
            best of {args.rounds} interleaved rounds per client, each client in its own process; ratio =
            the other client's time / clearml-core's (above 1: clearml-core is faster); requests counted
            at a proxy in front of the server, {args.count_files} objects per client, listing left out.
            """
        ).rstrip()
    )
    return 0 if all(r.passed is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
