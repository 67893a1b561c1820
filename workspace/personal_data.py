"""Personal data in the workspace (every tenant's placement): declared for the record of processing."""

from __future__ import annotations

from core.personal_data import Category, event_personal, not_personal, personal

MEMBERS = "the tenant's workspace members"
IN_PLACEMENT = "tenant placement"

personal("workspace.Member", "name", category=Category.IDENTITY, purpose="Show who a member is in the workspace.",
         subjects=MEMBERS, legal_basis="Art. 6(1)(b) contract", retention="While the person is a member.",
         erasure="Anonymised by the erasure saga.", location=IN_PLACEMENT)  # fmt: skip
personal("workspace.Member", "email", category=Category.CONTACT, purpose="Sign-in and account notices.",
         subjects=MEMBERS, legal_basis="Art. 6(1)(b) contract", retention="While the person is a member.",
         erasure="Anonymised by the erasure saga.", location=IN_PLACEMENT)  # fmt: skip
personal("workspace.Member", "password", category=Category.CREDENTIALS, purpose="Sign-in (a salted hash only).",
         subjects=MEMBERS, legal_basis="Art. 6(1)(b) contract", retention="While the person is a member.",
         erasure="Made unusable by the erasure saga.", location=IN_PLACEMENT)  # fmt: skip
personal("workspace.MemberSession", "session_data", category=Category.ACTIVITY,
         purpose="Keep a member signed in.", subjects=MEMBERS, legal_basis="Art. 6(1)(b) contract",
         retention="Until the session expires (retention policy 'sessions').",
         erasure="Deleted by the erasure saga.", location=IN_PLACEMENT)  # fmt: skip
not_personal("workspace.Account", "name", reason="A ledger account's label, not a person.")

# Event payloads in the tenant's own log: encrypted per subject (events.crypto), crypto-shredded on erasure.
for _field, _category in (("name", Category.IDENTITY), ("email", Category.CONTACT)):
    event_personal("member.joined", f"member.{_field}", category=_category,
                   purpose="The member's history in the tenant's log.", subjects=MEMBERS,
                   legal_basis="Art. 6(1)(b) contract", retention="As long as the tenant's log.",
                   erasure="Crypto-shredded (the subject's key is destroyed).", location=IN_PLACEMENT)  # fmt: skip
for _type in ("ledger.deposited", "ledger.withdrawn", "ledger.transfer_sent", "ledger.transfer_received"):
    event_personal(_type, "metadata.member_id", category=Category.ACTIVITY,
                   purpose="Who made a ledger entry.", subjects=MEMBERS, legal_basis="Art. 6(1)(c) legal obligation",
                   retention="As long as the tenant's log (bookkeeping).",
                   erasure="The member row it points to is anonymised.", location=IN_PLACEMENT)  # fmt: skip
    event_personal(_type, "note", category=Category.FREE_TEXT, purpose="The member's note on a ledger entry.",
                   subjects=MEMBERS, legal_basis="Art. 6(1)(b) contract", retention="As long as the tenant's log.",
                   erasure="Exported with the member's entries; free text is not scanned for names.",
                   location=IN_PLACEMENT)  # fmt: skip
personal("workspace.PrivacyIntake", "email", category=Category.CONTACT,
         purpose="A data-subject request filed by the workspace admin, until the control plane takes it.",
         subjects=MEMBERS, legal_basis="Art. 6(1)(c) legal obligation (Art. 15)",
         retention="Wiped when the control plane opens the request (within a minute).",
         erasure="Wiped at pickup; the erasure scan would find a waiting one.", location=IN_PLACEMENT)  # fmt: skip
