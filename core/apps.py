from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The small core every app stands on: roles, errors, actors, tenancy state, database plumbing. No models."""

    name = "core"
