"""The knowledge base (issue 17): answers kept beyond the chat that prompted them.

An answer belongs to its consortium and is scoped to the whole consortium (`library` empty) or to
one member library (its patrons' answers: a card, a fee, a branch). Only published answers are
public; drafts are for staff, retired answers for nobody but their editors. The full-text index
is not a Django field: each engine keeps its own beside the table (knowledge/search.py and the
migration `0002_answer_search_index`).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from consortium.models import Consortium
from libraries.models import Library, StaffProfile


class AnswerState(models.TextChoices):
    DRAFT = "draft", pgettext_lazy("an answer's state", "Draft")
    PUBLISHED = "published", pgettext_lazy("an answer's state", "Published")
    RETIRED = "retired", pgettext_lazy("an answer's state", "Retired")


class AnswerLanguage(models.TextChoices):
    EN = "en", "English"
    ES = "es", "Español"


class Answer(models.Model):
    consortium = models.ForeignKey(Consortium, on_delete=models.CASCADE, related_name="answers",
                                   verbose_name=_("consortium"))
    library = models.ForeignKey(Library, null=True, blank=True, on_delete=models.CASCADE, related_name="answers",
                                help_text=_("empty: the whole consortium's answer"), verbose_name=_("library"))
    question = models.CharField(max_length=300, verbose_name=_("question"))
    body = models.TextField(help_text=_("Markdown, rendered as policy pages are (knowledge.markdown)"),
                            verbose_name=_("body"))
    language = models.CharField(max_length=2, choices=AnswerLanguage.choices, default=AnswerLanguage.EN,
                                verbose_name=_("language"))
    keywords = models.CharField(max_length=500, blank=True, help_text=_("comma-separated: words patrons use"),
                                verbose_name=_("keywords"))
    owner = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="answers",
                              verbose_name=_("owner"))
    review_on = models.DateField(help_text=_("the owner checks the answer again by this date"),
                                 verbose_name=_("review on"))
    state = models.CharField(max_length=10, choices=AnswerState.choices, default=AnswerState.DRAFT,
                             verbose_name=_("state"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    updated_at = models.DateTimeField(verbose_name=_("updated at"))
    published_at = models.DateTimeField(null=True, blank=True, verbose_name=_("published at"))
    # The day the owner was last told it is past its review date (the daily job tells them once).
    review_flagged_on = models.DateField(null=True, blank=True, verbose_name=_("review flagged on"))

    class Meta:
        verbose_name = _("answer")
        verbose_name_plural = _("answers")
        ordering = ["question", "pk"]
        indexes = [models.Index(fields=["consortium", "state", "library"], name="answer_scope")]

    def __str__(self) -> str:
        return self.question

    @property
    def scope_name(self) -> str:
        return self.library.name if self.library_id and self.library else self.consortium.name
