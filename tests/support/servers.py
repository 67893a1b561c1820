"""A second PostgreSQL server for the "Several PostgreSQL servers" tests.

    def test_…(second_server, register_second_server):
        server = register_second_server()       # a tenants.Server row named "pg2", roles and data database made

`second_server` (session) starts another embedded PostgreSQL (saas_admin.embedded_pg, the code
`make run` uses) on a free port with its data in a temporary directory, and stops and deletes it at
the end of the session: nothing of it outlives the run. Trust authentication on loopback, like the
first one; its admin login is `postgres`.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest


@dataclass(frozen=True)
class SecondServer:
    host: str
    port: int
    pgdata: Path

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(host=self.host, port=self.port, user="postgres", dbname=dbname, autocommit=True)

    def databases(self) -> set[str]:
        with self.connect() as conn:
            return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}

    def schemas(self, dbname: str) -> set[str]:
        with self.connect(dbname) as conn:
            return {row[0] for row in conn.execute("SELECT nspname FROM pg_namespace")}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def second_server() -> Iterator[SecondServer]:
    from saas_admin import embedded_pg

    root = Path(tempfile.mkdtemp(prefix="pg2-"))
    server = SecondServer("127.0.0.1", _free_port(), root / "pg")
    embedded_pg.ensure_running(server.pgdata, server.port)
    try:
        yield server
    finally:
        embedded_pg.stop(server.pgdata)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def register_second_server(second_server: SecondServer) -> Callable[..., Any]:
    """Register the second server (through the service the screen and `server_add` use)."""

    def register(name: str = "pg2", **kw: Any) -> Any:
        from tenants.servers import server_register

        return server_register(name=name, host=second_server.host, port=str(second_server.port), **kw)

    return register
