from django.apps import AppConfig
from django.db.backends.signals import connection_created


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self):
        from ops.slow_queries import install_slow_query_logger

        connection_created.connect(
            install_slow_query_logger, dispatch_uid="ops.slow_query_logger"
        )
