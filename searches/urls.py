from django.urls import include, path

from searches import views

# Sub-pages of /search/ live under the "searches" namespace; the search page
# keeps its global name "search" (the navigation uses it).
search_patterns = (
    [
        path("export.csv", views.search_export, name="export"),
        path("save/", views.search_save, name="save"),
        path("saved/", views.saved_list, name="saved"),
        path("saved/<id:pk>/", views.saved_detail, name="saved_detail"),
        path("saved/<id:pk>/export.csv", views.saved_export, name="saved_export"),
        path("saved/<id:pk>/rename/", views.saved_rename, name="saved_rename"),
        path("saved/<id:pk>/delete/", views.saved_delete, name="saved_delete"),
        path("history/", views.history, name="history"),
        path("history/<id:pk>/", views.history_detail, name="history_detail"),
    ],
    "searches",
)

urlpatterns = [
    path("search/", views.search, name="search"),
    path("search/", include(search_patterns)),
    path("api/keywords/", views.api_keywords, name="api_keywords"),
]
