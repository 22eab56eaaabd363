from django import forms
from django.core.exceptions import ValidationError

from core.widgets import Select
from searches.models import MatchType
from searches.providers import LANGUAGES, LOCATIONS
from searches.services import keywords_parse, search_options_clean


class SearchForm(forms.Form):
    keywords = forms.CharField(
        widget=forms.Textarea(
            attrs={"rows": 5, "placeholder": "keyword research tool, seo audit, …"}
        ),
        help_text="Up to 200 keywords, separated by commas or new lines.",
        # Long pastes are allowed here; keywords_parse gives the readable limits.
        max_length=40_000,
        strip=False,
    )
    # core.widgets.Select: Django's HTML without a template include per option
    # (the three selects were a tenth of this page's time).
    location = forms.ChoiceField(
        choices=[(code, name) for code, (name, _) in LOCATIONS.items()],
        initial="US",
        widget=Select,
    )
    language = forms.ChoiceField(
        choices=list(LANGUAGES.items()), initial="en", widget=Select
    )
    match_type = forms.ChoiceField(
        choices=MatchType.choices, initial=MatchType.BROAD, widget=Select
    )

    def clean_keywords(self):
        return keywords_parse(self.cleaned_data["keywords"])

    def clean(self):
        data = super().clean()
        if {"location", "language", "match_type"} <= data.keys():
            try:
                search_options_clean(
                    location=data["location"],
                    language=data["language"],
                    match_type=data["match_type"],
                )
            except ValidationError as exc:
                raise ValidationError(exc.messages) from exc
        return data


class SavedSearchNameForm(forms.Form):
    name = forms.CharField(max_length=120)

    def clean_name(self):
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise ValidationError("Give the search a name.")
        return name
