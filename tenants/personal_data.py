"""Personal data in the tenants app (control plane): declared for the record of processing."""

from __future__ import annotations

from core.personal_data import Category, not_personal, personal

personal("tenants.Tenant", "owner_email", category=Category.CONTACT,
         purpose="Reach the customer's owner about their tenant.", subjects="tenant owners (customer contacts)",
         legal_basis="Art. 6(1)(b) contract", retention="While the tenant exists.",
         erasure="Changed by an operator; the erasure scan reports it as a hit.")  # fmt: skip
not_personal("tenants.Tenant", "name", reason="An organisation's name.")
not_personal("tenants.Placement", "schema_name", reason="A database schema's name.")
not_personal("tenants.Placement", "db_name", reason="A database's name.")
not_personal("tenants.TenantExport", "file_name", reason="The export file's path: the tenant's and the export's uuids.")
not_personal("tenants.Server", "name", reason="A database server's name in the registry.")
