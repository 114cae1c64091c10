"""Admin of API keys: create one (its token is shown once, in a message), list, revoke.

The hash of the secret is never displayed, and the token cannot be shown again: a lost
token means revoking the key and creating a new one.
"""

from __future__ import annotations

import datetime as dt

import django_rq
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html
from redis.exceptions import RedisError

from api import dead_letters
from api.models import ApiKey, CallRecordDeadLetter, Scope
from api.recording import RecordsBacklog, records_backlog
from api.services import api_key_create, api_key_revoke


class ApiKeyCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        initial=[Scope.READ, Scope.WRITE],
        widget=forms.CheckboxSelectMultiple,
        help_text="read: GET endpoints; write: execute, evaluate, chat completions, experiments.",
    )

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "rate_limit_per_minute"]


class ApiKeyChangeForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "rate_limit_per_minute"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "token_prefix",
        "scope_list",
        "rate_limit_per_minute",
        "created_at",
        "last_used_at",
        "state",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["token_prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke_selected"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = ApiKeyChangeForm if obj is not None else ApiKeyCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "scopes", "rate_limit_per_minute"]
        return [
            "name",
            "token_prefix",
            "scopes",
            "rate_limit_per_minute",
            *self.readonly_fields[1:],
        ]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    @admin.display(description="token")
    def token_prefix(self, obj: ApiKey) -> str:
        return f"rk_{obj.prefix}_…" if obj.prefix else "-"

    @admin.display(description="scopes")
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes)

    @admin.display(description="state", ordering="revoked_at")
    def state(self, obj: ApiKey) -> str:
        if obj.revoked_at:
            return format_html(
                '<span style="color:#ba2121">revoked {}</span>', obj.revoked_at.date()
            )
        return "active"

    def save_model(self, request, obj: ApiKey, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key, token = api_key_create(
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            rate_limit_per_minute=form.cleaned_data.get("rate_limit_per_minute"),
            user=request.user,
        )
        # The admin's own "added" message and redirect need the saved instance.
        obj.pk = key.pk
        obj.prefix = key.prefix
        obj._state.adding = False
        obj._state.db = key._state.db
        messages.warning(
            request,
            format_html(
                "API key {} created. Copy its token now, it will not be shown again: "
                "<code style='user-select:all'>{}</code>",
                key.name,
                token,
            ),
        )

    @admin.action(description="Revoke selected API keys")
    def revoke_selected(self, request, queryset) -> None:
        count = 0
        for key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(key=key)
            count += 1
        self.message_user(
            request, f"Revoked {count} API key(s) at {timezone.now():%Y-%m-%d %H:%M} UTC."
        )


@admin.register(CallRecordDeadLetter)
class CallRecordDeadLetterAdmin(admin.ModelAdmin):
    """The dead letters (call records the drain could not write): list, replay, delete."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        return [
            path(
                "",
                self.admin_site.admin_view(self.changelist_view),
                name="api_callrecorddeadletter_changelist",
            )
        ]

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        connection = django_rq.get_connection("default")
        if request.method == "POST":
            if not self.has_change_permission(request):
                raise PermissionDenied
            self._act(request, connection)
            return redirect(request.path)
        letters, error = [], ""
        backlog = RecordsBacklog(pending=0, oldest_age_s=None, dead_letters=0)
        try:
            letters = dead_letters.dead_letters_list(connection)
            backlog = records_backlog(connection)
        except RedisError as err:
            error = f"Redis is unreachable ({type(err).__name__}): the dead letters live there."
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Call record dead letters",
            "letters": [_row(letter) for letter in letters],
            "backlog": backlog,
            "error": error,
            "can_change": self.has_change_permission(request),
        }
        return TemplateResponse(request, "admin/api/dead_letters.html", context)

    def _act(self, request, connection) -> None:
        ids = request.POST.getlist("ids")
        action = request.POST.get("action")
        if not ids or action not in ("replay", "drop"):
            messages.warning(request, "Select dead letters, then Replay or Delete.")
            return
        try:
            if action == "replay":
                outcome = dead_letters.dead_letters_replay(connection, ids=ids)
                messages.success(request, f"{len(outcome.recorded)} dead letter(s) written.")
                for letter_id, reason in outcome.failed.items():
                    messages.error(request, f"{letter_id} still refused: {reason}")
            else:
                dropped = dead_letters.dead_letters_drop(connection, ids=ids)
                messages.success(request, f"{len(dropped)} dead letter(s) deleted.")
        except RedisError as err:
            messages.error(request, f"Redis is unreachable ({type(err).__name__}): retry.")


def _row(letter: dead_letters.DeadLetter) -> dict:
    failed_at = (
        dt.datetime.fromtimestamp(letter.failed_at, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if letter.failed_at
        else "-"
    )
    return {**letter.as_dict(), "failed_at_text": failed_at}
