"""Real servers on 127.0.0.1 for the storage tests: an HTTP file server that answers range requests and counts
what it sends, and moto's standalone S3 server (``moto[server]``) with IAM authentication switched on.

The HTTP server (a process of its own) serves the files of a folder by name (``/NAME``), answers ``HEAD`` and single
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
    """The HTTP server of the module docstring, run in its own process (GDAL holds the interpreter's lock while it
    opens a ``/vsicurl/`` file, so a server thread in the test process could not answer); a context manager.

    It serves the files of :attr:`folder` by name; the test process steers and reads it over HTTP: ``/_fail/NAME``
    queues statuses, ``/_always/NAME`` sets one, ``/_stats`` returns what it sent and the requests it saw.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def serve(self, name: str, path: Path) -> str:
        """Serve ``path`` as ``/name`` (``name`` may hold folders: ``stac/items/a.json``); returns its URL."""
        link = self.folder / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(Path(path).resolve())
        return f"{self.url}/{name}"

    def fail(self, name: str, *statuses: int) -> None:
        """Answer the next requests for ``name`` with ``statuses``, one each, then serve it normally."""
        self._control(f"/_fail/{name}?statuses={','.join(map(str, statuses))}")

    def always(self, name: str, status: int) -> None:
        """Answer every request for ``name`` with ``status``."""
        self._control(f"/_always/{name}?status={status}")

    def sent(self, name: str) -> int:
        """Body bytes sent for ``name`` so far."""
        return self._stats()["sent"].get(name, 0)

    def requests(self, name: str) -> list[tuple[str, str]]:
        """``(method, Range header)`` of every request for ``name`` so far."""
        return [(method, ranges) for method, seen, ranges in self._stats()["requests"] if seen == name]

    def _stats(self) -> dict:
        return json.loads(self._control("/_stats"))

    def _control(self, path: str) -> bytes:
        import urllib.request

        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return response.read()

    def __enter__(self) -> RangeServer:
        self.process = subprocess.Popen([sys.executable, "-m", "tests.storage.servers", str(self.port), str(self.folder)],
                                        cwd=Path(__file__).resolve().parents[2])
        deadline = time.monotonic() + 30
        while True:
            try:
                self._stats()
                return self
            except OSError:
                assert time.monotonic() < deadline and self.process.poll() is None, "the HTTP server did not start"
                time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def serve_folder(port: int, folder: Path) -> None:
    """Run the range server on 127.0.0.1:``port`` over the files of ``folder`` until terminated."""
    sent: dict[str, int] = defaultdict(int)
    requests: list[tuple[str, str, str]] = []
    failures: dict[str, list[int]] = {}
    always: dict[str, int] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
            self.answer(body=False)

        def do_GET(self) -> None:  # noqa: N802
            if self.path.startswith("/_"):
                self.control()
            else:
                self.answer(body=True)

        def control(self) -> None:
            path, _, query = self.path.partition("?")
            value = query.partition("=")[2]
            with lock:
                if path.startswith("/_fail/"):
                    failures[path[len("/_fail/"):]] = [int(v) for v in value.split(",") if v]
                elif path.startswith("/_always/"):
                    always[path[len("/_always/"):]] = int(value)
                payload = json.dumps({"sent": sent, "requests": requests}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def answer(self, body: bool) -> None:
            name = self.path.lstrip("/").split("?", 1)[0]
            with lock:
                requests.append((self.command, name, self.headers.get("Range", "")))
                queued = failures.get(name)
                status = queued.pop(0) if queued else always.get(name)
            path = folder / name
            if status is not None or ".." in name.split("/") or not path.is_file():
                self.send_response(status or 404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = path.read_bytes()
            stat = path.stat()
            ranges = _ranges(self.headers.get("Range"), len(data))
            if not ranges:
                self.send_response(200)
                payload, content_type = data, "application/octet-stream"
            elif len(ranges) == 1:
                (start, end), = ranges
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                payload, content_type = data[start:end + 1], "application/octet-stream"
            else:
                self.send_response(206)
                boundary = "GEOSALBOUNDARY"
                parts = [f"--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes {s}-{e}/{len(data)}"
                         f"\r\n\r\n".encode() + data[s:e + 1] + b"\r\n" for s, e in ranges]
                payload = b"".join(parts) + f"--{boundary}--\r\n".encode()
                content_type = f"multipart/byteranges; boundary={boundary}"
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"')
            self.send_header("Last-Modified", formatdate(stat.st_mtime, usegmt=True))
            self.end_headers()
            if body:
                self.wfile.write(payload)
                with lock:
                    sent[name] += len(payload)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


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


if __name__ == "__main__":
    serve_folder(int(sys.argv[1]), Path(sys.argv[2]))
