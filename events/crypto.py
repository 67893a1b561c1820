"""Personal data inside events, encrypted per data subject (crypto-shredding).

Wrap a value in `Personal(subject_id, value)` when appending; the store keeps
`{"$pii": subject_id, "c": <Fernet token>}` in event_data. Each subject has
its own key in the log's own placement (a dedicated tenant's keys never leave
its database), stored encrypted with FIELD_ENCRYPTION_KEY. Erasing the key
(`subject_erase`) makes every copy unreadable — in events, snapshots and
backups — while the log stays immutable and its hash chain intact, because
the chain covers the ciphertext.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.utils import timezone

ERASED = "[erased]"
MARK = "$pii"


@dataclass(frozen=True)
class Personal:
    subject_id: str
    value: Any


def _master() -> Fernet:
    key = settings.FIELD_ENCRYPTION_KEY
    if not key:
        key = base64.urlsafe_b64encode(hashlib.sha256(("events-pii:" + settings.SECRET_KEY).encode()).digest()).decode()
    return Fernet(key)


_LEAVES = (str, int, float, bool, type(None))


def has_personal(tree: Any) -> bool:
    # Every append asks: plain leaves are skipped without a call each.
    if isinstance(tree, Personal):
        return True
    if isinstance(tree, dict):
        return any(not isinstance(v, _LEAVES) and has_personal(v) for v in tree.values())
    if isinstance(tree, list | tuple):
        return any(not isinstance(v, _LEAVES) and has_personal(v) for v in tree)
    return False


def _subject_fernet(store: Any, alias: str, subject_id: str) -> Fernet:
    from events.store import EventStoreError  # events.store imports this module

    model = store.key_model
    fields: dict[str, Any] = {"tenant_id": store.tenant_id} if store.tenant_scoped else {}
    row = model.objects.using(alias).filter(subject_id=subject_id, **fields).first()
    if row is None:
        row, _ = model.objects.using(alias).get_or_create(
            subject_id=subject_id, defaults={"key": _master().encrypt(Fernet.generate_key())}, **fields
        )
    if row.key is None:
        raise EventStoreError(f"Personal data of subject {subject_id} was erased; it cannot be recorded again.")
    return Fernet(_master().decrypt(bytes(row.key)))


def encrypt_tree(tree: Any, store: Any, alias: str | None = None) -> Any:
    alias = alias or store.alias
    cache: dict[str, Fernet] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, Personal):
            if node.subject_id not in cache:
                cache[node.subject_id] = _subject_fernet(store, alias, str(node.subject_id))
            token = cache[node.subject_id].encrypt(json.dumps(node.value).encode()).decode()
            return {MARK: str(node.subject_id), "c": token}
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list | tuple):
            return [walk(v) for v in node]
        return node

    return walk(tree)


def _subjects(tree: Any, found: set[str]) -> set[str]:
    if isinstance(tree, dict):
        if MARK in tree and "c" in tree:
            found.add(tree[MARK])
        else:
            for v in tree.values():
                _subjects(v, found)
    elif isinstance(tree, list):
        for v in tree:
            _subjects(v, found)
    return found


def decrypt_tree(tree: Any, store: Any, *, alias: str | None = None) -> Any:
    """Replace every envelope by its value, or by "[erased]" when the subject's key is gone."""
    subjects = _subjects(tree, set())
    if not subjects:
        return tree
    fields: dict[str, Any] = {"tenant_id": store.tenant_id} if store.tenant_scoped else {}
    rows = store.key_model.objects.using(alias or store.alias).filter(subject_id__in=subjects, **fields)
    master = _master()
    keys = {row.subject_id: Fernet(master.decrypt(bytes(row.key))) for row in rows if row.key is not None}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if MARK in node and "c" in node:
                fernet = keys.get(node[MARK])
                if fernet is None:
                    return ERASED
                try:
                    return json.loads(fernet.decrypt(node["c"].encode()))
                except InvalidToken:
                    return ERASED
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(tree)


def subject_erase(store: Any, subject_id: str, *, reason: str = "") -> bool:
    """Crypto-shred one subject in one log: the key is destroyed, a tombstone keeps who/when. True if a key existed."""
    with store.session() as alias:
        fields: dict[str, Any] = {"tenant_id": store.tenant_id} if store.tenant_scoped else {}
        model = store.key_model
        updated = (
            model.objects.using(alias)
            .filter(subject_id=str(subject_id), key__isnull=False, **fields)
            .update(key=None, erased_at=timezone.now(), erasure_reason=reason[:300])
        )
        if not updated and not model.objects.using(alias).filter(subject_id=str(subject_id), **fields).exists():
            model.objects.using(alias).create(
                subject_id=str(subject_id), key=None, erased_at=timezone.now(), erasure_reason=reason[:300], **fields
            )
        return bool(updated)


WITHHELD = "[another person]"


def subject_reader(store: Any, subject_id: str, *, alias: str | None = None) -> Any:
    """The subject's key for reading (None once erased), fetched once for many decrypt_for_subject calls."""
    fields: dict[str, Any] = {"tenant_id": store.tenant_id} if store.tenant_scoped else {}
    row = store.key_model.objects.using(alias or store.alias).filter(subject_id=subject_id, **fields).first()
    return Fernet(_master().decrypt(bytes(row.key))) if row is not None and row.key is not None else None


def decrypt_for_subject(tree: Any, subject_id: str, fernet: Any) -> Any:
    """Like decrypt_tree, but only this subject's envelopes are opened (with `fernet`, from
    subject_reader); anyone else's personal data becomes "[another person]" (an access request must
    never hand out a third party's data)."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if MARK in node and "c" in node:
                if node[MARK] != subject_id:
                    return WITHHELD
                if fernet is None:
                    return ERASED
                try:
                    return json.loads(fernet.decrypt(node["c"].encode()))
                except InvalidToken:
                    return ERASED
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(tree)
