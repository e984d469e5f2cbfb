"""``geosal view PATH...``: the saliency layers in a browser, offline, in each scene's own CRS."""

from __future__ import annotations

import argparse

DESCRIPTION = (
    "Serve the layers of PATH (a scene's output folder, an archive's output folder or its catalog.json, or several; "
    "a run in progress too) to a browser: every layer in the scene's own CRS and grid, values at a clicked point, a swipe "
    "between the scene and a saliency layer, the scenes of an archive with their footprints. The page and its map "
    "library are served by geosal itself: no network is needed. Stop with Ctrl-C."
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``view`` to ``geosal``'s sub-commands; returns its parser."""
    parser = subparsers.add_parser("view", help="look at the layers in a browser (offline)", description=DESCRIPTION)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="scene output folder, archive output folder or catalog.json")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000; 0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; the viewer has no authentication)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser, only print the address")
    parser.add_argument("--dashboard", metavar="URL", help="a Dask dashboard to link to from the page (e.g. of the running cluster)")
    parser.add_argument("--refresh", type=float, default=2.0, metavar="SECONDS",
                        help="how often the page checks a run in progress for new blocks (default 2)")
    parser.set_defaults(handler=command)
    return parser


def command(args: argparse.Namespace) -> int:
    """Find the scenes, listen, print the address, open a browser and serve until Ctrl-C (exit status 0)."""
    import webbrowser

    from geosal.viewer import Catalog, ViewerServer

    catalog = Catalog(args.paths)
    server = ViewerServer(catalog, args.host, args.port, dashboard=args.dashboard, refresh_seconds=args.refresh)
    scenes = catalog.entries()
    what = f"{len(scenes)} scenes" if catalog.is_archive else scenes[0].name
    print(f"geosal: viewing {what} at {server.url} (Ctrl-C to stop)", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"geosal: listening on {args.host}: anyone who can reach this machine can see the layers", flush=True)
    if not args.no_browser and not webbrowser.open(server.url):
        print(f"geosal: no browser found here; open {server.url} in one (from another machine: "
              f"ssh -L {server.port}:127.0.0.1:{server.port} THIS_HOST)", flush=True)
    try:
        server.serve(handle_signals=True)
    except KeyboardInterrupt:
        pass
    print("geosal: viewer stopped", flush=True)
    return 0
