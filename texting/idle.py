"""A texted question nobody took within `sms_idle` (docs/sms.md): the chat ends and the question
becomes a follow-up, with one text saying a librarian will text back.

The router ends an *active* SMS chat after `sms_idle` (routing.services.route). A *waiting* one has no
socket whose loss would abandon it, and its patron may have put the phone away: rather than wait for
ever, it ends after `sms_idle` without a text, like an active one, and since nobody answered, the
question goes where unanswered texts go, to a follow-up for the home library (or the consortium).
Celery beat runs this every minute."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction

from consortium.models import Consortium
from routing.models import Channel, Chat, ChatState
from routing.services.common import chat_end_locked, chat_lock
from routing.services.followups import followup_create


def queued_sms_chats_expire(now: datetime) -> int:
    done = 0
    for consortium in Consortium.objects.filter(is_active=True):
        idle_since = now - timedelta(seconds=consortium.sms_idle)
        due = (Chat.objects.filter(consortium=consortium, channel=Channel.SMS, state=ChatState.QUEUED,
                                   last_activity_at__lte=idle_since).values_list("pk", flat=True)[:200])
        for chat_id in due:
            with transaction.atomic():
                chat = chat_lock(chat_id, skip_locked=True)
                if chat is None or chat.state != ChatState.QUEUED or chat.last_activity_at > idle_since:
                    continue
                chat_end_locked(chat, now, by="system", reason="unanswered")
                followup_create(consortium=consortium, library=chat.home_library, chat=chat,
                                question=chat.question, email="", name=chat.patron_name, source="sms", now=now,
                                mail_patron=False)
                done += 1
    return done
