"""Operator screen for the database servers (tenants.servers): list with health, register, drain.

Viewers read; Admins register a server (the form connects to it first: a bad host, port or login is
one sentence on the form and nothing is saved) and drain or re-activate one. Nothing here probes a
server: the list shows what the last health job wrote.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.errors import ApplicationError
from core.http import OperatorRequest
from core.permissions import Role, has_role, role_required
from tenants import servers
from tenants.forms import ServerForm
from tenants.models import Server


def _page(request: OperatorRequest, form: ServerForm, status: int = 200) -> HttpResponse:
    context = {"servers": servers.server_list(), "form": form, "can_admin": has_role(request.user, Role.ADMIN)}
    return render(request, "tenants/servers.html", context, status=status)


@role_required(Role.VIEWER)
def server_list(request: OperatorRequest) -> HttpResponse:
    return _page(request, ServerForm())


@require_POST
@role_required(Role.ADMIN)
def server_add(request: OperatorRequest) -> HttpResponse:
    form = ServerForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    try:
        server = servers.server_register(**form.cleaned_data, actor=request.user, request=request)
    except ApplicationError as exc:
        form.add_error(None, str(exc))
        return _page(request, form, status=400)
    messages.success(request, f"Server {server.name} is registered; new placements may go there now.")
    return redirect("tenants:servers")


@require_POST
@role_required(Role.ADMIN)
def server_state(request: OperatorRequest, server_id: int) -> HttpResponse:
    server = Server.objects.filter(pk=server_id).first()
    if server is None:
        raise Http404("No such server.")
    try:
        server = servers.server_set_state(
            server=server, state=request.POST.get("state", ""), actor=request.user, request=request
        )
    except ApplicationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Server {server.name} is {server.get_state_display().lower()}.")
    return redirect("tenants:servers")
