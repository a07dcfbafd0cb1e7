"""Folder transfers: bounded workers, retries on transient errors only, deadlines, one error."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from clearml_core import StorageManager
from clearml_core.errors import ConfigError
from clearml_core.plugins import get_registry
from clearml_core.settings import load_config
from clearml_core.storage.errors import TransientStorageError
from clearml_core.storage.transfer import (
    Job,
    Progress,
    TransferError,
    TransferSettings,
    backoff_delay,
    matches,
    retrying,
    run_jobs,
)
from tests.storage import flaky


@pytest.fixture
def store(clearml_conf: Path, tmp_path: Path):
    """A registered flaky:// backend over tmp_path/store, fast retries, and a source folder."""
    clearml_conf.write_text(
        "sdk.storage.transfer { max_workers: 4, retries: 3, backoff_sec: 0.01, timeout_sec: 60 }\n"
    )
    state = flaky.STATE = flaky.FlakyState(tmp_path / "store")
    get_registry().register(flaky.plugin(), "flaky")
    source = tmp_path / "src"
    for name in ("a.txt", "b.txt", "sub/c.json", "sub/deeper/d.bin"):
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"content of {name}")
    yield state, source
    flaky.STATE = None


def _keys(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_transient_failures_are_retried_until_they_pass(store):
    state, source = store
    state.fail_times = 2
    assert StorageManager.upload_folder(str(source), "flaky://h/dest/") == "flaky://h/dest/"
    assert _keys(state.root) == ["dest/a.txt", "dest/b.txt", "dest/sub/c.json", "dest/sub/deeper/d.bin"]
    assert set(state.attempts.values()) == {3}
    assert (state.root / "dest/sub/c.json").read_text() == "content of sub/c.json"


def test_a_lost_file_fails_the_folder_with_one_error_listing_it(store):
    state, source = store
    state.fail_times = 10
    state.fail_names = {"b.txt", "d.bin"}
    with pytest.raises(TransferError) as caught:
        StorageManager.upload_folder(str(source), "flaky://h/dest")
    error = caught.value
    assert [f.job.target for f in error.failures] == [
        "flaky://h/dest/b.txt",
        "flaky://h/dest/sub/deeper/d.bin",
    ]
    assert str(error).startswith("2 of 4 files failed to upload")
    assert "dest/b.txt" in str(error) and "try again (attempt 4)" in str(error)
    assert _keys(state.root) == ["dest/a.txt", "dest/sub/c.json"]  # the others still arrived
    assert state.attempts["dest/b.txt"] == 4  # 1 + 3 retries


def test_permanent_errors_are_not_retried(store):
    state, source = store
    state.fail_times = 1
    state.permanent = True
    with pytest.raises(TransferError, match="4 of 4 files failed"):
        StorageManager.upload_folder(str(source), "flaky://h/dest/")
    assert set(state.attempts.values()) == {1}


def test_retries_argument_overrides_the_setting(store):
    state, source = store
    state.fail_times = 1
    with pytest.raises(TransferError):
        StorageManager.upload_folder(str(source), "flaky://h/dest/", retries=0)
    assert set(state.attempts.values()) == {1}


@pytest.mark.parametrize("dest", ["flaky://h/dest", "flaky://h/dest/", "flaky://h/dest//"])
def test_trailing_slashes_never_make_double_slash_keys(store, dest):
    state, source = store
    StorageManager.upload_folder(str(source) + "/", dest)
    assert _keys(state.root) == ["dest/a.txt", "dest/b.txt", "dest/sub/c.json", "dest/sub/deeper/d.bin"]
    assert not any("//" in key for key in state.attempts)


def test_match_wildcard_picks_files(store):
    state, source = store
    StorageManager.upload_folder(str(source), "flaky://h/dest/", match_wildcard="*.json")
    assert _keys(state.root) == ["dest/sub/c.json"]


def test_workers_are_bounded(store):
    state, source = store
    for i in range(12):
        (source / f"many-{i}.txt").write_text(str(i))
    state.gather = 3  # the first uploads wait for each other, so three run at once if three may
    StorageManager.copy(str(source), "flaky://h/dest/", recursive=True, jobs=3)
    assert state.most_active == 3


def test_download_folder_raises_or_logs_with_silence_errors(store, tmp_path, caplog):
    state, source = store
    StorageManager.upload_folder(str(source), "flaky://h/dest/")
    state.attempts.clear()
    state.fail_times = 10
    state.fail_names = {"c.json"}
    with pytest.raises(TransferError, match=r"(?s)1 of 4 files failed to download.*c\.json"):
        StorageManager.download_folder("flaky://h/dest/", str(tmp_path / "down"), max_workers=2)
    caplog.set_level(logging.WARNING)
    folder = StorageManager.download_folder(
        "flaky://h/dest/", str(tmp_path / "down2"), silence_errors=True, overwrite=True
    )
    assert folder == str(tmp_path / "down2")
    assert "c.json" in caplog.text
    assert _keys(tmp_path / "down2") == ["dest/a.txt", "dest/b.txt", "dest/sub/deeper/d.bin"]


def test_a_transfer_stuck_past_its_deadline_is_reported(store, clearml_conf):
    state, source = store
    clearml_conf.write_text("sdk.storage.transfer { retries: 0, timeout_sec: 0.2 }\n")
    from clearml_core.settings import reset_config

    reset_config()
    state.hang = {"b.txt"}
    try:
        with pytest.raises(TransferError, match=r"b\.txt.*timed out after 0.2 s"):
            StorageManager.upload_folder(str(source), "flaky://h/dest/")
    finally:
        state.release.set()
    assert "dest/a.txt" in _keys(state.root)


def test_run_jobs_keeps_the_pool_size_after_a_timeout():
    import threading

    release = threading.Event()
    done: list[int] = []
    jobs = [Job("stuck", "x", lambda: release.wait(30))] + [
        Job(f"j{i}", "x", lambda i=i: done.append(i)) for i in range(5)
    ]
    settings = TransferSettings(max_workers=1, retries=0, timeout_sec=0.1)
    try:
        report = run_jobs(jobs, settings=settings, progress=False)
    finally:
        release.set()
    assert sorted(done) == [0, 1, 2, 3, 4]
    assert [f.job.source for f in report.failures] == ["stuck"]


def test_settings_read_config_and_mlflow_timeout(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("sdk.storage.transfer { max_workers: 3, retries: 5, backoff_sec: 2, timeout_sec: 30 }")
    config = load_config(conf, defaults=[])
    assert TransferSettings.from_config(config, {}) == TransferSettings(3, 5, 2.0, 30.0)
    mlflow = {"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "7"}
    assert TransferSettings.from_config(config, mlflow).timeout_sec == 7.0
    with pytest.raises(ConfigError, match="MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT"):
        TransferSettings.from_config(config, {"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "soon"})


def test_backoff_doubles_and_honours_retry_after():
    assert 1.0 <= backoff_delay(1, 1.0) <= 1.1
    assert 4.0 <= backoff_delay(3, 1.0) <= 4.4
    assert backoff_delay(3, 1.0, TransientStorageError("slow down", retry_after=9)) == 9


def test_retrying_waits_as_told_and_gives_up():
    waits: list[float] = []
    calls = []

    def flaky_call():
        calls.append(1)
        raise TransientStorageError("nope")

    with pytest.raises(TransientStorageError):
        retrying(flaky_call, what="x", retries=2, backoff_sec=1.0, sleep=waits.append)
    assert len(calls) == 3
    assert 1.0 <= waits[0] <= 1.1 and 2.0 <= waits[1] <= 2.2


def test_matches_name_relative_or_full():
    assert matches("*.json", "sub/c.json")
    assert matches("sub/*", "sub/c.json")
    assert matches("*/dest/*.json", "c.json", "flaky://h/dest/c.json")
    assert not matches("*.txt", "sub/c.json")
    assert matches(None, "anything")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_on_terminals_only(monkeypatch):
    monkeypatch.delenv("CLEARML_CORE_NO_PROGRESS", raising=False)
    assert Progress.wanted(_Terminal())
    assert not Progress.wanted(io.StringIO())
    stream = _Terminal()
    bar = Progress("upload", 2, 3_000_000, stream)
    bar.advance(1_000_000)
    bar.advance(2_000_000)
    bar.close()
    # the last count stays on its line, and the cursor rich hid while drawing is shown again
    assert stream.getvalue().endswith("upload 2/2 files, 3.0/3.0 MB\n\x1b[?25h")
