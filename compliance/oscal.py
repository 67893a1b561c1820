"""OSCAL assessment results (NIST OSCAL 1.1.2 JSON) for one framework: one observation per control
result (the evidence's SHA-256 and a link to its file in the auditor bundle), one finding per
requirement (satisfied / not-satisfied) pointing at the observations of its controls.

Plain dicts, no dependency at run time; the tests validate the document with compliance-trestle's
OSCAL models (`trestle.oscal.assessment_results.AssessmentResults`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.utils import timezone

from compliance import selectors
from compliance.models import Framework

OSCAL_VERSION = "1.1.2"
NAMESPACE = uuid.UUID("6c3d6b3e-9f0a-4a3e-9d55-1f8a7c2b0c12")  # stable uuids: the same result, the same id


def _id(*parts: object) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(str(p) for p in parts)))


def _objective_id(ref: str) -> str:
    # OSCAL ids are tokens: letters, digits, '.', '-', '_' (no parentheses or spaces).
    return "".join(ch if ch.isalnum() or ch in ".-_" else "_" for ch in ref.lower()).strip("_") or "requirement"


def assessment_results(framework: Framework, at: datetime | None = None) -> dict[str, Any]:
    status = selectors.framework_status(framework, at)
    now = timezone.now()
    observations: dict[int, dict[str, Any]] = {}
    findings = []
    for item in status.requirements:
        related = []
        for control, result in item.controls:
            if result is None:
                continue
            if result.pk not in observations:
                observations[result.pk] = {
                    "uuid": _id("observation", result.pk),
                    "title": f"{control.name}: {result.status}",
                    "description": result.summary or result.status,
                    "methods": ["TEST"],
                    "props": [
                        {"name": "control", "ns": "https://saas-admin.invalid/ns", "value": control.key},
                        {"name": "status", "ns": "https://saas-admin.invalid/ns", "value": result.status},
                    ],
                    "relevant-evidence": [
                        {
                            "href": f"evidence/{result.pk}.json",
                            "description": f"Evidence of check {result.check_name}, SHA-256 {result.evidence_sha256}",
                        }
                    ],
                    "collected": result.evaluated_at.isoformat(),
                }
            related.append({"observation-uuid": observations[result.pk]["uuid"]})
        if item.state == "na":
            continue  # not applicable: no finding (the SoA says why)
        finding: dict[str, Any] = {
            "uuid": _id("finding", framework.library_id, framework.key, item.requirement.ref, at or "now"),
            "title": f"{item.requirement.ref} {item.requirement.title}",
            "description": item.requirement.description or item.requirement.title,
            "target": {
                "type": "objective-id",
                "target-id": _objective_id(item.requirement.ref),
                "status": {"state": "satisfied" if item.state == "pass" else "not-satisfied"},
                "remarks": f"Requirement state: {item.state}.",
            },
        }
        if related:
            finding["related-observations"] = related
        findings.append(finding)
    assessed: dict[str, Any] = {
        "uuid": _id("result", framework.library_id, framework.key, at or now.isoformat()),
        "title": f"{framework.name} — automated assessment",
        "description": f"Readiness {status.readiness}% ({status.satisfied} of {status.applicable} applicable requirements).",
        "start": min((o["collected"] for o in observations.values()), default=now.isoformat()),
        "end": (at or now).isoformat(),
        "reviewed-controls": {"control-selections": [{"include-all": {}}]},
        "findings": findings,
    }
    if observations:
        assessed["observations"] = list(observations.values())
    return {
        "assessment-results": {
            "uuid": _id("assessment-results", framework.library_id, framework.key, now.isoformat()),
            "metadata": {
                "title": f"{framework.name} {framework.edition} — assessment results",
                "last-modified": now.isoformat(),
                "version": framework.library.version,
                "oscal-version": OSCAL_VERSION,
            },
            "import-ap": {"href": f"#assessment-plan-{framework.key}"},
            "results": [assessed],
        }
    }
