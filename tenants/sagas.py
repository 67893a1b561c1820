"""Provisioning sagas, one per isolation level, built on tenants.provisioning's steps."""
