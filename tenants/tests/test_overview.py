"""The tenants tile on the overview: counts by isolation and status, new tenants per day."""

from __future__ import annotations

import pytest

from tenants.models import Tenant

pytestmark = pytest.mark.django_db


def test_the_overview_says_there_are_no_tenants_yet(client_for, viewer):
    body = client_for(viewer).get("/").content.decode()
    assert "No tenants yet" in body


def test_the_overview_counts_tenants_by_isolation_and_status(client_for, viewer):
    for i, isolation in enumerate(["shared", "shared", "schema"]):
        Tenant.objects.create(slug=f"tile-{i}", name=f"Tile {i}", isolation=isolation, status="pending")
    body = client_for(viewer).get("/").content.decode()
    assert "No tenants yet" not in body
    assert '<div class="stat-label">Shared (RLS)</div><div class="stat-value">2</div>' in body
    assert 'href="/tenants/?status=pending"' in body and "New tenants per day" in body
