"""`make run` and `make test`: one process that brings up what the project needs.

    python -m saas_admin.dev run    # PostgreSQL (embedded unless DATABASE_URL), migrate,
                                    # demo operator, then web + Celery worker + beat
    python -m saas_admin.dev test [pytest args]

Ctrl-C stops the children, then the embedded PostgreSQL if this process started it.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _start_database() -> bool:
    # Imports wait until the process has chosen its settings module (this module runs as __main__).
    from saas_admin import embedded_pg
    from saas_admin.env import uses_embedded_database

    if not uses_embedded_database():
        return False
    started = embedded_pg.ensure_running()
    print(f"embedded PostgreSQL on 127.0.0.1:{embedded_pg.port()} (data in {embedded_pg.PGDATA})", flush=True)
    return started


def _stop_database(started: bool) -> None:
    if started:
        from saas_admin import embedded_pg  # see _start_database

        embedded_pg.stop()


def _prepare_control_plane() -> None:
    # After the embedded server is up and DJANGO_SETTINGS_MODULE is set: Django can be set up now.
    import django

    django.setup()
    # Models and commands only after setup().
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from core import dbroles

    name = dbroles.bootstrap()
    print(f"database {name!r} ready; migrating as the owner role", flush=True)
    call_command("migrate", interactive=False, verbosity=1)
    # The tenant templates follow the TENANT_APPS migrations now, not at the first provisioning:
    # a fresh install shows no pending migrations, and a pull with new migrations updates them.
    from tenants import placements

    placements.template_schema_ensure()
    placements.template_database_ensure()
    print("tenant templates (schema and database) are current", flush=True)
    placements.data_plane_grants_all()  # placements older than the data-plane role serve their hosts too
    # Creating the demo operator is a bootstrap step, done as the owner role.
    User = get_user_model()
    if not User.objects.using("owner").filter(username="demo").exists():
        password = secrets.token_urlsafe(12)
        demo = User(username="demo", email="demo@localhost", is_staff=True)
        demo.set_password(password)
        demo.save(using="owner")
        demo.groups.add(Group.objects.using("owner").get(name="Admin"))
        # Imported after setup(), like the models above; the grant is audited like every other
        # (compliance check `privileged_roles` looks for it).
        from audit.actions import AuditAction
        from audit.services import audit_record
        from core.actors import SystemActor

        audit_record(
            actor=SystemActor("make run bootstrap"),
            action=AuditAction.OPERATOR_CREATE,
            target_type="user",
            target_id=demo.pk,
            summary="Created the demo operator",
            details={"username": "demo", "role": "Admin"},
        )
        print("\n" + "=" * 60)
        print(" Demo operator (shown once):")
        print("   username: demo")
        print(f"   password: {password}")
        print("=" * 60 + "\n", flush=True)
    else:
        print("demo operator 'demo' exists (its password was printed on the first run)", flush=True)
    print("Its first sign-in goes straight to two-factor enrolment (an authenticator app or a passkey).", flush=True)


def run() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas_admin.settings.development")
    (BASE_DIR / ".data").mkdir(exist_ok=True)  # beat's schedule file and the mailbox live there
    started = _start_database()
    children: list[subprocess.Popen[bytes]] = []
    try:
        _prepare_control_plane()
        python = sys.executable
        port = os.environ.get("PORT", "8000")
        commands = [
            [python, "manage.py", "runserver", f"0.0.0.0:{port}", "--noreload"],
            [python, "-m", "celery", "-A", "saas_admin", "worker", "-l", "info", "--concurrency", "2"],
            [python, "-m", "celery", "-A", "saas_admin", "beat", "-l", "info"],
        ]
        for command in commands:
            children.append(subprocess.Popen(command, cwd=BASE_DIR, start_new_session=True))
        print(f"\nControl plane: http://localhost:{port}/   (Ctrl-C stops everything)\n", flush=True)
        stop = {"now": False}

        def on_signal(signum: int, frame: object) -> None:
            stop["now"] = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        while not stop["now"]:
            if any(child.poll() is not None for child in children):
                print("a process exited; stopping the others", flush=True)
                break
            time.sleep(0.5)
        return 0
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()  # the main process only, so Celery shuts down warm
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
        _stop_database(started)
        print("stopped", flush=True)


def test(args: list[str]) -> int:
    # Importing this package already set DJANGO_SETTINGS_MODULE (celery.py); tests want their own.
    os.environ["DJANGO_SETTINGS_MODULE"] = "saas_admin.settings.test"
    started = _start_database()
    try:
        return subprocess.call([sys.executable, "-m", "pytest", *args], cwd=BASE_DIR)
    finally:
        _stop_database(started)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("run", "test", "db"):
        print(__doc__)
        return 2
    try:
        if sys.argv[1] == "run":
            return run()
        if sys.argv[1] == "db":
            _start_database()
            return 0
        return test(sys.argv[2:])
    except RuntimeError as exc:  # a clear sentence, e.g. the embedded port is taken by another server
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
