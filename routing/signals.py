"""Signing out closes that session's staff sockets at once (spec: within 5 s)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver
from django.http import HttpRequest

from libraries.models import StaffProfile
from routing.events import librarian_group


@receiver(user_logged_out)
def close_sockets_on_sign_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    profile = StaffProfile.objects.filter(user=user).only("pk").first()
    layer = get_channel_layer()
    if profile is None or layer is None:
        return
    key = getattr(getattr(request, "session", None), "session_key", None)
    async_to_sync(layer.group_send)(librarian_group(profile.pk), {"type": "vr.close", "code": 4401, "session": key})
