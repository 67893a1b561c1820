"""Usage holds no personal data: the field below only looks personal by its name."""

from __future__ import annotations

from core.personal_data import not_personal

not_personal(
    "usage.QuotaWarning", "emailed_at", reason="When the owner's warning email was sent: a time, not an address."
)
