"""Admin of API keys: create one (its token is shown once, in a message), list, revoke.

The hash of the secret is never displayed, and the token cannot be shown again: a lost
token means revoking the key and creating a new one.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html

from api.models import ApiKey, Scope
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
