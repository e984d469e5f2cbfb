"""Output folder names: safe characters, no traversal, deterministic collision handling."""

from __future__ import annotations

import re

import pytest

from geosal.archive import assign_names, discover_scenes, safe_name
from geosal.archive.names import MAX_NAME

SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("manila_oam_10cm", "manila_oam_10cm"),
        ("../x", "x"),
        ("../../etc/passwd", "etc_passwd"),
        ("..", "scene"),
        (".hidden", "hidden"),
        ("-rf", "rf"),
        ("a/b\\c:d", "a_b_c_d"),
        ("scène été", "scene_ete"),
        ("東京", "scene"),
        ("東京-tokyo", "tokyo"),
        ("name.", "name"),
        ("", "scene"),
        ("LC08 L2SP 044034 20230101", "LC08_L2SP_044034_20230101"),
    ],
)
def test_safe_name(label, expected):
    assert safe_name(label) == expected
    assert SAFE.match(safe_name(label))


def test_long_names_are_truncated():
    name = safe_name("x" * 500)
    assert len(name) == MAX_NAME and SAFE.match(name)
    long_pair = assign_names([("y" * 300, "a/k"), ("y" * 300, "b/k")])
    assert all(len(n) <= MAX_NAME and SAFE.match(n) for n in long_pair) and long_pair[0] != long_pair[1]


def test_collisions_get_a_deterministic_hash_suffix():
    entries = [("scene", "a/scene.tif"), ("scene", "b/scene.tif"), ("other", "c/other.tif")]
    names = assign_names(entries)
    assert names[2] == "other"  # no collision: the name is kept as is
    assert names[0] != names[1] and all(re.fullmatch(r"scene-[0-9a-f]{8}", n) for n in names[:2])
    assert assign_names(list(reversed(entries))) == list(reversed(names))  # independent of listing order
    assert assign_names(entries) == names  # stable from run to run


def test_ids_differing_in_unsafe_characters_or_case_do_not_collide():
    names = assign_names([("a/b", "1"), ("a:b", "2"), ("a?b", "3"), ("Scene", "4"), ("scene", "5")])
    assert len({n.lower() for n in names}) == len(names)
    assert all(n.startswith("a_b-") for n in names[:3])


def test_names_never_shadow_archive_files():
    assert assign_names([("catalog.json", "k"), ("summary.json", "k2")])[0].startswith("catalog.json-")
    assert all(n not in ("catalog.json", "summary.json") for n in assign_names([("catalog.json", "k"), ("summary.json", "k2")]))


def test_same_key_twice_still_gets_distinct_names():
    names = assign_names([("scene", "k"), ("scene", "k")])
    assert names[0] != names[1]


def test_folder_collisions_and_unicode(tmp_path):
    for relative in ("north/scene.tif", "south/scene.tif", "café.TIF", "東京.tif", "大阪.tif"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"")
    scenes = discover_scenes(tmp_path)
    names = [s.name for s in scenes]
    assert len(set(names)) == 5 and all(SAFE.match(n) for n in names)
    assert "cafe" in names
    assert sum(n.startswith("scene-") for n in names) == 4  # two scene.tif, and the two CJK stems that both became "scene"
    assert [s.name for s in discover_scenes(tmp_path)] == names
