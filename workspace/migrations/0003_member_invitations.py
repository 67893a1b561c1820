"""Invitations (Member.invited_at) and each member session's member id (to end a member's sessions)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("workspace", "0002_membersession")]

    operations = [
        migrations.AddField(
            model_name="member",
            name="invited_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="membersession",
            name="member_id",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="membersession",
            index=models.Index(fields=["tenant_id", "member_id"], name="membersession_member"),
        ),
    ]
