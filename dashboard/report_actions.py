"""One-click decisions on the report page: ship the winner, roll back, ramp to the next step.

Each action is a GET (a confirmation page that says exactly what will change) and a POST
(the lifecycle service, which writes the audit log row). Only staff with the
``experiments.change_experiment`` permission see or run them; the service's own status
checks still apply, and a refusal comes back as an error message, never a 500.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from experiments import services
from experiments.models import Experiment
from experiments.services.lifecycle import ramp_next_step

#: The permission an action needs (the same one that edits the experiment in the admin).
ACTION_PERMISSION = "experiments.change_experiment"
Status = Experiment.Status


@dataclass(frozen=True)
class ReportAction:
    key: str
    label: str
    css: str
    explanation: str
    url: str


def _control_key(experiment: Experiment) -> str:
    control = next((arm for arm in experiment.arms.all() if arm.is_control), None)
    return control.key if control else "-"


def _candidates(experiment: Experiment, decision: dict) -> list[tuple[str, str, str, str]]:
    """(key, label, css, explanation) of every action the experiment's state allows."""
    found = []
    winner = decision.get("arm") if decision.get("status") == "winner" else None
    if winner and experiment.status in (Status.RUNNING, Status.PAUSED, Status.STOPPED):
        found.append(
            (
                "ship",
                f"Ship {winner}",
                "primary",
                f"Conclude the experiment and send all traffic to arm {winner}.",
            )
        )
    next_step = ramp_next_step(experiment=experiment)
    if next_step is not None and experiment.status in (
        Status.DRAFT,
        Status.RUNNING,
        Status.PAUSED,
    ):
        found.append(
            (
                "ramp",
                f"Ramp to {next_step:g}%",
                "",
                f"Raise the experiment's share of units from {experiment.traffic_percentage:g}% "
                f"to {next_step:g}%. Units already in keep their arm; no new phase starts.",
            )
        )
    serving_control = experiment.serving_arm_id is not None and experiment.serving_arm.is_control
    if experiment.status != Status.DRAFT and not serving_control:
        found.append(
            (
                "rollback",
                "Roll back",
                "danger",
                f"Send all traffic back to the original arm {_control_key(experiment)} now; "
                "a running experiment stops.",
            )
        )
    return found


def available_actions(*, experiment: Experiment, decision: dict, user) -> list[ReportAction]:
    """The actions this user may take on this experiment now (none without permission)."""
    if not user.has_perm(ACTION_PERMISSION):
        return []
    return [
        ReportAction(key, label, css, explanation, action_url(experiment.key, key))
        for key, label, css, explanation in _candidates(experiment, decision)
    ]


def action_url(key: str, action: str) -> str:
    return reverse("admin:dashboard_experiment_action", kwargs={"key": key, "action": action})


def report_url(key: str) -> str:
    return reverse("admin:dashboard_experiment_report", kwargs={"key": key})


def _run(action: str, *, experiment: Experiment, user, winner: str | None) -> str:
    """Apply ``action``; the success message says what changed."""
    if action == "ship":
        services.experiment_conclude(experiment=experiment, user=user, winner=winner)
        return f"Shipped {winner}: {experiment.key} is concluded and {winner} serves all traffic."
    if action == "ramp":
        before = experiment.traffic_percentage
        ramped = services.experiment_ramp(experiment=experiment, user=user)
        return (
            f"Ramped {experiment.key} from {before:g}% to {ramped.traffic_percentage:g}% "
            "of traffic."
        )
    services.experiment_rollback(experiment=experiment, user=user)
    return f"Rolled back {experiment.key}: all traffic goes to {_control_key(experiment)}."


def experiment_action_view(request, key: str, action: str, *, report_decision):
    """GET: the confirmation page; POST: run the action and return to the report.

    ``report_decision(experiment)`` gives the report's decision (ship needs its winner)."""
    experiment = Experiment.objects.select_related("serving_arm").filter(key=key).first()
    if experiment is None:
        raise Http404(f"No experiment with key {key!r}.")
    if not request.user.has_perm(ACTION_PERMISSION):
        raise PermissionDenied("Changing an experiment needs the change_experiment permission.")
    decision = report_decision(experiment)
    allowed = {item[0]: item for item in _candidates(experiment, decision)}
    if action not in ("ship", "ramp", "rollback"):
        raise Http404(f"No action {action!r}: use ship, ramp or rollback.")
    if action not in allowed:
        messages.error(
            request,
            f"{action.capitalize()} is not possible for {experiment.key} now "
            f"(status {experiment.get_status_display().lower()}, decision "
            f"{decision.get('status', '-')}).",
        )
        return HttpResponseRedirect(report_url(key))
    if request.method == "POST":
        try:
            message = _run(
                action, experiment=experiment, user=request.user, winner=decision.get("arm")
            )
        except ValidationError as err:
            messages.error(request, f"{experiment.key}: {' '.join(err.messages)}")
        else:
            messages.success(request, message)
        return HttpResponseRedirect(report_url(key))
    _, label, css, explanation = allowed[action]
    context = {
        **admin.site.each_context(request),
        "title": f"{label}: {experiment.name}",
        "experiment": experiment,
        "label": label,
        "css": css,
        "explanation": explanation,
        "report_url": report_url(key),
    }
    return TemplateResponse(request, "dashboard/report_action_confirm.html", context)
