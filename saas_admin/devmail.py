"""Development mailbox: every email `make run` sends (web and worker) lands in .data/mailbox/.

`EMAIL_BACKEND = "saas_admin.devmail.MailboxBackend"` (the development default) writes each
message as one `.eml` file; the Outbox page (/outbox/, development only, linked from the dashboard)
lists them newest first and shows each one, links clickable. Nothing leaves the machine.
"""

from __future__ import annotations

import email
import email.policy
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend


def mailbox_dir() -> Path:
    return Path(settings.DEV_MAILBOX_DIR)


class MailboxBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Any) -> int:
        folder = mailbox_dir()
        folder.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            name = f"{time.time():.6f}-{uuid.uuid4().hex[:8]}.eml"
            (folder / name).write_bytes(message.message().as_bytes())
            sent += 1
        return sent


@dataclass(frozen=True)
class Mail:
    id: str
    subject: str
    sender: str
    to: str
    date: str
    body: str


def _read(path: Path) -> Mail:
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    part = parsed.get_body(preferencelist=("plain", "html"))
    return Mail(
        id=path.stem,
        subject=str(parsed.get("Subject", "")),
        sender=str(parsed.get("From", "")),
        to=str(parsed.get("To", "")),
        date=str(parsed.get("Date", "")),
        body=part.get_content() if part is not None else "",
    )


def mailbox_list(limit: int = 200) -> list[Mail]:
    folder = mailbox_dir()
    if not folder.is_dir():
        return []
    return [_read(p) for p in sorted(folder.glob("*.eml"), reverse=True)[:limit]]


def mailbox_get(mail_id: str) -> Mail | None:
    if not mail_id.replace(".", "").replace("-", "").isalnum():
        return None
    path = mailbox_dir() / f"{mail_id}.eml"
    return _read(path) if path.is_file() else None
