"""Quality signals in the admin: listed and viewed, never added, changed or deleted."""

from __future__ import annotations

import pytest

from experiments.models import QualitySignal, RoutedCall

pytestmark = pytest.mark.django_db


def test_signals_are_listed_and_read_only(admin_client):
    """The changelist shows a judge error and a simulated verdict; add, change and delete
    are refused."""
    call = RoutedCall.objects.create(idempotency_key="admin-q", status="success")
    verdict = QualitySignal.objects.create(
        call=call, source="judge", value=0.5, simulated=True, judge_model="gpt-4.1-mini"
    )
    other = RoutedCall.objects.create(idempotency_key="admin-q2", status="success")
    QualitySignal.objects.create(call=other, source="judge", status="error", value=None)
    listing = admin_client.get("/admin/experiments/qualitysignal/")
    assert listing.status_code == 200
    assert "gpt-4.1-mini" in listing.content.decode()
    assert admin_client.get("/admin/experiments/qualitysignal/add/").status_code == 403
    detail = admin_client.get(f"/admin/experiments/qualitysignal/{verdict.pk}/change/")
    assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()
    delete = admin_client.post(
        f"/admin/experiments/qualitysignal/{verdict.pk}/delete/", {"post": "yes"}
    )
    assert delete.status_code == 403 and QualitySignal.objects.count() == 2
