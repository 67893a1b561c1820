"""The OpenAPI document matches behaviour: schemathesis runs every operation of /api/openapi.json as
an Admin token and finds no server error and no response the document does not describe.

Pinned in requirements.txt (schemathesis); a bounded number of examples per operation keeps the run
to a few minutes on two cores. Operations that start background work (provisioning, migration runs)
are exercised too: their jobs are only queued, no worker runs here.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from saas_admin.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application)

CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def admin_token(platform_admin, api_token_for):
    # Requests go through the WSGI handler in this test's transaction: keep its connection open
    # between them, as Django's test client does.
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield api_token_for(platform_admin)
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.django_db(databases=["default", "owner"])
@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_operation_answers_as_documented_and_never_with_a_server_error(case, admin_token):
    response = case.call(headers={"Authorization": f"Bearer {admin_token}"})
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
    )
    case.validate_response(response, checks=CHECKS)
