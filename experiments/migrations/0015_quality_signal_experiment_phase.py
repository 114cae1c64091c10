"""Quality signals carry their call's experiment and phase, indexed: an experiment's or a
phase's signals are then one index range. Signals recorded before are filled from their
calls (one UPDATE in the database) before the indexes are built."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def backfill(apps, schema_editor):
    QualitySignal = apps.get_model("experiments", "QualitySignal")
    RoutedCall = apps.get_model("experiments", "RoutedCall")
    call = RoutedCall.objects.filter(pk=OuterRef("call_id"))
    QualitySignal.objects.update(
        experiment_id=Subquery(call.values("experiment_id")[:1]),
        phase_id=Subquery(call.values("phase_id")[:1]),
    )


class Migration(migrations.Migration):

    dependencies = [
        ("experiments", "0014_alert_silence"),
    ]

    operations = [
        migrations.AddField(
            model_name="qualitysignal",
            name="experiment",
            field=models.ForeignKey(blank=True, db_index=False, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="quality_signals", to="experiments.experiment"),
        ),
        migrations.AddField(
            model_name="qualitysignal",
            name="phase",
            field=models.ForeignKey(blank=True, db_index=False, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="quality_signals", to="experiments.phase"),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="qualitysignal",
            index=models.Index(fields=["experiment", "status"], name="quality_experiment"),
        ),
        migrations.AddIndex(
            model_name="qualitysignal",
            index=models.Index(fields=["phase", "status"], name="quality_phase"),
        ),
    ]
