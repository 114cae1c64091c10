"""The decision rule over an analysed report: invalid, guardrail failed, winner, or not yet.

Pure: it reads only the report dict (SRM, tests, guardrails, arms' samples), so an
exported report can be re-decided from the file. The rule, in order:

1. ``invalid``: sample-ratio mismatch (chi-square p < 0.001 against the phase weights)
   blocks any conclusion;
2. ``guardrail failed``: a treatment is shown worse than a guardrail margin; rollback to
   the control is recommended;
3. ``winner``: a treatment whose primary metric is significantly better after
   Holm-Bonferroni, with every guardrail shown non-inferior and every arm at its minimum
   sample (units when the analysis unit is the unit, else calls); or the control, when
   every treatment is significantly worse;
4. ``no winner yet``: otherwise, saying what is missing (with "not enough quality
   signals" when the quality guardrail lacks them: unmeasured quality never passes).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from experiments.analysis.comparisons import DECISION_POWER
from experiments.analysis.metrics import METRICS, PRIMARY_METRIC
from experiments.analysis.quality import NOT_ENOUGH

WINNER = "winner"
NO_WINNER_YET = "no winner yet"
GUARDRAIL_FAILED = "guardrail failed"
INVALID = "invalid"


def arm_sample(arm: dict) -> int:
    """The sample an arm's minimum is checked against: units at the unit level, calls
    at the call level."""
    return int(arm.get("sample") if arm.get("sample") is not None else arm["summary"]["calls"])


def p_text(p_value: float) -> str:
    """``= 0.012`` or ``< 0.0001`` (always-valid p-values underflow to 0 on big effects)."""
    return "< 0.0001" if p_value < 0.0001 else f"= {p_value:.2g}"


def decide(report: dict) -> dict:
    """The decision rule (module docstring) over a report's SRM, tests and guardrails.

    Pure: it reads only the report dict, so an exported report can be re-decided."""
    settings = report["settings"]
    control = report["control"]
    minimum = settings["minimum_sample_per_arm"]
    srm = report["srm"]
    decision: dict[str, Any] = {
        "status": None,
        "arm": None,
        "rollback_recommended": False,
        "reasons": [],
        "missing": [],
    }
    if srm.get("result") and srm["result"]["mismatch"]:
        decision.update(status=INVALID)
        decision["reasons"].append(
            f"Sample-ratio mismatch: the {srm['unit']} per arm {srm['result']['observed']} do not "
            f"match the weights {srm['result']['weights']} (chi-square p {p_text(srm['result']['p_value'])} "
            f"< {srm['result']['threshold']}). Fix the assignment before trusting any result."
        )
        return decision
    failed = [g for g in report["guardrails"] if g["status"] == "fail"]
    if failed:
        decision.update(status=GUARDRAIL_FAILED, rollback_recommended=True)
        for guardrail in failed:
            result = guardrail["result"]
            decision["reasons"].append(
                f"Arm {guardrail['arm']!r} fails the {guardrail['guardrail']} guardrail: harm "
                f"{result['harm']:+.2%} (interval {result['harm_low']:+.2%} to {result['harm_high']:+.2%}) "
                f"exceeds the margin {guardrail['margin']:.2%}."
            )
        decision["reasons"].append(
            f"Rollback recommended: send all traffic to the control arm {control!r}."
        )
        decision["failed_guardrails"] = [
            {"arm": g["arm"], "guardrail": g["guardrail"]} for g in failed
        ]
        return decision

    arm_n = {arm["key"]: arm_sample(arm) for arm in report["arms"]}
    short = {key: n for key, n in arm_n.items() if n < minimum}
    primary = [test for test in report["tests"] if test["primary"]]
    direction = METRICS[PRIMARY_METRIC][1]

    def better(test):
        absolute = test.get("absolute") or {}
        return test["significant"] and direction * absolute.get("difference", 0) > 0

    def worse(test):
        absolute = test.get("absolute") or {}
        return test["significant"] and direction * absolute.get("difference", 0) < 0

    guardrails_by_arm: dict[str, list[dict]] = defaultdict(list)
    for guardrail in report["guardrails"]:
        guardrails_by_arm[guardrail["arm"]].append(guardrail)
    winners = [
        test
        for test in primary
        if better(test)
        and not short
        and all(g["status"] == "pass" for g in guardrails_by_arm[test["treatment"]])
    ]
    if winners:
        best = max(
            winners, key=lambda test: direction * ((test.get("relative") or {}).get("lift") or 0)
        )
        relative = best.get("relative") or {}
        decision.update(status=WINNER, arm=best["treatment"])
        lift = relative.get("lift")
        decision["reasons"].append(
            f"Arm {best['treatment']!r} improves {PRIMARY_METRIC.replace('_', ' ')} "
            + (f"by {abs(lift):.1%} " if lift is not None else "")
            + f"vs {control!r} (adjusted p {p_text(best['p_value_adjusted'])} < {settings['alpha']}"
            + (", always-valid" if settings["sequential_testing"] else "")
            + "), and every guardrail is shown within its margin."
        )
        return decision
    if primary and all(worse(test) for test in primary) and not short:
        decision.update(status=WINNER, arm=control)
        decision["reasons"].append(
            f"Every treatment is significantly worse on {PRIMARY_METRIC.replace('_', ' ')}; keep the control {control!r}."
        )
        return decision

    decision.update(status=NO_WINNER_YET)
    if short:
        decision["missing"].append("sample")
        decision["reasons"].append(
            f"Not enough {report['settings'].get('analysis_unit', 'call')}s yet: "
            + ", ".join(f"{key} has {n} of {minimum}" for key, n in sorted(short.items()))
            + "."
        )
    for test in primary:
        if test["p_value"] is None:
            decision["missing"].append("data")
            decision["reasons"].append(f"{test['treatment']}: {test['error']}")
        elif not better(test):
            decision["missing"].append("significance")
            decision["reasons"].append(
                f"{test['treatment']}: the {PRIMARY_METRIC.replace('_', ' ')} difference is not significant yet "
                f"(adjusted p {p_text(test['p_value_adjusted'])}, alpha {settings['alpha']})."
            )
        pending = [
            g["guardrail"] for g in guardrails_by_arm[test["treatment"]] if g["status"] != "pass"
        ]
        if pending:
            decision["missing"].append("guardrails")
            decision["reasons"].append(
                f"{test['treatment']}: guardrails not yet shown within their margins: {', '.join(pending)}."
            )
        decision["reasons"] += [
            f"{test['treatment']}: {g['error']}."
            for g in guardrails_by_arm[test["treatment"]]
            if NOT_ENOUGH in (g.get("error") or "")
        ]
        timing = report["time_to_decision"].get(test["treatment"], {})
        if timing.get("days_to_decision") is not None:
            decision["reasons"].append(
                f"{test['treatment']}: about {timing['days_to_decision']:.1f} more days at the current traffic "
                f"to detect the observed effect with {DECISION_POWER:.0%} power "
                f"({timing['required_per_arm']} per arm)."
            )
    decision["missing"] = sorted(set(decision["missing"]))
    return decision
