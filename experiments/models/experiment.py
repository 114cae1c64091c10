"""An experiment between routing strategies: its arms, phases and sticky assignments."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Strategy(models.TextChoices):
    ORIGINAL_COUNCIL = "original_council", "Original council (premium ensemble)"
    SMART_ROUTING = "smart_routing", "Smart routing"


#: The default ramp: each "ramp" action moves the traffic percentage to the next step.
DEFAULT_RAMP_SCHEDULE = (1, 5, 25, 50, 100)


def default_ramp_schedule() -> list[int]:
    return list(DEFAULT_RAMP_SCHEDULE)


class Experiment(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        STOPPED = "stopped", "Stopped"
        CONCLUDED = "concluded", "Concluded"

    class UnitType(models.TextChoices):
        USER = "user", "User"
        SCRIPT = "script", "Script"
        REQUEST = "request", "Request"
        TEAM = "team", "Team"

    key = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    hypothesis = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    traffic_percentage = models.FloatField(
        default=100.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(100.0)],
        help_text="Share of units that enter the experiment (0-100). Ramping it never moves a unit between arms.",
    )
    unit_type = models.CharField(max_length=16, choices=UnitType.choices, default=UnitType.USER)
    alpha = models.FloatField(
        default=0.05,
        validators=[MinValueValidator(0.0001), MaxValueValidator(0.5)],
        help_text="Significance level of the primary tests.",
    )
    sequential_testing = models.BooleanField(
        default=True, help_text="Always-valid p-values, so looking every day is safe."
    )
    minimum_sample_per_arm = models.PositiveIntegerField(default=200)
    cuped_enabled = models.BooleanField(
        default=False,
        help_text="CUPED: adjust each unit's metrics by its own calls before its first "
        "exposure (lower variance, same validity). Needs units that also call outside "
        "the experiment.",
    )
    cuped_lookback_days = models.PositiveIntegerField(
        default=14,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="How many days before a unit's first exposure CUPED reads its calls.",
    )
    shadow_percentage = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(100.0)],
        help_text="Share of calls (0-100) on which the other arm also runs, in the background, as a pair.",
    )
    guardrail_quality_drop_pct = models.FloatField(
        default=2.0,
        help_text="User feedback (the quality signal 'feedback') may not drop by more than "
        "this many percent.",
    )
    quality_signal = models.CharField(
        max_length=16,
        choices=[
            ("agreement", "Agreement with the control's answer (shadow pairs)"),
            ("judge", "LLM judge win rate (shadow pairs)"),
            ("feedback", "User feedback"),
        ],
        default="agreement",
        help_text="The quality signal the quality guardrail tests (docs/quality.md).",
    )
    guardrail_error_rate_rise_pts = models.FloatField(
        default=1.0, help_text="Error rate may not rise by more than this many percentage points."
    )
    guardrail_latency_p95_rise_pct = models.FloatField(
        default=10.0, help_text="Latency p95 may not rise by more than this many percent."
    )
    ramp_schedule = models.JSONField(
        default=default_ramp_schedule,
        blank=True,
        help_text="Traffic percentages the ramp action steps through, e.g. [1, 5, 25, 50, 100].",
    )
    serving_arm = models.ForeignKey(
        "Arm",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Once stopped, concluded or rolled back: the arm every unit gets "
        "(rollback: the control arm; conclude: the winner). Those calls are not "
        "counted in the experiment.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(traffic_percentage__gte=0)
                & models.Q(traffic_percentage__lte=100),
                name="experiment_traffic_percentage_0_100",
            ),
            models.CheckConstraint(
                condition=models.Q(shadow_percentage__gte=0) & models.Q(shadow_percentage__lte=100),
                name="experiment_shadow_percentage_0_100",
            ),
            models.CheckConstraint(
                condition=models.Q(alpha__gt=0) & models.Q(alpha__lt=1),
                name="experiment_alpha_0_1",
            ),
        ]
        indexes = [models.Index(fields=["status", "unit_type"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"

    @property
    def coverage(self) -> float:
        """The traffic percentage as a fraction in [0, 1] (GrowthBook's coverage)."""
        return min(max(self.traffic_percentage / 100.0, 0.0), 1.0)


class Arm(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="arms")
    key = models.SlugField(max_length=100)
    name = models.CharField(max_length=200, blank=True)
    weight = models.PositiveIntegerField(
        default=50,
        validators=[MaxValueValidator(100)],
        help_text="Share of the experiment's traffic, in percent; an experiment's weights sum to 100.",
    )
    strategy = models.CharField(max_length=32, choices=Strategy.choices)
    is_control = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)
    # Router parameters of this arm; None means "the platform's setting".
    escalation_threshold = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    enable_escalation = models.BooleanField(null=True, blank=True)
    cost_optimization_mode = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["experiment", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "key"], name="arm_unique_key_per_experiment"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.key}/{self.key}"

    def router_params(self) -> dict:
        """The router overrides of this arm, without the ones left to the platform's settings."""
        params = {
            "escalation_threshold": self.escalation_threshold,
            "enable_escalation": self.enable_escalation,
            "cost_optimization_mode": self.cost_optimization_mode,
        }
        return {name: value for name, value in params.items() if value is not None}


class Phase(models.Model):
    """A period with fixed arms and weights. Changing them starts a new phase (new seed);
    ramping the traffic percentage does not."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="phases")
    number = models.PositiveIntegerField()
    hash_seed = models.CharField(max_length=100)
    arm_keys = models.JSONField(default=list, help_text="Arm keys in bucket order.")
    weights = models.JSONField(default=list, help_text="Arm weights as fractions, in bucket order.")
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["experiment", "number"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "number"], name="phase_unique_number"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.key} phase {self.number}"


class Assignment(models.Model):
    """The arm a unit got in a phase; the persisted row wins over the hash."""

    # No index of its own: the unique constraint's index starts with experiment_id, and
    # one index less is one B-tree write less per assignment (the hot path).
    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="assignments", db_index=False
    )
    phase = models.ForeignKey(Phase, on_delete=models.CASCADE, related_name="assignments")
    arm = models.ForeignKey(Arm, on_delete=models.CASCADE, related_name="assignments")
    unit_id = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "phase", "unit_id"], name="assignment_unique_unit_per_phase"
            ),
        ]
        indexes = [models.Index(fields=["experiment", "arm"])]

    def __str__(self) -> str:
        return f"{self.unit_id} -> {self.arm.key}"
