"""Personal data in the audit trail (control plane): declared for the record of processing."""

from __future__ import annotations

from core.personal_data import Category, personal

OPERATORS = "operators (the provider's staff)"
BASIS = "Art. 6(1)(f) legitimate interest (security, accountability)"
RETENTION = "Retention policy 'audit entries' (default 365 days), unless under legal hold."

personal("audit.AuditEntry", "ip_address", category=Category.NETWORK, purpose="Trace who changed what, from where.",
         subjects=OPERATORS, legal_basis=BASIS, retention=RETENTION, erasure="Purged by retention only.")  # fmt: skip
personal("audit.AuditEntry", "user_agent", category=Category.NETWORK, purpose="Trace who changed what, from where.",
         subjects=OPERATORS, legal_basis=BASIS, retention=RETENTION, erasure="Purged by retention only.")  # fmt: skip
personal("audit.AuditEntry", "actor_label", category=Category.IDENTITY, purpose="Who did it, kept if the user goes.",
         subjects=OPERATORS, legal_basis=BASIS, retention=RETENTION, erasure="Purged by retention only.")  # fmt: skip
