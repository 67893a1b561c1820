"""Saga definitions: an ordered list of idempotent steps, each with a compensation.

The app that owns a saga registers it when it is ready (e.g. tenants.apps imports
tenants.provisioning), so web processes and workers know every saga type they may run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobs.registry import PermanentError


class PermanentStepError(PermanentError):
    """A step failure that retrying cannot fix (bad input, a conflict): compensate at once."""


@dataclass
class StepContext:
    saga_id: Any
    saga_type: str
    step_name: str
    attempt: int
    input: dict[str, Any]
    context: dict[str, Any] = field(default_factory=dict)
    tenant_id: Any = None

    def value(self, key: str, default: Any = None) -> Any:
        """Outputs of earlier steps win over the input."""
        if key in self.context:
            return self.context[key]
        return self.input.get(key, default)


Action = Callable[[StepContext], "dict[str, Any] | None"]
Compensation = Callable[[StepContext], None]


@dataclass(frozen=True)
class StepDefinition:
    name: str
    action: Action
    compensate: Compensation | None = None
    max_attempts: int | None = None
    description: str = ""


@dataclass(frozen=True)
class SagaDefinition:
    saga_type: str
    title: str
    steps: tuple[StepDefinition, ...]

    def step(self, name: str) -> StepDefinition:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)


_REGISTRY: dict[str, SagaDefinition] = {}


def saga_register(definition: SagaDefinition) -> SagaDefinition:
    names = [step.name for step in definition.steps]
    if len(set(names)) != len(names):
        raise ValueError(f"Saga {definition.saga_type} has duplicate step names.")
    _REGISTRY[definition.saga_type] = definition
    return definition


def saga_definition(saga_type: str) -> SagaDefinition:
    try:
        return _REGISTRY[saga_type]
    except KeyError:
        raise LookupError(f"Unknown saga type {saga_type!r}.") from None


def saga_types() -> list[str]:
    return sorted(_REGISTRY)
