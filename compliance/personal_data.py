"""Personal data in compliance's models: operators' user names kept as evidence of who did what.
The other fields below only look personal by their names."""

from __future__ import annotations

from core.personal_data import Category, not_personal, personal

OPERATORS = "operators"
EVIDENCE = "Evidence of who did what, for auditors."
BASIS = "Art. 6(1)(c) legal obligation (accountability, Art. 5(2))"

for owner, field in (
    ("compliance.Evaluation", "requested_by"),
    ("compliance.AccessReview", "started_by_label"),
    ("compliance.AccessDecision", "operator_label"),
    ("compliance.AccessDecision", "decided_by_label"),
    ("compliance.Incident", "created_by_label"),
    ("compliance.Attestation", "attested_by_label"),
):
    personal(owner, field, category=Category.ACTIVITY, purpose=EVIDENCE, subjects=OPERATORS, legal_basis=BASIS,
             retention="As long as the compliance record it belongs to.",
             erasure="Kept as the user name at the time (evidence).")  # fmt: skip

not_personal("compliance.Framework", "name", reason="A framework's title (e.g. SOC 2), not a person.")
not_personal("compliance.Control", "name", reason="A control's title, not a person.")
not_personal("compliance.Control", "check_name", reason="The registered check's function name.")
not_personal("compliance.Result", "check_name", reason="The registered check's function name.")
not_personal("compliance.ExportFile", "name", reason="A file name inside an auditor export.")
