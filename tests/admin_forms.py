"""POST data for an admin change page, as a browser sends it when nothing was
touched: tests then change only the fields they mean to."""

from django.forms import MultiWidget


def _form_data(form) -> dict:
    data = {}
    for name, field in form.fields.items():
        key = form.add_prefix(name)
        value = form[name].value()  # already through field.prepare_value
        if value is None or value is False or value == "":
            continue  # an empty field, an unchecked box
        if value is True:
            data[key] = "on"
        elif isinstance(field.widget, MultiWidget):
            for i, part in enumerate(field.widget.decompress(value)):
                data[f"{key}_{i}"] = "" if part is None else str(part)
        elif isinstance(value, list | tuple):
            data[key] = [str(v) for v in value]
        else:
            data[key] = str(value)
    return data


def change_form_data(client, url: str) -> dict:
    """The change page's form and inline formsets with their current values."""
    context = client.get(url).context
    data = _form_data(context["adminform"].form)
    for inline in context.get("inline_admin_formsets", []):
        formset = inline.formset
        forms = formset.initial_forms
        data[f"{formset.prefix}-TOTAL_FORMS"] = str(len(forms))
        data[f"{formset.prefix}-INITIAL_FORMS"] = str(len(forms))
        for form in forms:
            data.update(_form_data(form))
    return data
