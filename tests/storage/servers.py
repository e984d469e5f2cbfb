"""Real servers on 127.0.0.1 for the storage tests: an HTTP file server that answers range requests and counts
what it sends, and moto's standalone S3 server (``moto[server]``) with IAM authentication switched on.

The HTTP server serves files by name (``/NAME``), answers ``HEAD`` and single
``Range: bytes=a-b`` requests (206 with ``Content-Range``; several ranges are
answered as ``multipart/byteranges``), gives an ``ETag`` and a
``Last-Modified``, counts the body bytes it sent per name, and can be told to
fail: a list of statuses per name, one used per request (``503`` then ``503``:
two transient failures), or a status for every request.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.reliability.loopback import free_port


class RangeServer:
    """An HTTP server on 127.0.0.1 (see the module docstring); a context manager."""

    def __init__(self) -> None:
        self.files: dict[str, Path] = {}
        self.sent: dict[str, int] = defaultdict(int)
        self.requests: list[tuple[str, str, str]] = []
        self.failures: dict[str, list[int]] = {}
        self.always: dict[str, int] = {}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
                server.answer(self, body=False)

            def do_GET(self) -> None:  # noqa: N802
                server.answer(self, body=True)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def serve(self, name: str, path: Path) -> str:
        """Serve ``path`` as ``/name``; returns its URL."""
        self.files[name] = Path(path)
        return f"{self.url}/{name}"

    def fail(self, name: str, *statuses: int) -> None:
        """Answer the next requests for ``name`` with ``statuses``, one each, then serve it normally."""
        self.failures[name] = list(statuses)

    def answer(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        name = handler.path.lstrip("/").split("?", 1)[0]
        with self.lock:
            self.requests.append((handler.command, name, handler.headers.get("Range", "")))
            queued = self.failures.get(name)
            status = queued.pop(0) if queued else self.always.get(name)
        if status is not None or name not in self.files:
            handler.send_response(status or 404)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        path = self.files[name]
        data = path.read_bytes()
        stat = path.stat()
        handler.protocol_version = "HTTP/1.1"
        ranges = _ranges(handler.headers.get("Range"), len(data))
        if not ranges:
            handler.send_response(200)
            payload, content_type = data, "application/octet-stream"
        elif len(ranges) == 1:
            (start, end), = ranges
            handler.send_response(206)
            handler.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            payload, content_type = data[start:end + 1], "application/octet-stream"
        else:
            handler.send_response(206)
            boundary = "GEOSALBOUNDARY"
            parts = [f"--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes {s}-{e}/{len(data)}"
                     f"\r\n\r\n".encode() + data[s:e + 1] + b"\r\n" for s, e in ranges]
            payload, content_type = b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/byteranges; boundary={boundary}"
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("ETag", f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"')
        handler.send_header("Last-Modified", formatdate(stat.st_mtime, usegmt=True))
        handler.end_headers()
        if body:
            handler.wfile.write(payload)
            with self.lock:
                self.sent[name] += len(payload)

    def __enter__(self) -> RangeServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _ranges(header: str | None, size: int) -> list[tuple[int, int]]:
    """``[(start, end)]`` (inclusive) of a ``bytes=`` Range header, or ``[]`` for none."""
    if not header or not header.startswith("bytes="):
        return []
    found = []
    for part in header[6:].split(","):
        match = re.fullmatch(r"\s*(\d*)-(\d*)\s*", part)
        if not match:
            return []
        first, last = match.groups()
        if first == "":
            start, end = max(0, size - int(last)), size - 1
        else:
            start, end = int(first), min(size - 1, int(last)) if last else size - 1
        found.append((start, end))
    return found


class MotoServer:
    """moto's S3 (and IAM) server on 127.0.0.1 with authentication on: requests need the access key this fixture
    creates (:attr:`key`, :attr:`secret`); a wrong key or secret is refused as AWS refuses it."""

    REGION = "us-east-1"

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process: subprocess.Popen | None = None
        self.key = self.secret = ""

    def __enter__(self) -> MotoServer:
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}  # creating the user, its key and its policy
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                            env=env, stdout=log, stderr=subprocess.STDOUT)
        import boto3

        deadline = time.monotonic() + 60
        iam = boto3.client("iam", endpoint_url=self.endpoint, region_name=self.REGION, aws_access_key_id="setup",
                           aws_secret_access_key="setup")
        while True:
            try:
                iam.create_user(UserName="geosal")
                break
            except Exception:  # noqa: BLE001 - the server is still starting
                assert time.monotonic() < deadline and self.process.poll() is None, self.log.read_text()
                time.sleep(0.2)
        key = iam.create_access_key(UserName="geosal")["AccessKey"]
        iam.put_user_policy(UserName="geosal", PolicyName="everything", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        self.key, self.secret = key["AccessKeyId"], key["SecretAccessKey"]
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def client(self):
        """A boto3 S3 client with the fixture's key."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=self.REGION, aws_access_key_id=self.key,
                            aws_secret_access_key=self.secret)

    def env(self, **changes: str) -> dict[str, str]:
        """The standard AWS variables of a geosal process that uses this server (``changes`` replace some)."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_REGION": self.REGION, "AWS_ACCESS_KEY_ID": self.key,
                "AWS_SECRET_ACCESS_KEY": self.secret, "AWS_EC2_METADATA_DISABLED": "true", **changes}

    def upload(self, bucket: str, key: str, path: Path) -> str:
        """Put the file ``path`` as ``s3://bucket/key``; returns that URL."""
        self.client().upload_file(str(path), bucket, key)
        return f"s3://{bucket}/{key}"

    def download(self, prefix: str, folder: Path) -> Path:
        """Copy every object under ``s3://bucket/prefix`` into ``folder`` (keys relative to the prefix); returns it."""
        bucket, _, key = prefix[5:].partition("/")
        client = self.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key.rstrip("/") + "/"):
            for item in page.get("Contents", []):
                target = folder / item["Key"][len(key):].lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, item["Key"], str(target))
        return folder

    def keys(self, prefix: str) -> list[str]:
        """Every key under ``s3://bucket/prefix``."""
        bucket, _, key = prefix[5:].partition("/")
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))
