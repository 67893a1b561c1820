"""Loading a version of the framework library (YAML under compliance/library/<version>/).

A version directory holds one file per framework (`key`, `name`, `edition`, `requirements`:
ref/title/text, optionally `na: reason`) and `controls.yaml` (our controls and which requirement
refs each evidences per framework). Loading creates a LibraryVersion with its own frameworks,
requirements and mappings; earlier versions and every result recorded against them stay as they
were. Controls are ours and persist across versions: the library updates their name, description
and check, but never the owner, applicability, justification or frequency an Admin set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from compliance.checks import registry
from compliance.models import Control, Framework, LibraryVersion, Mapping, Requirement
from core.actors import Actor, actor_label
from core.errors import Conflict, InvalidInput

LIBRARY_DIR = Path(__file__).resolve().parent / "library"
CONTROLS_FILE = "controls.yaml"
SPECIAL_FILES = {CONTROLS_FILE}


@dataclass(frozen=True)
class Loaded:
    library: LibraryVersion
    created: bool


def versions_available() -> list[str]:
    return sorted(p.name for p in LIBRARY_DIR.iterdir() if p.is_dir() and (p / CONTROLS_FILE).exists())


def latest_available() -> str:
    available = versions_available()
    if not available:
        raise InvalidInput("No library version exists under compliance/library/.")
    return available[-1]


def _files(version: str) -> list[Path]:
    if "/" in version or "\x00" in version or version.startswith("."):
        raise InvalidInput("A library version is a directory name under compliance/library/.")
    folder = LIBRARY_DIR / version
    if not (folder / CONTROLS_FILE).exists():
        raise InvalidInput(f"Library version {version} does not exist.")
    return sorted(folder.glob("*.yaml"))


def digest_of(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def parse(version: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    """The version's frameworks and controls, validated (every mapped ref exists, every check is registered)."""
    files = _files(version)
    frameworks = []
    for path in files:
        if path.name in SPECIAL_FILES:
            continue
        data = yaml.safe_load(path.read_text())
        refs = [str(r["ref"]) for r in data["requirements"]]
        if len(refs) != len(set(refs)):
            raise InvalidInput(f"{path.name} lists a requirement twice.")
        frameworks.append(data)
    controls = yaml.safe_load((files[0].parent / CONTROLS_FILE).read_text())["controls"]
    known = {f["key"]: {str(r["ref"]) for r in f["requirements"]} for f in frameworks}
    for control in controls:
        name = control.get("check", "")
        if name and registry.get(name) is None:
            raise InvalidInput(f"Control {control['key']} names check {name}, which is not registered.")
        for framework_key, refs in (control.get("evidences") or {}).items():
            if framework_key not in known:
                raise InvalidInput(f"Control {control['key']} maps to unknown framework {framework_key}.")
            unknown = sorted({str(r) for r in refs} - known[framework_key])
            if unknown:
                raise InvalidInput(
                    f"Control {control['key']} maps to unknown {framework_key} refs {', '.join(unknown)}."
                )
    return frameworks, controls, digest_of(files)


def library_load(*, version: str | None = None, actor: Actor) -> Loaded:
    """Load `version` (default: the newest directory) unless it is loaded already with the same files."""
    version = version or latest_available()
    frameworks, controls, digest = parse(version)
    with transaction.atomic():
        existing = LibraryVersion.objects.select_for_update().filter(version=version).first()
        if existing is not None:
            if existing.digest != digest:
                raise Conflict(f"Library {version} was loaded with different files; give the change a new version.")
            return Loaded(existing, False)
        library = LibraryVersion.objects.create(
            version=version, digest=digest, loaded_at=timezone.now(), loaded_by=actor_label(actor)
        )
        by_key: dict[str, Control] = {}
        for item in controls:
            control, created = Control.objects.get_or_create(
                key=item["key"],
                defaults={
                    "name": item["name"],
                    "description": item.get("description", ""),
                    "check_name": item.get("check", ""),
                    "frequency": item.get("frequency", Control.Frequency.DAILY),
                    "justification": item.get("justification", ""),
                },
            )
            if not created:
                Control.objects.filter(pk=control.pk).update(
                    name=item["name"], description=item.get("description", ""), check_name=item.get("check", "")
                )
                control.check_name = item.get("check", "")
            by_key[control.key] = control
        automated_refs: dict[str, set[str]] = {}
        mapped: dict[str, list[tuple[str, Control]]] = {}
        for item in controls:
            for framework_key, refs in (item.get("evidences") or {}).items():
                for ref in refs:
                    mapped.setdefault(framework_key, []).append((str(ref), by_key[item["key"]]))
                    if item.get("check"):
                        automated_refs.setdefault(framework_key, set()).add(str(ref))
        for data in frameworks:
            framework = Framework.objects.create(
                library=library,
                key=data["key"],
                name=data["name"],
                edition=str(data.get("edition", "")),
                position=int(data.get("position", 0)),
            )
            requirements = {}
            for position, r in enumerate(data["requirements"]):
                ref = str(r["ref"])
                if r.get("na"):
                    mode = Requirement.Mode.NOT_APPLICABLE
                elif ref in automated_refs.get(data["key"], set()):
                    mode = Requirement.Mode.AUTOMATED
                else:
                    mode = Requirement.Mode.MANUAL
                requirements[ref] = Requirement(
                    framework=framework,
                    ref=ref,
                    title=r["title"],
                    description=r.get("text", ""),
                    mode=mode,
                    na_reason=r.get("na", "") or "",
                    position=position,
                )
            Requirement.objects.bulk_create(requirements.values())
            Mapping.objects.bulk_create(
                [
                    Mapping(requirement=requirements[ref], control=control)
                    for ref, control in mapped.get(data["key"], [])
                ],
                ignore_conflicts=True,
            )
        audit_record(
            actor=actor,
            action=AuditAction.COMPLIANCE_LIBRARY_LOAD,
            target_type="compliance_library",
            target_id=library.pk,
            summary=f"Loaded compliance library {version}",
            details={"digest": digest, "frameworks": [f["key"] for f in frameworks], "controls": len(controls)},
        )
    return Loaded(library, True)


def library_current() -> LibraryVersion | None:
    return LibraryVersion.objects.order_by("-loaded_at", "-id").first()


def library_ensure(*, actor: Actor) -> LibraryVersion:
    """The current library, loading the newest available version when none is loaded yet."""
    current = library_current()
    if current is not None:
        return current
    return library_load(actor=actor).library
