"""The portable export format of one tenant: writing it from any placement, checking it, loading it.

An export is a ZIP file:

    manifest.json        {"format": "tenant-export", "version": 1, tenant, source, migrations, tables}
    manifest.sig         HMAC of manifest.json with this installation's SECRET_KEY (django.core.signing)
    tables/<table>.tsv   the tenant's rows of one TENANT_APPS table, PostgreSQL COPY text format,
                         the columns named in the manifest, `tenant_id` left out, in primary-key order

Every table of the manifest carries its row count and the SHA-256 of its file, so `open_export`
refuses a damaged or edited file before anything is created; the signature refuses a manifest whose
hashes were recomputed after an edit. Rows are independent of the isolation level (no schema or
database name, no tenant id inside), so an export of a pool tenant loads into a schema or a database.

Ids follow the moves (tenants/moves/copy.py, whose per-table description this module reuses): rows
keep their primary keys, the event log's `event_id` is drawn afresh in the target in the exported
order and its trigger recomputes `tx_id`, `prev_hash` and `hash` (the hash covers the tenant id, so a
copy restored as another tenant has a new, verified chain), and checkpoints are remapped to the
target's event ids. A load runs in one transaction of the target: a crash leaves nothing half-loaded.

Why one module: writing, checking and loading must agree exactly on the file's layout.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psycopg
from django.conf import settings
from django.core import signing
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from psycopg import sql

from core.errors import InvalidInput
from tenants.moves import copy
from tenants.moves.copy import CHECKPOINT_TABLE, EVENT_TABLE, Table

FORMAT = "tenant-export"
VERSION = 1
SUPPORTED_VERSIONS = (1,)
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
_SALT = "tenants.exports.manifest"
_CHUNK = 1 << 20
_FIRST_EVENTS = 2000  # loaded before the event table is analysed (see _load_table)
Progress = Callable[[int, int], None]


class ExportInvalid(InvalidInput):
    """The file is not an export this installation can restore (damaged, edited, unknown version)."""


class RestoreFailed(InvalidInput):
    """The rows could not be loaded into the target (collision, missing column); nothing was loaded."""


def _columns(table: Table) -> tuple[str, ...]:
    return tuple(c for c in table.columns if c != "tenant_id")


def tenant_app_migrations(applied: list[str]) -> list[str]:
    labels = {label.rsplit(".", 1)[-1] for label in settings.TENANT_APPS}
    return sorted(m for m in applied if m.split(".", 1)[0] in labels)


def sign(manifest_bytes: bytes) -> str:
    return signing.Signer(salt=_SALT).signature(hashlib.sha256(manifest_bytes).hexdigest())


# --- writing ---------------------------------------------------------------------------------


def write(
    *, conn: psycopg.Connection, tenant: Any, out: IO[bytes], migrations: list[str], progress: Progress,
    stop: Callable[[], None] = lambda: None,
) -> dict[str, Any]:  # fmt: skip
    """Write the tenant's rows, read from one REPEATABLE READ snapshot of `conn` (a copy.connect
    connection to its placement), into `out` as an export; returns the manifest. `stop` is called
    before each table (it raises to stop there: an operator's Cancel)."""
    tenant_id = str(tenant.pk)
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    tables = copy.tenant_tables()
    entries: list[dict[str, Any]] = []
    try:
        counts = {t.name: copy.count_rows(conn, t, tenant_id) for t in tables}
        total, done = sum(counts.values()), 0
        progress(0, total)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for table in tables:
                stop()
                name = f"tables/{table.name}.tsv"
                cols = _columns(table)
                digest, rows, size = hashlib.sha256(), 0, 0
                query = sql.SQL("COPY (SELECT {} FROM {} WHERE tenant_id = {} ORDER BY {}) TO STDOUT").format(
                    sql.SQL(", ").join(sql.Identifier(c) for c in cols),
                    sql.Identifier(table.name),
                    sql.Literal(tenant_id),
                    sql.Identifier(table.pk),
                )
                with zf.open(name, "w", force_zip64=True) as member, conn.cursor().copy(query) as rows_out:
                    for chunk in rows_out:
                        data = bytes(chunk)
                        member.write(data)
                        digest.update(data)
                        size += len(data)
                        lines = data.count(b"\n")  # COPY text escapes newlines inside values: one per row
                        rows += lines
                        done += lines
                        progress(done, total)
                if rows != counts[table.name]:
                    raise RuntimeError(f"{table.name}: {rows} rows written, {counts[table.name]} counted.")
                entries.append(
                    {"name": table.name, "file": name, "columns": list(cols), "rows": rows,
                     "bytes": size, "sha256": digest.hexdigest()}
                )  # fmt: skip
            manifest = {
                "format": FORMAT,
                "version": VERSION,
                "created_at": timezone.now().isoformat(),
                "tenant": {"id": tenant_id, "slug": tenant.slug, "name": tenant.name, "plan": tenant.plan},
                "source": {"isolation": tenant.isolation},
                "migrations": migrations,
                "tables": entries,
                "rows": total,
            }
            body = json.dumps(manifest, indent=1, sort_keys=True).encode()
            zf.writestr(MANIFEST, body)
            zf.writestr(SIGNATURE, sign(body))
    finally:
        conn.rollback()
    return manifest


# --- checking --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    path: Path
    manifest: dict[str, Any]

    @property
    def tenant(self) -> dict[str, Any]:
        return self.manifest["tenant"]

    def table(self, name: str) -> dict[str, Any] | None:
        return next((t for t in self.manifest["tables"] if t["name"] == name), None)


def _known_migrations() -> set[str]:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return {f"{app}.{name}" for app, name in loader.disk_migrations}


def open_export(path: Path | str) -> Opened:
    """Check the file completely — format, version, signature, every table's row count and SHA-256,
    tables, columns and migrations this installation knows — or raise ExportInvalid (one sentence)."""
    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile, ValueError):
        raise ExportInvalid("This file is not a tenant export (not a readable ZIP file).") from None
    with zf:
        names = set(zf.namelist())
        if MANIFEST not in names:
            raise ExportInvalid("This file is not a tenant export (it has no manifest.json).")
        try:
            body = zf.read(MANIFEST)
            manifest = json.loads(body)
        except (ValueError, zipfile.BadZipFile, OSError):
            raise ExportInvalid("The export's manifest is damaged (not readable JSON).") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ExportInvalid("This file is not a tenant export (its manifest names another format).")
        if manifest.get("version") not in SUPPORTED_VERSIONS:
            raise ExportInvalid(
                f"This export has format version {manifest.get('version')!r}; this installation reads version "
                f"{', '.join(map(str, SUPPORTED_VERSIONS))}."
            )
        signature = zf.read(SIGNATURE).decode(errors="replace") if SIGNATURE in names else ""
        if not constant_time_compare(signature, sign(body)):
            raise ExportInvalid(
                "The export's manifest does not carry this installation's signature: it was edited or made elsewhere."
            )
        known = {t.name: t for t in copy.tenant_tables()}
        for entry in manifest.get("tables", []):
            table = known.get(entry.get("name"))
            if table is None:
                raise ExportInvalid(f"The export holds a table this installation does not know: {entry.get('name')}.")
            unknown = set(entry["columns"]) - set(_columns(table))
            if unknown:
                raise ExportInvalid(
                    f"The export's table {table.name} has unknown columns: {', '.join(sorted(unknown))}."
                )
            if entry["file"] not in names:
                raise ExportInvalid(f"The export lacks its file {entry['file']}.")
            digest, rows = hashlib.sha256(), 0
            try:
                with zf.open(entry["file"]) as member:
                    while chunk := member.read(_CHUNK):
                        digest.update(chunk)
                        rows += chunk.count(b"\n")
            except (zipfile.BadZipFile, OSError, EOFError):
                raise ExportInvalid(f"The export's file {entry['file']} is damaged.") from None
            if digest.hexdigest() != entry["sha256"] or rows != entry["rows"]:
                raise ExportInvalid(
                    f"The export's file {entry['file']} does not match its manifest's SHA-256: it was changed or damaged."
                )
        missing = set(manifest.get("migrations", [])) - _known_migrations()
        if missing:
            raise ExportInvalid(
                f"The export was made at migrations this installation does not have ({', '.join(sorted(missing)[:3])});"
                " upgrade before restoring it."
            )
    return Opened(path=path, manifest=manifest)


def keys(opened: Opened) -> dict[str, tuple[Table, list[str]]]:
    """Per table, the values of the column that must be unique across a pool (kept primary keys, the
    events' uuid), read from the file: a pool where none is taken can receive the export."""
    found: dict[str, tuple[Table, list[str]]] = {}
    with zipfile.ZipFile(opened.path) as zf:
        for table in copy.tenant_tables():
            entry = opened.table(table.name)
            if entry is None or table.key not in entry["columns"]:
                continue
            index = entry["columns"].index(table.key)
            with zf.open(entry["file"]) as member:
                values = [line.rstrip(b"\n").split(b"\t")[index].decode() for line in member]
            found[table.name] = (table, values)
    return found


# --- loading ---------------------------------------------------------------------------------


def _purge(conn: psycopg.Connection, tenant_id: str) -> int:
    """Delete the tenant's rows, events included (the owner names the tenant in the setting the
    event log's immutability trigger honours), in the caller's transaction."""
    conn.execute("SELECT set_config('events.purge_tenant_id', %s, true)", [tenant_id])
    deleted = 0
    for table in reversed(copy.tenant_tables()):
        cur = conn.execute(
            sql.SQL("DELETE FROM {} WHERE tenant_id = %s").format(sql.Identifier(table.name)), [tenant_id]
        )
        deleted += cur.rowcount
    return deleted


def _advance_sequence(conn: psycopg.Connection, table: Table) -> None:
    """The table's id sequence past the loaded ids: new rows must never draw one of them."""
    row = conn.execute("SELECT pg_get_serial_sequence(%s, %s)", [table.name, table.pk]).fetchone()
    if not row or not row[0]:
        return
    top = conn.execute(sql.SQL("SELECT max({}) FROM _export_in").format(sql.Identifier(table.pk))).fetchone()
    if top and top[0] is not None and copy.sequence_value(conn, table) < int(top[0]):
        conn.execute("SELECT setval(%s::regclass, %s)", [row[0], int(top[0])])


ALL_SUBJECTS = "*"


def erased_subjects(conn: psycopg.Connection, tenant_id: Any) -> set[str]:
    """Subject ids whose key is erased in the tenant's rows behind `conn` (in the caller's transaction)."""
    rows = conn.execute(
        "SELECT subject_id FROM tenantlog_subjectkey WHERE tenant_id = %s AND key IS NULL", [str(tenant_id)]
    ).fetchall()
    return {r[0] for r in rows}


def _replay_erasures(conn: psycopg.Connection, tenant_id: str, erased: set[str]) -> int:
    """Erase again, in the restored rows, the keys erased since the export was made (crypto-shredding
    holds for every copy: an export restored later must not bring an erased person's key back)."""
    if not erased:
        return 0
    where = sql.SQL("") if ALL_SUBJECTS in erased else sql.SQL(" AND subject_id = ANY(%(erased)s)")
    cur = conn.execute(
        sql.SQL(
            "UPDATE tenantlog_subjectkey SET key = NULL, erased_at = coalesce(erased_at, now()), "
            "erasure_reason = CASE WHEN erasure_reason = '' THEN 'erased after the export' ELSE erasure_reason END "
            "WHERE tenant_id = %(tenant)s AND key IS NOT NULL"
        )
        + where,
        {"tenant": tenant_id, "erased": sorted(erased - {ALL_SUBJECTS})},
    )
    return cur.rowcount


def load(
    *, opened: Opened, conn: psycopg.Connection, tenant_id: Any, replace: bool, progress: Progress,
    erased: set[str] | None = None,
) -> dict[str, int]:  # fmt: skip
    """Load the export's rows as tenant `tenant_id` through `conn` (copy.connect to its placement), in
    one transaction: with `replace`, the tenant's rows are deleted first (the keys they had erased are
    erased again in the loaded rows); otherwise the tenant must hold none. `erased` names more subjects
    whose keys must not come back ({ALL_SUBJECTS}: every key). Verifies row counts and the rebuilt event
    chain before committing. Returns rows per table."""
    tenant_id = str(tenant_id)
    erased = set(erased or ())
    same_tenant = opened.tenant["id"] == tenant_id
    loaded: dict[str, int] = {}
    total, done = int(opened.manifest.get("rows", 0)), 0
    progress(0, total)
    try:
        with zipfile.ZipFile(opened.path) as zf:
            if replace:
                erased |= erased_subjects(conn, tenant_id)
                _purge(conn, tenant_id)
            for table in copy.tenant_tables():
                if copy.count_rows(conn, table, tenant_id):
                    raise RestoreFailed(f"The target already holds rows of {table.name}; restore into a new tenant.")
            for table in copy.tenant_tables():
                entry = opened.table(table.name)
                if entry is None:
                    loaded[table.name] = 0
                    continue
                loaded[table.name] = _load_table(conn, zf, table, entry, tenant_id, same_tenant)
                done += loaded[table.name]
                progress(done, total)
            _verify(conn, opened, loaded, tenant_id)
            _replay_erasures(conn, tenant_id, erased)
        conn.commit()
    except psycopg.errors.UniqueViolation as exc:
        conn.rollback()
        raise RestoreFailed(
            "Rows of the export collide with another tenant's ids in the target placement (a copy of this tenant "
            f"lives there); restore it at another level. ({str(exc).splitlines()[0]})"
        ) from None
    except psycopg.errors.NotNullViolation as exc:
        conn.rollback()
        raise RestoreFailed(f"The export lacks a value the target requires: {str(exc).splitlines()[0]}") from None
    except BaseException:
        conn.rollback()
        raise
    return loaded


def _load_table(
    conn: psycopg.Connection, zf: zipfile.ZipFile, table: Table, entry: dict[str, Any], tenant_id: str,
    same_tenant: bool,
) -> int:  # fmt: skip
    cols = [c for c in entry["columns"] if c in _columns(table)]
    idents = sql.SQL(", ").join(sql.Identifier(c) for c in cols)
    T = sql.Identifier(table.name)
    conn.execute("DROP TABLE IF EXISTS pg_temp._export_in")
    conn.execute(sql.SQL("CREATE TEMP TABLE _export_in AS SELECT {} FROM {} WITH NO DATA").format(idents, T))
    with (
        zf.open(entry["file"]) as member,
        conn.cursor().copy(sql.SQL("COPY _export_in ({}) FROM STDIN").format(idents)) as into,
    ):
        while chunk := member.read(_CHUNK):
            into.write(chunk)
    if table.serial and not table.renumber:
        _advance_sequence(conn, table)
    insert = [c for c in table.insert_columns if c in cols]
    statement = sql.SQL(
        "INSERT INTO {t} ({cols}, tenant_id) SELECT {icols}, {tenant} FROM _export_in i {where} ORDER BY i.{pk}"
    )
    pk = sql.Identifier(table.pk)
    parts = {
        "t": T,
        "cols": sql.SQL(", ").join(sql.Identifier(c) for c in insert),
        "icols": sql.SQL(", ").join(sql.Identifier("i", c) for c in insert),
        "tenant": sql.Literal(tenant_id),
        "pk": pk,
    }
    split = None
    if table.name == EVENT_TABLE:
        # The hash-chain trigger looks up each event's predecessor. Planned with no statistics (a table
        # filled inside this transaction), that lookup takes the (tenant, aggregate_id, event_id) index
        # and reads the stream's every earlier version: quadratic per stream. The first events go in
        # alone, ANALYZE (which counts this transaction's rows) then lets the planner (custom plans,
        # copy.connect) choose the unique (tenant, type, id, version) index for the rest.
        row = conn.execute(
            sql.SQL("SELECT {pk} FROM _export_in ORDER BY {pk} OFFSET %s LIMIT 1").format(pk=pk), [_FIRST_EVENTS]
        ).fetchone()
        split = row[0] if row else None
    if split is None:
        inserted = conn.execute(statement.format(where=sql.SQL(""), **parts)).rowcount
    else:
        first = sql.SQL("WHERE i.{} < {}").format(pk, sql.Literal(split))
        rest = sql.SQL("WHERE i.{} >= {}").format(pk, sql.Literal(split))
        inserted = conn.execute(statement.format(where=first, **parts)).rowcount
        conn.execute(sql.SQL("ANALYZE {}").format(T))
        inserted += conn.execute(statement.format(where=rest, **parts)).rowcount
    if table.name == EVENT_TABLE:
        # Kept for the checkpoints (source event id → uuid) and the chain check (the source's hashes).
        conn.execute("DROP TABLE IF EXISTS pg_temp._export_events")
        conn.execute("ALTER TABLE _export_in RENAME TO _export_events")
        if same_tenant:
            differ = conn.execute(
                "SELECT count(*) FROM _export_events x JOIN tenantlog_event e USING (event_uuid) "
                "WHERE e.tenant_id = %s AND e.hash IS DISTINCT FROM x.hash",
                [tenant_id],
            ).fetchone()
            if differ and differ[0]:
                raise RestoreFailed(f"{differ[0]} restored events do not rebuild the exported hash chain.")
        return inserted
    if table.name == CHECKPOINT_TABLE:
        conn.execute(
            "UPDATE tenantlog_checkpoint c SET event_id = e.event_id, tx_id = e.tx_id::text::bigint "
            "FROM _export_events x JOIN tenantlog_event e ON e.event_uuid = x.event_uuid AND e.tenant_id = %s "
            "WHERE c.tenant_id = %s AND c.event_id = x.event_id",
            [tenant_id, tenant_id],
        )
    conn.execute("DROP TABLE pg_temp._export_in")
    return inserted


def _verify(conn: psycopg.Connection, opened: Opened, loaded: dict[str, int], tenant_id: str) -> None:
    conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(EVENT_TABLE)))  # the chain check joins it to itself
    for table in copy.tenant_tables():
        entry = opened.table(table.name)
        expected = int(entry["rows"]) if entry else 0
        found = copy.count_rows(conn, table, tenant_id)
        if found != expected:
            raise RestoreFailed(f"{table.name} has {found} rows after the restore; the export holds {expected}.")
    breaks = copy.chain_breaks(conn, tenant_id, end=False)
    if breaks:
        raise RestoreFailed(f"The restored event log has {breaks} events whose hash does not follow its predecessor.")
