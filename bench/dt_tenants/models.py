"""The tenant/domain models django-tenants needs, for the migration benchmark's baseline only."""

from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class Client(TenantMixin):
    name = models.CharField(max_length=100, default="")
    auto_create_schema = False  # the benchmark clones the schemas itself; both sides migrate the same ones


class Domain(DomainMixin):
    pass
