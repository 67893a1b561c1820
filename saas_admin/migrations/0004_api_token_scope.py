from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("saas_admin", "0003_cache_tables")]
    operations = [
        # Tokens made before scopes existed keep what they could do: write (still capped by the owner's role).
        migrations.AddField(
            model_name="apitoken",
            name="scope",
            field=models.CharField(
                choices=[("read", "Read"), ("write", "Read and write"), ("admin", "Admin")], default="write", max_length=8
            ),
            preserve_default=False,
        ),
        # New tokens start read-only.
        migrations.AlterField(
            model_name="apitoken",
            name="scope",
            field=models.CharField(
                choices=[("read", "Read"), ("write", "Read and write"), ("admin", "Admin")], default="read", max_length=8
            ),
        ),
    ]
