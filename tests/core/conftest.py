"""Fixtures of the backup tests: a private BACKUP_DIR, and a real S3-compatible
server (moto's server mode) on a free local port, spoken to over HTTP by boto3:
never a mock object."""

import boto3
import psycopg
import pytest
from moto.server import ThreadedMotoServer

from core.backups import target_for
from tests.core.backup_helpers import AWS_SECRET, BUCKET


@pytest.fixture
def backup_dir(tmp_path, settings):
    settings.BACKUP_DIR = tmp_path / "backups"
    return settings.BACKUP_DIR


@pytest.fixture
def scratch_databases():
    """Names of databases a test creates; dropped afterwards."""
    names: list[str] = []
    yield names
    with target_for().connect(autocommit=True) as conn:
        for name in names:
            conn.execute(
                psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    psycopg.sql.Identifier(name)
                )
            )


@pytest.fixture(scope="session")
def s3_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server, settings, monkeypatch, backup_dir):
    """A fresh bucket on the server, and the settings that point at it."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "moto-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    settings.BACKUP_STORAGE_URL = (
        f"s3://{BUCKET}/prod/db?endpoint_url={s3_server}&region=us-east-1"
    )
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)
