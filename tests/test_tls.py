"""``api.verify_certificate`` as a TLS context: shared by the http storage driver and the ClearML
control plane."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from clearml_core.tls import verifying_context


@pytest.mark.parametrize("verify", [True, "true", "1", ""])
def test_true_checks_against_the_systems_cas(verify: object) -> None:
    context = verifying_context(verify)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


@pytest.mark.parametrize("verify", [False, "false", "0", 0])
def test_false_turns_checking_off(verify: object) -> None:
    context = verifying_context(verify)
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname


def test_a_path_is_the_ca_bundle_to_trust(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        verifying_context(str(tmp_path / "missing-ca.pem"))
    with pytest.raises(ssl.SSLError):
        (tmp_path / "not-a-ca.pem").write_text("not a certificate\n")
        verifying_context(str(tmp_path / "not-a-ca.pem"))
