"""Compliance's models hold no personal data: the fields below only look personal by their names."""

from __future__ import annotations

from core.personal_data import not_personal

not_personal("compliance.Framework", "name", reason="A framework's title (e.g. SOC 2), not a person.")
not_personal("compliance.Control", "name", reason="A control's title, not a person.")
not_personal("compliance.Control", "check_name", reason="The registered check's function name.")
not_personal("compliance.Result", "check_name", reason="The registered check's function name.")
not_personal("compliance.ExportFile", "name", reason="A file name inside an auditor export.")
