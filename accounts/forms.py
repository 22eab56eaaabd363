import re

from django import forms

from accounts.models import User, validate_email_shape


class MagicLinkRequestForm(forms.Form):
    email = forms.EmailField(
        max_length=255,
        label="Email address",
        # Redeeming the link creates the account: the address must fit it.
        validators=[validate_email_shape],
        widget=forms.EmailInput(
            attrs={"autocomplete": "email", "placeholder": "you@example.com"}
        ),
    )


# Bounded runs (an address's local part is at most 64 characters, a domain
# label 63): unbounded ones made the search quadratic, 40 s for a 100,000-
# character name.
_EMAIL_INSIDE = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s.]{1,63}")


def validate_not_an_email(value: str) -> None:
    """A display name is shown to everyone: an address typed there by mistake
    would be public."""
    if _EMAIL_INSIDE.search(value):
        raise forms.ValidationError(
            "Use a name, not an email address: your display name is public.",
            code="email_as_name",
        )


DISPLAY_NAME_HELP = (
    "Shown to everyone with your apps and posts. Your email address never is."
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
        labels = {"name": "Display name"}
        help_texts = {"name": DISPLAY_NAME_HELP}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Each of them can be the public name (User.public_name).
        for field in ("name", "first_name", "last_name"):
            self.fields[field].validators.append(validate_not_an_email)


class DisplayNameForm(forms.Form):
    """The one question after a first sign-in: "What should we call you?"."""

    name = forms.CharField(
        label="Display name",
        max_length=255,
        help_text=DISPLAY_NAME_HELP,
        validators=[validate_not_an_email],
        error_messages={"required": "Type a name, or skip this step."},
        widget=forms.TextInput(attrs={"autocomplete": "name", "autofocus": True}),
    )


class DeleteAccountForm(forms.Form):
    """The typed address is checked by ``services.user_delete``."""

    confirm_email = forms.CharField(
        label="Type your email address to confirm",
        max_length=255,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
