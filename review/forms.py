"""Forms of the review pages: the consortium's settings and one criterion of its rubric."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from review.models import MAX_SCALE, Criterion, ReviewSettings


class SettingsForm(forms.ModelForm):
    class Meta:
        model = ReviewSettings
        fields = ("sample_kind", "sample_value", "share_with_librarian")
        # Lazy: the form is built in the coordinator's language (the model's own words are the admin's).
        labels = {"sample_kind": _("Sample each library's month as"), "sample_value": _("Percentage or number"),
                  "share_with_librarian": _("Send scores and comments to the answering librarian too")}
        help_texts = {
            "sample_value": _("per library and month: a percentage (0-100) or a number of chats (0: none)"),
            "share_with_librarian": _("the answering librarian also sees the scores and comments of their chats")}


class LabelsField(forms.CharField):
    """One label per line, lowest score first."""

    widget = forms.Textarea(attrs={"rows": 4})

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(value) if isinstance(value, list) else value

    def clean(self, value: Any) -> list[str]:
        text = super().clean(value) or ""
        return [line.strip() for line in text.splitlines() if line.strip()]


class CriterionForm(forms.ModelForm):
    labels = LabelsField(required=False, max_length=2000, label=_("Labels"),
                         help_text=_("one per line, lowest score first; or none"))
    scale = forms.IntegerField(min_value=2, max_value=MAX_SCALE, initial=4, label=_("Scale"),
                               help_text=format_lazy(_("the highest score, 2 to {most}"), most=MAX_SCALE))

    class Meta:
        model = Criterion
        fields = ("position", "name", "guidance", "scale", "labels", "is_active")
        widgets = {"guidance": forms.Textarea(attrs={"rows": 3})}
        labels = {"position": _("Position"), "name": _("Name"), "guidance": _("Guidance"), "is_active": _("scored")}
        help_texts = {"guidance": _("what the reviewer looks for")}


CriterionFormSet = forms.modelformset_factory(Criterion, form=CriterionForm, extra=1, can_delete=False)
