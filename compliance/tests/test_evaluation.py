"""Evaluations on the job engine: results with hashed evidence, errors never passing, append-only
history mirrored as events, readiness snapshots, the schedule, the library's versions, exports."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from compliance import exports, library, selectors, services
from compliance.checks import registry
from compliance.models import Control, Evaluation, Framework, FrameworkSnapshot, LibraryVersion, Mapping, Result
from core.actors import SystemActor
from core.errors import Conflict, InvalidInput
from events.models import Event
from jobs.services import job_execute
from privacy.models import RequestKind, SubjectRequest
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


def _evaluate(actor, keys=None) -> Evaluation:
    job = services.evaluation_start(actor=actor, control_keys=keys)
    assert job_execute(job_id=job.pk, heartbeat=False) == "succeeded"
    job.refresh_from_db()
    assert job.state == "succeeded"
    return Evaluation.objects.get(job=job)


# --- the library -------------------------------------------------------------------------------------


def test_the_library_maps_our_controls_to_requirements_of_several_frameworks(loaded_library):
    frameworks = dict(Framework.objects.filter(library=loaded_library).values_list("key", "name"))
    assert set(frameworks) == {"soc2", "iso27001", "gdpr", "hipaa", "pci"}
    iso = Framework.objects.get(library=loaded_library, key="iso27001")
    assert iso.requirements.count() == 93
    assert (
        Framework.objects.get(library=loaded_library, key="soc2").requirements.filter(ref__startswith="CC").count()
        == 33
    )
    mfa = Control.objects.get(key="mfa-enrolled")
    refs = set(mfa.requirements.filter(framework__library=loaded_library).values_list("framework__key", "ref"))
    assert {("soc2", "CC6.1"), ("iso27001", "A.8.5"), ("pci", "8.4.2")} <= refs
    assert iso.requirements.get(ref="A.8.5").mode == "automated"
    assert iso.requirements.get(ref="A.5.1").mode == "manual"
    assert iso.requirements.get(ref="A.7.1").mode == "na"


def test_a_new_library_version_keeps_earlier_results_and_mappings(loaded_library, operator, tmp_path, monkeypatch):
    evaluation = _evaluate(operator, ["mfa-enrolled"])
    old_mappings = Mapping.objects.filter(requirement__framework__library=loaded_library).count()
    newer = tmp_path / "2099.1"
    shutil.copytree(library.LIBRARY_DIR / loaded_library.version, newer)
    soc2 = newer / "soc2.yaml"
    soc2.write_text(soc2.read_text().replace("title: Logical access,", "title: Logical access (revised),"))
    monkeypatch.setattr(library, "LIBRARY_DIR", tmp_path)
    loaded = library.library_load(actor=SystemActor("tests"))
    assert loaded.created and loaded.library.version == "2099.1"
    assert library.library_current() == loaded.library
    assert Mapping.objects.filter(requirement__framework__library=loaded_library).count() == old_mappings
    assert Result.objects.filter(evaluation=evaluation).exists()
    assert (
        Framework.objects.get(library=loaded.library, key="soc2")
        .requirements.get(ref="CC6.1")
        .title.endswith("(revised)")
    )
    assert library.library_load(actor=SystemActor("tests")).created is False  # same files: nothing new
    soc2.write_text(soc2.read_text() + "\n# changed without a new version\n")
    with pytest.raises(Conflict):
        library.library_load(actor=SystemActor("tests"))


def test_a_library_mapping_to_an_unknown_requirement_is_refused(loaded_library, tmp_path, monkeypatch):
    broken = tmp_path / "2099.2"
    shutil.copytree(library.LIBRARY_DIR / loaded_library.version, broken)
    controls = broken / "controls.yaml"
    controls.write_text(controls.read_text().replace("iso27001: [A.8.5]", "iso27001: [A.99.1]"))
    monkeypatch.setattr(library, "LIBRARY_DIR", tmp_path)
    with pytest.raises(InvalidInput, match="A.99.1"):
        library.library_load(actor=SystemActor("tests"))
    assert not LibraryVersion.objects.filter(version="2099.2").exists()


# --- evaluations ---------------------------------------------------------------------------------------


def _overdue_subject_request() -> None:
    """A data-subject request past its due date: the data-subject-requests control then fails."""
    now = timezone.now()
    tenant: Any = TenantFactory()
    SubjectRequest.objects.create(
        kind=RequestKind.ACCESS, tenant=tenant, subject_ref="d" * 64, due_at=now - timedelta(days=1)
    )


def test_an_evaluation_records_every_automated_control_with_hashed_evidence_and_events(loaded_library, operator):
    _overdue_subject_request()
    evaluation = _evaluate(operator)
    results = list(evaluation.results.select_related("control"))
    automated = Control.objects.exclude(check_name="").count()
    assert len(results) == automated == 19
    for result in results:
        assert result.status in ("pass", "fail", "na"), (result.control.key, result.summary)
        assert result.evidence_sha256 == services.evidence_hash(result.evidence)
    events = Event.objects.filter(event_type="ComplianceResultRecorded", aggregate_type="compliance_control")
    assert events.count() >= automated
    mirrored = events.get(aggregate_id="data-subject-requests")
    assert mirrored.event_data["status"] == "fail"
    assert (
        mirrored.event_data["evidence_sha256"]
        == evaluation.results.get(control__key="data-subject-requests").evidence_sha256
    )
    assert FrameworkSnapshot.objects.filter(evaluation=evaluation).count() == 5
    assert evaluation.finished_at is not None and sum(evaluation.counts.values()) == automated


def test_a_crashing_check_is_an_error_with_its_message_never_a_pass(loaded_library, operator):
    @registry.check("compliance_test_crash")
    def crash() -> registry.Outcome:
        """Always raises: stands in for a check whose database went away."""
        raise RuntimeError("the catalog could not be read")

    Control.objects.create(key="crash-test", name="Crashes", check_name="compliance_test_crash")
    result = _evaluate(operator, ["crash-test"]).results.get()
    assert result.status == "error"
    assert "RuntimeError: the catalog could not be read" in result.summary
    row = next(r for r in selectors.control_rows() if r.control.key == "crash-test")
    assert row.failing_since == result.evaluated_at


def test_an_inapplicable_control_is_recorded_not_applicable_with_its_justification(loaded_library, platform_admin):
    control = Control.objects.get(key="backups-rpo")
    services.control_update(
        control=control, actor=platform_admin, applicable=False, justification="No tenant data is kept by us."
    )
    result = _evaluate(platform_admin, ["backups-rpo"]).results.get()
    assert result.status == "na" and "No tenant data is kept by us." in result.summary


def test_marking_a_control_not_applicable_needs_a_justification(loaded_library, platform_admin):
    control = Control.objects.get(key="backups-rpo")
    Control.objects.filter(pk=control.pk).update(justification="")
    control.refresh_from_db()
    with pytest.raises(InvalidInput):
        services.control_update(control=control, actor=platform_admin, applicable=False)


def test_a_retried_evaluation_keeps_the_results_the_dead_worker_recorded(loaded_library, operator):
    job = services.evaluation_start(actor=operator, control_keys=["incident-notification"])
    evaluation = Evaluation.objects.create(
        job=job, library=loaded_library, requested_by="x", controls=["incident-notification"], started_at=timezone.now()
    )
    first = services.result_record(evaluation=evaluation, control=Control.objects.get(key="incident-notification"))
    assert job_execute(job_id=job.pk, heartbeat=False) == "succeeded"  # the retry
    assert list(evaluation.results.values_list("pk", flat=True)) == [first.pk]


def test_results_are_append_only_for_the_app_role(loaded_library, operator):
    result = _evaluate(operator, ["incident-notification"]).results.get()
    for statement in ("UPDATE compliance_result SET status = 'pass'", "DELETE FROM compliance_result"):
        with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
            with connections["default"].cursor() as cursor:
                cursor.execute(statement + " WHERE id = %s", [result.pk])


def test_only_one_evaluation_runs_at_a_time(loaded_library, operator):
    services.evaluation_start(actor=operator)
    with pytest.raises(Conflict):
        services.evaluation_start(actor=operator)
    assert services.evaluation_start(actor=services.SCHEDULE) == services.evaluation_open()  # the schedule waits


def test_the_schedule_evaluates_only_controls_whose_frequency_says_they_are_due(loaded_library, operator):
    assert len(services.controls_due()) == 19  # never evaluated
    _evaluate(operator)
    assert services.controls_due() == []
    later = timezone.now() + timedelta(hours=2)
    hourly = sorted(Control.objects.filter(frequency="hourly").exclude(check_name="").values_list("key", flat=True))
    assert services.controls_due(now=later) == hourly
    job = services.evaluate_due()
    assert job is None  # nothing due right now
    assert services.controls_due(now=timezone.now() + timedelta(days=8)) == sorted(
        Control.objects.exclude(check_name="").exclude(frequency="monthly").values_list("key", flat=True)
    )


def test_readiness_counts_only_requirements_whose_controls_all_pass(loaded_library, operator):
    _overdue_subject_request()
    _evaluate(operator)
    framework = Framework.objects.get(library=loaded_library, key="gdpr")
    status = selectors.framework_status(framework)
    states = {item.requirement.ref: item.state for item in status.requirements}
    assert states["Art.15"] == "fail"  # a data-subject request is overdue
    assert states["Art.37"] == "na"
    assert states["Art.28"] == "manual"  # supplier management is attested, not checked
    assert status.readiness == round(100 * status.counts["pass"] / status.applicable, 1)


def test_posture_at_a_past_date_is_read_from_history(loaded_library, operator):
    evaluation = _evaluate(operator, ["incident-notification"])
    before = evaluation.started_at - timedelta(days=1)
    assert selectors.latest_results(before) == {}
    assert selectors.latest_results()[Control.objects.get(key="incident-notification").pk].evaluation == evaluation


# --- exports -------------------------------------------------------------------------------------------


def test_the_auditor_bundle_verifies_and_a_changed_file_does_not(loaded_library, operator, tmp_path):
    evaluation = _evaluate(operator)
    framework = Framework.objects.get(library=loaded_library, key="soc2")
    data = exports.bundle_build(framework)
    assert exports.bundle_verify(data) == []
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = set(archive.namelist())
    assert {"manifest.json", "controls_requirements.csv", "change_management.json", "report.html"} <= names
    soc2_controls = set(framework.requirements.values_list("controls__key", flat=True)) - {None}
    expected = {f"evidence/{r.pk}.json" for r in evaluation.results.filter(control__key__in=soc2_controls)}
    assert expected and expected <= names
    one = json.loads(archive.read(sorted(expected)[0]))
    assert services.evidence_hash(one["evidence"]) == one["evidence_sha256"]
    # Rewrite one evidence file with a changed verdict: both its manifest hash and its evidence hash catch it.
    name = sorted(expected)[0]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as changed:
        for item in archive.namelist():
            body = archive.read(item)
            if item == name:
                doc = json.loads(body)
                doc["evidence"]["forged"] = True
                body = json.dumps(doc).encode()
            changed.writestr(item, body)
    problems = exports.bundle_verify(out.getvalue())
    assert f"{name}: SHA-256 differs from the manifest." in problems
    path = tmp_path / "bundle.zip"
    call_command("compliance_export", framework="soc2", fmt="zip", out=str(path))
    call_command("compliance_verify_bundle", str(path))
    path.write_bytes(out.getvalue())
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("compliance_verify_bundle", str(path))


def test_the_csv_report_has_a_row_per_requirement_and_control(loaded_library, operator):
    _evaluate(operator, ["mfa-enrolled"])
    framework = Framework.objects.get(library=loaded_library, key="pci")
    lines = exports.report_csv(framework).splitlines()
    assert lines[0].startswith("framework,requirement,title")
    assert any(line.startswith("pci,8.4.2,") and ",mfa-enrolled," in line for line in lines)


def test_oscal_assessment_results_validate_with_trestle_and_carry_evidence_links(loaded_library, operator):
    from trestle.oscal.assessment_results import AssessmentResults

    from compliance import oscal

    evaluation = _evaluate(operator)
    framework = Framework.objects.get(library=loaded_library, key="iso27001")
    document = oscal.assessment_results(framework)
    model = AssessmentResults.model_validate(document["assessment-results"])  # raises if it is not OSCAL
    result = model.results[0]
    by_target = {f.target.target_id: f for f in result.findings}
    assert by_target["a.8.5"].target.status.state.value in ("satisfied", "not-satisfied")
    assert by_target["a.5.1"].target.status.state.value == "not-satisfied"  # manual: never satisfied by us
    assert "a.7.1" not in by_target  # not applicable: no finding
    mfa = evaluation.results.get(control__key="mfa-enrolled")
    observation = next(o for o in result.observations if o.relevant_evidence[0].href == f"evidence/{mfa.pk}.json")
    assert mfa.evidence_sha256 in observation.relevant_evidence[0].description
    assert any(r.observation_uuid == observation.uuid for r in by_target["a.8.5"].related_observations)
    bundle = zipfile.ZipFile(io.BytesIO(exports.bundle_build(framework)))
    assert f"evidence/{mfa.pk}.json" in bundle.namelist()  # the observation's link resolves inside the bundle
    AssessmentResults.model_validate(json.loads(bundle.read("oscal-assessment-results.json"))["assessment-results"])


def test_the_overview_counts_agree_with_the_requirement_by_requirement_states(loaded_library, platform_admin):
    _evaluate(platform_admin)
    Control.objects.filter(key="backups-rpo").update(applicable=False, justification="Not ours.")
    frameworks = list(Framework.objects.filter(library=loaded_library))
    latest = selectors.latest_results()
    counts = selectors.framework_counts(frameworks, latest)
    for framework in frameworks:
        assert counts[framework.pk].counts == selectors.framework_status(framework, latest=latest).counts, framework.key


def test_a_manual_control_counts_only_while_an_admin_attestation_is_valid(loaded_library, platform_admin, operator):
    from compliance.models import Attestation
    from core.errors import Forbidden

    policy = Control.objects.get(key="security-policy")
    framework = Framework.objects.get(library=loaded_library, key="iso27001")

    def state(at=None) -> str:
        status = selectors.framework_status(framework, at)
        counts = selectors.framework_counts([framework], selectors.latest_results(at), at)[framework.pk].counts
        assert counts == status.counts  # both readers agree
        return next(i.state for i in status.requirements if i.requirement.ref == "A.5.1")

    assert state() == "manual"
    with pytest.raises(Forbidden):
        services.attestation_record(control=policy, actor=operator, statement="Approved.", valid_days=365)
    with pytest.raises(InvalidInput):
        services.attestation_record(
            control=Control.objects.get(key="mfa-enrolled"), actor=platform_admin, statement="Trust me.", valid_days=30
        )
    with pytest.raises(InvalidInput):
        services.attestation_record(control=policy, actor=platform_admin, statement="x", valid_days=401)
    attestation = services.attestation_record(
        control=policy, actor=platform_admin, statement="Board approved policy v7.", valid_days=365,
        evidence_url="https://docs.example.test/policy-v7",
    )  # fmt: skip
    assert state() == "pass"
    event = Event.objects.filter(event_type="ComplianceAttestationRecorded", aggregate_id="security-policy").get()
    assert event.event_data["attestation_id"] == attestation.pk
    assert state(at=attestation.valid_until + timedelta(minutes=1)) == "manual"  # once it ran out
    assert state(at=attestation.attested_at - timedelta(minutes=1)) == "manual"  # and before it was given
    with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
        Attestation.objects.filter(pk=attestation.pk).update(statement="rewritten")  # evidence: INSERT-only


def test_a_control_turning_failing_appends_one_control_failing_event_for_webhooks(loaded_library, operator):
    def failing_events() -> int:
        return Event.objects.filter(
            event_type="ControlFailing", aggregate_type="compliance_control", aggregate_id="data-subject-requests"
        ).count()

    _evaluate(operator, keys=["data-subject-requests"])  # no request: passes
    assert failing_events() == 0
    _overdue_subject_request()
    _evaluate(operator, keys=["data-subject-requests"])
    assert failing_events() == 1
    _evaluate(operator, keys=["data-subject-requests"])  # still failing: no second event
    assert failing_events() == 1
