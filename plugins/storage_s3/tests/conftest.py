"""Fixtures of the S3 plugin's tests: a real moto server on loopback, isolated AWS settings.

The moto server is one per test session (``moto_server -H 127.0.0.1 -p PORT``), stopped by its
PID. It failing to start is an error of every test that needs it, never a skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from clearml_core.testing.servers import free_port, server_process
from plugins.storage_s3.tests.support import AWS_VARIABLES, MotoServer, moto_command


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with server_process(moto_command(port), port, log=log, name="moto") as process:
        yield MotoServer(port, process.pid)


@pytest.fixture(scope="session")
def moto_auth(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[MotoServer, tuple[str, str], tuple[str, str], str]]:
    """A second moto that checks signatures and IAM policies: (server, admin, read-only, bucket).

    moto lets the first few requests through unauthenticated (INITIAL_NO_AUTH_ACTION_COUNT); they
    create the users, and from then on a wrong secret or a missing permission is refused with 403.
    """
    import json

    import boto3

    port = free_port()
    log = tmp_path_factory.mktemp("moto-auth") / "moto.log"
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
    with server_process(moto_command(port), port, log=log, name="moto", env=env) as process:
        server = MotoServer(port, process.pid)
        common = {"endpoint_url": server.endpoint, "region_name": "us-east-1"}
        iam = boto3.client("iam", aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap", **common)
        iam.create_user(UserName="admin")
        created = iam.create_access_key(UserName="admin")["AccessKey"]
        admin = (created["AccessKeyId"], created["SecretAccessKey"])
        everything = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:*", "iam:*"], "Resource": "*"}],
        }
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(everything))
        iam = boto3.client("iam", aws_access_key_id=admin[0], aws_secret_access_key=admin[1], **common)
        iam.create_user(UserName="reader")
        created = iam.create_access_key(UserName="reader")["AccessKey"]
        reader = (created["AccessKeyId"], created["SecretAccessKey"])
        read_only = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}],
        }
        iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps(read_only))
        s3 = boto3.client("s3", aws_access_key_id=admin[0], aws_secret_access_key=admin[1], **common)
        s3.create_bucket(Bucket="guarded")
        s3.put_object(Bucket="guarded", Key="readable.txt", Body=b"public")
        yield server, admin, reader, "guarded"


@pytest.fixture(scope="session")
def defaults_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One parse cache of the defaults files for the whole session (HOME changes per test)."""
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def _isolated_s3(clearml_home: Path, defaults_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No developer AWS settings, no instance-metadata lookups, fresh drivers and clients."""
    from clearml_core_storage_s3.driver import reset_clients
    from clearml_core_storage_s3.resolvers import reset_boto_chain_cache

    from clearml_core.credentials import reset_chains
    from clearml_core.storage.backends import reset_drivers

    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(clearml_home / ".aws" / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(clearml_home / ".aws" / "credentials"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(defaults_cache))
    for reset in (reset_drivers, reset_clients, reset_boto_chain_cache, reset_chains):
        reset()
    yield clearml_home
    for reset in (reset_drivers, reset_clients, reset_boto_chain_cache, reset_chains):
        reset()


@pytest.fixture
def conf_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "conf"
    folder.mkdir()
    return folder
