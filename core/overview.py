"""Overview page panels: the extension point for every app.

The overview at `/` renders a list of *panels*. An app adds its own tile
without touching the dashboard view: register a function that receives the
request and returns a `Panel` (a template name + context), or None to hide
itself for this request.

    # tenants/apps.py
    class TenantsConfig(AppConfig):
        def ready(self):
            from tenants import overview_panels  # noqa: F401  (registers on import)

    # tenants/overview_panels.py
    from core.overview import Panel, register_panel
    from core.permissions import Role

    @register_panel("tenants", order=20, min_role=Role.VIEWER)
    def tenants_panel(request):
        return Panel("tenants/_overview_panel.html", {"counts": tenant_counts_by_status()})

Rules:
- `name` is unique; registering the same name again replaces the panel
  (so module reloads in tests don't duplicate it).
- Panels render in ascending `order`; built-ins use 10 (health), 50
  (operators; both saas_admin/panels.py), 90 (audit activity, audit/panels.py). Leave gaps.
- `min_role` hides a panel from operators below that role; the view still
  only shows the overview to Viewer+.
- `wide=True` makes the panel span the full grid row.
- A panel that raises is logged and replaced by a small "unavailable"
  tile, so one broken app never takes the overview down.
- Panel templates are fragments (no `{% extends %}`); use the `.card`
  classes from static/css/app.css, e.g.
  `<section class="card"><h2 class="card-title">Tenants</h2>…</section>`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest

from core.permissions import Role, has_role

logger = logging.getLogger(__name__)


@dataclass
class Panel:
    template_name: str
    context: dict[str, Any] = field(default_factory=dict)
    wide: bool = False


PanelFunction = Callable[[HttpRequest], Panel | None]


@dataclass(frozen=True)
class _Registration:
    name: str
    function: PanelFunction
    order: int
    min_role: Role


_registry: dict[str, _Registration] = {}


def register_panel(
    name: str, *, order: int = 100, min_role: Role = Role.VIEWER
) -> Callable[[PanelFunction], PanelFunction]:
    """Decorator: add (or replace) the overview panel called `name`."""

    def decorator(function: PanelFunction) -> PanelFunction:
        _registry[name] = _Registration(name=name, function=function, order=order, min_role=min_role)
        return function

    return decorator


def unregister_panel(name: str) -> None:
    _registry.pop(name, None)


def registered_panels() -> list[str]:
    return [r.name for r in sorted(_registry.values(), key=lambda r: (r.order, r.name))]


def panels_for(request: HttpRequest) -> list[Panel]:
    """The panels this operator may see, rendered in order. Never raises."""
    panels: list[Panel] = []
    for registration in sorted(_registry.values(), key=lambda r: (r.order, r.name)):
        if not has_role(request.user, registration.min_role):
            continue
        try:
            panel = registration.function(request)
        except Exception:
            logger.exception("overview panel %r failed", registration.name)
            panel = Panel("dashboard/panels/unavailable.html", {"panel_name": registration.name})
        if panel is not None:
            panels.append(panel)
    return panels
