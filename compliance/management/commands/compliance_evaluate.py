"""manage.py compliance_evaluate [--control KEY …] [--inline]: evaluate controls now, as a job."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from compliance import services
from compliance.models import Evaluation
from core.actors import SystemActor
from core.errors import ApplicationError
from jobs.services import job_execute


class Command(BaseCommand):
    help = "Evaluate compliance controls (all automated ones, or --control KEY) on the job engine."

    def add_arguments(self, parser):
        parser.add_argument("--control", action="append", dest="controls", default=[], help="Control key (repeatable).")
        parser.add_argument("--inline", action="store_true", help="Run the job in this process instead of a worker.")

    def handle(self, *args, controls=(), inline=False, **options):
        actor = SystemActor("manage.py compliance_evaluate")
        try:
            job = services.evaluation_start(actor=actor, control_keys=list(controls) or None)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if not inline:
            self.stdout.write(f"Started evaluation job {job.pk}; follow it at /jobs/{job.pk}/.")
            return
        job_execute(job_id=job.pk, heartbeat=False)
        evaluation = Evaluation.objects.filter(job_id=job.pk).first()
        if evaluation is None:
            raise CommandError(f"Job {job.pk} did not record an evaluation; see /jobs/{job.pk}/.")
        for result in evaluation.results.select_related("control").order_by("control__key"):
            self.stdout.write(f"{result.status:5} {result.control.key:28} {result.summary}")
