"""Migrations run only through owner aliases.

The `default` alias connects as the app role, which owns nothing and may not
create tables; schema changes go through `owner` (see dbroles.py).
"""

from __future__ import annotations

from typing import Any


def is_owner_alias(alias: str) -> bool:
    return alias == "owner" or alias.endswith("__owner")


class OwnerMigratesRouter:
    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        if not is_owner_alias(db):
            return False
        return None
