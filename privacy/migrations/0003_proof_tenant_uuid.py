from django.db import migrations


class Migration(migrations.Migration):
    """An erasure proof names its tenant by uuid (it outlives the tenant); a bare NOT NULL tenant_id
    column reads as data-plane data to the catalog audit, so the column is renamed."""

    dependencies = [("privacy", "0002_retention")]

    operations = [migrations.RenameField(model_name="erasureproof", old_name="tenant_id", new_name="tenant_uuid")]
