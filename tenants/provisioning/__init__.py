"""Tenant provisioning, in one place.

- steps.py     the idempotent steps per isolation level, each with a compensation
- sagas.py     the provisioning saga of each level (registered when the tenants app is ready)
- services.py  `tenant_provision` (screen, API, signup) and `tenant_provision_and_wait` (the command)

The screen is tenants.views.tenant_provision (/tenants/new/), the API POST /api/tenants/
(tenants/api.py), the form tenants.forms.OperatorProvisionForm, the command
`manage.py provision_tenant`; the tests are tenants/tests/test_provisioning*.py.
"""
