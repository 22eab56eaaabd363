from django import forms

from accounts.models import User


class MagicLinkRequestForm(forms.Form):
    email = forms.EmailField(
        max_length=255,
        label="Email address",
        widget=forms.EmailInput(
            attrs={"autocomplete": "email", "placeholder": "you@example.com"}
        ),
    )


class ProfileForm(forms.ModelForm):
    image = forms.URLField(
        label="Image URL",
        max_length=2048,
        required=False,
        assume_scheme="https",
        help_text="A link to a picture (https://…).",
        widget=forms.URLInput(attrs={"placeholder": "https://"}),
    )

    class Meta:
        model = User
        fields = ("name", "first_name", "last_name", "image")


class DeleteAccountForm(forms.Form):
    confirm_email = forms.CharField(
        label="Type your email address to confirm",
        max_length=255,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def __init__(self, *args, user, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_confirm_email(self):
        value = self.cleaned_data["confirm_email"].strip()
        if value.lower() != self.user.email.lower():
            raise forms.ValidationError("Type your email address exactly to confirm.")
        return value
