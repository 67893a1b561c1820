"""Shared placement in constant time (issue 15): each placement keeps its tenant count, maintained by
triggers on tenants_tenant in the same transaction as the change, and a partial index lists the pools
with room, so choosing a pool is one indexed query with a row lock instead of a count per pool under
one global lock.

The triggers count every tenant row that points at the placement (what `placement.tenants.count()`
counted), whichever code path sets, changes or clears `placement_id` (provisioning, compensations,
moves, deletion). The function pins its search_path to the control plane's schema, so a tenant
context's search_path (pool or tenant schema first) cannot redirect it.
"""

from django.db import migrations, models
from psycopg import sql

FUNCTION = """
CREATE OR REPLACE FUNCTION tenants_placement_tenant_count() RETURNS trigger LANGUAGE plpgsql
SET search_path = {schema}, pg_temp AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.placement_id IS NOT NULL THEN
        UPDATE tenants_placement SET tenant_count = tenant_count - 1 WHERE id = OLD.placement_id;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.placement_id IS NOT NULL THEN
        UPDATE tenants_placement SET tenant_count = tenant_count + 1 WHERE id = NEW.placement_id;
    END IF;
    RETURN NULL;
END
$$
"""
TRIGGERS = [
    "CREATE TRIGGER tenants_tenant_count_insert_delete AFTER INSERT OR DELETE ON tenants_tenant "
    "FOR EACH ROW EXECUTE FUNCTION tenants_placement_tenant_count()",
    "CREATE TRIGGER tenants_tenant_count_update AFTER UPDATE OF placement_id ON tenants_tenant "
    "FOR EACH ROW WHEN (OLD.placement_id IS DISTINCT FROM NEW.placement_id) "
    "EXECUTE FUNCTION tenants_placement_tenant_count()",
]
BACKFILL = """
UPDATE tenants_placement p SET tenant_count = c.n
  FROM (SELECT placement_id, count(*) AS n FROM tenants_tenant WHERE placement_id IS NOT NULL GROUP BY 1) c
 WHERE c.placement_id = p.id
"""


def install(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema = cursor.fetchone()[0]
        # One statement at a time in this migration's transaction: no tenant row changes between the
        # backfill and the triggers (the table is locked by CREATE TRIGGER until commit).
        cursor.execute("LOCK TABLE tenants_tenant IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(sql.SQL(FUNCTION).format(schema=sql.Identifier(schema)))
        for statement in TRIGGERS:
            cursor.execute(statement)
        cursor.execute(BACKFILL)


def uninstall(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS tenants_tenant_count_insert_delete ON tenants_tenant")
        cursor.execute("DROP TRIGGER IF EXISTS tenants_tenant_count_update ON tenants_tenant")
        cursor.execute("DROP FUNCTION IF EXISTS tenants_placement_tenant_count()")


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0003_migration_state"),
    ]

    operations = [
        migrations.AddField(
            model_name="placement",
            name="tenant_count",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.AddIndex(
            model_name="placement",
            index=models.Index(
                condition=models.Q(("kind", "pool"), ("tenant_count__lt", models.F("capacity"))),
                fields=["id"],
                name="placement_open_pool",
            ),
        ),
        migrations.RunPython(install, uninstall),
    ]
