"""Who did something: an operator (a Django user) or a named part of the system.

Every service that changes something takes `actor: Actor`. The audit trail and the event log
store `actor_label(actor)`; the user, when there is one, is kept as a foreign key too.

    tenant_suspend(tenant=tenant, actor=request.user, ...)        # an operator
    run_start(actor=SystemActor("manage.py migrate_tenants"), ...)  # the command line
    provisioning_start(..., actor=SystemActor(f"signup {email}"))   # a self-signup
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@dataclass(frozen=True)
class SystemActor:
    """Anything that is not a signed-in operator, by name only: a command, beat, a self-signup,
    or an anonymous sign-in attempt naming a username."""

    label: str

    def __str__(self) -> str:
        return self.label


SYSTEM = SystemActor("system")

Actor: TypeAlias = "User | SystemActor"


def actor_user(actor: Actor | None) -> User | None:
    """The signed-in user behind `actor`, or None for system actors."""
    if actor is not None and not isinstance(actor, SystemActor) and getattr(actor, "is_authenticated", False):
        return actor
    return None


def actor_label(actor: Actor | None) -> str:
    """The name stored with a record: the username, or the system actor's label."""
    user = actor_user(actor)
    if user is not None:
        return user.get_username()
    if isinstance(actor, SystemActor):
        return actor.label
    if actor is None:
        return SYSTEM.label
    raise TypeError(f"An actor is a user or a SystemActor, not {type(actor).__name__}.")
