from django.apps import AppConfig
from django.db.backends.signals import connection_created


class CoreConfig(AppConfig):
    """The platform layer: imports no other project package (docs/architecture.md).

    The label stays ``ops``, the package's name before the layering split, so
    its tables (``ops_auditlog``…), migration history, content types,
    permissions and admin URLs (``/admin/ops/…``) are the ones production
    already has: moving the code needed no migration at all.
    """

    name = "core"
    label = "ops"
    verbose_name = "Operations"

    def ready(self):
        from core.slow_queries import install_slow_query_logger

        connection_created.connect(
            install_slow_query_logger, dispatch_uid="core.slow_query_logger"
        )
