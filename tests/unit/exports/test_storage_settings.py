"""ORDER_STORAGE_BACKEND and its variables, as the operations guides name them."""

from __future__ import annotations

import pytest

from spotless.settings import ConfigError, load_settings
from tests.unit.test_settings import BASE, PROD


def test_local_is_the_default_under_the_upload_root():
    storage = load_settings(BASE).storage
    assert storage.backend == "local" and storage.upload_root == "var/uploads"
    assert storage.download_ttl_seconds == 300
    assert load_settings({**BASE, "ORDER_UPLOAD_ROOT": "/srv/uploads"}).storage.upload_root == "/srv/uploads"


def test_r2_is_the_s3_api_at_the_account_endpoint():
    env = {"ORDER_STORAGE_BACKEND": "r2", "R2_BUCKET": "bucket-name", "R2_ACCESS_KEY": "ak", "R2_SECRET_KEY": "sk"}
    storage = load_settings({**BASE, **env, "R2_ACCOUNT_ID": "abc123"}).storage
    assert storage.backend == "r2" and storage.bucket == "bucket-name" and storage.region == "auto"
    assert storage.endpoint_url == "https://abc123.r2.cloudflarestorage.com"
    assert (storage.access_key, storage.secret_key) == ("ak", "sk")
    explicit = load_settings({**BASE, **env, "R2_ENDPOINT_URL": "https://r2.example"}).storage
    assert explicit.endpoint_url == "https://r2.example"
    with pytest.raises(ConfigError, match="R2_ENDPOINT_URL or R2_ACCOUNT_ID"):
        load_settings({**BASE, **env})


def test_s3_needs_a_bucket_and_an_unknown_backend_is_refused():
    with pytest.raises(ConfigError, match="S3_BUCKET"):
        load_settings({**BASE, "ORDER_STORAGE_BACKEND": "s3"})
    with pytest.raises(ConfigError, match="ORDER_STORAGE_BACKEND"):
        load_settings({**BASE, "ORDER_STORAGE_BACKEND": "ftp"})
    storage = load_settings({**BASE, "ORDER_STORAGE_BACKEND": "S3", "S3_BUCKET": "b"}).storage
    assert storage.backend == "s3" and storage.endpoint_url is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STORAGE_DOWNLOAD_TTL_SECONDS", "0"),
        ("STORAGE_MULTIPART_PART_BYTES", "1024"),
        ("EXPORT_TTL_HOURS", "0"),
        ("EXPORT_MAX_ATTEMPTS", "0"),
        ("EXPORT_LEASE_SECONDS", "1"),
    ],
)
def test_bounds_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        load_settings({**BASE, name: value})


@pytest.mark.parametrize(
    ("env", "name"),
    [
        (
            {"ORDER_STORAGE_BACKEND": "s3", "S3_BUCKET": "b", "STORAGE_MULTIPART_PART_BYTES": "65536"},
            "STORAGE_MULTIPART_PART_BYTES",
        ),
        (
            {"ORDER_STORAGE_BACKEND": "s3", "S3_BUCKET": "b", "S3_ENDPOINT_URL": "http://127.0.0.1:9000"},
            "S3_ENDPOINT_URL",
        ),
        ({"STORAGE_SIGNING_SECRET": "short"}, "STORAGE_SIGNING_SECRET"),
    ],
)
def test_prod_refuses_unsafe_storage(env, name):
    with pytest.raises(ConfigError, match=name):
        load_settings({**PROD, **env})
    load_settings(PROD)  # and the defaults (local, signing key derived) start
