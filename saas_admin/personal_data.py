"""Personal data of operators and in third-party models (the top layer sees every app)."""

from __future__ import annotations

from core.personal_data import Category, not_personal, personal

OPERATORS = "operators (the provider's staff)"
BASIS = "Art. 6(1)(b) contract (employment)"
WHILE = "While the operator account exists."

for _field, _category in (
    ("username", Category.IDENTITY),
    ("first_name", Category.IDENTITY),
    ("last_name", Category.IDENTITY),
    ("email", Category.CONTACT),
    ("password", Category.CREDENTIALS),
):
    personal("auth.User", _field, category=_category, purpose="Operator sign-in and accountability.",
             subjects=OPERATORS, legal_basis=BASIS, retention=WHILE, erasure="Deleted with the operator account.")  # fmt: skip
for _label in ("sagas.Saga", "jobs.Job"):
    personal(_label, "requested_by_label", category=Category.ACTIVITY, purpose="Who started long-running work.",
             subjects=OPERATORS, legal_basis="Art. 6(1)(f) legitimate interest", retention=WHILE,
             erasure="Kept as the user name at the time.")  # fmt: skip
not_personal("auth.Permission", "name", reason="A permission's label.")
not_personal("auth.Permission", "codename", reason="A permission's code.")
not_personal("auth.Group", "name", reason="A role's name.")
not_personal("otp_totp.TOTPDevice", "name", reason="A device label the operator chose.")
not_personal("otp_static.StaticDevice", "name", reason="A device label.")
not_personal("django_otp_webauthn.WebAuthnCredential", "name", reason="A passkey label the operator chose.")
not_personal("saas_admin.ApiToken", "name", reason="A token label the operator chose.")
not_personal("events.Checkpoint", "name", reason="A consumer's name.")
not_personal("tenantlog.TenantCheckpoint", "name", reason="A consumer's name.")
not_personal("sagas.SagaStep", "name", reason="A step's name.")
