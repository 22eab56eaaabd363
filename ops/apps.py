from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations on top of every app: ``manage.py seed`` and its orchestration.

    It has no models. Its label is ``operations`` because ``ops`` is the label
    the platform package (``core``) kept for its tables.
    """

    name = "ops"
    label = "operations"
    verbose_name = "Operations tools"
