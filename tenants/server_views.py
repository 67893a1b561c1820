"""Operator screen for the database servers (tenants.servers): list with health, register, drain,
change capacity and levels.

Viewers read; Admins register a server (the form connects to it first: a bad host, port or login is
one sentence on the form and nothing is saved), drain or re-activate one, and change a server's
capacity and levels (a bad value is one sentence on the page, nothing saved). Nothing here probes a
server: the list shows what the last health job wrote.
"""

from __future__ import annotations

from django.contrib import messages
from django.forms.models import model_to_dict
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.errors import ApplicationError
from core.http import OperatorRequest
from core.permissions import Role, has_role, role_required
from tenants import servers
from tenants.forms import ServerChangeForm, ServerForm
from tenants.models import Server


def _page(
    request: OperatorRequest, form: ServerForm, status: int = 200, change: tuple[int, ServerChangeForm] | None = None
) -> HttpResponse:
    """The screen; `change` is a server's change form that was refused (it opens, with its sentence)."""
    rows = servers.server_list()
    for server in rows:
        refused = change if change and change[0] == server.pk else None
        setattr(server, "change_open", refused is not None)  # noqa: B010
        setattr(server, "change_form", refused[1] if refused else _change_form(server))  # noqa: B010
    context = {"servers": rows, "form": form, "can_admin": has_role(request.user, Role.ADMIN)}
    return render(request, "tenants/servers.html", context, status=status)


def _change_form(server: Server) -> ServerChangeForm:
    fields = ["capacity", *servers.LEVEL_FLAGS.values()]
    return ServerChangeForm(initial=model_to_dict(server, fields=fields), prefix=f"s{server.pk}")


def _server_or_404(server_id: int) -> Server:
    server = Server.objects.filter(pk=server_id).first()
    if server is None:
        raise Http404("No such server.")
    return server


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
    server = _server_or_404(server_id)
    try:
        server = servers.server_set_state(
            server=server, state=request.POST.get("state", ""), actor=request.user, request=request
        )
    except ApplicationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Server {server.name} is {server.get_state_display().lower()}.")
    return redirect("tenants:servers")


@require_POST
@role_required(Role.ADMIN)
def server_change(request: OperatorRequest, server_id: int) -> HttpResponse:
    server = _server_or_404(server_id)
    form = ServerChangeForm(request.POST, prefix=f"s{server.pk}")
    if form.is_valid():
        try:
            server = servers.server_change(server=server, **form.cleaned_data, actor=request.user, request=request)
        except ApplicationError as exc:
            form.add_error(None, str(exc))
    if form.errors:
        return _page(request, ServerForm(), status=400, change=(server.pk, form))
    held = servers.placement_counts().get(server.pk, 0)
    note = f" It holds {held:,}, so it takes no new placements until some leave." if held >= server.capacity else ""
    placements = "placement" if server.capacity == 1 else "placements"
    levels = ", ".join(server.levels)
    messages.success(request, f"Server {server.name} may hold {server.capacity:,} {placements} of {levels}.{note}")
    return redirect("tenants:servers")
