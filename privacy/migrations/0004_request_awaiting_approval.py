from django.db import migrations, models


class Migration(migrations.Migration):
    """Erasures may wait for a second Admin (PRIVACY_ERASURE_REQUIRE_APPROVAL): a new request status."""

    dependencies = [("privacy", "0003_proof_tenant_uuid")]

    operations = [
        migrations.AlterField(
            model_name="subjectrequest",
            name="status",
            field=models.CharField(
                choices=[
                    ("open", "Open"),
                    ("awaiting", "Awaiting a second Admin"),
                    ("running", "Running"),
                    ("ready", "Ready for download"),
                    ("completed", "Completed"),
                    ("failed", "Failed"),
                    ("refused", "Refused"),
                ],
                default="open",
                max_length=10,
            ),
        ),
    ]
