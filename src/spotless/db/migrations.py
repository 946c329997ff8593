"""Alembic glue: where the migrations live, the code's head, and upgrading as the table owner."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from spotless.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[3]
ALEMBIC_INI = Path(os.environ.get("ALEMBIC_CONFIG", REPO_ROOT / "config" / "alembic.ini"))


def alembic_config(migration_url: str | None = None) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    if migration_url:
        config.attributes["database_url"] = migration_url
    return config


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"migrations must have one head, found {heads}")
    return heads[0]


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings.database.migration_url), revision)
