"""Automated compliance checks: `registry` (how a check is written and found) and one module per area.

Importing this package registers the checks that compliance owns; saas_admin registers the ones
that read operators' devices and tokens (saas_admin/compliance_checks.py).
"""

from compliance.checks import access, change, data, integrity, isolation  # noqa: F401  (registers them)
