"""Texting's records. A phone number is personal data (docs/privacy.md): kept here, shown masked."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from consortium.models import Consortium
from routing.models import Chat, Message, new_id


class SmsPatron(models.Model):
    """A phone that has texted a consortium: its opt-out, and the row every text from it locks first,
    so that two texts arriving together from one phone start one chat, not two."""

    consortium = models.ForeignKey(Consortium, on_delete=models.CASCADE, related_name="sms_patrons",
                                   verbose_name=_("consortium"))
    phone = models.CharField(max_length=32, verbose_name=_("phone"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    last_text_at = models.DateTimeField(verbose_name=_("last text at"))
    # STOP: no text goes to this phone from this consortium until START.
    opted_out_at = models.DateTimeField(null=True, blank=True, verbose_name=_("opted out at"))

    class Meta:
        verbose_name = _("sms patron")
        verbose_name_plural = _("sms patrons")
        constraints = [models.UniqueConstraint(fields=["consortium", "phone"], name="sms_patron_once")]

    def __str__(self) -> str:
        from texting.numbers import masked

        return masked(self.phone)


class SmsChat(models.Model):
    """A chat that came by text: whose phone, and the number it texted (replies go out from it)."""

    chat = models.OneToOneField(Chat, primary_key=True, on_delete=models.CASCADE, related_name="sms",
                                verbose_name=_("chat"))
    patron = models.ForeignKey(SmsPatron, on_delete=models.CASCADE, related_name="chats", verbose_name=_("patron"))
    number = models.CharField(max_length=16, verbose_name=_("number"))

    class Meta:
        verbose_name = _("sms chat")
        verbose_name_plural = _("sms chats")


class InboundText(models.Model):
    """A text as the provider delivered it, stored once by its MessageSid (a provider retry is not a
    second text)."""

    class Kind(models.TextChoices):
        QUESTION = "question", pgettext_lazy("a text a patron sent", "Started a chat")
        MESSAGE = "message", pgettext_lazy("a text a patron sent", "Continued the chat")  # continued the open chat
        # Added to the follow-up an unstaffed text became.
        FOLLOWUP = "followup", pgettext_lazy("a text a patron sent", "Added to a follow-up")
        STOP = "stop", pgettext_lazy("a text a patron sent", "STOP (opted out)")
        START = "start", pgettext_lazy("a text a patron sent", "START (opted in again)")
        HELP = "help", pgettext_lazy("a text a patron sent", "HELP")
        # The phone is blocked (routing.blocks): no chat, one neutral reply.
        BLOCKED = "blocked", pgettext_lazy("a text a patron sent", "From a blocked phone")

    message_sid = models.CharField(max_length=64, unique=True, verbose_name=_("message sid"))
    patron = models.ForeignKey(SmsPatron, on_delete=models.CASCADE, related_name="inbound", verbose_name=_("patron"))
    number = models.CharField(max_length=16, verbose_name=_("number"))
    body = models.TextField(blank=True, verbose_name=_("body"))
    media = models.JSONField(default=list, blank=True,
                             verbose_name=_("media"))  # [{"url": ..., "type": ...}] as the provider sent
    kind = models.CharField(max_length=10, choices=Kind.choices, blank=True, verbose_name=_("kind"))
    chat = models.ForeignKey(Chat, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                             verbose_name=_("chat"))
    received_at = models.DateTimeField(verbose_name=_("received at"))

    class Meta:
        verbose_name = _("inbound text")
        verbose_name_plural = _("inbound texts")


class OutboundText(models.Model):
    """A text to send. The row is written in the transaction that decides to send it; the worker sends
    it at most once (its status, under the row's lock) and records the provider's id."""

    class Kind(models.TextChoices):
        REPLY = "reply", pgettext_lazy("a text sent to a patron", "A librarian's reply")
        # Nobody could answer: the hours and the ask page.
        UNSTAFFED = "unstaffed", pgettext_lazy("a text sent to a patron", "Nobody could answer")
        HELP = "help", pgettext_lazy("a text sent to a patron", "Help")
        CLOSING = "closing", pgettext_lazy("a text sent to a patron", "The chat ended")
        # The answer to the follow-up a text became.
        FOLLOWUP = "followup", pgettext_lazy("a text sent to a patron", "A follow-up's answer")
        REFUSED = "refused", pgettext_lazy("a text sent to a patron", "Media refused")  # media we cannot take
        # The phone is blocked: chat is not available, the ask page's question form is.
        BLOCKED = "blocked", pgettext_lazy("a text sent to a patron", "To a blocked phone")

    class Status(models.TextChoices):
        QUEUED = "queued", pgettext_lazy("a sent text's status", "Queued")
        SENT = "sent", pgettext_lazy("a sent text's status", "Sent")
        # The provider said no, or every try failed: the console shows "not delivered".
        FAILED = "failed", pgettext_lazy("a sent text's status", "Not delivered")
        # The phone opted out: nothing sent.
        SUPPRESSED = "suppressed", pgettext_lazy("a sent text's status", "Not sent (opted out)")

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False, verbose_name=_("id"))
    consortium = models.ForeignKey(Consortium, on_delete=models.CASCADE, related_name="+", verbose_name=_("consortium"))
    patron = models.ForeignKey(SmsPatron, on_delete=models.CASCADE, related_name="outbound", verbose_name=_("patron"))
    chat = models.ForeignKey(Chat, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                             verbose_name=_("chat"))
    # One text per librarian message, by constraint: the idempotency key of "each text once".
    message = models.OneToOneField(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="text",
                                   verbose_name=_("message"))
    kind = models.CharField(max_length=10, choices=Kind.choices, verbose_name=_("kind"))
    from_number = models.CharField(max_length=16, verbose_name=_("from number"))
    body = models.TextField(verbose_name=_("body"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, verbose_name=_("status"))
    tries = models.PositiveSmallIntegerField(default=0, verbose_name=_("tries"))
    last_error = models.CharField(max_length=200, blank=True, verbose_name=_("last error"))
    provider_sid = models.CharField(max_length=64, blank=True, verbose_name=_("provider sid"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    sent_at = models.DateTimeField(null=True, blank=True, verbose_name=_("sent at"))

    class Meta:
        verbose_name = _("outbound text")
        verbose_name_plural = _("outbound texts")
        indexes = [models.Index(fields=["status", "created_at"]), models.Index(fields=["patron", "sent_at"]),
                   models.Index(fields=["consortium", "sent_at"])]
