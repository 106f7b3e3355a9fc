"""Signing out closes that session's staff sockets at once (spec: within 5 s); so does switching off
a librarian (the account or the staff profile), for every socket of theirs, on every process."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_save
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


def _close_staff_sockets(profile_id: int) -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(librarian_group(profile_id), {
            "type": "vr.close", "code": 4403, "session": None, "detail": "your staff account was switched off"})


@receiver(post_save, sender=StaffProfile)
def close_sockets_of_deactivated_staff(sender: Any, instance: StaffProfile, **kwargs: Any) -> None:
    """A switched-off staff profile loses its sockets (the staff socket re-checks on accept and
    transfer too, in case the channel layer drops this)."""
    if not instance.is_active:
        transaction.on_commit(lambda: _close_staff_sockets(instance.pk))


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def close_sockets_of_deactivated_user(sender: Any, instance: Any, **kwargs: Any) -> None:
    if instance.is_active:
        return
    profile_id = StaffProfile.objects.filter(user_id=instance.pk).values_list("pk", flat=True).first()
    if profile_id is not None:
        transaction.on_commit(lambda: _close_staff_sockets(profile_id))
