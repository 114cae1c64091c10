"""Admin: experiments with their arms inline, lifecycle actions, and the audit log.

Actions parse input, call one service each, and report with a message; a service's
``ValidationError`` becomes an error message naming the experiment. Ramp and conclude ask
for their parameter on an intermediate page.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from experiments import services
from experiments.admin.readonly import ReadOnlyModelAdmin
from experiments.models import Arm, AuditLogEntry, Experiment
from experiments.models.experiment import DEFAULT_RAMP_SCHEDULE
from experiments.reports import experiment_report, report_export_json
from experiments.services.lifecycle import ramp_next_step

Status = Experiment.Status


# --- Arms inline -----------------------------------------------------------------------------


class ArmForm(forms.ModelForm):
    """An arm row; a row pre-filled for a new experiment counts as filled in even when the
    user keeps every default (Django skips unchanged extra rows otherwise)."""

    prefilled = False

    def has_changed(self) -> bool:
        return self.prefilled or super().has_changed()


class ArmInlineFormSet(BaseInlineFormSet):
    """Refuses arm sets an experiment cannot run (the same rules as the services)."""

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        extra_index = i - self.initial_form_count()
        if self.initial_extra and 0 <= extra_index < len(self.initial_extra):
            form.prefilled = True
        return form

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        arms = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if not data or data.get("DELETE"):
                continue
            arms.append(
                {
                    "key": data.get("key"),
                    "weight": data.get("weight") or 0,
                    "is_control": bool(data.get("is_control")),
                }
            )
        try:
            services.experiment_validate_arms(arms=arms)
        except ValidationError as err:
            raise ValidationError(err.messages) from None


class ArmInline(admin.TabularInline):
    model = Arm
    form = ArmForm
    formset = ArmInlineFormSet
    extra = 0
    min_num = 0
    fields = (
        "position",
        "key",
        "name",
        "strategy",
        "weight",
        "is_control",
        "escalation_threshold",
        "enable_escalation",
        "cost_optimization_mode",
    )
    ordering = ("position", "id")

    def get_extra(self, request, obj=None, **kwargs):
        return 2 if obj is None else 0


#: The two arms a new experiment starts with: the original council as control against
#: smart routing, half the units each.
NEW_EXPERIMENT_ARMS = (
    {
        "position": 0,
        "key": "control",
        "name": "Original council",
        "strategy": "original_council",
        "weight": 50,
        "is_control": True,
    },
    {
        "position": 1,
        "key": "smart",
        "name": "Smart routing",
        "strategy": "smart_routing",
        "weight": 50,
        "is_control": False,
    },
)


# --- The experiment form ----------------------------------------------------------------------

#: The editable settings, in the order the form and its "Traffic" / "Statistics" fieldsets
#: show them.
TRAFFIC_FIELDS = ("unit_type", "traffic_percentage", "ramp_schedule", "shadow_percentage")
STATISTICS_FIELDS = (
    "alpha",
    "sequential_testing",
    "minimum_sample_per_arm",
    "quality_signal",
    "cuped_enabled",
    "cuped_lookback_days",
    "guardrail_quality_drop_pct",
    "guardrail_error_rate_rise_pts",
    "guardrail_latency_p95_rise_pct",
)
#: The read-only record of who did what when (the "History" fieldset).
HISTORY_FIELDS = ("serving_arm", "created_by", "created_at", "updated_at", "started_at", "ended_at")


class ExperimentForm(forms.ModelForm):
    class Meta:
        model = Experiment
        fields = ("key", "name", "hypothesis", *TRAFFIC_FIELDS, *STATISTICS_FIELDS)

    def clean(self):
        cleaned = super().clean()
        instance = self.instance
        unit_type = cleaned.get("unit_type")
        if instance.pk and instance.status == Status.RUNNING and unit_type:
            clash = (
                Experiment.objects.filter(status=Status.RUNNING, unit_type=unit_type)
                .exclude(pk=instance.pk)
                .first()
            )
            if clash is not None:
                raise ValidationError(
                    f"Experiment {clash.key!r} is already running on the unit space "
                    f"{unit_type!r}: two running experiments would claim the same units."
                )
        schedule = cleaned.get("ramp_schedule")
        valid_schedule = isinstance(schedule, list) and all(
            isinstance(step, int | float) and 0 <= step <= 100 for step in schedule
        )
        if schedule is not None and not valid_schedule:
            self.add_error(
                "ramp_schedule",
                "Give a list of percentages between 0 and 100, e.g. [1, 5, 25, 50, 100].",
            )
        return cleaned


class RampForm(forms.Form):
    percentage = forms.FloatField(
        required=False,
        min_value=0,
        max_value=100,
        help_text="Leave empty to move each experiment to the next step of its ramp schedule.",
        error_messages={
            "min_value": "Traffic percentage must be between 0 and 100.",
            "max_value": "Traffic percentage must be between 0 and 100.",
        },
    )


class ConcludeForm(forms.Form):
    winner = forms.ChoiceField(help_text="The arm that serves all traffic from now on.")

    def __init__(self, *args, arms: list[Arm], suggested: str | None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["winner"].choices = [
            (arm.key, f"{arm.key} ({arm.strategy}{', control' if arm.is_control else ''})")
            for arm in arms
        ]
        if suggested:
            self.fields["winner"].initial = suggested


# --- Admin ------------------------------------------------------------------------------------


def _lifecycle_action(service, verb: str, description: str):
    """An admin action that applies a lifecycle service to each selected experiment."""

    @admin.action(description=description)
    def action(model_admin, request, queryset):
        model_admin._apply(request, queryset, service, verb)

    return action


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    form = ExperimentForm
    inlines = (ArmInline,)
    list_display = (
        "key",
        "name",
        "status",
        "traffic_display",
        "unit_type",
        "arms_display",
        "serving_arm",
        "started_at",
        "report_link",
    )
    list_filter = ("status", "unit_type")
    search_fields = ("key", "name", "hypothesis")
    prepopulated_fields = {"key": ("name",)}
    readonly_fields = ("status", *HISTORY_FIELDS, "report_link", "audit_log_display")
    fieldsets = (
        (None, {"fields": ("key", "name", "hypothesis", "status", "report_link")}),
        (
            "Traffic",
            {
                "fields": TRAFFIC_FIELDS,
                "description": (
                    "Units are bucketed with GrowthBook's v2 hash; ramping the traffic "
                    "percentage only adds units and never moves one between arms. Changing "
                    "arms or weights of a running experiment starts a new phase."
                ),
            },
        ),
        (
            "Statistics",
            {"fields": STATISTICS_FIELDS},
        ),
        (
            "History",
            {
                "fields": HISTORY_FIELDS,
                "classes": ("collapse",),
            },
        ),
        ("Audit log (who, when, what)", {"fields": ("audit_log_display",)}),
    )
    actions = (
        "start_experiments",
        "pause_experiments",
        "resume_experiments",
        "ramp_experiments",
        "stop_experiments",
        "conclude_experiment",
        "rollback_experiments",
        "export_report_json",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("serving_arm").prefetch_related("arms")

    def get_changeform_initial_data(self, request):
        """A new experiment starts at the first step of its ramp, not at 100%."""
        return {
            "traffic_percentage": DEFAULT_RAMP_SCHEDULE[0],
            **super().get_changeform_initial_data(request),
        }

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, ArmInline) and (obj is None or obj.pk is None):
            kwargs["initial"] = [dict(arm) for arm in NEW_EXPERIMENT_ARMS]
        return kwargs

    # --- columns ---

    @admin.display(description="traffic", ordering="traffic_percentage")
    def traffic_display(self, obj: Experiment) -> str:
        return f"{obj.traffic_percentage:g}%"

    @admin.display(description="arms")
    def arms_display(self, obj: Experiment) -> str:
        arms = sorted(obj.arms.all(), key=lambda arm: (arm.position, arm.pk))
        return ", ".join(
            f"{arm.key} {arm.weight}%{' (control)' if arm.is_control else ''}" for arm in arms
        )

    @admin.display(description="report")
    def report_link(self, obj: Experiment) -> str:
        if not obj.pk:
            return "-"
        url = reverse("admin:index") + f"dashboard/experiments/{obj.key}/report/"
        return format_html('<a href="{}">report</a>', url)

    @admin.display(description="audit log")
    def audit_log_display(self, obj: Experiment) -> str:
        if not obj.pk:
            return "-"
        entries = obj.audit_log.order_by("-created_at", "-id")[:50]
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{entry.created_at:%Y-%m-%d %H:%M:%S}",
                    entry.username or "system",
                    entry.get_action_display(),
                    entry.message,
                )
                for entry in entries
            ),
        )
        return format_html(
            "<table><thead><tr><th>When</th><th>Who</th><th>What</th><th>Details</th></tr>"
            "</thead><tbody>{}</tbody></table>",
            rows,
        )

    # --- saving: audit and phases ---

    def save_model(self, request, obj, form, change):
        if not change and request.user.is_authenticated:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        changed = list(form.changed_data)
        if change and changed:
            services.audit_log_record(
                experiment=obj,
                user=request.user,
                action=AuditLogEntry.Action.UPDATE,
                message=f"Changed {', '.join(changed)}.",
                changes={
                    "before": {name: _plain(form.initial.get(name)) for name in changed},
                    "after": {name: _plain(form.cleaned_data.get(name)) for name in changed},
                },
            )

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if not change:
            experiment = form.instance
            services.audit_log_record(
                experiment=experiment,
                user=request.user,
                action=AuditLogEntry.Action.CREATE,
                message=f"Created in the admin with arms {_arms_text(experiment)}.",
            )

    def save_formset(self, request, form, formset, change):
        arms_changed = formset.model is Arm and formset.has_changed()
        super().save_formset(request, form, formset, change)
        if not (arms_changed and change):
            return
        experiment = form.instance
        services.audit_log_record(
            experiment=experiment,
            user=request.user,
            action=AuditLogEntry.Action.UPDATE,
            message=f"Arms changed: {_arms_text(experiment)}.",
        )
        phase = services.experiment_phase_sync(experiment=experiment, user=request.user, force=True)
        if phase is not None:
            self.message_user(
                request,
                f"The arms of {experiment.key!r} changed while it runs: phase {phase.number} "
                "started with a new hash seed (units are re-assigned once).",
                messages.WARNING,
            )

    # --- actions ---

    def _apply(self, request, queryset, service, verb: str, **kwargs) -> None:
        done, failed = [], []
        for experiment in queryset:
            try:
                before = experiment.traffic_percentage
                after = service(experiment=experiment, user=request.user, **kwargs)
                if service is services.experiment_ramp:
                    done.append(f"{experiment.key} ({before:g}% -> {after.traffic_percentage:g}%)")
                else:
                    done.append(experiment.key)
            except ValidationError as err:
                failed.append(f"{experiment.key}: {' '.join(err.messages)}")
        if done:
            self.message_user(request, f"{verb}: {', '.join(done)}.", messages.SUCCESS)
        for message in failed:
            self.message_user(request, message, messages.ERROR)

    start_experiments = _lifecycle_action(
        services.experiment_start, "Started", "Start selected experiments"
    )
    pause_experiments = _lifecycle_action(
        services.experiment_pause, "Paused", "Pause selected experiments"
    )
    resume_experiments = _lifecycle_action(
        services.experiment_resume, "Resumed", "Resume selected experiments"
    )
    stop_experiments = _lifecycle_action(
        services.experiment_stop,
        "Stopped",
        "Stop selected experiments (all traffic to the control arm)",
    )
    rollback_experiments = _lifecycle_action(
        services.experiment_rollback,
        "Rolled back",
        "Roll back selected experiments (all traffic to the original arm)",
    )

    @admin.action(description="Ramp selected experiments (1, 5, 25, 50, 100%%)")
    def ramp_experiments(self, request, queryset):
        if "apply" in request.POST:
            form = RampForm(request.POST)
            if form.is_valid():
                percentage = form.cleaned_data["percentage"]
                self._apply(
                    request, queryset, services.experiment_ramp, "Ramped", percentage=percentage
                )
                return None
        else:
            form = RampForm()
        rows = [
            {
                "experiment": experiment,
                "next_step": ramp_next_step(experiment=experiment),
                "schedule": experiment.ramp_schedule or list(DEFAULT_RAMP_SCHEDULE),
            }
            for experiment in queryset
        ]
        return self._intermediate(
            request,
            queryset,
            form,
            title="Ramp traffic",
            action="ramp_experiments",
            rows=rows,
            template="admin/experiments/experiment/ramp.html",
        )

    @admin.action(description="Conclude the selected experiment (ship a winner)")
    def conclude_experiment(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one experiment to conclude.", messages.ERROR)
            return None
        experiment = queryset.get()
        arms = list(experiment.arms.order_by("position", "id"))
        suggested = _suggested_winner(experiment)
        if "apply" in request.POST:
            form = ConcludeForm(request.POST, arms=arms, suggested=suggested)
            if form.is_valid():
                self._apply(
                    request,
                    queryset,
                    services.experiment_conclude,
                    "Concluded",
                    winner=form.cleaned_data["winner"],
                )
                return None
        else:
            form = ConcludeForm(arms=arms, suggested=suggested)
        return self._intermediate(
            request,
            queryset,
            form,
            title=f"Conclude {experiment.key}",
            action="conclude_experiment",
            rows=[{"experiment": experiment}],
            template="admin/experiments/experiment/conclude.html",
            suggested=suggested,
        )

    @admin.action(description="Export report JSON")
    def export_report_json(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(
                request, "Select exactly one experiment to export its report.", messages.ERROR
            )
            return None
        experiment = queryset.get()
        response = HttpResponse(
            report_export_json(experiment=experiment), content_type="application/json"
        )
        response["Content-Disposition"] = f'attachment; filename="{experiment.key}-report.json"'
        return response

    def _intermediate(self, request, queryset, form, *, title, action, rows, template, **extra):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "form": form,
            "rows": rows,
            "queryset": queryset,
            "action": action,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            **extra,
        }
        return TemplateResponse(request, template, context)


def _suggested_winner(experiment: Experiment) -> str | None:
    """The report's winner, when the statistics report names one."""
    try:
        decision = experiment_report(experiment=experiment).get("decision") or {}
    except Exception:  # a report that cannot be built must not block concluding
        return None
    return decision.get("arm") if decision.get("status") == "winner" else None


def _arms_text(experiment: Experiment) -> str:
    return "; ".join(
        f"{arm.key} {arm.weight}% {arm.strategy}"
        for arm in experiment.arms.order_by("position", "id")
    )


def _plain(value):
    if isinstance(value, int | float | str | bool | list | dict) or value is None:
        return value
    return str(value)


@admin.register(AuditLogEntry)
class AuditLogEntryAdmin(ReadOnlyModelAdmin):
    """Every state change of every experiment (append-only: no add, change or delete)."""

    list_display = ("created_at", "experiment_key", "username", "action", "message")
    list_filter = ("action",)
    search_fields = ("experiment_key", "username", "message")
    date_hierarchy = "created_at"
    readonly_fields = (
        "created_at",
        "experiment",
        "experiment_key",
        "user",
        "username",
        "action",
        "message",
        "changes",
    )
