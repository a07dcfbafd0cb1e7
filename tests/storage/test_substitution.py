from __future__ import annotations

import os

import pytest

from clearml_core.errors import ConfigError
from clearml_core.settings import load_config
from clearml_core.storage.substitution import (
    DirectAccessRule,
    SubstitutionRule,
    direct_access_rules,
    is_direct,
    substitute,
    substitution_rules,
)


def _config(tmp_path, text, *, defaults=False):
    path = tmp_path / "clearml.conf"
    path.write_text(text, encoding="utf-8")
    return load_config(path) if defaults else load_config(path, defaults=[])


def test_prefix_rewrites_only_on_segment_boundaries():
    rules = [SubstitutionRule("/opt/mydir", "/mnt/data")]
    assert substitute("/opt/mydir/x/y.bin", rules) == "/mnt/data/x/y.bin"
    assert substitute("/opt/mydir", rules) == "/mnt/data"
    assert substitute("/opt/mydirnew/x", rules) == "/opt/mydirnew/x"


def test_most_specific_rule_wins_whatever_the_order():
    rules = [
        SubstitutionRule("s3://bucket", "file:///mnt/bucket"),
        SubstitutionRule("s3://bucket/datasets", "file:///fast/datasets"),
    ]
    assert substitute("s3://bucket/datasets/a.csv", rules) == "file:///fast/datasets/a.csv"
    assert substitute("s3://bucket/models/m.pt", rules) == "file:///mnt/bucket/models/m.pt"
    assert substitute("s3://bucket2/models/m.pt", rules) == "s3://bucket2/models/m.pt"


def test_windows_separators_become_this_machines():
    rules = [SubstitutionRule("C:\\share", "/mnt/share", replace_windows_sep=True)]
    assert substitute("C:\\share\\a\\b.txt", rules) == f"/mnt/share{os.sep}a{os.sep}b.txt"


def test_rules_from_clearml_conf(tmp_path):
    config = _config(
        tmp_path,
        """
        sdk.storage.path_substitution = [
            { registered_prefix: "s3://bucket/data", local_prefix: "file:///mnt/data" },
            { registered_prefix: "C:\\\\share", local_prefix: "/mnt/share", replace_windows_sep: true },
        ]
        """,
    )
    rules = substitution_rules(config)
    assert rules[0] == SubstitutionRule("s3://bucket/data", "file:///mnt/data")
    assert rules[1].replace_windows_sep is True
    assert substitute("s3://bucket/data/x", rules) == "file:///mnt/data/x"


def test_both_separator_switches_is_a_config_error(tmp_path):
    config = _config(
        tmp_path,
        """
        sdk.storage.path_substitution = [{
            registered_prefix: "/a", local_prefix: "/b", replace_windows_sep: true, replace_linux_sep: true
        }]
        """,
    )
    with pytest.raises(ConfigError, match=r"path_substitution\[0\].*both true"):
        substitution_rules(config)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('{ local_prefix: "/b" }', "registered_prefix is missing"),
        ('{ registered_prefix: "/a" }', "local_prefix is missing"),
        ('"just text"', "must be an object"),
        ('{ registered_prefix: "/a", local_prefix: "/b", replace_linux_sep: maybe }', "true or false"),
    ],
)
def test_bad_rules_say_what_is_wrong(tmp_path, entry, message):
    config = _config(tmp_path, f"sdk.storage.path_substitution = [{entry}]")
    with pytest.raises(ConfigError, match=message):
        substitution_rules(config)


@pytest.mark.parametrize("defaults", [True, False])
def test_file_urls_are_direct_by_default(tmp_path, defaults):
    rules = direct_access_rules(_config(tmp_path, "", defaults=defaults))
    assert rules == (DirectAccessRule("file://*"),)
    assert is_direct("file:///data/x.bin", rules)
    assert not is_direct("http://host/x.bin", rules)


def test_direct_access_globs_on_url_and_content_type(tmp_path):
    config = _config(
        tmp_path,
        """
        sdk.storage.direct_access = [
            { url: "http://127.0.0.1:*/public/*" },
            { url: "s3://bucket/*", content_type: "text/*" },
        ]
        """,
    )
    rules = direct_access_rules(config)
    assert is_direct("http://127.0.0.1:8080/public/a.bin", rules)
    assert not is_direct("file:///data/x.bin", rules)  # the user's list replaces the default
    assert is_direct("s3://bucket/readme.txt", rules, content_type="text/plain")
    assert not is_direct("s3://bucket/model.pt", rules, content_type="application/octet-stream")
    assert not is_direct("s3://bucket/unknown", rules, content_type=None)


def test_empty_direct_access_list_turns_it_off(tmp_path):
    assert direct_access_rules(_config(tmp_path, "sdk.storage.direct_access = []")) == ()
