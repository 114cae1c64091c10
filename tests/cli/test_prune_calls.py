"""`routing prune-calls`: data retention by age, with --dry-run."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from experiments.models import RoutedCall
from tests.metrics_factories import make_calls

pytestmark = pytest.mark.django_db


def _age(calls, days: int) -> None:
    RoutedCall.objects.filter(pk__in=[c.pk for c in calls]).update(
        created_at=timezone.now() - timedelta(days=days)
    )


def test_dry_run_counts_and_deletes_nothing_then_prune_deletes_only_old_calls():
    old = make_calls([{}] * 3, rebuild=False)
    _age(old, 40)
    make_calls([{}] * 2, rebuild=False)
    out = StringIO()
    call_command("routing", "prune-calls", "--older-than", "30", "--dry-run", stdout=out)
    assert "3 finished calls" in out.getvalue()
    assert RoutedCall.objects.count() == 5
    call_command("routing", "prune-calls", "--older-than", "30", stdout=StringIO())
    assert RoutedCall.objects.count() == 2


def test_queued_calls_and_paired_links_survive_a_prune():
    """A queued call is never pruned; a kept call paired with a pruned one is unlinked."""
    old_done, old_queued = make_calls([{}, {"status": "queued"}], rebuild=False)
    _age([old_done, old_queued], 40)
    (young,) = make_calls([{}], rebuild=False)
    RoutedCall.objects.filter(pk=young.pk).update(paired_call=old_done)
    call_command("routing", "prune-calls", "--older-than", "30", stdout=StringIO())
    assert set(RoutedCall.objects.values_list("pk", flat=True)) == {old_queued.pk, young.pk}
    assert RoutedCall.objects.get(pk=young.pk).paired_call_id is None


def test_too_young_a_cutoff_is_a_command_error():
    with pytest.raises(CommandError, match="at least 1"):
        call_command("routing", "prune-calls", "--older-than", "0")
