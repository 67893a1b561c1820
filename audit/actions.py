"""Every action the audit trail records, as constants (Zulip's RealmAuditLog event types).

Names are dotted `<object>.<verb>`; the audit screen filters a family by prefix
(`operator` finds every `operator.*`). Add a member here before writing a new action.
"""

from __future__ import annotations

from django.db import models


class AuditAction(models.TextChoices):
    # Sign-in (saas_admin.auth_audit); the limiter counts the failures.
    AUTH_LOGIN = "auth.login", "Signed in"
    AUTH_LOGOUT = "auth.logout", "Signed out"
    AUTH_LOGIN_FAILED = "auth.login_failed", "Failed sign-in"
    AUTH_LOGIN_BLOCKED = "auth.login_blocked", "Sign-in refused by the limiter"
    # Operators and their API tokens (saas_admin.services).
    OPERATOR_CREATE = "operator.create", "Operator created"
    OPERATOR_ROLE_CHANGE = "operator.role_change", "Operator role changed"
    OPERATOR_DEACTIVATE = "operator.deactivate", "Operator deactivated"
    OPERATOR_ACTIVATE = "operator.activate", "Operator reactivated"
    OPERATOR_PASSWORD_RESET = "operator.password_reset", "Operator password reset"
    OPERATOR_UNLOCK = "operator.unlock", "Operator sign-in unlocked"
    OPERATOR_MFA_RESET = "operator.mfa_reset", "Operator two-factor devices reset"
    MFA_DEVICE_ADD = "mfa.device_add", "Two-factor device added"
    MFA_DEVICE_REMOVE = "mfa.device_remove", "Two-factor device removed"
    MFA_RECOVERY_CODES = "mfa.recovery_codes", "Recovery codes generated"
    AUTH_MFA_VERIFIED = "auth.mfa_verified", "Two-factor sign-in completed"
    AUTH_MFA_FAILED = "auth.mfa_failed", "Two-factor code refused"
    TOKEN_CREATE = "token.create", "API token created"
    TOKEN_REVOKE = "token.revoke", "API token revoked"
    TOKEN_REFUSED = "token.refused", "API token refused (expired, revoked or over its scope)"
    # The audit trail itself.
    AUDIT_EXPORT = "audit.export", "Audit trail exported"
    # Tenants (tenants.services, tenants.provisioning).
    TENANT_PROVISION = "tenant.provision", "Tenant provisioning started"
    TENANT_SUSPEND = "tenant.suspend", "Tenant suspended"
    TENANT_RESUME = "tenant.resume", "Tenant resumed"
    TENANT_MOVE = "tenant.move", "Tenant move started"
    TENANT_PLAN_CHANGE = "tenant.plan_change", "Tenant plan changed"
    TENANT_DELETE = "tenant.delete", "Tenant deletion scheduled"
    TENANT_DELETE_CANCEL = "tenant.delete_cancel", "Tenant deletion cancelled (restored)"
    TENANT_EXPORT = "tenant.export", "Tenant export started"
    TENANT_EXPORT_DOWNLOAD = "tenant.export_download", "Tenant export downloaded"
    TENANT_RESTORE = "tenant.restore", "Tenant restore started"
    DOMAIN_ADD = "domain.add", "Custom domain added"
    DOMAIN_VERIFY = "domain.verify", "Custom domain verified"
    DOMAIN_REMOVE = "domain.remove", "Custom domain removed"
    # Long-running work (jobs, sagas, migration_runs, events).
    JOB_CANCEL = "job.cancel", "Job cancelled"
    JOB_RETRY = "job.retry", "Job retried"
    SAGA_RETRY = "saga.retry", "Saga retried"
    SAGA_CANCEL = "saga.cancel", "Saga cancelled"
    SAGA_COMPENSATE = "saga.compensate", "Saga compensated"
    MIGRATION_RUN_START = "migration_run.start", "Migration run started"
    MIGRATION_RUN_PROPOSE = "migration_run.propose", "Migration run proposed"
    MIGRATION_RUN_APPROVE = "migration_run.approve", "Migration run approved"
    MIGRATION_RUN_REJECT = "migration_run.reject", "Migration run rejected"
    MIGRATION_RUN_CANCEL = "migration_run.cancel", "Migration run cancelled"
    MIGRATION_STATE_VERIFY = "migration_state.verify", "Migration state verification started"
    PROJECTION_REBUILD = "events.projection_rebuild", "Projection rebuild requested"
    # Compliance (compliance.library, services, access reviews, incidents).
    COMPLIANCE_LIBRARY_LOAD = "compliance.library_load", "Compliance library loaded"
    COMPLIANCE_EVALUATE = "compliance.evaluate", "Compliance evaluation started"
    COMPLIANCE_CONTROL_CHANGE = "compliance.control_change", "Compliance control owner or applicability changed"
    COMPLIANCE_EXPORT = "compliance.export", "Compliance report exported"
    COMPLIANCE_SIGNIN_REVIEW = "compliance.signin_review", "Failed sign-ins reviewed"
    ACCESS_REVIEW_START = "access_review.start", "Access review started"
    ACCESS_REVIEW_DECIDE = "access_review.decide", "Access review decision"
    ACCESS_REVIEW_COMPLETE = "access_review.complete", "Access review completed"
    INCIDENT_RECORD = "incident.record", "Incident recorded"
    INCIDENT_UPDATE = "incident.update", "Incident updated"
    AUDITOR_GRANT = "auditor.grant", "Auditor access granted"
    AUDITOR_REVOKE = "auditor.revoke", "Auditor access revoked"
    # Data-subject rights (privacy): the subject is named by its pseudonymous id, never its email.
    PRIVACY_REQUEST_OPEN = "privacy.request_open", "Data-subject request opened"
    PRIVACY_REQUEST_REFUSED = "privacy.request_refused", "Data-subject request refused"
    PRIVACY_LINK_CREATE = "privacy.link_create", "Download link created"
    PRIVACY_DOWNLOAD = "privacy.download", "Data-subject bundle downloaded"
    PRIVACY_ERASURE_START = "privacy.erasure_start", "Erasure started"
    PRIVACY_ERASURE_PROPOSE = "privacy.erasure_propose", "Erasure proposed, awaiting a second Admin"
    PRIVACY_ERASURE_APPROVE = "privacy.erasure_approve", "Erasure approved"
    PRIVACY_ERASURE_REJECT = "privacy.erasure_reject", "Erasure rejected"
    PRIVACY_HOLD_PLACE = "privacy.hold_place", "Legal hold placed"
    PRIVACY_HOLD_RELEASE = "privacy.hold_release", "Legal hold released"
    PRIVACY_PROCESSING_EXPORT = "privacy.processing_export", "Record of processing exported"
    PRIVACY_RETENTION_SET = "privacy.retention_set", "Retention policy changed"
    # Usage, metering, webhooks (usage, webhooks).
    USAGE_COLLECT = "usage.collect", "Usage collection started"
    USAGE_EXPORT = "usage.export", "Usage or usage records exported"
    WEBHOOK_CREATE = "webhook.create", "Webhook endpoint created"
    WEBHOOK_UPDATE = "webhook.update", "Webhook endpoint changed"
    WEBHOOK_DELETE = "webhook.delete", "Webhook endpoint deleted"
    WEBHOOK_ROTATE = "webhook.rotate", "Webhook secret rotated"
    WEBHOOK_REPLAY = "webhook.replay", "Webhook delivery replayed"
    COMPLIANCE_ATTEST = "compliance.attest", "Manual compliance control attested"
