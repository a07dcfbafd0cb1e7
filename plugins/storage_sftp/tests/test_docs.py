"""docs/credentials.md documents every sdk.sftp setting the plugin's defaults define."""

from __future__ import annotations

import re
from pathlib import Path

from pyhocon import ConfigFactory

ROOT = Path(__file__).resolve().parents[3]
DEFAULTS = ROOT / "plugins" / "storage_sftp" / "clearml_core_storage_sftp" / "defaults.conf"


def _sftp_section(text: str) -> str:
    start = text.index("\n## SFTP")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def test_every_setting_is_documented():
    keys = set(ConfigFactory.parse_file(str(DEFAULTS))["sdk"]["sftp"])
    section = _sftp_section((ROOT / "docs" / "credentials.md").read_text())
    documented = set(re.findall(r"^\s+(\w+):", section, flags=re.MULTILINE))
    assert keys - documented == set()
    for field in ("host", "port", "username", "key_filename", "password", "passphrase"):
        assert f"`{field}`" in section, field
    assert _sftp_section((ROOT / "docs" / "storage.md").read_text())
