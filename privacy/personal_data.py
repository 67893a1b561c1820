"""Personal data in the privacy app itself."""

from __future__ import annotations

from core.personal_data import Category, personal

personal("privacy.SubjectRequest", "email_enc", category=Category.CONTACT,
         purpose="Find the subject's data for an access or erasure request (encrypted).",
         subjects="data subjects of tenants", legal_basis="Art. 6(1)(c) legal obligation (Art. 12-17)",
         retention="Until the request ends; wiped by erasure.", erasure="Wiped by the erasure saga.")  # fmt: skip
personal("privacy.SubjectRequest", "opened_by_label", category=Category.ACTIVITY,
         purpose="Who opened the request.", subjects="operators", legal_basis="Art. 6(1)(f) legitimate interest",
         retention="With the request.", erasure="Kept as the user name at the time.")  # fmt: skip
personal("privacy.DownloadLink", "created_by_label", category=Category.ACTIVITY, purpose="Who made the link.",
         subjects="operators", legal_basis="Art. 6(1)(f) legitimate interest", retention="With the request.",
         erasure="Kept as the user name at the time.")  # fmt: skip
personal("privacy.LegalHold", "created_by_label", category=Category.ACTIVITY, purpose="Who placed a hold.",
         subjects="operators", legal_basis="Art. 6(1)(c) legal obligation", retention="With the hold.",
         erasure="Kept as the user name at the time.")  # fmt: skip
personal("privacy.LegalHold", "released_by_label", category=Category.ACTIVITY, purpose="Who released a hold.",
         subjects="operators", legal_basis="Art. 6(1)(c) legal obligation", retention="With the hold.",
         erasure="Kept as the user name at the time.")  # fmt: skip
personal("privacy.SubjectRequest", "names_enc", category=Category.IDENTITY,
         purpose="Names the erasure scan looks for (encrypted).", subjects="data subjects of tenants",
         legal_basis="Art. 6(1)(c) legal obligation (Art. 17)", retention="Until the erasure proof is written.",
         erasure="Wiped when the proof is recorded.")  # fmt: skip
personal("privacy.RetentionPolicy", "updated_by_label", category=Category.ACTIVITY, purpose="Who changed a policy.",
         subjects="operators", legal_basis="Art. 6(1)(f) legitimate interest", retention="With the policy.",
         erasure="Kept as the user name at the time.")  # fmt: skip
