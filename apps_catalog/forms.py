"""Forms validate input shape only; the services own the rules and the writes.

None of them exposes an owner, author or app field: those always come from the
signed-in user and the URL, so a POST carrying someone else's id changes nothing.
"""

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from apps_catalog.models import App, MonetizationModel, Post, Requirement
from apps_catalog.services import _clean_features, _normalise_domain


def form_errors_add(form: forms.Form, error: ValidationError) -> None:
    """Show a service's ValidationError on ``form``: on the field it names when
    the form has that field, otherwise at the top."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            target = field if field in form.fields else None
            if field == NON_FIELD_ERRORS:
                target = None
            form.add_error(target, errors)
    else:
        form.add_error(None, error)


class AppForm(forms.ModelForm):
    status = forms.ChoiceField(
        choices=[
            (App.Status.DRAFT, "Draft — only you can see it"),
            (App.Status.ACTIVE, "Active — listed in Explore"),
            (App.Status.ARCHIVED, "Archived — hidden, kept"),
        ],
        initial=App.Status.DRAFT,
    )

    class Meta:
        model = App
        fields = ["name", "description", "domain", "status"]
        widgets = {"description": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, creating: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if creating:
            self.fields["status"].choices = self.fields["status"].choices[:2]

    def clean_domain(self):
        # Before the model's validation, which only accepts lower-case hosts.
        return _normalise_domain(self.cleaned_data.get("domain"))


class RequirementForm(forms.ModelForm):
    class Meta:
        model = Requirement
        fields = ["description", "priority", "status"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}


class RequirementEditForm(RequirementForm):
    # The version the editor loaded; a newer one in the database means someone
    # else saved in between and this edit is refused.
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound and self.instance.pk:
            self.initial["version"] = self.instance.version


class RequirementStatusForm(forms.Form):
    status = forms.ChoiceField(choices=Requirement.Status.choices)
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


class RequirementFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("", "Any status"), *Requirement.Status.choices], required=False
    )
    priority = forms.ChoiceField(
        choices=[("", "Any priority"), *Requirement.Priority.choices], required=False
    )


class MonetizationForm(forms.ModelForm):
    features = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One feature per line.",
    )

    class Meta:
        model = MonetizationModel
        fields = ["type", "price", "subscription_interval", "features"]

    # Which types use which field. static/js/monetization.js reads these data-
    # attributes to show (and submit) only the fields of the chosen type; the
    # server applies the same rule in clean(), with or without JavaScript.
    FIELD_TYPES = {
        "price": MonetizationModel.PRICE_TYPES,
        "subscription_interval": MonetizationModel.INTERVAL_TYPES,
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound and self.instance.pk:
            self.initial["features"] = "\n".join(self.instance.features)
        self.fields["type"].widget.attrs["data-monetization-type"] = ""
        for name, types in self.FIELD_TYPES.items():
            self.fields[name].widget.attrs["data-monetization-types"] = " ".join(types)

    def clean(self):
        """Drop what the chosen type does not use: a price left in the form
        after switching to FREE (or an interval after leaving SUBSCRIPTION) is
        ignored, errors on it included, so the model saved is always the type
        the user chose and nothing else."""
        cleaned = super().clean()
        kind = cleaned.get("type")
        if kind is None:
            return cleaned
        unused = {"price": None, "subscription_interval": ""}
        for name, types in self.FIELD_TYPES.items():
            if kind not in types:
                cleaned[name] = unused[name]
                self._errors.pop(name, None)
        return cleaned

    def clean_features(self):
        features = _clean_features(self.cleaned_data.get("features") or "")
        if any(len(feature) > 255 for feature in features):
            raise ValidationError("Keep each feature under 255 characters.")
        return features


class PostForm(forms.ModelForm):
    class Meta:
        model = Post
        fields = ["title", "content", "published"]
        widgets = {"content": forms.Textarea(attrs={"rows": 6})}


class ExploreForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search")
    type = forms.ChoiceField(
        choices=[("", "Any pricing"), *MonetizationModel.Type.choices],
        required=False,
        label="Monetization",
    )
    sort = forms.ChoiceField(
        choices=[("newest", "Newest"), ("forks", "Most forked")],
        required=False,
        label="Sort",
    )
