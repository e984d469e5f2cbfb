"""How to reach object storage and HTTP servers: one configuration for GDAL and for fsspec, from the standard AWS one.

:class:`StorageAccess` is resolved once from the environment a user already has
for the AWS tools (:meth:`StorageAccess.from_environment`):

- ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``: the credentials; without them, the
  profile ``AWS_PROFILE`` (else ``default``) of the shared files ``~/.aws/credentials`` and ``~/.aws/config``
  (``AWS_SHARED_CREDENTIALS_FILE``, ``AWS_CONFIG_FILE``); without any, GDAL and botocore look further
  themselves (instance roles, web identity) on each machine;
- ``AWS_REGION`` (else ``AWS_DEFAULT_REGION``, else the profile's ``region``);
- ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` (else the profile's ``endpoint_url``) for an S3-compatible
  service that is not AWS (MinIO, Ceph, moto): GDAL gets it as ``AWS_S3_ENDPOINT``, ``AWS_HTTPS`` and
  path-style addressing (``AWS_VIRTUAL_HOSTING=FALSE``); GDAL's own ``AWS_S3_ENDPOINT``, ``AWS_HTTPS`` and
  ``AWS_VIRTUAL_HOSTING``, when set, are kept as they are;
- ``AWS_NO_SIGN_REQUEST=YES`` (or ``storage.unsigned``, ``--no-sign-request``): unsigned requests, for public
  buckets.

:func:`gdal_options` and :func:`fsspec_options` turn it into GDAL configuration
options and s3fs storage options; :func:`apply` sets it as this process's
access (GDAL options set process-wide), which the reads and writes of
:mod:`geosal.raster.objects` and the Zarr store use. The client resolves it
and a Dask worker plugin applies the same on every worker
(:mod:`geosal.cluster.storage`), so workers need no configuration of their own.

Secrets (the secret key and the session token) never appear in ``repr`` or
``str`` of a :class:`StorageAccess` (:meth:`StorageAccess.describe` says what
is configured without them), nor in anything geosal writes.

Transient network errors are retried with exponential backoff (``retries``
attempts after the first, ``retry_delay_s`` doubled each time) and each request
times out after ``timeout_s``, so the time spent on one unreachable object is
bounded (:meth:`StorageAccess.max_wait_s`).
"""

from __future__ import annotations

import configparser
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from geosal.raster.errors import RasterInputError

RETRIES = 5
"""Default retries of a failed request (transient errors only)."""
RETRY_DELAY_S = 0.5
"""Default delay before the first retry, doubled for each next one."""
TIMEOUT_S = 60.0
"""Default limit of one request, in seconds."""

_TRUE = ("1", "yes", "true", "on")
_GDAL_OWN = ("AWS_S3_ENDPOINT", "AWS_HTTPS", "AWS_VIRTUAL_HOSTING")


class StorageConfigError(RasterInputError):
    """The storage configuration cannot be used (one line, never a secret)."""


@dataclass(frozen=True)
class StorageAccess:
    """Endpoint, region, credentials and retry policy for remote inputs and outputs (see the module docstring).

    Attributes:
        endpoint_url: the S3 endpoint of a non-AWS service (``http://127.0.0.1:9000``), or None for AWS.
        region: the S3 region, or None (AWS's default).
        access_key_id: the access key id, or None (GDAL and botocore then look for credentials themselves).
        secret_access_key, session_token: the secret and the session token (never shown).
        profile: the AWS profile named by ``AWS_PROFILE`` (handed on when its credentials were not read here).
        unsigned: send unsigned requests (public buckets).
        gdal_overrides: GDAL's own S3 endpoint options found in the environment, kept as they are.
        retries, retry_delay_s, timeout_s: the retry policy (seconds).
    """

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    profile: str | None = None
    unsigned: bool = False
    gdal_overrides: tuple[tuple[str, str], ...] = ()
    retries: int = RETRIES
    retry_delay_s: float = RETRY_DELAY_S
    timeout_s: float = TIMEOUT_S

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, unsigned: bool | None = None,
                         retries: int | None = None, retry_delay_s: float | None = None,
                         timeout_s: float | None = None) -> StorageAccess:
        """The access the standard AWS environment variables and shared files describe (``environ``: default
        ``os.environ``); the keyword arguments, when given, override the retry policy and ``unsigned``.

        Raises:
            StorageConfigError: a profile named by ``AWS_PROFILE`` does not exist, or the endpoint is not a URL.
        """
        env = os.environ if environ is None else environ
        profile_name = env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE")
        profile = _profile(env, profile_name or "default", required=bool(profile_name))
        key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
        token = env.get("AWS_SESSION_TOKEN")
        from_profile = False
        if not (key and secret) and profile.get("aws_access_key_id") and profile.get("aws_secret_access_key"):
            key, secret, token = profile["aws_access_key_id"], profile["aws_secret_access_key"], profile.get("aws_session_token")
            from_profile = True
        endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or profile.get("endpoint_url")
        if endpoint and urlparse(endpoint).scheme not in ("http", "https"):
            raise StorageConfigError(f"the S3 endpoint {endpoint!r} (AWS_ENDPOINT_URL) is not an http:// or https:// URL")
        return cls(
            endpoint_url=endpoint.rstrip("/") if endpoint else None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or profile.get("region"),
            access_key_id=key if key and secret else None,
            secret_access_key=secret if key and secret else None,
            session_token=token if key and secret and token else None,
            profile=profile_name if profile_name and not from_profile else None,
            unsigned=unsigned if unsigned is not None else env.get("AWS_NO_SIGN_REQUEST", "").lower() in _TRUE,
            gdal_overrides=tuple((name, env[name]) for name in _GDAL_OWN if env.get(name)),
            retries=RETRIES if retries is None else retries,
            retry_delay_s=RETRY_DELAY_S if retry_delay_s is None else retry_delay_s,
            timeout_s=TIMEOUT_S if timeout_s is None else timeout_s,
        )

    def describe(self) -> str:
        """What is configured, without any secret: ``endpoint http://..., region eu-west-1, credentials AKIA...``."""
        who = ("unsigned requests" if self.unsigned else
               f"access key {self.access_key_id[:4]}..." if self.access_key_id else
               f"profile {self.profile}" if self.profile else "credentials found by GDAL and botocore")
        where = f"endpoint {self.endpoint_url}" if self.endpoint_url else "AWS S3"
        return f"{where}, region {self.region or 'default'}, {who}"

    def max_wait_s(self) -> float:
        """The longest one request may take with its retries: every attempt timing out, plus the backoff delays."""
        return (self.retries + 1) * self.timeout_s + self.retry_delay_s * (2**self.retries - 1)


def _profile(env: Mapping[str, str], name: str, required: bool) -> dict[str, str]:
    """The settings of profile ``name`` from the shared credentials and config files (credentials file first)."""
    home = Path(env.get("HOME") or Path.home())
    credentials = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials")
    config = Path(env.get("AWS_CONFIG_FILE") or home / ".aws" / "config")
    found: dict[str, str] = {}
    exists = False
    for path, section in ((config, name if name == "default" else f"profile {name}"), (credentials, name)):
        parser = configparser.RawConfigParser()
        try:
            parser.read(path)
        except (configparser.Error, OSError, UnicodeDecodeError):
            raise StorageConfigError(f"{path}: not a readable AWS shared configuration file") from None
        if parser.has_section(section):
            exists = True
            found.update({key: value.strip() for key, value in parser.items(section) if value.strip()})
    if required and not exists:
        raise StorageConfigError(f"the AWS profile {name!r} (AWS_PROFILE) is in neither {credentials} nor {config}")
    return found


def gdal_options(access: StorageAccess) -> dict[str, str]:
    """GDAL configuration options for ``access``: ``/vsis3/`` endpoint, region, credentials or unsigned requests,
    and the retry policy of every ``/vsicurl/`` and ``/vsis3/`` request (GDAL retries HTTP 429, 500, 502, 503
    and 504 and connection failures, doubling the delay)."""
    options = {
        "GDAL_HTTP_MAX_RETRY": str(access.retries),
        "GDAL_HTTP_RETRY_DELAY": f"{access.retry_delay_s:g}",
        "GDAL_HTTP_TIMEOUT": str(max(1, round(access.timeout_s))),
        "GDAL_HTTP_CONNECTTIMEOUT": str(max(1, round(min(access.timeout_s, 10.0)))),
    }
    if access.endpoint_url:
        parsed = urlparse(access.endpoint_url)
        options["AWS_S3_ENDPOINT"] = parsed.netloc + parsed.path.rstrip("/")
        options["AWS_HTTPS"] = "YES" if parsed.scheme == "https" else "NO"
        options["AWS_VIRTUAL_HOSTING"] = "FALSE"
    options.update(access.gdal_overrides)
    if access.region:
        options["AWS_REGION"] = access.region
    options["AWS_NO_SIGN_REQUEST"] = "YES" if access.unsigned else "NO"  # the client's choice wins over a worker's own
    signed = not access.unsigned
    if signed and access.access_key_id and access.secret_access_key:
        options["AWS_ACCESS_KEY_ID"] = access.access_key_id
        options["AWS_SECRET_ACCESS_KEY"] = access.secret_access_key
        if access.session_token:
            options["AWS_SESSION_TOKEN"] = access.session_token
    elif signed and access.profile:
        options["AWS_PROFILE"] = access.profile
    return options


def fsspec_options(access: StorageAccess) -> dict:
    """s3fs storage options for ``access`` (endpoint, region, credentials or ``anon``, botocore's standard retry
    mode with the same number of attempts and timeouts)."""
    client = {key: value for key, value in (("endpoint_url", access.endpoint_url), ("region_name", access.region)) if value}
    options: dict = {
        "client_kwargs": client,
        "config_kwargs": {"retries": {"max_attempts": access.retries + 1, "mode": "standard"},
                          "connect_timeout": min(access.timeout_s, 10.0), "read_timeout": access.timeout_s},
    }
    if access.unsigned:
        options["anon"] = True
    elif access.access_key_id and access.secret_access_key:
        options.update(key=access.access_key_id, secret=access.secret_access_key)
        if access.session_token:
            options["token"] = access.session_token
    elif access.profile:
        options["profile"] = access.profile
    return options


_current: StorageAccess | None = None
_guard = threading.Lock()


def apply(access: StorageAccess) -> None:
    """Make ``access`` this process's storage access: GDAL's options are set process-wide (every thread, every
    later ``rasterio.open`` of a ``/vsis3/`` or ``/vsicurl/`` path), and :func:`current` returns it."""
    global _current
    from rasterio.env import set_gdal_config

    with _guard:
        for name, value in gdal_options(access).items():
            set_gdal_config(name, value)
        _current = access


def current() -> StorageAccess:
    """This process's storage access: what :func:`apply` set, else resolved from the environment now (and applied)."""
    if _current is None:
        access = StorageAccess.from_environment()
        with _guard:
            ready = _current is not None
        if not ready:
            apply(access)
    assert _current is not None
    return _current

