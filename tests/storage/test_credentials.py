"""One storage configuration from the standard AWS environment, for GDAL and for s3fs, never showing a secret."""

from __future__ import annotations

import pickle

import pytest

from geosal.cluster.storage import StoragePlugin, storage_plugin_name
from geosal.raster.credentials import StorageAccess, StorageConfigError, fsspec_options, gdal_options
from geosal.raster.objects import public_url, resolve_href, stem

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLETOKENvalue0123456789"


def test_environment_variables_become_gdal_and_fsspec_options(tmp_path):
    env = {"HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": SECRET,
           "AWS_SESSION_TOKEN": TOKEN, "AWS_REGION": "eu-west-3", "AWS_ENDPOINT_URL": "http://127.0.0.1:9000/"}
    access = StorageAccess.from_environment(env, retries=3, retry_delay_s=0.25, timeout_s=20)
    assert gdal_options(access) == {
        "GDAL_HTTP_MAX_RETRY": "3", "GDAL_HTTP_RETRY_DELAY": "0.25", "GDAL_HTTP_TIMEOUT": "20", "GDAL_HTTP_CONNECTTIMEOUT": "10",
        "AWS_S3_ENDPOINT": "127.0.0.1:9000", "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE", "AWS_REGION": "eu-west-3",
        "AWS_NO_SIGN_REQUEST": "NO", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_SESSION_TOKEN": TOKEN,
    }
    options = fsspec_options(access)
    assert options["key"] == "AKIAEXAMPLE" and options["secret"] == SECRET and options["token"] == TOKEN
    assert options["client_kwargs"] == {"endpoint_url": "http://127.0.0.1:9000", "region_name": "eu-west-3"}
    assert options["config_kwargs"]["retries"] == {"max_attempts": 4, "mode": "standard"}
    assert access.max_wait_s() == 4 * 20 + 0.25 * 7


def test_secrets_never_shown(tmp_path):
    access = StorageAccess.from_environment({"HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
                                             "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN})
    plugin = StoragePlugin(access)
    for text in (repr(access), str(access), access.describe(), repr(plugin), storage_plugin_name(access)):
        assert SECRET not in text and TOKEN not in text and "AKIAEXAMPLE" not in text.replace("AKIA...", "")
    assert pickle.loads(pickle.dumps(plugin)).access == access  # what a worker receives is the whole access
    other = StorageAccess.from_environment({"HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
                                            "AWS_SECRET_ACCESS_KEY": SECRET + "x"})
    assert storage_plugin_name(other) != storage_plugin_name(access)  # other credentials: another plugin


def test_profile_from_the_shared_files(tmp_path):
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text(
        f"[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = x\n\n"
        f"[work]\naws_access_key_id = AKIAWORK\naws_secret_access_key = {SECRET}\n")
    (tmp_path / ".aws" / "config").write_text("[profile work]\nregion = ap-south-1\nendpoint_url = https://s3.example.org\n")
    access = StorageAccess.from_environment({"HOME": str(tmp_path), "AWS_PROFILE": "work"})
    assert (access.access_key_id, access.secret_access_key, access.region) == ("AKIAWORK", SECRET, "ap-south-1")
    assert access.profile is None  # read here: the workers get the key itself, not a profile name they may lack
    options = gdal_options(access)
    assert (options["AWS_S3_ENDPOINT"], options["AWS_HTTPS"]) == ("s3.example.org", "YES")
    assert StorageAccess.from_environment({"HOME": str(tmp_path)}).access_key_id == "AKIADEFAULT"
    env = {"HOME": str(tmp_path), "AWS_PROFILE": "work", "AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "y"}
    assert StorageAccess.from_environment(env).access_key_id == "AKIAENV"  # the variables win over the profile
    with pytest.raises(StorageConfigError, match="the AWS profile 'missing' \\(AWS_PROFILE\\) is in neither"):
        StorageAccess.from_environment({"HOME": str(tmp_path), "AWS_PROFILE": "missing"})


def test_unsigned_requests_and_gdal_own_endpoint(tmp_path):
    env = {"HOME": str(tmp_path), "AWS_NO_SIGN_REQUEST": "YES", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
           "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_S3_ENDPOINT": "minio:9000", "AWS_HTTPS": "NO"}
    access = StorageAccess.from_environment(env)
    options = gdal_options(access)
    assert options["AWS_NO_SIGN_REQUEST"] == "YES" and "AWS_SECRET_ACCESS_KEY" not in options
    assert (options["AWS_S3_ENDPOINT"], options["AWS_HTTPS"]) == ("minio:9000", "NO")
    assert fsspec_options(access)["anon"] is True and "secret" not in fsspec_options(access)
    assert StorageAccess.from_environment({"HOME": str(tmp_path)}, unsigned=True).unsigned
    with pytest.raises(StorageConfigError, match="is not an http:// or https:// URL"):
        StorageAccess.from_environment({"HOME": str(tmp_path), "AWS_ENDPOINT_URL": "127.0.0.1:9000"})


@pytest.mark.parametrize("href, base, expected", [
    ("./item.tif", "https://example.org/stac/items/a.json", "https://example.org/stac/items/item.tif"),
    ("../data/x.tif", "https://example.org/stac/items/a.json", "https://example.org/stac/data/x.tif"),
    ("../data/x.tif", "s3://bucket/stac/items/a.json", "s3://bucket/stac/data/x.tif"),
    ("s3://other/y.tif", "https://example.org/a.json", "s3://other/y.tif"),
    ("x.tif", "/data/stac/a.json", "/data/stac/x.tif"),
    ("file:///data/z%20z.tif", "/data/stac/a.json", "/data/z z.tif"),
])
def test_hrefs_resolve_against_the_catalog_location(href, base, expected):
    assert resolve_href(href, base) == expected


def test_public_url_drops_secrets_and_stem_reads_urls():
    signed = "https://user:pw@example.org:8443/a/b.tif?X-Amz-Credential=AKIA&X-Amz-Signature=abc&X-Amz-Security-Token=t&v=2"
    assert public_url(signed) == "https://user@example.org:8443/a/b.tif?v=2"
    assert stem("s3://bucket/scenes/x.y.tif") == "x.y" and stem("https://h/a/b.tif?x=1") == "b"
