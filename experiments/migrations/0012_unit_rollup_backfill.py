"""Fill UnitRollup from the recorded calls (installations that had calls before the
per-unit rollup existed), so running experiments are analysed per unit at once. One
GROUP BY in the database; a no-op on a fresh database or when UnitRollup has rows."""

from django.db import migrations
from django.db.models import Case, CharField, Count, F, FloatField, Min, Q, Sum, Value, When
from django.db.models.functions import Cast, Coalesce, Concat


def backfill(apps, schema_editor):
    RoutedCall = apps.get_model("experiments", "RoutedCall")
    UnitRollup = apps.get_model("experiments", "UnitRollup")
    if UnitRollup.objects.exists():
        return
    calls = RoutedCall.objects.filter(
        status__in=["success", "error"],
        is_shadow=False,
        experiment__isnull=False,
        arm__isnull=False,
    ).exclude(experiment__unit_type="request")
    grouped = (
        calls.annotate(
            experiment_key_=F("experiment__key"),
            arm_key_=F("arm__key"),
            phase_number=Coalesce(F("phase_id"), Value(0)),
            unit=Case(
                When(unit_id="", then=Concat(Value("call:"), Cast("id", CharField()))),
                default=F("unit_id"),
                output_field=CharField(),
            ),
        )
        .values("experiment_key_", "phase_number", "arm_key_", "unit")
        .order_by()
        .annotate(
            calls=Count("id"),
            error_calls=Count("id", filter=Q(status="error")),
            escalated_calls=Count("id", filter=Q(escalated=True)),
            cost=Sum(Cast("cost_usd", FloatField())),
            latency_calls=Count("latency_ms"),
            latency=Sum("latency_ms"),
            confidence_calls=Count("confidence"),
            confidence_total=Sum("confidence"),
            quality_calls=Count("final_score"),
            quality=Sum("final_score"),
            first=Min("created_at"),
        )
    )
    batch = []
    for row in grouped.iterator(chunk_size=5000):
        batch.append(
            UnitRollup(
                experiment_key=row["experiment_key_"],
                phase_id=row["phase_number"],
                arm_key=row["arm_key_"],
                unit_id=row["unit"][:255],
                n=row["calls"],
                errors=row["error_calls"],
                escalated_n=row["escalated_calls"],
                cost_usd_sum=row["cost"] or 0.0,
                latency_n=row["latency_calls"],
                latency_ms_sum=row["latency"] or 0.0,
                confidence_n=row["confidence_calls"],
                confidence_sum=row["confidence_total"] or 0.0,
                quality_n=row["quality_calls"],
                quality_sum=row["quality"] or 0.0,
                first_exposure_at=row["first"],
            )
        )
        if len(batch) >= 5000:
            UnitRollup.objects.bulk_create(batch)
            batch = []
    UnitRollup.objects.bulk_create(batch)


class Migration(migrations.Migration):
    dependencies = [("experiments", "0011_experiment_cuped")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
