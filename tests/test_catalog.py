"""The catalog on a real SQLite file and on a real PostgreSQL server: same commands, same answers."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import zarr

from fairimage.settings import load_settings
from tests import samples
from tests.conftest import LiveServer, run_cli


def test_init_ingest_list_and_serve_on_each_catalog(tmp_path: Path, catalog_url: str) -> None:
    repo = tmp_path / "repo"
    run_cli("init", repo, "--db", catalog_url, check=True)
    assert (repo / "fairimage.toml").is_file()
    data = samples.ramp((2, 3, 50, 60))
    inputs = [
        samples.ome_tiff(tmp_path / "a.ome.tif", data, axes="CZYX"),
        samples.png(tmp_path / "b.png", samples.ramp((30, 40), "uint8")),
    ]
    report = json.loads(
        run_cli("ingest", "--repo", repo, *inputs, "--study", "s1", "--json", check=True).stdout
    )
    assert [entry["status"] for entry in report] == ["ingested", "ingested"]
    second = json.loads(
        run_cli("ingest", "--repo", repo, inputs[0], "--study", "s2", "--json", check=True).stdout
    )
    assert second[0]["status"] == "already_present"

    images = json.loads(run_cli("images", "--repo", repo, "--json", check=True).stdout)
    assert sorted(image["name"] for image in images) == ["a.ome.tif", "b.png"]
    studies = json.loads(run_cli("studies", "--repo", repo, "--json", check=True).stdout)
    assert [(study["name"], study["image_count"]) for study in studies] == [("s1", 2)]

    with LiveServer(load_settings(repo)) as server:
        listing = httpx.get(f"{server.url}/api/images", params={"study": "s1"}).json()
        assert listing["total"] == 2
        tiff_image = next(item for item in listing["items"] if item["name"] == "a.ome.tif")
        stored = zarr.open_group(tiff_image["ome_zarr_url"], mode="r")["0"][...]
        np.testing.assert_array_equal(stored, data)


def test_settings_precedence_flags_over_environment_over_config(tmp_path: Path, monkeypatch) -> None:
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    (repo / "fairimage.toml").write_text('clevel = 3\ncname = "lz4"\n')
    monkeypatch.setenv("FAIRIMAGE_CLEVEL", "7")
    settings = load_settings(repo, cname="zlib")
    assert (settings.clevel, settings.cname) == (7, "zlib")
    assert settings.db == f"sqlite:///{repo.resolve() / 'catalog.sqlite'}"
    monkeypatch.setenv("FAIRIMAGE_REPO", str(repo))
    assert load_settings().repo == repo.resolve()


def test_the_migrations_make_every_index_the_tables_declare(tmp_path: Path, catalog_url: str) -> None:
    """On each catalog, what the migrations built has every index the models name (a query that relies
    on one, such as ingest's look for an original of a file's size, would otherwise scan the table)."""
    from sqlalchemy import create_engine, inspect

    from fairimage.catalog.tables import Base

    run_cli("init", tmp_path / "repo", "--db", catalog_url, check=True)
    engine = create_engine(catalog_url)
    try:
        found = inspect(engine)
        missing = []
        for table in Base.metadata.sorted_tables:
            built = {tuple(index["column_names"]) for index in found.get_indexes(table.name)}
            built |= {tuple(unique["column_names"]) for unique in found.get_unique_constraints(table.name)}
            built.add(tuple(found.get_pk_constraint(table.name)["constrained_columns"]))
            missing += [
                f"{table.name}({', '.join(index.columns.keys())})"
                for index in table.indexes
                if tuple(index.columns.keys()) not in built
            ]
        sizes = [i for i in found.get_indexes("original_files") if i["column_names"] == ["size"]]
    finally:
        engine.dispose()
    assert missing == []
    assert sizes, "original_files.size is not indexed"
