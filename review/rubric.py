"""The consortium's rubric: its criteria, and the default a consortium gets when it has none.

The default follows RUSA's *Guidelines for Behavioral Performance of Reference and Information
Service Providers* (American Library Association), the five areas reviewers of virtual reference
score: approachability, interest, listening and inquiry, searching, follow-up. The guidance below
paraphrases what the guidelines ask of a remote (chat) reference interview.
"""

from __future__ import annotations

from django.db import transaction

from consortium.models import Consortium
from review.models import Criterion, ReviewSettings

DEFAULT_LABELS = ["Not observed", "Needs work", "Meets the guideline", "Exemplary"]

RUSA_DEFAULT: tuple[tuple[str, str], ...] = (
    ("Approachability",
     "A prompt, friendly greeting that invites the patron to go on; the patron is acknowledged "
     "quickly and told who is answering. Tone and wording are welcoming, in the patron's language."),
    ("Interest",
     "The librarian keeps the patron in the conversation: stays with the question, tells the patron "
     "what they are doing while they search, and answers every line without long silences."),
    ("Listening and inquiry",
     "Open questions that draw out what the patron really needs, then closed ones to narrow it; the "
     "question is restated or confirmed before searching; no assumptions, no jargon."),
    ("Searching",
     "An effective search strategy, explained to the patron as it goes: suitable sources, links "
     "that work, the patron shown how to find it again, the answer's source named."),
    ("Follow-up",
     "Asks whether the question was answered; offers more help, a referral or a follow-up by email "
     "when it was not; invites the patron to come back; ends the chat clearly."),
)


def rubric(consortium: Consortium) -> list[Criterion]:
    """The criteria reviewers score now, in their order (the consortium's own, else the default)."""
    rubric_ensure(consortium)
    return list(Criterion.objects.filter(consortium=consortium, is_active=True).order_by("position", "pk"))


def rubric_ensure(consortium: Consortium) -> None:
    """Give a consortium without any criterion the RUSA default (once: a consortium that switched
    every criterion off keeps its rubric as it is)."""
    if Criterion.objects.filter(consortium=consortium).exists():
        return
    with transaction.atomic():
        # Two first visits at once: the lock on the consortium's row makes the second find the first's.
        Consortium.objects.select_for_update().filter(pk=consortium.pk).first()
        if Criterion.objects.filter(consortium=consortium).exists():
            return
        Criterion.objects.bulk_create(
            Criterion(consortium=consortium, position=i, name=name, guidance=guidance, scale=len(DEFAULT_LABELS),
                      labels=DEFAULT_LABELS)
            for i, (name, guidance) in enumerate(RUSA_DEFAULT))


def settings_of(consortium: Consortium) -> ReviewSettings:
    """The consortium's review settings (the defaults until a coordinator saves others)."""
    found = ReviewSettings.objects.filter(consortium=consortium).first()
    return found or ReviewSettings(consortium=consortium)
