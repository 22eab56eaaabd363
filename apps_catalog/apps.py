from django.apps import AppConfig


class AppsCatalogConfig(AppConfig):
    name = "apps_catalog"
    verbose_name = "App catalog"

    def ready(self):
        from accounts import hooks
        from apps_catalog import selectors
        from apps_catalog.services import app_fork_counts_release

        # The user's forks go with them: their parents' fork counts drop first.
        hooks.before_user_deletion_register(app_fork_counts_release)
        # The user's part of "Download my data".
        hooks.user_data_export_register("apps", selectors.user_export_apps)
        hooks.user_data_export_register("posts", selectors.user_export_posts)
