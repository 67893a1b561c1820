"""EventStore: one API for every event log, bound to a placement.

`EventStore.control()` is the control plane's log in `public` on the
`default` alias. Tenant logs are built by events.tenantlog.store_for(tenant):
the same class bound to the tenant's alias and tables, used inside the
tenant's context so RLS and search_path apply.

Writes are raw SQL: the database stamps tx_id, prev_hash, hash and (when not
given) occurred_at (events/ddl.py). Optimistic concurrency uses
`ON CONFLICT (stream, version) DO NOTHING`: a losing writer waits for the
winner's commit and then gets no row back, so it raises ConcurrencyError
while the caller's transaction stays usable (no savepoint round trips).

Why one module: appending, the gap-safe feed, consumers, snapshots, state at T and chain
verification all read and write the same columns under the same hash and version rules.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.conf import settings
from django.db import connections, transaction
from django.db.models.base import ModelState
from psycopg import sql

from events import aggregates, crypto, upcasting
from events.models import Checkpoint, Event, Snapshot, SubjectKey

ANY = None  # expected_version=None: append after whatever the stream holds (retries on races)
MAX_ANY_RETRIES = 20


class EventStoreError(Exception):
    """A request the event store refuses; the message is one sentence for a user."""


class ConcurrencyError(EventStoreError):
    def __init__(self, aggregate_type: str, aggregate_id: str, expected_version: int | None):
        self.aggregate_type, self.aggregate_id, self.expected_version = aggregate_type, aggregate_id, expected_version
        super().__init__(
            f"{aggregate_type} {aggregate_id} changed concurrently: version {expected_version} is no longer the latest."
        )


@dataclass
class NewEvent:
    event_type: str
    data: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] | None = None
    causation_id: uuid.UUID | str | None = None
    correlation_id: uuid.UUID | str | None = None
    event_version: int | None = None
    occurred_at: dt.datetime | None = None


@dataclass
class AggregateState:
    aggregate_type: str
    aggregate_id: str
    state: dict[str, Any]
    version: int
    event_id: int | None
    occurred_at: dt.datetime | None
    from_snapshot_version: int = 0
    replayed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "aggregate_type": self.aggregate_type,
            "aggregate_id": self.aggregate_id,
            "version": self.version,
            "event_id": self.event_id,
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
            "state": self.state,
        }


@dataclass
class ChainReport:
    checked: int
    broken: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        return not self.broken


@dataclass
class SnapshotRow:
    version: int
    occurred_at: dt.datetime
    state: dict[str, Any]


class FoldEvent:
    __slots__ = ("event_id", "version", "event_type", "event_version", "event_data", "occurred_at")

    def __init__(self, event_id, version, event_type, event_version, event_data, occurred_at):
        self.event_id, self.version, self.event_type = event_id, version, event_type
        self.event_version, self.event_data, self.occurred_at = event_version, event_data, occurred_at


EVENT_COLUMNS = (
    "event_id, event_uuid, aggregate_type, aggregate_id, version, event_type, event_version, event_data, "
    "event_metadata, occurred_at, causation_id, correlation_id, tx_id::text AS tx_id_text, prev_hash, hash, tenant_id"
)


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    if value is None or value == "":
        return None
    if isinstance(value, uuid.UUID):
        return value
    if hasattr(value, "event_uuid"):
        return value.event_uuid
    return uuid.UUID(str(value))


class EventStore:
    def __init__(
        self,
        *,
        alias: str = "default",
        # The control plane's models or a tenant log's (events.tenantlog): same columns, other tables.
        event_model: Any = Event,
        snapshot_model: Any = Snapshot,
        checkpoint_model: Any = Checkpoint,
        key_model: Any = SubjectKey,
        tenant_id: uuid.UUID | None = None,
        log_key: str = "control",
        context: Any = None,
    ) -> None:
        self.alias = alias
        self.event_model = event_model
        self.snapshot_model = snapshot_model
        self.checkpoint_model = checkpoint_model
        self.key_model = key_model
        self.tenant_id = tenant_id
        self.tenant_scoped = event_model is not Event
        self.log_key = log_key
        self._context = context  # callable returning a context manager that yields the alias (tenant logs)
        self.table = sql.Identifier(event_model._meta.db_table)
        self.table_sql = self.table.as_string(None)
        self.notify_sql = ", pg_notify('events', " + sql.Literal(log_key).as_string(None) + ")"
        self.snapshot_table = sql.Identifier(snapshot_model._meta.db_table)
        self.snapshot_table_sql = self.snapshot_table.as_string(None)

    @classmethod
    def control(cls) -> EventStore:
        return cls()

    # -- plumbing ---------------------------------------------------------------
    @contextlib.contextmanager
    def session(self) -> Iterator[str]:
        """The alias to use, with the placement's context applied (tenant GUC, search_path)."""
        if self._context is None:
            yield self.alias
        else:
            with self._context() as alias:
                yield alias

    def _conflict_target(self) -> str:
        return (
            "(tenant_id, aggregate_type, aggregate_id, version)"
            if self.tenant_scoped
            else "(aggregate_type, aggregate_id, version)"
        )

    def _row_to_event(self, row: Sequence[Any]) -> Any:
        (
            event_id,
            event_uuid,
            aggregate_type,
            aggregate_id,
            version,
            event_type,
            event_version,
            event_data,
            event_metadata,
            occurred_at,
            causation_id,
            correlation_id,
            tx_id,
            prev_hash,
            hash_,
            tenant_id,
        ) = row
        stored_version = event_version
        # Django's backend hands jsonb back as text (its fields decode it); raw SQL decodes here.
        if isinstance(event_data, str):
            event_data = json.loads(event_data)
        if isinstance(event_metadata, str):
            event_metadata = json.loads(event_metadata)
        event_version, event_data = upcasting.upcast(event_type, event_version, event_data or {})
        event = self.event_model(
            event_id=event_id,
            event_uuid=event_uuid,
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            version=version,
            event_type=event_type,
            event_version=event_version,
            event_data=event_data,
            event_metadata=event_metadata or {},
            occurred_at=occurred_at,
            causation_id=causation_id,
            correlation_id=correlation_id,
            tx_id=int(tx_id),
            prev_hash=prev_hash,
            hash=hash_,
            tenant_id=tenant_id,
        )
        event.stored_event_version = stored_version
        return event

    # -- writing ----------------------------------------------------------------
    def append(
        self,
        aggregate_type: str,
        aggregate_id: str,
        event_type: str,
        data: dict[str, Any] | None = None,
        *,
        metadata: dict[str, Any] | None = None,
        causation_id: Any = None,
        correlation_id: Any = None,
        expected_version: int | None = ANY,
        event_version: int | None = None,
        occurred_at: dt.datetime | None = None,
    ) -> Any:
        """Append one event. `expected_version` is the version the caller last saw (0 = new stream)."""
        new = NewEvent(event_type, data or {}, metadata, causation_id, correlation_id, event_version, occurred_at)
        return self.append_many(aggregate_type, aggregate_id, [new], expected_version=expected_version)[0]

    def append_many(
        self, aggregate_type: str, aggregate_id: str, events: Sequence[NewEvent], *, expected_version: int | None = ANY
    ) -> list[Any]:
        """Append several events to one stream atomically (one statement)."""
        return self.append_batch([(aggregate_type, str(aggregate_id), expected_version, list(events))])

    def append_batch(self, streams: Sequence[tuple[str, str, int | None, Sequence[NewEvent]]]) -> list[Any]:
        """Append to several streams in one INSERT; all or nothing. Returns the events in the order given."""
        if not streams or not any(events for *_x, events in streams):
            return []
        for aggregate_type, aggregate_id, _expected, _events in streams:
            if not aggregate_type or not str(aggregate_id):
                raise EventStoreError("An event needs an aggregate type and id.")
        if self._context is None:  # the control log: no context to enter (saves a generator per append)
            return self._append_on(self.alias, streams)
        with self.session() as alias:
            return self._append_on(alias, streams)

    def _append_on(self, alias: str, streams: Sequence[tuple[str, str, int | None, Sequence[NewEvent]]]) -> list[Any]:
        connection = connections[alias]
        any_version = any(expected is None for _t, _i, expected, _e in streams)
        # Several rows need all-or-nothing inside the caller's transaction: one savepoint. A single row
        # does not, even when retried: a lost race inserts nothing (ON CONFLICT DO NOTHING) and raises
        # no database error, so the caller's transaction stays usable.
        needs_savepoint = sum(len(e) for *_x, e in streams) > 1
        for attempt in range(MAX_ANY_RETRIES if any_version else 1):
            try:
                if not needs_savepoint:
                    return self._insert(connection, streams)
                with transaction.atomic(using=alias):
                    return self._insert(connection, streams)
            except ConcurrencyError:
                if not any_version or attempt == MAX_ANY_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def _insert(self, connection: Any, streams: Sequence[tuple[str, str, int | None, Sequence[NewEvent]]]) -> list[Any]:
        # Plain strings on the hot path (composing psycopg.sql objects per call costs more than the INSERT).
        # RETURNING brings back only what the database decided (id, version when appending at ANY, tx_id,
        # occurred_at, hashes); the rest of each event is built from what was sent, decoded from the very
        # JSON text sent (so the event equals a read of the row). Echoing every column back cost a third of
        # an append (docs/performance.md).
        rows_sql: list[str] = []
        params: list[Any] = []
        sent: list[tuple[uuid.UUID, str, str, int | None, str, int, str, str, Any, Any, Any]] = []
        tenant_clause = " AND tenant_id = %s" if self.tenant_scoped else ""
        for aggregate_type, aggregate_id, expected, events in streams:
            aggregate_id = str(aggregate_id)
            for index, new in enumerate(events):
                event_version = new.event_version or upcasting.current_version(new.event_type)
                data = new.data or {}
                if crypto.has_personal(data):
                    data = crypto.encrypt_tree(data, self, connection.alias)
                data_json, metadata_json = _dumps(data), _dumps(new.metadata or {})
                event_uuid = uuid.uuid4()
                causation, correlation = _uuid_or_none(new.causation_id), _uuid_or_none(new.correlation_id)
                if expected is None:
                    rows_sql.append(
                        f"(%s, %s, %s, (SELECT coalesce(max(version), 0) + {index + 1:d} FROM {self.table_sql} "
                        f"WHERE aggregate_type = %s AND aggregate_id = %s{tenant_clause}), "
                        "%s, %s, %s::jsonb, %s::jsonb, %s, %s, %s, %s)"
                    )
                    params += [event_uuid, aggregate_type, aggregate_id, aggregate_type, aggregate_id]
                    if self.tenant_scoped:
                        params.append(self.tenant_id)
                    version = None
                else:
                    rows_sql.append("(%s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s, %s)")
                    version = expected + index + 1
                    params += [event_uuid, aggregate_type, aggregate_id, version]
                params += [
                    new.event_type,
                    event_version,
                    data_json,
                    metadata_json,
                    new.occurred_at,
                    causation,
                    correlation,
                    self.tenant_id,
                ]
                sent.append(
                    (event_uuid, aggregate_type, aggregate_id, version, new.event_type, event_version,
                     data_json, metadata_json, causation, correlation, expected)
                )  # fmt: skip
        insert = (
            f"INSERT INTO {self.table_sql} (event_uuid, aggregate_type, aggregate_id, version, event_type, "
            "event_version, event_data, event_metadata, occurred_at, causation_id, correlation_id, tenant_id) "
            f"VALUES {', '.join(rows_sql)} ON CONFLICT {self._conflict_target()} DO NOTHING "
            "RETURNING event_uuid, event_id, version, occurred_at, tx_id::text, prev_hash, hash"
        )
        # One wake-up per transaction at most: identical payloads are folded by PostgreSQL at commit.
        if getattr(settings, "EVENTS_NOTIFY", "off") == "transaction":
            insert = f"WITH ins AS ({insert}) SELECT ins.* FROM ins{self.notify_sql}"
        try:
            # Single rows only: a batch's statement is planned once per hundred rows anyway, and binding
            # its thousand parameters server-side costs more than the text protocol's one string.
            rows = _fetch(connection, insert, params, own=len(sent) == 1 and _can_prepare(connection), prepare=True)
        except Exception as exc:  # map the trigger's SQLSTATEs to one clear sentence
            _raise_clear(exc)
            raise
        if len(rows) < len(sent):
            # Some row lost a race: undo the rest (the savepoint / statement) and report the first stream.
            done = {row[0] for row in rows}
            first = next(s for s in sent if s[0] not in done)
            raise ConcurrencyError(first[1], first[2], first[10])
        stored = {row[0]: row for row in rows}
        events = [self._sent_to_event(connection.alias, item, stored[item[0]]) for item in sent]
        self._after_append(connection, events)
        return events

    def _sent_to_event(self, alias: str, item: tuple[Any, ...], row: Sequence[Any]) -> Any:
        event_uuid, aggregate_type, aggregate_id, _v, event_type, stored_version, data_json, metadata_json = item[:8]
        causation_id, correlation_id = item[8], item[9]
        _uuid, event_id, version, occurred_at, tx_id, prev_hash, hash_ = row
        event_version, event_data = upcasting.upcast(event_type, stored_version, json.loads(data_json))
        values = {
            "event_id": event_id,
            "event_uuid": event_uuid,
            "aggregate_type": aggregate_type,
            "aggregate_id": aggregate_id,
            "version": version,
            "event_type": event_type,
            "event_version": event_version,
            "event_data": event_data,
            "event_metadata": json.loads(metadata_json) if metadata_json != "{}" else {},
            "occurred_at": occurred_at,
            "causation_id": causation_id,
            "correlation_id": correlation_id,
            "tx_id": int(tx_id),
            "prev_hash": prev_hash,
            "hash": hash_,
            "tenant_id": self.tenant_id,
        }
        # Built as Django builds a row it read (Model.from_db), minus Model.__init__'s per-field loop,
        # which cost a tenth of an append; the event models have no __init__ of their own and nothing
        # listens to their pre_init/post_init.
        event = self.event_model.__new__(self.event_model)
        event.__dict__.update(values)
        event._state = ModelState()
        event._state.adding, event._state.db = False, alias
        event.stored_event_version = stored_version
        return event

    def _after_append(self, connection: Any, events: list[Any]) -> None:
        """Snapshot every N events, in the appending transaction."""
        for event in events:
            spec = aggregates.spec_for(event.aggregate_type)
            if spec.snapshot_every and event.version % spec.snapshot_every == 0:
                self._snapshot(connection, event.aggregate_type, event.aggregate_id, event.version)

    # -- reading ----------------------------------------------------------------
    def _select(self, connection: Any, where: sql.Composable, params: list[Any], tail: str = "") -> list[Any]:
        statement = sql.SQL("SELECT {columns} FROM {table} WHERE {where} {tail}").format(
            columns=sql.SQL(EVENT_COLUMNS), table=self.table, where=where, tail=sql.SQL(tail)
        )
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return [self._row_to_event(row) for row in cursor.fetchall()]

    def _select_light(self, connection: Any, where: sql.Composable, params: list[Any]) -> list[FoldEvent]:
        """Just what reducers need, as slotted objects (replaying 100k events must not build 100k models)."""
        statement = sql.SQL(
            "SELECT event_id, version, event_type, event_version, event_data, occurred_at FROM {} WHERE {} ORDER BY version"
        ).format(self.table, where)
        out = []
        rows = _fetch(connection, statement, params, own=_can_bypass(connection))
        for event_id, version, event_type, event_version, data, occurred_at in rows:
            if isinstance(data, str):
                data = json.loads(data)
            event_version, data = upcasting.upcast(event_type, event_version, data or {})
            out.append(FoldEvent(event_id, version, event_type, event_version, data, occurred_at))
        return out

    def _stream_where(
        self, aggregate_type: str, aggregate_id: str, after_version: int, until: dt.datetime | None
    ) -> tuple[sql.Composable, list[Any]]:
        clauses = ["aggregate_type = %s", "aggregate_id = %s", "version > %s"]
        params: list[Any] = [aggregate_type, str(aggregate_id), after_version]
        if self.tenant_scoped:
            clauses.append("tenant_id = %s")
            params.append(self.tenant_id)
        if until is not None:
            clauses.append("occurred_at <= %s")
            params.append(until)
        return sql.SQL(" AND ".join(clauses)), params

    def stream(
        self, aggregate_type: str, aggregate_id: str, *, after_version: int = 0, until: dt.datetime | None = None
    ) -> list[Any]:
        """The aggregate's events in version order (upcast), optionally only those up to `until`."""
        with self.session() as alias:
            where, params = self._stream_where(aggregate_type, aggregate_id, after_version, until)
            return self._select(connections[alias], where, params, "ORDER BY version")

    def current_version(self, aggregate_type: str, aggregate_id: str) -> int:
        with self.session() as alias, connections[alias].cursor() as cursor:
            cursor.execute(
                sql.SQL(
                    "SELECT coalesce(max(version), 0) FROM {} WHERE aggregate_type = %s AND aggregate_id = %s"
                ).format(self.table),
                [aggregate_type, str(aggregate_id)],
            )
            return cursor.fetchone()[0]

    def get(self, event_id: int) -> Any | None:
        with self.session() as alias:
            rows = self._select(connections[alias], sql.SQL("event_id = %s"), [event_id])
        return rows[0] if rows else None

    def _latest_snapshot(
        self,
        connection: Any,
        aggregate_type: str,
        aggregate_id: str,
        at: dt.datetime | None,
        upto_version: int | None = None,
    ) -> SnapshotRow | None:
        """The newest snapshot at or before `at` / `upto_version` (raw SQL: it runs on every Nth append)."""
        spec = aggregates.spec_for(aggregate_type)
        clauses = "aggregate_type = %s AND aggregate_id = %s AND reducer_version = %s"
        params: list[Any] = [aggregate_type, str(aggregate_id), spec.reducer_version]
        if self.tenant_scoped:
            clauses += " AND tenant_id = %s"
            params.append(self.tenant_id)
        if at is not None:
            clauses += " AND occurred_at <= %s"
            params.append(at)
        if upto_version is not None:
            clauses += " AND version <= %s"
            params.append(upto_version)
        with connection.cursor() as cursor:
            cursor.execute(  # the (type, id, occurred_at) index
                f"SELECT version, occurred_at, state FROM {self.snapshot_table_sql} WHERE {clauses} "
                "ORDER BY occurred_at DESC, version DESC LIMIT 1",
                params,
            )
            row = cursor.fetchone()
        if row is None:
            return None
        state = json.loads(row[2]) if isinstance(row[2], str) else row[2]
        return SnapshotRow(version=row[0], occurred_at=row[1], state=state)

    def _fold(
        self,
        connection: Any,
        aggregate_type: str,
        aggregate_id: str,
        at: dt.datetime | None,
        use_snapshots: bool = True,
        upto_version: int | None = None,
    ) -> AggregateState:
        snapshot = (
            self._latest_snapshot(connection, aggregate_type, aggregate_id, at, upto_version) if use_snapshots else None
        )
        state: dict[str, Any] = dict(snapshot.state) if snapshot else {}
        base_version = snapshot.version if snapshot else 0
        where, params = self._stream_where(aggregate_type, aggregate_id, base_version, at)
        if upto_version is not None:
            where = sql.SQL("{} AND version <= %s").format(where)
            params.append(upto_version)
        if at is not None:
            # occurred_at never decreases inside a stream, so the first snapshot after T bounds the
            # versions to read; without it the scan would run to the end of a long stream.
            where = sql.SQL(
                "{} AND version < coalesce((SELECT s.version FROM {} s WHERE s.aggregate_type = %s "
                "AND s.aggregate_id = %s AND s.occurred_at > %s{} ORDER BY s.occurred_at, s.version LIMIT 1), 2147483647)"
            ).format(where, self.snapshot_table, sql.SQL(" AND s.tenant_id = %s" if self.tenant_scoped else ""))
            params += [aggregate_type, str(aggregate_id), at] + ([self.tenant_id] if self.tenant_scoped else [])
        events = self._select_light(connection, where, params)
        state = aggregates.fold(aggregate_type, state, events)
        last = events[-1] if events else None
        return AggregateState(
            aggregate_type=aggregate_type,
            aggregate_id=str(aggregate_id),
            state=state,
            version=last.version if last else base_version,
            event_id=last.event_id if last else None,
            occurred_at=last.occurred_at if last else (snapshot.occurred_at if snapshot else None),
            from_snapshot_version=base_version,
            replayed=len(events),
        )

    def state_at(
        self,
        aggregate_type: str,
        aggregate_id: str,
        at: dt.datetime | None = None,
        *,
        use_snapshots: bool = True,
        decrypt: bool = True,
    ) -> AggregateState:
        """State after every event with occurred_at <= at (now when None): latest snapshot + replay."""
        with self.session() as alias:
            result = self._fold(connections[alias], aggregate_type, aggregate_id, at, use_snapshots)
            if decrypt:
                result.state = crypto.decrypt_tree(result.state, self, alias=alias)
        return result

    def snapshot(self, aggregate_type: str, aggregate_id: str) -> Any:
        with self.session() as alias:
            version = self._snapshot(connections[alias], aggregate_type, aggregate_id, None)
            if version is None:
                return None
            spec = aggregates.spec_for(aggregate_type)
            qs = self.snapshot_model.objects.using(alias).filter(
                aggregate_type=aggregate_type,
                aggregate_id=str(aggregate_id),
                version=version,
                reducer_version=spec.reducer_version,
            )
            return (qs.filter(tenant_id=self.tenant_id) if self.tenant_scoped else qs).first()

    def _snapshot(self, connection: Any, aggregate_type: str, aggregate_id: str, version: int | None) -> int | None:
        """Store the state after `version` (the latest when None) unless stored already; returns its version."""
        result = self._fold(connection, aggregate_type, aggregate_id, None, upto_version=version)
        if result.version == 0 or (version is not None and result.version != version):
            return None
        spec = aggregates.spec_for(aggregate_type)
        tenant_column, tenant_value = (", tenant_id", ", %s") if self.tenant_scoped else ("", "")
        with connection.cursor() as cursor:
            cursor.execute(  # one statement (get_or_create cost a SELECT and a savepoint pair on every Nth append)
                f"INSERT INTO {self.snapshot_table_sql} (aggregate_type, aggregate_id, version, reducer_version, "
                f"occurred_at, state, created_at{tenant_column}) VALUES (%s, %s, %s, %s, %s, %s::jsonb, now(){tenant_value}) "
                f"ON CONFLICT ({'tenant_id, ' if self.tenant_scoped else ''}aggregate_type, aggregate_id, version, "
                "reducer_version) DO NOTHING",
                [aggregate_type, str(aggregate_id), result.version, spec.reducer_version, result.occurred_at]
                + [_dumps(result.state)]
                + ([self.tenant_id] if self.tenant_scoped else []),
            )
        return result.version

    # -- the gap-safe feed --------------------------------------------------------
    def feed(self, *, after: tuple[int, int] = (0, 0), limit: int = 500) -> list[Any]:
        """Events committed after the cursor (tx_id, event_id), in commit-safe order.

        Only rows of transactions older than every transaction still running
        are returned, so a row whose BIGSERIAL was assigned early but which
        commits late is still ahead of the cursor when it appears.
        """
        with self.session() as alias:
            return self._feed(connections[alias], after, limit)

    def _feed(self, connection: Any, after: tuple[int, int], limit: int) -> list[Any]:
        where = sql.SQL(
            "(tx_id, event_id) > (%s::text::xid8, %s) AND tx_id < pg_snapshot_xmin(pg_current_snapshot())"
            + (" AND tenant_id = %s" if self.tenant_scoped else "")
        )
        params: list[Any] = [str(after[0]), after[1]] + ([self.tenant_id] if self.tenant_scoped else [])
        return self._select(connection, where, params + [limit], "ORDER BY tx_id, event_id LIMIT %s")

    def feed_head(self) -> tuple[int, int]:
        """The newest (tx_id, event_id) the feed can hand out now (the live tail starts there)."""
        with self.session() as alias, connections[alias].cursor() as cursor:
            cursor.execute(
                sql.SQL(
                    "SELECT e.tx_id::text, e.event_id FROM {} e WHERE e.tx_id < pg_snapshot_xmin(pg_current_snapshot()) "
                    "ORDER BY e.tx_id DESC, e.event_id DESC LIMIT 1"
                ).format(self.table)
            )
            row = cursor.fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def consume(self, name: str, handler: Any, *, batch_size: int = 500) -> int:
        """Run one batch of an async consumer: read after its checkpoint, handle, advance — one transaction.

        `handler(alias, events)` writes its projection on `alias`. Returns how many events it processed.
        """
        with self.session() as alias, transaction.atomic(using=alias):
            connection = connections[alias]
            fields: dict[str, Any] = {"tenant_id": self.tenant_id} if self.tenant_scoped else {}
            self.checkpoint_model.objects.using(alias).get_or_create(name=name, **fields)
            checkpoint = self.checkpoint_model.objects.using(alias).select_for_update().get(name=name, **fields)
            events = self._feed(connection, (checkpoint.tx_id, checkpoint.event_id), batch_size)
            if not events:
                return 0
            handler(alias, events)
            checkpoint.tx_id, checkpoint.event_id = events[-1].tx_id, events[-1].event_id
            checkpoint.processed += len(events)
            checkpoint.save(using=alias)
            return len(events)

    def reset_checkpoint(self, name: str) -> None:
        with self.session() as alias:
            fields: dict[str, Any] = {"tenant_id": self.tenant_id} if self.tenant_scoped else {}
            self.checkpoint_model.objects.using(alias).filter(name=name, **fields).update(
                tx_id=0, event_id=0, processed=0
            )

    def estimated_count(self) -> int:
        """Rows in this log without counting the table: reltuples, or an exact count for one tenant."""
        with self.session() as alias, connections[alias].cursor() as cursor:
            if self.tenant_scoped:
                cursor.execute(
                    sql.SQL("SELECT count(*) FROM {} WHERE tenant_id = %s").format(self.table), [self.tenant_id]
                )
                return cursor.fetchone()[0]
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [self.event_model._meta.db_table]
            )
            estimate = cursor.fetchone()[0]
            if estimate < 0:  # never analyzed: small enough to count
                cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(self.table))
                estimate = cursor.fetchone()[0]
            return estimate

    # -- tamper evidence ------------------------------------------------------------
    def verify_chain(self, aggregate_type: str | None = None, aggregate_id: str | None = None) -> ChainReport:
        """Recompute every hash and check each prev_hash against the previous version's hash."""
        clauses, params = ["TRUE"], []
        if aggregate_type:
            clauses.append("aggregate_type = %s")
            params.append(aggregate_type)
        if aggregate_id:
            clauses.append("aggregate_id = %s")
            params.append(str(aggregate_id))
        partition = "tenant_id, aggregate_type, aggregate_id" if self.tenant_scoped else "aggregate_type, aggregate_id"
        statement = sql.SQL(
            """
            SELECT event_id, aggregate_type, aggregate_id, version,
                   hash = events_hash(prev_hash, aggregate_type, aggregate_id, version, event_type, event_version,
                                      event_data, event_metadata, occurred_at, causation_id, correlation_id,
                                      tenant_id, event_uuid) AS hash_ok,
                   prev_hash IS NOT DISTINCT FROM lag(hash) OVER w AS link_ok,
                   version = coalesce(lag(version) OVER w, 0) + 1 AS sequence_ok
              FROM {table} WHERE {where}
            WINDOW w AS (PARTITION BY {partition} ORDER BY version)
            """
        ).format(table=self.table, where=sql.SQL(" AND ".join(clauses)), partition=sql.SQL(partition))
        checked, broken = 0, []
        with self.session() as alias, connections[alias].cursor() as cursor:
            cursor.execute(statement, params)
            for event_id, a_type, a_id, version, hash_ok, link_ok, sequence_ok in cursor.fetchall():
                checked += 1
                if not (hash_ok and link_ok and sequence_ok):
                    problem = "hash mismatch" if not hash_ok else ("broken link" if not link_ok else "missing version")
                    broken.append(
                        {
                            "event_id": event_id,
                            "aggregate_type": a_type,
                            "aggregate_id": a_id,
                            "version": version,
                            "problem": problem,
                        }
                    )
        return ChainReport(checked=checked, broken=broken)


def _can_bypass(connection: Any) -> bool:
    """Whether a statement may go out on a psycopg cursor of its own rather than Django's: no execute
    wrapper (a tenant context's settings travel in Django's cursor) nor query logging (DEBUG, tests
    counting queries) to bypass."""
    connection.ensure_connection()
    return not (connection.execute_wrappers or connection.queries_logged)


def _can_prepare(connection: Any) -> bool:
    """Whether an append may go out as a server-side prepared statement: on a cursor of its own (see
    _can_bypass) and not behind PgBouncer (< 1.21 does not track prepared statements; settings.DB_PGBOUNCER
    turns preparing off)."""
    return _can_bypass(connection) and connection.connection.prepare_threshold is not None


# One psycopg cursor per database connection for _fetch: a cursor's transformer keeps the dumpers and
# loaders it looked up, which a new cursor per append looked up again (a tenth of an append). It is kept
# on the connection itself, so both go together (in a WeakKeyDictionary the cursor, which refers to its
# connection, kept every closed connection alive).
_CURSOR_ATTRIBUTE = "_events_own_cursor"


def _own_cursor(raw: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
    cursor = getattr(raw, _CURSOR_ATTRIBUTE, None)
    if cursor is None or cursor.closed:
        cursor = psycopg.Cursor(raw)  # server-side binding (Django sets ClientCursor)
        setattr(raw, _CURSOR_ATTRIBUTE, cursor)
    return cursor


def _fetch(
    connection: Any, statement: str | sql.Composed, params: list[Any], *, own: bool, prepare: bool = False
) -> list[Any]:
    """Run a statement and return its rows: through Django's cursor, or when `own` (see _can_bypass,
    _can_prepare) on the connection's own psycopg cursor with binary rows, prepared on the server if
    `prepare`.

    Django's cursors bind client-side and send every statement as text to be parsed and planned again;
    an append is a few statements' shapes repeated thousands of times, and planning one (the INSERT's
    conflict arbiter is matched against each of the table's indexes) cost as much CPU as the trigger.
    Django also loads text timestamps through a Python subclass of psycopg's loader, which bypasses
    psycopg's C one: for the RETURNING and a snapshot's fold (the events since the last snapshot, every
    Nth append) that was a tenth of an append's client CPU. Binary rows take the C loaders; the
    session's time zone is Django's."""
    if not own:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall()
    connection.validate_no_broken_transaction()
    with connection.wrap_database_errors:
        cursor = _own_cursor(connection.connection)
        cursor.execute(statement, params, prepare=True if prepare else None, binary=True)
        return cursor.fetchall()


def _raise_clear(exc: Exception) -> None:
    state = getattr(getattr(exc, "__cause__", None), "sqlstate", None) or getattr(exc, "sqlstate", None)
    if state == "22P05":  # untranslatable_character: \u0000 in jsonb
        raise EventStoreError(
            "Event data may not contain NUL characters (PostgreSQL jsonb cannot store them)."
        ) from exc
    if state in ("EV001", "EV003"):
        message = str(getattr(exc, "__cause__", exc) or exc).splitlines()[0]
        raise EventStoreError(message[:1].upper() + message[1:] + ".") from exc


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _dumps(value: Any) -> str:
    """What psycopg's Jsonb would send (json.dumps, no default: a value JSON cannot hold is refused)."""
    return json.dumps(value)
