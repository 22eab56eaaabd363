from django.apps import AppConfig


class SearchesConfig(AppConfig):
    name = "searches"
    verbose_name = "Keyword research"

    def ready(self):
        from accounts import hooks
        from searches import selectors, services

        # History and API usage outlive the account as anonymous statistics.
        hooks.before_user_deletion_register(services.user_activity_anonymise)
        # The user's part of "Download my data".
        hooks.user_data_export_register(
            "saved_searches", selectors.user_export_saved_searches
        )
        hooks.user_data_export_register(
            "search_history", selectors.user_export_search_history
        )
        hooks.user_data_export_register("api_usage", selectors.user_export_api_usage)
