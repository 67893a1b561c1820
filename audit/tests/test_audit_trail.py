from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.db.utils import ProgrammingError
from django.test import Client

from audit import selectors
from audit.models import AuditEntry
from audit.services import audit_record

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def entry(action: str = "tenant.suspend", at: datetime = T0, **kwargs) -> AuditEntry:
    kwargs.setdefault("actor_label", "otto_operator")
    return AuditEntry.objects.create(occurred_at=at, action=action, **kwargs)


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for url in ("/audit/", "/audit/export.csv"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_non_operators_get_403(client_for, outsider, make_operator):
    for user in (outsider, make_operator(None)):
        assert client_for(user).get("/audit/").status_code == 403
        assert client_for(user).get("/audit/export.csv").status_code == 403


def test_viewers_read_the_trail_but_cannot_export_it(client_for, viewer):
    entry(summary="Suspended tenant acme")
    response = client_for(viewer).get("/audit/")
    assert response.status_code == 200
    assert "Suspended tenant acme" in response.content.decode()
    assert "Export CSV" not in response.content.decode()
    assert client_for(viewer).get("/audit/export.csv").status_code == 403


def test_filters_by_actor_action_target_and_dates(client_for, viewer):
    entry("operator.create", actor_label="ada", target_type="user", target_id="7", summary="A-create")
    entry(
        "operator.role_change",
        actor_label="ada",
        target_type="user",
        target_id="8",
        summary="A-role",
        at=T0 + timedelta(days=2),
    )
    entry(
        "tenant.suspend",
        actor_label="otto",
        target_type="tenant",
        target_id="acme",
        summary="O-suspend",
        at=T0 + timedelta(days=5),
    )
    client = client_for(viewer)

    def summaries(**params) -> set[str]:
        response = client.get("/audit/", params)
        assert response.status_code == 200
        return {e.summary for e in response.context["page"].entries}

    assert summaries(actor="ada") == {"A-create", "A-role"}
    assert summaries(action="operator") == {"A-create", "A-role"}  # a prefix matches the whole family
    assert summaries(action="operator.create") == {"A-create"}
    assert summaries(action="operator.cre") == set()  # but not a partial name
    assert summaries(target_type="user", target_id="8") == {"A-role"}
    assert summaries(date_from="2026-03-03", date_to="2026-03-06") == {"A-role", "O-suspend"}
    assert summaries(date_from="2026-03-04", date_to="2026-03-31") == {"O-suspend"}
    assert summaries(date_from="2026-03-01", date_to="2026-03-03") == {"A-create", "A-role"}


def test_an_inverted_date_range_is_one_clear_sentence(client_for, viewer):
    response = client_for(viewer).get("/audit/", {"date_from": "2026-03-05", "date_to": "2026-03-01"})
    assert response.status_code == 200
    assert "The “From” date must be on or before the “To” date." in response.content.decode()


def test_keyset_pages_cover_every_entry_once_even_with_equal_timestamps():
    # 7 entries share one timestamp: ordering must fall back to id, never skip or repeat.
    for i in range(12):
        entry(summary=f"e{i}", at=T0 if i < 7 else T0 + timedelta(minutes=i))
    filters = selectors.AuditFilters()
    seen, cursor, pages = [], "", 0
    while True:
        page = selectors.audit_page(filters, before=cursor, size=5)
        seen += [e.summary for e in page.entries]
        pages += 1
        if not page.older:
            break
        cursor = page.older
    assert pages == 3
    assert sorted(seen) == sorted(f"e{i}" for i in range(12)) and len(seen) == 12
    # Walking back up with `after` returns the same pages.
    second = selectors.audit_page(filters, before=selectors.audit_page(filters, size=5).older, size=5)
    back = selectors.audit_page(filters, after=second.newer, size=5)
    assert [e.pk for e in back.entries] == [e.pk for e in selectors.audit_page(filters, size=5).entries]
    assert back.is_first and back.newer is None


def test_a_garbled_cursor_shows_the_first_page(client_for, viewer):
    entry(summary="still here")
    response = client_for(viewer).get("/audit/", {"before": "not-a-cursor"})
    assert response.status_code == 200 and "still here" in response.content.decode()


def test_the_page_links_carry_the_filters(client_for, viewer):
    for i in range(60):
        entry(summary=f"e{i}", at=T0 + timedelta(seconds=i), actor_label="ada")
    html = client_for(viewer).get("/audit/", {"actor": "ada"}).content.decode()
    assert "?actor=ada&amp;before=" in html


def test_operators_export_the_filtered_trail_as_csv_and_the_export_is_audited(client_for, operator):
    entry("tenant.suspend", actor_label="otto", summary='=HYPERLINK("http://evil")')
    entry("operator.create", actor_label="ada", summary="not exported")
    response = client_for(operator).get("/audit/export.csv", {"actor": "otto"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["occurred_at", "actor", "action"]
    assert len(rows) == 2 and rows[1][1] == "otto"
    assert rows[1][5].startswith("'=")  # spreadsheet formulas are defused
    export = AuditEntry.objects.get(action="audit.export")
    assert export.actor == operator and export.details == {"actor": "otto"}


def test_audit_record_keeps_who_what_when_and_where(rf, operator):
    request = rf.post("/x", REMOTE_ADDR="192.0.2.44", HTTP_USER_AGENT="curl/8")
    recorded = audit_record(
        actor=operator, action="tenant.suspend", target_type="tenant", target_id=5, summary="s", request=request
    )
    assert (recorded.actor_label, recorded.ip_address, recorded.user_agent, recorded.target_id) == (
        operator.username,
        "192.0.2.44",
        "curl/8",
        "5",
    )


def test_the_app_role_cannot_rewrite_or_erase_the_trail():
    entry(summary="original")
    for statement in ("UPDATE compliance_auditentry SET summary = 'forged'", "DELETE FROM compliance_auditentry"):
        with (
            pytest.raises(ProgrammingError, match="permission denied"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    assert AuditEntry.objects.get().summary == "original"


def test_htmx_filtering_returns_only_the_results_fragment(client_for, viewer):
    entry(summary="fragment row", actor_label="ada")
    response = client_for(viewer).get("/audit/", {"actor": "ada"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "fragment row" in html
    assert "<html" not in html and "filter-bar" not in html


def test_the_audit_api_pages_by_cursor_for_operators_only(client_for, viewer, operator, api_token_for):
    for i in range(5):
        entry(summary=f"api{i}", at=T0 + timedelta(seconds=i), actor_label="ada")
    headers = {"Authorization": f"Bearer {api_token_for(operator)}"}
    first = Client().get("/api/audit", {"actor": "ada", "limit": 3}, headers=headers).json()
    assert [e["summary"] for e in first["entries"]] == ["api4", "api3", "api2"]
    second = Client().get("/api/audit", {"actor": "ada", "limit": 3, "before": first["next"]}, headers=headers).json()
    assert [e["summary"] for e in second["entries"]] == ["api1", "api0"] and second["next"] is None
    assert Client().get("/api/audit", {"limit": 0}, headers=headers).status_code in (400, 422)
    viewer_headers = {"Authorization": f"Bearer {api_token_for(viewer)}"}
    assert Client().get("/api/audit", headers=viewer_headers).status_code == 403
    assert Client().get("/api/audit").status_code == 401
