"""Alerts: the dashboard's warnings, from the editable :class:`AlertRule` rows.

Two steps. :func:`alerts_snapshot` measures what the rules need (from the dashboard's
metrics plus a few small queries: the error-rate baseline, the units per arm of running
experiments). :func:`alerts_evaluate` is pure: rules and a snapshot in, alerts out, each
with a level, a message that states the measured value, and an action.

The thresholds on the window's figures (confidence, escalation, cost per request, error
rate) read the dashboard's :class:`~experiments.analysis.figures.Totals`, the analysis
layer's arithmetic. The rules that test an experiment's arms (SRM, guardrails) test the
experiment's current phase with the report's own inputs and code, whatever the
dashboard's window: units per arm against the phase weights (``experiments.analysis``'s
SRM rule with its minimum expected count); the phase's per-arm sums, latency histograms
and, for experiments that assign users, scripts or teams, the per-unit sums
(``experiments.selectors_analysis``, the report's loaders), tested by the report's
guardrail checks at the report's analysis unit (the delta method over units when the
phase has unit rows); the quality guardrail on the phase's unit-level signal sums
(``final_score`` is never quality). So a guardrail alert and the report's guardrail
verdict agree on the same data. A guardrail alert fires only when its test *fails* (the
interval rules the margin out), not while it is inconclusive.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from experiments.analysis.guardrails import guardrail_checks
from experiments.analysis.quality import AGREEMENT, QualitySettings
from experiments.analysis.srm import SRM_MIN_EXPECTED, srm_p_value  # noqa: F401 - public names
from experiments.analysis.sums import CallSums, empty_unit_sums
from experiments.metrics import DashboardMetrics, error_totals
from experiments.models import AlertRule, Experiment
from experiments.quality_report import quality_platform_settings
from experiments.rollups import hour_start
from experiments.selectors_analysis import (
    PhaseWindow,
    arm_call_sums,
    arm_latency_hists,
    assigned_units,
    unit_sums_by_phases,
)
from experiments.selectors_quality import quality_sums_by_phase
from experiments.stats.noninferiority import FAIL
from experiments.stats.ratio import RatioSums
from experiments.stats.results import AsDict
from experiments.stats.sequential import DEFAULT_TUNING_N

#: The window the error-rate rule compares when the dashboard shows all time.
ALL_TIME_ERROR_PERIOD = timedelta(hours=24)
_LEVEL_ORDER = {AlertRule.Level.CRITICAL: 0, AlertRule.Level.WARNING: 1, AlertRule.Level.INFO: 2}


@dataclass(frozen=True)
class Rule:
    """An alert rule as plain data (``Rule.from_model(alert_rule)``)."""

    key: str
    name: str
    metric: str
    threshold: float | None
    level: str
    action: str
    min_requests: int = 20
    baseline_hours: int = 168

    @classmethod
    def from_model(cls, rule: AlertRule) -> Rule:
        return cls(
            key=rule.key,
            name=rule.name,
            metric=rule.metric,
            threshold=None if rule.threshold is None else float(rule.threshold),
            level=rule.level,
            action=rule.action,
            min_requests=rule.min_requests,
            baseline_hours=rule.baseline_hours,
        )


@dataclass(frozen=True)
class Alert(AsDict):
    rule: str
    metric: str
    level: str
    message: str
    action: str
    value: float | None
    threshold: float | None
    experiment: str | None = None


@dataclass(frozen=True)
class ErrorBaseline:
    """Error rate of the evaluated period and of the ``baseline_hours`` before it."""

    baseline_hours: int
    period_label: str
    requests: int
    error_rate: float
    baseline_requests: int
    baseline_error_rate: float


#: The per-unit sums the guardrails test (quality has its signal sums, latency p95 the
#: histograms); the alerts read only these, the dashboard's speed depending on it.
UNIT_GUARDRAIL_METRICS = ("error_rate",)


@dataclass(frozen=True)
class ArmSnapshot:
    """One arm's sufficient statistics over the experiment's current phase (the
    report's): assigned units, call-level sums, per-unit sums (None: the analysis unit is
    the call), the quality signal's unit-level sums and the latency histogram."""

    key: str
    is_control: bool
    weight: float
    units: int
    calls: CallSums = field(default_factory=CallSums)
    unit_sums: dict[str, RatioSums] | None = None
    quality_signals: RatioSums | None = None
    latency_hist: tuple[int, ...] = ()

    @property
    def requests(self) -> int:
        return self.calls.n

    @property
    def sample(self) -> int:
        """Units at the unit level, calls at the call level (the report's arm sample)."""
        if self.unit_sums is None:
            return self.calls.n
        return self.unit_sums[UNIT_GUARDRAIL_METRICS[0]].n

    def sufficient_statistics(self) -> dict:
        """The guardrails' inputs, as the report passes them: per-unit RatioSums at the
        unit level, else the call-level statistics."""
        if self.unit_sums is not None:
            return self.unit_sums
        return self.calls.sufficient_statistics()


def _default_quality() -> dict:
    defaults = QualitySettings()
    return {
        "min_signals": defaults.min_signals,
        "agreement_floor": defaults.agreement_floor,
        "judge_margin": defaults.judge_margin,
    }


@dataclass(frozen=True)
class ExperimentSnapshot:
    key: str
    minimum_sample_per_arm: int
    guardrail_quality_drop_pct: float
    guardrail_error_rate_rise_pts: float
    guardrail_latency_p95_rise_pct: float
    arms: tuple[ArmSnapshot, ...]
    alpha: float = 0.05
    sequential_testing: bool = True
    #: The experiment's quality signal and the platform's quality settings (a report's
    #: ``settings["quality_signal"]`` and ``settings["quality"]``).
    quality_signal: str = AGREEMENT
    quality: dict = field(default_factory=_default_quality)


@dataclass(frozen=True)
class AlertSnapshot:
    """What the rules measure; built by :func:`alerts_snapshot`, or by hand in tests."""

    period_label: str
    requests: int
    confidence_n: int
    avg_confidence: float
    escalation_rate: float
    cost_per_request_usd: float
    error_baselines: tuple[ErrorBaseline, ...] = ()
    experiments: tuple[ExperimentSnapshot, ...] = ()


# --- Pure evaluation --------------------------------------------------------------------


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


def _evaluate_rule(rule: Rule, snapshot: AlertSnapshot) -> list[Alert]:
    def alert(message: str, value: float | None, experiment: str | None = None) -> Alert:
        return Alert(
            rule=rule.key,
            metric=rule.metric,
            level=rule.level,
            message=message,
            action=rule.action,
            value=value,
            threshold=rule.threshold,
            experiment=experiment,
        )

    metric, threshold, period = rule.metric, rule.threshold, snapshot.period_label
    enough = snapshot.requests >= max(rule.min_requests, 1)
    if metric == AlertRule.Metric.AVG_CONFIDENCE:
        if enough and snapshot.confidence_n and snapshot.avg_confidence < threshold:
            return [
                alert(
                    f"Average confidence is {snapshot.avg_confidence:.3f}, below {threshold:g} "
                    f"({snapshot.confidence_n:,} requests, {period}).",
                    snapshot.avg_confidence,
                )
            ]
    elif metric == AlertRule.Metric.ESCALATION_RATE:
        if enough and snapshot.escalation_rate * 100 > threshold:
            return [
                alert(
                    f"Escalation rate is {_pct(snapshot.escalation_rate)}, above {threshold:g}% "
                    f"({snapshot.requests:,} requests, {period}).",
                    snapshot.escalation_rate * 100,
                )
            ]
    elif metric == AlertRule.Metric.COST_PER_REQUEST:
        if enough and snapshot.cost_per_request_usd > threshold:
            return [
                alert(
                    f"Cost per request is ${snapshot.cost_per_request_usd:.4f}, above "
                    f"${threshold:g} ({snapshot.requests:,} requests, {period}).",
                    snapshot.cost_per_request_usd,
                )
            ]
    elif metric == AlertRule.Metric.ERROR_RATE_RISE:
        return _error_rate_alerts(rule, snapshot, alert)
    elif metric == AlertRule.Metric.SRM:
        return _srm_alerts(rule, snapshot, alert)
    elif metric == AlertRule.Metric.GUARDRAIL:
        return _guardrail_alerts(rule, snapshot, alert)
    return []


def _error_rate_alerts(rule: Rule, snapshot: AlertSnapshot, alert) -> list[Alert]:
    baseline = next(
        (item for item in snapshot.error_baselines if item.baseline_hours == rule.baseline_hours),
        None,
    )
    if baseline is None or baseline.requests < max(rule.min_requests, 1):
        return []
    if baseline.baseline_requests < max(rule.min_requests, 1):
        return []
    rise_pts = (baseline.error_rate - baseline.baseline_error_rate) * 100
    if rise_pts <= rule.threshold:
        return []
    return [
        alert(
            f"Error rate is {_pct(baseline.error_rate)} ({baseline.period_label}, "
            f"{baseline.requests:,} requests), {rise_pts:.1f} points above its baseline of "
            f"{_pct(baseline.baseline_error_rate)} (the {rule.baseline_hours} hours before); "
            f"limit +{rule.threshold:g} points.",
            rise_pts,
        )
    ]


def _srm_alerts(rule: Rule, snapshot: AlertSnapshot, alert) -> list[Alert]:
    alerts = []
    for experiment in snapshot.experiments:
        units = [arm.units for arm in experiment.arms]
        if sum(units) < max(rule.min_requests, 1):
            continue
        p_value = srm_p_value(units, [arm.weight for arm in experiment.arms])
        if p_value is None or p_value >= rule.threshold:
            continue
        split = ", ".join(
            f"{arm.key} {arm.units:,} ({_pct(arm.weight)} configured)" for arm in experiment.arms
        )
        alerts.append(
            alert(
                f"Sample-ratio mismatch in {experiment.key}: p = {p_value:.2g} < "
                f"{rule.threshold:g}; units per arm: {split}.",
                p_value,
                experiment.key,
            )
        )
    return alerts


_GUARDRAIL_TEXT = {
    "quality": ("quality ({})", "{}", None),
    "error_rate": ("error rate", "a rise of at most {:g} points", "guardrail_error_rate_rise_pts"),
    "latency_p95": ("latency p95", "a rise of at most {:g}%", "guardrail_latency_p95_rise_pct"),
}


def _quality_limit(check: dict) -> str:
    settings = check["inputs"]["settings"]
    return {
        "agreement": f"mean agreement below {settings['agreement_floor']:g}",
        "judge": f"a judge win rate below {0.5 - settings['judge_margin']:g}",
        "feedback": f"a feedback drop of more than {settings['feedback_drop']:.0%}",
    }[check["source"]]


def _measured(name: str, check: dict, control: ArmSnapshot, arm: ArmSnapshot) -> str:
    harm = check["result"]["harm"]
    if name == "quality":
        versus = check["control_estimate"]
        return (
            f"{check['estimate']:.3f}"
            + (f" vs {versus:.3f}" if versus is not None else "")
            + f" (harm {harm:+.3f})"
        )
    if name == "error_rate":
        return (
            f"{_pct(arm.calls.error_rate or 0.0)} vs {_pct(control.calls.error_rate or 0.0)}, "
            f"{harm * 100:+.1f} points"
        )
    inputs = check["inputs"]
    return (
        f"{inputs['treatment_quantile']['estimate']:,.0f} ms vs "
        f"{inputs['control_quantile']['estimate']:,.0f} ms, {harm * 100:+.1f}%"
    )


def _guardrail_results(experiment: ExperimentSnapshot, control: ArmSnapshot, arm: ArmSnapshot):
    """(guardrail name, limit text, measured text, result dict) of each guardrail that
    could be tested: the report's own guardrail checks (``experiments.analysis``) on the
    window's sums, so an alert fires exactly when the report's guardrail fails."""
    settings = {
        "alpha": experiment.alpha,
        "sequential_testing": experiment.sequential_testing,
        "tuning_n": float(DEFAULT_TUNING_N),
        "guardrail_quality_drop_pct": experiment.guardrail_quality_drop_pct,
        "guardrail_error_rate_rise_pts": experiment.guardrail_error_rate_rise_pts,
        "guardrail_latency_p95_rise_pct": experiment.guardrail_latency_p95_rise_pct,
        "quality_signal": experiment.quality_signal,
        "quality": experiment.quality,
    }
    unit_level = control.unit_sums is not None and arm.unit_sums is not None
    checks = guardrail_checks(
        control=control.sufficient_statistics(),
        treatment=arm.sufficient_statistics(),
        unit_level=unit_level,
        control_quality=control.quality_signals,
        treatment_quality=arm.quality_signals,
        control_hist=list(control.latency_hist),
        treatment_hist=list(arm.latency_hist),
        settings=settings,
    )
    results = []
    for check in checks:
        if check["result"] is None:
            continue
        name = check["guardrail"]
        label, limit, field_name = _GUARDRAIL_TEXT[name]
        if name == "quality":
            label, limit_text = label.format(check["source"]), _quality_limit(check)
        else:
            limit_text = limit.format(getattr(experiment, field_name))
        results.append((label, limit_text, _measured(name, check, control, arm), check["result"]))
    return results


def _samples(arm: ArmSnapshot, control: ArmSnapshot) -> str:
    """The arms' requests, and their units when the test is over units."""
    text = f"{arm.requests:,} vs {control.requests:,} requests"
    if arm.unit_sums is None:
        return text
    return f"{text} from {arm.sample:,} vs {control.sample:,} units"


def _guardrail_alerts(rule: Rule, snapshot: AlertSnapshot, alert) -> list[Alert]:
    """One alert per guardrail whose non-inferiority test *fails* (the interval rules the
    margin out), once both arms hold the experiment's minimum sample."""
    alerts = []
    for experiment in snapshot.experiments:
        control = next((arm for arm in experiment.arms if arm.is_control), None)
        if control is None:
            continue
        minimum = max(experiment.minimum_sample_per_arm, rule.min_requests, 1)
        for arm in experiment.arms:
            if arm is control or arm.sample < minimum or control.sample < minimum:
                continue
            for name, limit, measured, result in _guardrail_results(experiment, control, arm):
                if result["status"] != FAIL:
                    continue
                alerts.append(
                    alert(
                        f"Guardrail failing in {experiment.key}: {name} of arm {arm.key} vs "
                        f"{control.key} is {measured}; the test rules out {limit} "
                        f"(p = {result['p_value']:.2g}, {_samples(arm, control)}).",
                        result["harm"] * 100,
                        experiment.key,
                    )
                )
    return alerts


def alerts_evaluate(rules: Iterable[Rule], snapshot: AlertSnapshot) -> list[Alert]:
    """The alerts that fire, most severe first (pure: no database)."""
    alerts = [alert for rule in rules for alert in _evaluate_rule(rule, snapshot)]
    return sorted(alerts, key=lambda alert: _LEVEL_ORDER.get(alert.level, 9))


# --- Measuring --------------------------------------------------------------------------


def alert_rules_enabled() -> list[Rule]:
    """The enabled rules (one query)."""
    return [Rule.from_model(rule) for rule in AlertRule.objects.filter(enabled=True)]


def _error_baselines(rules: Iterable[Rule], metrics: DashboardMetrics) -> tuple[ErrorBaseline, ...]:
    """For each distinct baseline length: the evaluated period's and the baseline's error
    rates (one or two queries each)."""
    window = metrics.window
    results = []
    for hours in sorted(
        {rule.baseline_hours for rule in rules if rule.metric == AlertRule.Metric.ERROR_RATE_RISE}
    ):
        if window.since is None:
            since = window.until - ALL_TIME_ERROR_PERIOD
            current = error_totals(
                since=since, until=window.until, experiment_key=metrics.experiment_key
            )
            label = "last 24 hours"
        else:
            since = window.since
            current = metrics.totals
            label = window.label.lower()
        baseline = error_totals(
            since=since - timedelta(hours=hours),
            until=since,
            experiment_key=metrics.experiment_key,
        )
        results.append(
            ErrorBaseline(
                baseline_hours=hours,
                period_label=label,
                requests=current.requests,
                error_rate=current.error_rate,
                baseline_requests=baseline.requests,
                baseline_error_rate=baseline.error_rate,
            )
        )
    return tuple(results)


def _experiment_snapshots(metrics: DashboardMetrics) -> tuple[ExperimentSnapshot, ...]:
    """Running and paused experiments (or the filtered one) with units and figures per arm
    over their current phases (seven queries: experiments, their arms, their phases,
    units per arm (one more when some experiment is past its first phase), the phases' call
    sums, latency histograms and per-unit sums, as the report loads them; one more for
    the quality-signal sums of the phases)."""
    experiments = Experiment.objects.prefetch_related("arms", "phases")
    if metrics.experiment_key:
        experiments = experiments.filter(key=metrics.experiment_key)
    else:
        experiments = experiments.filter(
            status__in=[Experiment.Status.RUNNING, Experiment.Status.PAUSED]
        )
    experiments = list(experiments)
    if not experiments:
        return ()
    phases = {}
    for experiment in experiments:
        current = max(experiment.phases.all(), key=lambda phase: phase.number, default=None)
        if current is not None:
            phases[experiment.pk] = current
    units = assigned_units(list(phases.values()))
    now = timezone.now()
    windows = [
        PhaseWindow(experiment.key, hour_start(phases[experiment.pk].started_at), now)
        for experiment in experiments
        if experiment.pk in phases
    ]
    calls_by_arm = arm_call_sums(windows)
    hists_by_arm = arm_latency_hists(windows)
    unit_sums_by_phase = unit_sums_by_phases(
        [
            (experiment.key, phases[experiment.pk].pk)
            for experiment in experiments
            if experiment.pk in phases and experiment.unit_type != Experiment.UnitType.REQUEST
        ],
        metrics=UNIT_GUARDRAIL_METRICS,
    )
    platform = quality_platform_settings()
    # The report's quality sums: per current phase, its signals of the experiment's source.
    signals_by_phase = quality_sums_by_phase(
        phase_ids=[phase.pk for phase in phases.values()],
        source_by_phase={phases[e.pk].pk: e.quality_signal for e in experiments if e.pk in phases},
    )
    snapshots = []
    for experiment in experiments:
        phase = phases.get(experiment.pk)
        signals = signals_by_phase.get(phase.pk, {}) if phase is not None else {}
        # The report's analysis unit: the unit when the phase has unit rows, else the call.
        unit_sums = unit_sums_by_phase.get((experiment.key, phase.pk)) if phase else None
        weights = {}
        if phase is not None and len(phase.arm_keys) == len(phase.weights):
            weights = dict(zip(phase.arm_keys, phase.weights, strict=True))
        arms = []
        for arm in experiment.arms.all():
            arm_id = (experiment.key, arm.key)
            arms.append(
                ArmSnapshot(
                    key=arm.key,
                    is_control=arm.is_control,
                    weight=float(weights.get(arm.key, arm.weight / 100)),
                    units=units.get((phase.pk, arm.pk), 0) if phase is not None else 0,
                    calls=calls_by_arm.get(arm_id) or CallSums(),
                    unit_sums=(unit_sums.get(arm.key) or empty_unit_sums()) if unit_sums else None,
                    quality_signals=signals.get(arm.key),
                    latency_hist=tuple(hists_by_arm.get(arm_id) or ()),
                )
            )
        snapshots.append(
            ExperimentSnapshot(
                key=experiment.key,
                minimum_sample_per_arm=experiment.minimum_sample_per_arm,
                guardrail_quality_drop_pct=experiment.guardrail_quality_drop_pct,
                guardrail_error_rate_rise_pts=experiment.guardrail_error_rate_rise_pts,
                guardrail_latency_p95_rise_pct=experiment.guardrail_latency_p95_rise_pct,
                arms=tuple(arms),
                alpha=experiment.alpha,
                sequential_testing=experiment.sequential_testing,
                quality_signal=experiment.quality_signal,
                quality=platform,
            )
        )
    return tuple(snapshots)


def alerts_snapshot(*, metrics: DashboardMetrics, rules: Sequence[Rule]) -> AlertSnapshot:
    """Measure what ``rules`` need, starting from the dashboard's metrics."""
    totals = metrics.totals
    needs_experiments = any(
        rule.metric in {AlertRule.Metric.SRM, AlertRule.Metric.GUARDRAIL} for rule in rules
    )
    return AlertSnapshot(
        period_label=metrics.window.label.lower(),
        requests=totals.requests,
        confidence_n=totals.confidence_n,
        avg_confidence=totals.avg_confidence,
        escalation_rate=totals.escalation_rate,
        cost_per_request_usd=totals.cost_per_request_usd,
        error_baselines=_error_baselines(rules, metrics),
        experiments=_experiment_snapshots(metrics) if needs_experiments else (),
    )


def alerts_for(*, metrics: DashboardMetrics) -> list[Alert]:
    """The alerts of the dashboard's window and experiment filter, most severe first."""
    rules = alert_rules_enabled()
    if not rules:
        return []
    return alerts_evaluate(rules, alerts_snapshot(metrics=metrics, rules=rules))
