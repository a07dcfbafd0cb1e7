"""clearml_core.progress: a progress line on terminals, nothing in pipes, rich loaded only to draw."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from clearml_core.progress import ProgressLine, progress_wanted


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_only_terminals_want_progress(monkeypatch) -> None:
    monkeypatch.delenv("CLEARML_CORE_NO_PROGRESS", raising=False)
    assert progress_wanted(_Terminal())
    assert not progress_wanted(io.StringIO())
    monkeypatch.setenv("CLEARML_CORE_NO_PROGRESS", "1")
    assert not progress_wanted(_Terminal())


def test_a_line_never_updated_writes_nothing() -> None:
    stream = _Terminal()
    line = ProgressLine(stream)
    line.close()
    assert stream.getvalue() == ""


def test_redraws_are_spaced_but_the_final_one_always_comes() -> None:
    stream = _Terminal()
    line = ProgressLine(stream, every=3600)
    line.update("1/3")
    line.update("2/3")  # within the interval: skipped
    line.update("3/3", final=True)
    line.close()
    shown = stream.getvalue()
    assert "1/3" in shown and "2/3" not in shown and shown.endswith("3/3\n\x1b[?25h")


def test_a_copy_in_a_pipe_never_imports_rich(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("a")
    code = (
        "import sys\n"
        "from clearml_core import StorageManager\n"
        f"StorageManager.copy({str(source)!r}, {str(tmp_path / 'dst')!r}, recursive=True)\n"
        "assert 'rich' not in sys.modules, 'rich was imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, env={"HOME": str(tmp_path)}
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "dst" / "a.txt").read_text() == "a"
    assert done.stderr == ""
