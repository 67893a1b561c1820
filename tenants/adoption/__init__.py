"""Adopting a django-tenants deployment: `manage.py import_django_tenants --database URL [--dry-run]`.

For every tenant row of the django-tenants project (its `public` schema skipped), one job of the
engine (`tenants.django_tenants_import`, services.py):

1. read the tenant row, its domains and its schema's tables from the source (source.py), in one
   `REPEATABLE READ READ ONLY` transaction of a session that is read-only by default: the import
   never writes to the source, whatever the role in the URL may do;
2. clone our template schema as `t_<slug>` (tenants.placements.clone_template_schema), so the schema
   *is* our migrations: `tenant_id` on every TENANT_APPS table, RLS enabled + forced with the four
   policies, the event store's triggers, the data-plane grants and the migration records. A schema
   comment names the import, so an interrupted run is recognised and redone by the next (copy.py);
3. stream every TENANT_APPS table the source schema has (`COPY … TO STDOUT`, text) into a staging
   table and insert it with `tenant_id` = the new tenant's uuid, primary keys kept; move the id
   sequences past them; check each table's row count against the source's, in one target transaction;
4. in one control-plane transaction: the schema Placement and its MigrationState, the Tenant (active,
   isolation `schema`), its primary domain `<slug>.<BASE_DOMAIN>` and the django-tenants domains
   (verified: the operator holds the deployment's credentials), the TenantImport record, the
   `TenantImported` event and the `tenant.import` audit entry.

A failure in 2–4 drops the new schema and rolls the control-plane rows back, so a tenant that fails
is not imported at all and the others are unaffected; a second run skips what the first imported.

Why a copy into a new schema, also when the django-tenants schemas are in our own database: adopting
a schema in place means `ALTER TABLE … ADD tenant_id NOT NULL` and FORCE'd RLS on the deployment's
live tables; the moment that commits, the django-tenants site (whose connections never set
`app.current_tenant_id`) sees no rows and can insert none, and going back is hand-written DDL. The
copy leaves every source schema as it was, so the operator switches traffic when satisfied and can
switch back. It is one code path for both cases: a django-tenants database on another server or
database cannot be a placement as it is (a dedicated placement is one tenant per database with its
own login roles; django-tenants keeps all tenants in one database under one role), so its schemas
must be copied into ours anyway. The cost is the copy (time and space), and writes made in the
django-tenants site after its tenant was imported are not carried over: put it in maintenance first.
"""

from tenants.adoption.services import django_tenants_import
from tenants.adoption.source import MARK, AdoptionError, slug_for_schema, source_label

__all__ = ["MARK", "AdoptionError", "django_tenants_import", "slug_for_schema", "source_label"]
