"""The shared caches' tables (settings.CACHES when CACHE_REDIS_URL is unset): Django's database-cache layout."""

from django.db import migrations

TABLES = ("cache_default", "limits_cache", "tenant_limits_cache")


def _create(table: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (cache_key varchar(255) NOT NULL PRIMARY KEY, "
        f"value text NOT NULL, expires timestamp with time zone NOT NULL); "
        f"CREATE INDEX IF NOT EXISTS {table}_expires ON {table} (expires)"
    )


class Migration(migrations.Migration):
    dependencies = [("saas_admin", "0002_api_token")]
    operations = [
        migrations.RunSQL([_create(t) for t in TABLES], [f"DROP TABLE IF EXISTS {t}" for t in TABLES]),
    ]
