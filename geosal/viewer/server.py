"""The viewer's web server (tornado): the page, its vendored scripts and the HTTP API.

Handlers run the API's blocking reads in a thread pool, so tiles render in
parallel while the event loop stays free. Every error a request can cause is
a JSON ``{"error": reason}`` with status 404 (nothing there) or 400 (a bad
parameter); an unexpected one is a JSON 500 whose traceback goes to the
server's log, never to the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import math
import os
import signal
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import tornado.httpserver
import tornado.netutil
import tornado.web

from geosal.viewer.api import ViewerApi
from geosal.viewer.catalog import Catalog
from geosal.viewer.errors import BadRequest, NotFound, ViewerError

STATIC = Path(__file__).with_name("static")
log = logging.getLogger("geosal.viewer")


def _json_safe(value):
    """``value`` with non-finite floats as None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


class _Handler(tornado.web.RequestHandler):
    """Runs an API call in the pool and answers JSON errors."""

    def initialize(self, api: ViewerApi, pool: ThreadPoolExecutor) -> None:
        self.api = api
        self.pool = pool

    async def call(self, function, *args):
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)
        except NotFound as error:
            self.fail(404, str(error))
        except (BadRequest, ViewerError) as error:
            self.fail(400, str(error))
        except Exception as error:  # noqa: BLE001 - a bug: logged with its traceback, the client gets one line
            log.exception("viewer: %s %s failed", self.request.method, self.request.uri)
            self.fail(500, f"internal error: {type(error).__name__}")
        raise tornado.web.Finish()

    def fail(self, status: int, reason: str) -> None:
        self.clear()
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"error": reason, "status": status}))

    def send_json(self, value) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(_json_safe(value), allow_nan=False))

    def query(self) -> dict[str, str]:
        return {key: self.get_query_argument(key) for key in self.request.query_arguments}

    def write_error(self, status_code: int, **kwargs) -> None:
        self.finish(json.dumps({"error": self._reason, "status": status_code}))


class InfoHandler(_Handler):
    """``GET /api/info``."""

    async def get(self) -> None:
        self.send_json(await self.call(self.api.info))


class ScenesHandler(_Handler):
    """``GET /api/scenes``."""

    async def get(self) -> None:
        self.send_json(await self.call(self.api.scenes))


class SceneHandler(_Handler):
    """``GET /api/scenes/{id}``."""

    async def get(self, scene_id: str) -> None:
        self.send_json(await self.call(self.api.scene, scene_id))


class PointHandler(_Handler):
    """``GET /api/scenes/{id}/point?x=..&y=..``."""

    async def get(self, scene_id: str) -> None:
        query = self.query()
        self.send_json(await self.call(self.api.point, scene_id, query.get("x"), query.get("y")))


class BlocksHandler(_Handler):
    """``GET /api/scenes/{id}/blocks``."""

    async def get(self, scene_id: str) -> None:
        self.send_json(await self.call(self.api.blocks, scene_id))


class TileHandler(_Handler):
    """``GET /api/scenes/{id}/tiles/{layer}/{z}/{x}/{y}.png|.npy``: cacheable when it names the current version."""

    async def get(self, scene_id: str, layer: str, z: str, x: str, y: str, fmt: str) -> None:
        body, current = await self.call(self.api.tile, scene_id, layer, int(z), int(x), int(y), fmt, self.query())
        self.set_header("Content-Type", "image/png" if fmt == "png" else "application/octet-stream")
        # a URL naming the current version always shows the same pixels; anything else may change
        self.set_header("Cache-Control", "public, max-age=86400" if current else "no-cache")
        self.finish(body)


class QuicklookHandler(_Handler):
    """``GET /api/scenes/{id}/quicklook``."""

    async def get(self, scene_id: str) -> None:
        body, content_type = await self.call(self.api.quicklook, scene_id)
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "no-cache")
        self.finish(body)


class LegendHandler(_Handler):
    """``GET /api/legends/{name}.png``."""

    async def get(self, name: str) -> None:
        body = await self.call(self.api.legend, name, self.query())
        self.set_header("Content-Type", "image/png")
        self.finish(body)


class MissingHandler(_Handler):
    """Anything else: a JSON 404."""

    async def get(self, *args) -> None:
        self.fail(404, f"no such page or API endpoint: {self.request.path}")


def make_application(api: ViewerApi, pool: ThreadPoolExecutor) -> tornado.web.Application:
    """The routes: ``/`` (the page), ``/static/...`` and the API under ``/api/`` (see the README)."""
    context = {"api": api, "pool": pool}
    scene = r"/api/scenes/([A-Za-z0-9._-]+)"
    return tornado.web.Application(
        [
            (r"/api/info", InfoHandler, context),
            (r"/api/scenes", ScenesHandler, context),
            (scene, SceneHandler, context),
            (scene + r"/point", PointHandler, context),
            (scene + r"/blocks", BlocksHandler, context),
            (scene + r"/quicklook", QuicklookHandler, context),
            (scene + r"/tiles/([A-Za-z0-9._-]+)/(\d{1,3})/(\d{1,9})/(\d{1,9})\.(png|npy)", TileHandler, context),
            (r"/api/legends/([A-Za-z0-9_-]+)\.png", LegendHandler, context),
            (r"/()", tornado.web.StaticFileHandler, {"path": str(STATIC), "default_filename": "index.html"}),
            (r"/static/(.*)", tornado.web.StaticFileHandler, {"path": str(STATIC)}),
        ],
        default_handler_class=MissingHandler,
        default_handler_args=context,
        log_function=_log_request,
        compress_response=True,
    )


def _log_request(handler: tornado.web.RequestHandler) -> None:
    """Log server errors only: a viewer's terminal is not an access log."""
    if handler.get_status() >= 500:
        log.error("%d %s", handler.get_status(), handler.request.uri)


def bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on ``host:port`` (port 0: a free one).

    Raises:
        ViewerError: the port is in use, the address is not this machine's, or binding is not allowed.
    """
    try:
        return tornado.netutil.bind_sockets(port, host)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ViewerError(f"port {port} on {host} is already in use: choose another with --port (0 picks a free one)") from None
        raise ViewerError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None


class ViewerServer:
    """The viewer over ``catalog``, listening on ``host:port`` from construction on (requests wait until :meth:`serve`).

    Raises:
        ViewerError: the address cannot be used (see :func:`bind`).
    """

    def __init__(self, catalog: Catalog, host: str = "127.0.0.1", port: int = 8000, dashboard: str | None = None,
                 refresh_seconds: float = 2.0, threads: int | None = None):
        self.catalog = catalog
        self.host = host
        self.sockets = bind(host, port)
        self.port = self.sockets[0].getsockname()[1]
        self.api = ViewerApi(catalog, dashboard, refresh_seconds)
        self.pool = ThreadPoolExecutor(max_workers=threads or min(8, (os.cpu_count() or 1) + 2),
                                       thread_name_prefix="geosal-viewer")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()

    @property
    def url(self) -> str:
        """The page's address (loopback for a wildcard host)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else "[::1]" if self.host == "::" else self.host
        host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return f"http://{host}:{self.port}/"

    def serve(self, handle_signals: bool = False) -> None:
        """Answer requests until :meth:`stop` (or, with ``handle_signals``, SIGINT / SIGTERM: main thread only)."""
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._main(handle_signals))
        finally:
            self.pool.shutdown(wait=False, cancel_futures=True)
            loop.close()

    async def _main(self, handle_signals: bool) -> None:
        self._stop = asyncio.Event()
        server = tornado.httpserver.HTTPServer(make_application(self.api, self.pool))
        server.add_sockets(self.sockets)
        if handle_signals:
            for number in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(number, self._stop.set)
        self._started.set()
        await self._stop.wait()
        server.stop()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.close_all_connections(), timeout=2)

    def stop(self) -> None:
        """Stop serving (from any thread); :meth:`serve` then returns."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        else:
            for sock in self.sockets:
                sock.close()

    def wait_started(self, timeout: float = 10.0) -> bool:
        """Wait until :meth:`serve` accepts requests."""
        return self._started.wait(timeout)


@contextlib.contextmanager
def serving(paths: list[str | os.PathLike[str]], host: str = "127.0.0.1", port: int = 0, **options) -> Iterator[ViewerServer]:
    """A viewer of ``paths`` serving in a background thread while the block runs (for tests and tools).

    Raises:
        ViewerError: no geosal output under a path, or the address cannot be used.
    """
    server = ViewerServer(Catalog(paths), host, port, **options)
    thread = threading.Thread(target=server.serve, name="geosal-viewer-server", daemon=True)
    thread.start()
    server.wait_started()
    try:
        yield server
    finally:
        server.stop()
        thread.join(timeout=10)
