from django import forms


class UpgradeForm(forms.Form):
    plan = forms.ChoiceField(
        choices=[("PRO", "Pro"), ("ENTERPRISE", "Enterprise")],
        error_messages={"invalid_choice": "Choose the Pro or the Enterprise plan."},
    )
