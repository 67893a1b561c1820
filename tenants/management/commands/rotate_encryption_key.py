"""python manage.py rotate_encryption_key — re-encrypt every stored credential with the first key.

Run it with FIELD_ENCRYPTION_KEY=<new key>,<old key> (all listed keys decrypt, the first encrypts),
then remove the old key. Covers the dedicated databases' credentials (tenants.Placement) and the
database servers' admin logins (tenants.Server) and the
owner passwords that self-signup sagas carry encrypted in their input. Safe to run twice; prints
how many values it re-encrypted on its last line.
"""

from __future__ import annotations

from typing import Any

from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from sagas.models import Saga
from tenants.crypto import rotate
from tenants.models import Placement, Server

SAGA_SECRET_KEYS = ("owner_password_hash_enc",)


class Command(BaseCommand):
    help = "Re-encrypt every stored credential with the first FIELD_ENCRYPTION_KEY (MultiFernet rotation)."

    def handle(self, *args: Any, **options: Any) -> None:
        count = 0
        try:
            with transaction.atomic():
                for placement in Placement.objects.select_for_update().exclude(credentials_encrypted=""):
                    placement.credentials_encrypted = rotate(placement.credentials_encrypted)
                    placement.save(update_fields=["credentials_encrypted"])
                    count += 1
                for server in Server.objects.select_for_update().exclude(admin_credentials_encrypted=""):
                    server.admin_credentials_encrypted = rotate(server.admin_credentials_encrypted)
                    server.save(update_fields=["admin_credentials_encrypted"])
                    count += 1
                for saga in Saga.objects.select_for_update().filter(input__has_any_keys=list(SAGA_SECRET_KEYS)):
                    for key in SAGA_SECRET_KEYS:
                        if saga.input.get(key):
                            saga.input[key] = rotate(saga.input[key])
                            count += 1
                    Saga.objects.filter(pk=saga.pk).update(input=saga.input)
        except InvalidToken:
            raise CommandError(
                "A stored value cannot be decrypted with any key in FIELD_ENCRYPTION_KEY; list the old key after the new one."
            ) from None
        self.stdout.write(f"re-encrypted {count} stored credential(s)")
