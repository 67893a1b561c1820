"""Offboarding: deleting a tenant with a grace period, then the `tenant.delete` saga (docs/lifecycle.md).

- services.py  `tenant_delete` (typed confirmation), `tenant_delete_cancel`, `tenant_delete_and_wait`
- sagas.py     the saga's steps and the job that starts it when the grace period ends
"""
