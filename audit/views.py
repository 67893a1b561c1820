"""Audit trail screens: filterable, keyset-paginated list and CSV export."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django import forms
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from audit import selectors
from audit.actions import AuditAction
from audit.services import audit_record
from core.http import OperatorRequest
from core.permissions import Role, has_role, reader_required, role_required

PAGE_SIZE = 50


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=254, label="Actor")
    action = forms.CharField(required=False, max_length=100, label="Action")
    target_type = forms.CharField(required=False, max_length=100, label="Target type")
    target_id = forms.CharField(required=False, max_length=100, label="Target id")
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError("The “From” date must be on or before the “To” date.")
        return cleaned

    def filters(self) -> selectors.AuditFilters:
        data: dict[str, Any] = self.cleaned_data if self.is_valid() else {}
        values: dict[str, Any] = {name: data.get(name) or ("" if "date" not in name else None) for name in self.fields}
        return selectors.AuditFilters(**values)


@reader_required
@require_GET
def audit_list(request: OperatorRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    filters = form.filters() if form.is_bound else selectors.AuditFilters()
    page = selectors.audit_page(
        filters, before=request.GET.get("before", ""), after=request.GET.get("after", ""), size=PAGE_SIZE
    )
    query = request.GET.copy()
    for key in ("before", "after"):
        query.pop(key, None)
    template = "audit/list.html#results" if request.htmx else "audit/list.html"
    return render(
        request,
        template,
        {
            "form": form,
            "page": page,
            "filtered": not filters.is_empty(),
            "query": query.urlencode(),
            "known_actions": selectors.audit_known_actions(),
            "can_export": has_role(request.user, Role.OPERATOR),
        },
    )


def _safe_cell(value: object) -> str:
    """Defuse spreadsheet formula injection (a cell starting with = + - @ is run by Excel)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Echo:
    def write(self, value: str) -> str:
        return value


COLUMNS = ["occurred_at", "actor", "action", "target_type", "target_id", "summary", "ip_address", "user_agent"]


@role_required(Role.OPERATOR)
@require_GET
def audit_export(request: OperatorRequest) -> HttpResponse | StreamingHttpResponse:
    """CSV of every entry matching the filters (Operator+; the export itself is audited)."""
    form = AuditFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return HttpResponse(
            " ".join(str(e) for e in form.non_field_errors()) or "Check the filter values.",
            status=400,
            content_type="text/plain",
        )
    filters = form.filters() if form.is_bound else selectors.AuditFilters()
    audit_record(
        actor=request.user,
        action=AuditAction.AUDIT_EXPORT,
        target_type="audit_trail",
        summary="Exported the audit trail as CSV",
        request=request,
        details={k: str(v) for k, v in filters.__dict__.items() if v},
    )
    writer = csv.writer(_Echo())

    def rows() -> Iterator[str]:
        yield writer.writerow(COLUMNS)
        for entry in selectors.audit_export_rows(filters):
            yield writer.writerow(
                [
                    _safe_cell(v)
                    for v in (
                        entry.occurred_at.isoformat(),
                        entry.actor_label,
                        entry.action,
                        entry.target_type,
                        entry.target_id,
                        entry.summary,
                        entry.ip_address,
                        entry.user_agent,
                    )
                ]
            )

    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    return response
