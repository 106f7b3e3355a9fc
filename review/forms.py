"""Forms of the review pages: the consortium's settings and one criterion of its rubric."""

from __future__ import annotations

from typing import Any

from django import forms

from review.models import MAX_SCALE, Criterion, ReviewSettings


class SettingsForm(forms.ModelForm):
    class Meta:
        model = ReviewSettings
        fields = ("sample_kind", "sample_value", "share_with_librarian")
        labels = {"sample_kind": "Sample each library's month as", "sample_value": "Percentage or number",
                  "share_with_librarian": "Send scores and comments to the answering librarian too"}


class LabelsField(forms.CharField):
    """One label per line, lowest score first."""

    widget = forms.Textarea(attrs={"rows": 4})

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(value) if isinstance(value, list) else value

    def clean(self, value: Any) -> list[str]:
        text = super().clean(value) or ""
        return [line.strip() for line in text.splitlines() if line.strip()]


class CriterionForm(forms.ModelForm):
    labels = LabelsField(required=False, max_length=2000, help_text="one per line, lowest score first; or none")
    scale = forms.IntegerField(min_value=2, max_value=MAX_SCALE, initial=4,
                               help_text=f"the highest score, 2 to {MAX_SCALE}")

    class Meta:
        model = Criterion
        fields = ("position", "name", "guidance", "scale", "labels", "is_active")
        widgets = {"guidance": forms.Textarea(attrs={"rows": 3})}
        labels = {"is_active": "scored"}


CriterionFormSet = forms.modelformset_factory(Criterion, form=CriterionForm, extra=1, can_delete=False)
