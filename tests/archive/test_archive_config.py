"""The archive section of the configuration and the shipped configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from geosal.cli import build_parser, main
from geosal.cli.options import config_from_args
from geosal.config import ArchiveConfig, ConfigError, RunConfig, load_config
from tests.paths import PROJECT

SHIPPED = sorted((PROJECT / "configs").glob("*.yaml"))


def test_archive_defaults():
    config = load_config()
    assert config.archive == ArchiveConfig(max_scenes_in_flight=2, asset=None)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"max_scenes_in_flight": 0}, "archive.max_scenes_in_flight: Input should be greater than 0"),
        ({"max_scenes_in_flight": "many"}, "archive.max_scenes_in_flight"),
        ({"asset": "  "}, "archive.asset: asset must be a non-empty STAC asset key"),
        ({"scenes_in_flight": 3}, "unknown key 'archive.scenes_in_flight'"),
    ],
)
def test_archive_section_errors_name_the_key(tmp_path, section, message):
    path = tmp_path / "bad.yaml"
    path.write_text("archive:\n" + "".join(f"  {k}: {v!r}\n" for k, v in section.items()))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(path)


def test_bad_archive_config_is_a_bad_invocation(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("archive:\n  max_scenes_in_flight: 0\n")
    assert main(["submit", str(tmp_path), str(tmp_path / "out"), "--config", str(path)]) == 2
    assert "archive.max_scenes_in_flight" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_command_line_overrides_the_archive_section(tmp_path):
    path = tmp_path / "archive.yaml"
    path.write_text("archive:\n  max_scenes_in_flight: 3\n  asset: visual\n")
    args = build_parser().parse_args(["submit", "a", "o", "--config", str(path), "--max-scenes-in-flight", "5"])
    config = config_from_args(args)
    assert config.archive == ArchiveConfig(max_scenes_in_flight=5, asset="visual")
    args = build_parser().parse_args(["submit", "a", "o", "--asset", "image", "--tile", "256"])
    config = config_from_args(args)
    assert config.archive.asset == "image" and config.tiling.tile == 256


def test_invalid_scenes_in_flight_on_the_command_line_exits_2(tmp_path, capsys):
    assert main(["submit", str(tmp_path), str(tmp_path / "out"), "--max-scenes-in-flight", "0"]) == 2
    assert "archive.max_scenes_in_flight" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_three_documented_configs_are_shipped():
    assert {p.name for p in SHIPPED} >= {"demo.yaml", "archive-example.yaml", "cowc-resnet50.yaml"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_configs_load(path: Path):
    config = load_config(path)
    assert isinstance(config, RunConfig)
    assert "#" in path.read_text()  # documented


def test_shipped_config_values():
    demo = load_config(PROJECT / "configs" / "demo.yaml")
    assert demo == RunConfig(), "demo.yaml spells out the defaults"
    example = load_config(PROJECT / "configs" / "archive-example.yaml")
    assert example.archive.max_scenes_in_flight == 2 and example.compute.scheduler is None
    assert (example.compute.workers, example.compute.threads_per_worker) == (2, 1)
    cowc = load_config(PROJECT / "configs" / "cowc-resnet50.yaml")
    assert (cowc.model.name, cowc.model.architecture, cowc.model.gsd_m) == ("path/to/cowc_resnet50.pth", "resnet50", 0.15)
    assert (cowc.tiling.tile, cowc.tiling.halo, cowc.saliency.weights) == (448, 64, "prior")
    assert cowc.tiling.tile % 32 == 0 and cowc.tiling.halo % 32 == 0
