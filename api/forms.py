import datetime as dt

from django import forms
from django.utils import timezone

EXPIRY_CHOICES = [
    ("", "Never"),
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("365", "In a year"),
]


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="Where the key is used, e.g. “nightly export script”.",
    )
    scopes = forms.MultipleChoiceField(
        choices=[("read", "Read"), ("write", "Write")],
        initial=["read"],
        widget=forms.CheckboxSelectMultiple,
        help_text="Read runs searches and lists; write also changes saved "
        "searches, apps and requirements.",
    )
    expires_in = forms.ChoiceField(
        choices=EXPIRY_CHOICES, required=False, label="Expires"
    )

    def expires_at(self) -> dt.datetime | None:
        days = self.cleaned_data.get("expires_in")
        return timezone.now() + dt.timedelta(days=int(days)) if days else None
