"""``geosal submit ARCHIVE OUT``: the archive workflow on the command line.

It takes every option of ``geosal run`` (:func:`geosal.cli.options.add_run_options`)
plus the archive options. Exit status: 0 when every scene succeeded (or was
complete already with ``--resume``), 1 when some failed, 2 for a bad invocation.
"""

from __future__ import annotations

import argparse
import shlex

from geosal.cli.options import add_run_options, config_from_args, configure_storage

DESCRIPTION = (
    "Compute the saliency layers of every scene of ARCHIVE: a folder (searched recursively for *.tif / *.tiff), "
    "a quoted glob pattern, an s3://bucket/prefix/ (listed likewise), or a STAC Catalog / ItemCollection / Item JSON "
    "file (local, https:// or s3://). Every scene is planned first; "
    "a scene that cannot be processed is recorded and the others go on. OUT/ (a folder or an s3://bucket/prefix) "
    "receives one folder per scene "
    "(as `geosal run` writes), catalog.json (a STAC Catalog of the scenes' items), summary.json and report.html. "
    "Exit status: 0 all scenes done, 1 some failed, 2 bad invocation."
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``submit`` to the ``geosal`` subcommands; returns its parser."""
    submit = subparsers.add_parser("submit", help="saliency layers of a whole archive (folder, glob or STAC)",
                                   description=DESCRIPTION)
    submit.add_argument("archive", metavar="ARCHIVE",
                        help="folder, quoted glob pattern, s3://bucket/prefix/, or STAC JSON file (path or URL)")
    submit.add_argument("out", metavar="OUT",
                        help="output folder or s3://bucket/prefix: OUT/<scene>/ per scene, plus catalog.json, summary.json, report.html")
    existing = submit.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="recompute scenes whose output exists")
    existing.add_argument("--resume", action="store_true",
                          help="skip complete scenes and continue interrupted ones, recomputing only unfinished blocks")
    archive = submit.add_argument_group("archive")
    archive.add_argument("--asset", metavar="KEY",
                         help="STAC asset to process (default: the first with role 'data' or a GeoTIFF type, else 'image' or 'visual')")
    archive.add_argument("--max-scenes-in-flight", type=int, metavar="N",
                         help="scenes run at once on the cluster (default 2; one at a time with --scheduler in-process)")
    add_run_options(submit)
    submit.set_defaults(handler=command)
    return submit


def command(args: argparse.Namespace) -> int:
    """Run ``geosal submit``; returns the exit status (0 all done, 1 some scenes failed)."""
    from geosal.archive.report import human_bytes
    from geosal.archive.submit import submit_archive
    from geosal.cluster import check_device
    from geosal.raster.objects import is_url

    config = config_from_args(args)
    configure_storage(config)
    check_device(config.compute)
    result = submit_archive(args.archive, args.out, config, overwrite=args.overwrite, resume=args.resume,
                            progress=True, quiet=False)
    totals = result.totals()
    out = result.out
    print(
        f"geosal: {totals['scenes']} scenes: {totals['ok']} computed, {totals['skipped']} complete already, "
        f"{totals['failed']} failed; {totals['tiles_computed']} tiles in {totals['seconds']['total']:.1f} s "
        f"({totals['tiles_per_second']:.2f} tiles/s), {human_bytes(totals['output_bytes'])} written"
    )
    failed = [o for o in result.outcomes if o.status == "failed"]
    if failed:
        print("  failed scenes:")
        for outcome in failed:
            print(f"    {outcome.name} ({outcome.source}): {outcome.error}")
    print(
        f"  outputs: {out}/<scene>/ (combined.tif, lovi.tif, saliency.zarr, quicklook.jpg, item.json)\n"
        f"    {out}/catalog.json  STAC Catalog of every scene's item\n"
        f"    {out}/summary.json  per-scene status, tiles, timings and sizes\n"
        f"    {out}/report.html   the same with quicklooks, for a browser"
    )
    if failed:
        print("  rerun with --resume to continue after fixing the failures (complete scenes are skipped)")
    if not is_url(out):
        print(f"  look at them: geosal view {shlex.quote(str(out))}")
    return result.exit_code
