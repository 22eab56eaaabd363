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
    """The typed address is checked by ``services.user_delete``."""

    confirm_email = forms.CharField(
        label="Type your email address to confirm",
        max_length=255,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
