from __future__ import annotations

import pytest

from clearml_core.credentials.matching import (
    best_match,
    inherit,
    join_prefix,
    segment_prefix_match,
    specificity,
)


@pytest.mark.parametrize(
    ("prefix", "path", "expected"),
    [
        ("/opt/mydir", "/opt/mydir", True),
        ("/opt/mydir", "/opt/mydir/x", True),
        ("/opt/mydir", "/opt/mydirnew/x", False),
        ("/opt/mydir/", "/opt/mydir/x", True),
        ("s3://bucket", "s3://bucket/key", True),
        ("s3://bucket", "s3://bucket-archive/key", False),
        ("s3://bucket/", "s3://bucket/key", True),
        ("C:\\data", "C:\\data\\x", True),
        ("C:\\data", "C:\\database", False),
        ("", "anything", True),
        ("bucket/sub", "bucket/subdir/x", False),
        ("bucket/sub", "bucket/sub/x", True),
    ],
)
def test_segment_prefix_match(prefix, path, expected):
    assert segment_prefix_match(prefix, path) is expected


def test_best_match_prefers_most_segments_then_first():
    entries = [("bucket", "a"), ("bucket/sub", "b"), ("bucket/sub/deeper", "c"), ("bucket/sub", "d")]
    assert best_match(entries, "bucket/sub/deeper/file", lambda e: e[0]) == ("bucket/sub/deeper", "c")
    assert best_match(entries, "bucket/sub/file", lambda e: e[0]) == ("bucket/sub", "b")
    assert best_match(entries, "bucket/other", lambda e: e[0]) == ("bucket", "a")
    assert best_match(entries, "bucketx/other", lambda e: e[0]) is None


def test_specificity_counts_segments():
    assert specificity("bucket/sub/") == (2, 11)
    assert specificity("") == (0, 0)


def test_inherit_takes_unset_fields_from_defaults():
    defaults = {"region": "eu-west-1", "verify": True, "key": "", "credentials": [{"bucket": "x"}]}
    entry = {"bucket": "data", "key": "AKIA", "region": None, "secret": ""}
    merged = inherit(defaults, entry)
    assert merged == {"region": "eu-west-1", "verify": True, "key": "AKIA", "bucket": "data", "secret": ""}
    assert "credentials" not in merged


def test_join_prefix():
    assert join_prefix("bucket", "/sub/dir/", None, "") == "bucket/sub/dir"
