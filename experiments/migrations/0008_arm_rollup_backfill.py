"""Fill ArmRollup from existing CallRollup rows (installations that had calls before
ArmRollup existed). A sum over rollup rows, not over calls; a no-op on a fresh database
or when ArmRollup already has rows."""

from decimal import Decimal

from django.db import migrations

KEY = ("bucket_start", "experiment_key", "arm_key", "status", "is_shadow")
SUMS = (
    "n", "escalated_n", "cost_usd_sum", "baseline_cost_usd_sum", "cost_usd_sumsq",
    "input_tokens_sum", "output_tokens_sum", "latency_n", "latency_ms_sum", "latency_ms_sumsq",
    "confidence_n", "confidence_sum", "confidence_sumsq", "quality_n", "quality_sum", "quality_sumsq",
)


def backfill(apps, schema_editor):
    CallRollup = apps.get_model("experiments", "CallRollup")
    ArmRollup = apps.get_model("experiments", "ArmRollup")
    if ArmRollup.objects.exists() or not CallRollup.objects.exists():
        return
    sums = {}
    for row in CallRollup.objects.order_by().iterator(chunk_size=2000):
        key = tuple(getattr(row, name) for name in KEY)
        into = sums.get(key)
        if into is None:
            into = sums[key] = {name: 0 for name in SUMS}
            into["cost_usd_sum"] = into["baseline_cost_usd_sum"] = Decimal("0")
            into["latency_hist"], into["confidence_hist"] = [], []
        for name in SUMS:
            into[name] += getattr(row, name)
        for name in ("latency_hist", "confidence_hist"):
            counts = list(getattr(row, name) or [])
            total = into[name]
            total.extend([0] * (len(counts) - len(total)))
            for index, count in enumerate(counts):
                total[index] += count
    ArmRollup.objects.bulk_create(
        (ArmRollup(**dict(zip(KEY, key)), **values) for key, values in sums.items()),
        batch_size=1000,
    )


class Migration(migrations.Migration):
    dependencies = [("experiments", "0007_call_rollup_daily")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
