"""The PostgreSQL variant of the instance configuration: the shipped SQLite instance plus a
`storage: postgres` section whose connection comes from the environment only, copied by
`pipelines.serve --instance postgres` into a new instance and never over another kind."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import pg_url_from_config

from pipelines.serve import INSTANCE_TEMPLATES, ensure_instance

POSTGRES_VARIABLES = {
    "hostname": "DAGSTER_PG_HOST",
    "port": "DAGSTER_PG_PORT",
    "db_name": "DAGSTER_PG_DB",
    "username": "DAGSTER_PG_USERNAME",
    "password": "DAGSTER_PG_PASSWORD",
}


def _shipped(storage: str) -> dict:
    return yaml.safe_load((files("pipelines") / INSTANCE_TEMPLATES[storage]).read_text(encoding="utf-8"))


def test_the_postgres_variant_is_the_shipped_instance_with_postgres_storage_from_the_environment() -> None:
    sqlite, postgres = _shipped("sqlite"), _shipped("postgres")
    storage = postgres.pop("storage")
    assert postgres == sqlite  # the same queue, retries, monitoring, pools and retention
    assert "storage" not in sqlite  # the default instance keeps SQLite files under DAGSTER_HOME
    database = storage["postgres"]["postgres_db"]
    assert {key: database[key] for key in POSTGRES_VARIABLES} == {
        key: {"env": variable} for key, variable in POSTGRES_VARIABLES.items()
    }  # every connection value, the password included, is read from the environment
    assert database["scheme"] == "postgresql+psycopg2"


def test_dagster_accepts_the_postgres_variant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in POSTGRES_VARIABLES.values():
        monkeypatch.setenv(variable, "5432" if variable.endswith("PORT") else "value")
    ensure_instance(tmp_path, "postgres")
    config, _ = dagster_instance_config(str(tmp_path))  # raises on a key Dagster does not know
    storage = process_config(DagsterPostgresStorage.config_type(), config["storage"]["postgres"])
    assert storage.success, storage.errors
    assert pg_url_from_config(storage.value) == "postgresql+psycopg2://value:value@value:5432/value"
    assert config["concurrency"]["runs"]["max_concurrent_runs"] == 3


def test_serve_copies_the_postgres_variant_into_a_new_instance_and_refuses_a_sqlite_one(
    tmp_path: Path,
) -> None:
    new = tmp_path / "new"
    ensure_instance(new, "postgres")
    assert yaml.safe_load((new / "dagster.yaml").read_text(encoding="utf-8")) == _shipped("postgres")
    ensure_instance(new, "postgres")  # an existing PostgreSQL instance is kept as it is

    existing = tmp_path / "existing"
    ensure_instance(existing)
    with pytest.raises(SystemExit, match="storage: postgres"):
        ensure_instance(existing, "postgres")
    assert yaml.safe_load((existing / "dagster.yaml").read_text(encoding="utf-8")) == _shipped("sqlite")
