"""Filters for the event viewer: `{{ value|as_json }}`, `{{ mapping|get_item:key }}`."""

from __future__ import annotations

import json
from typing import Any

from django import template

register = template.Library()


@register.filter
def as_json(value: Any) -> str:
    """Compact JSON, as stored (escaped by the template like any text)."""
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


@register.filter
def get_item(mapping: Any, key: str) -> Any:
    return mapping.get(key) if hasattr(mapping, "get") else None
