"""Scenes, catalogs and outputs in an S3 bucket (moto's server on 127.0.0.1, with authentication on).

The geosal commands get the standard AWS variables of the moto server (the
test process itself holds none: the in-process commands get them through
``monkeypatch`` for the duration of one call); the Dask workers have none and
receive the client's access from the storage plugin. Every output object, the
commands' output and the scheduler's and workers' logs are scanned for the
secret key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geosal.cli import main
from geosal.pipeline.scene import COMPLETE
from tests.reliability.loopback import Cli, assert_identical, error_lines, process_env
from tests.storage.conftest import BUCKET, SCENE, model_options

IN_PROCESS = ["--scheduler", "in-process"]


def assert_no_secret(moto, *found: str | Path) -> None:
    """Neither the secret key nor the access key's secret appears in any text or in any file under a folder."""
    secret = moto.secret.encode()
    for item in found:
        if isinstance(item, Path):
            files = [p for p in item.rglob("*") if p.is_file()] if item.is_dir() else [item]
            for path in files:
                assert secret not in path.read_bytes(), f"the secret key is in {path}"
        else:
            assert moto.secret not in item, "the secret key is in a command's output"


def run_with(monkeypatch, variables: dict[str, str], argv: list[str]) -> int:
    """``geosal ARGV`` in this process with ``variables`` set for the call only."""
    with monkeypatch.context() as patch:
        for name, value in variables.items():
            patch.setenv(name, value)
        return main(argv)


@pytest.mark.slow
def test_s3_scene_to_s3_outputs_on_a_cluster_survives_a_killed_worker_and_resumes(moto, cluster, scene, tiny_model,
                                                                                   tmp_path):
    source = moto.upload(BUCKET, f"scenes/{SCENE}.tif", scene)
    env = process_env(**moto.env())
    options = [*model_options(tiny_model), "--scheduler", cluster.address]
    cluster.ensure_workers()
    code, _, err = Cli(["run", str(scene), str(tmp_path / "local"), *options]).finish()
    assert code == 0, err
    reference = tmp_path / "local" / SCENE
    texts = []

    # a worker killed in the middle of pass 1: Dask computes its block elsewhere, the outputs are the same
    cluster.pauses.arm("pass1")
    cli = Cli(["run", source, f"s3://{BUCKET}/out/", *options], env=env)
    name = cluster.kill_pid(cluster.pauses.wait("pass1", cli=cli))
    cluster.pauses.release("pass1")
    cluster.start_worker(name)
    code, out, err = cli.finish()
    assert code == 0, err
    texts += [out, err]
    assert f"outputs: s3://{BUCKET}/out/{SCENE}/" in out
    keys = moto.keys(f"s3://{BUCKET}/out/")
    assert f"out/{SCENE}/{COMPLETE}" in keys and not [k for k in keys if "/.tiles/" in k or ".pyramid.zarr" in k]
    assert not [k for k in keys if k.endswith(".lock")]  # released
    assert_identical(moto.download(f"s3://{BUCKET}/out/{SCENE}", tmp_path / "s3"), reference)
    item = json.loads((tmp_path / "s3" / "item.json").read_text())
    assert item["assets"]["combined"]["href"] == "./combined.tif"
    assert [link["href"] for link in item["links"] if link["rel"] == "derived_from"] == [source]

    # the client killed in pass 2: the partial output stays (no marker), --resume finishes it
    cluster.ensure_workers()
    cluster.pauses.arm("pass2")
    cli = Cli(["run", source, f"s3://{BUCKET}/resumed", *options], env=env)
    cluster.pauses.wait("pass2", cli=cli)
    cli.process.kill()
    cli.finish()
    cluster.pauses.release("pass2")
    assert f"resumed/{SCENE}/{COMPLETE}" not in moto.keys(f"s3://{BUCKET}/resumed/")
    code, out, err = Cli(["run", source, f"s3://{BUCKET}/resumed", *options, "--resume"], env=env).finish()
    assert code == 0, err
    assert "16 of 16 blocks already done before this run" in out, out
    texts += [out, err]
    assert_identical(moto.download(f"s3://{BUCKET}/resumed/{SCENE}", tmp_path / "resumed"), reference)

    # a complete output: --resume skips it, no flag refuses it in one line
    code, out, err = Cli(["run", source, f"s3://{BUCKET}/resumed", *options, "--resume"], env=env).finish()
    assert code == 0 and "already complete" in out, err
    code, out, err = Cli(["run", source, f"s3://{BUCKET}/resumed", *options], env=env).finish()
    assert code == 2 and len(error_lines(err)) == 1 and "already exists: pass --overwrite" in err, err
    texts += [out, err]
    assert_no_secret(moto, *texts, tmp_path, cluster.logs)


def test_stac_catalog_in_a_bucket_to_an_archive_in_a_bucket(moto, scene, tiny_model, tmp_path, monkeypatch, capsys):
    client = moto.client()
    moto.upload(BUCKET, f"archive/data/{SCENE}.tif", scene)
    catalog = {"type": "Catalog", "stac_version": "1.0.0", "id": "bucket", "description": "scenes in a bucket",
               "links": [{"rel": "item", "href": f"./items/{n}.json", "type": "application/json"} for n in ("manila", "gone")]}
    client.put_object(Bucket=BUCKET, Key="archive/catalog.json", Body=json.dumps(catalog).encode())
    for item_id, href in (("manila", f"../data/{SCENE}.tif"), ("gone", "../data/gone.tif")):
        item = {"type": "Feature", "stac_version": "1.0.0", "id": item_id, "geometry": None, "properties": {"datetime": None},
                "links": [], "assets": {"image": {"href": href, "type": "image/tiff; application=geotiff", "roles": ["data"]}}}
        item["properties"]["datetime"] = "2020-01-01T00:00:00Z"
        client.put_object(Bucket=BUCKET, Key=f"archive/items/{item_id}.json", Body=json.dumps(item).encode())

    argv = ["submit", f"s3://{BUCKET}/archive/catalog.json", f"s3://{BUCKET}/results", *model_options(tiny_model),
            *IN_PROCESS]
    assert run_with(monkeypatch, moto.env(), argv) == 1  # one scene failed, the other went on
    captured = capsys.readouterr()
    summary = json.loads(client.get_object(Bucket=BUCKET, Key="results/summary.json")["Body"].read())
    status = {scene["name"]: scene for scene in summary["scenes"]}
    assert status["manila"]["status"] == "ok"
    assert status["gone"]["status"] == "failed"
    assert status["gone"]["error"] == f"s3://{BUCKET}/archive/data/gone.tif: no such object", status["gone"]
    keys = moto.keys(f"s3://{BUCKET}/results/")
    assert {"results/catalog.json", "results/summary.json", "results/report.html", f"results/manila/{COMPLETE}",
            "results/manila/combined.tif", "results/manila/item.json"} <= set(keys)
    assert not [k for k in keys if k.startswith("results/gone/")]
    catalog = json.loads(client.get_object(Bucket=BUCKET, Key="results/catalog.json")["Body"].read())
    assert [link["href"] for link in catalog["links"] if link["rel"] == "item"] == ["./manila/item.json"]
    item = json.loads(client.get_object(Bucket=BUCKET, Key="results/manila/item.json")["Body"].read())
    assert [link["href"] for link in item["links"] if link["rel"] == "derived_from"] == [
        f"s3://{BUCKET}/archive/data/{SCENE}.tif"]

    assert run_with(monkeypatch, moto.env(), [*argv, "--resume"]) == 1  # the finished scene is skipped
    again = capsys.readouterr()
    summary = json.loads(client.get_object(Bucket=BUCKET, Key="results/summary.json")["Body"].read())
    assert {scene["name"]: scene["status"] for scene in summary["scenes"]} == {"manila": "skipped", "gone": "failed"}

    client.put_object(Bucket=BUCKET, Key="results/manila/stale.txt", Body=b"left by an older run")
    assert run_with(monkeypatch, moto.env(), [*argv, "--overwrite"]) == 1  # the finished scene is replaced, whole
    overwritten = capsys.readouterr()
    summary = json.loads(client.get_object(Bucket=BUCKET, Key="results/summary.json")["Body"].read())
    assert {scene["name"]: scene["status"] for scene in summary["scenes"]} == {"manila": "ok", "gone": "failed"}
    keys = moto.keys(f"s3://{BUCKET}/results/manila/")
    assert "results/manila/stale.txt" not in keys and f"results/manila/{COMPLETE}" in keys
    assert_no_secret(moto, captured.out, captured.err, again.out, again.err, overwritten.out, overwritten.err,
                     moto.download(f"s3://{BUCKET}/results", tmp_path / "results"))


@pytest.mark.parametrize("case", ["wrong secret", "unknown key", "missing bucket", "missing scene"])
def test_storage_failures_are_one_line(moto, scene, tmp_path, monkeypatch, capsys, case):
    source = moto.upload(BUCKET, f"scenes/{SCENE}.tif", scene)
    variables, out, expected = moto.env(), f"s3://{BUCKET}/failures", ""
    if case == "wrong secret":
        variables["AWS_SECRET_ACCESS_KEY"] = "x" + moto.secret[1:]
        expected = f"{source}: the credentials were refused (SignatureDoesNotMatch)"
    elif case == "unknown key":
        variables["AWS_ACCESS_KEY_ID"] = "AKIAUNKNOWNKEY000000"
        expected = f"{source}: the credentials were refused (InvalidAccessKeyId)"
    elif case == "missing bucket":
        out = "s3://no-such-bucket/out"
        expected = "the bucket no-such-bucket does not exist"
    else:
        source = f"s3://{BUCKET}/scenes/none.tif"
        expected = f"{source}: no such object"
    code = run_with(monkeypatch, variables, ["run", source, out, *IN_PROCESS, "--retries", "1"])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = error_lines(err)
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in err, err
    assert moto.secret not in err and variables["AWS_SECRET_ACCESS_KEY"] not in err
    assert not [k for k in moto.keys(f"s3://{BUCKET}/failures/") if not k.endswith(".lock")]


def test_output_lock_in_a_bucket_keeps_a_second_run_out(moto, scene, tiny_model, monkeypatch):
    """The scene's lock is an object created only if absent: while this process holds it, a run into the same output
    refuses in one line naming the holder, and touches nothing; released, the object is gone."""
    from geosal.pipeline.lock import OutputLock
    from geosal.raster.credentials import StorageAccess, apply

    source = moto.upload(BUCKET, f"scenes/{SCENE}.tif", scene)
    with monkeypatch.context() as patch:
        for name, value in moto.env().items():
            patch.setenv(name, value)
        apply(StorageAccess.from_environment())
        lock = OutputLock.acquire(f"s3://{BUCKET}/locked/.{SCENE}.lock", "the test's output")
    try:
        code, _, err = Cli(["run", source, f"s3://{BUCKET}/locked", *model_options(tiny_model), *IN_PROCESS],
                           env=process_env(**moto.env())).finish()
        lines = error_lines(err)
        assert code == 2 and len(lines) == 1 and f"pid {lock.owner.pid}" in lines[0], err
        assert moto.keys(f"s3://{BUCKET}/locked/") == [f"locked/.{SCENE}.lock"]
    finally:
        lock.release()
    assert moto.keys(f"s3://{BUCKET}/locked/") == []
