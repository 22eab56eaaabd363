from django.urls import path

from apps_catalog import views

urlpatterns = [
    path("explore/", views.explore, name="explore"),
    path("apps/", views.my_apps, name="my_apps"),
    path("apps/new/", views.app_create, name="app_create"),
    path("apps/<id:app_id>/", views.app_detail, name="app_detail"),
    path("apps/<id:app_id>/edit/", views.app_edit, name="app_edit"),
    path("apps/<id:app_id>/archive/", views.app_archive, name="app_archive"),
    path("apps/<id:app_id>/restore/", views.app_restore, name="app_restore"),
    path("apps/<id:app_id>/delete/", views.app_delete, name="app_delete"),
    path("apps/<id:app_id>/fork/", views.app_fork, name="app_fork"),
    path(
        "apps/<id:app_id>/requirements/",
        views.requirement_board,
        name="requirement_board",
    ),
    path(
        "apps/<id:app_id>/requirements/<id:requirement_id>/edit/",
        views.requirement_edit,
        name="requirement_edit",
    ),
    path(
        "apps/<id:app_id>/requirements/<id:requirement_id>/status/",
        views.requirement_status,
        name="requirement_status",
    ),
    path(
        "apps/<id:app_id>/requirements/<id:requirement_id>/delete/",
        views.requirement_delete,
        name="requirement_delete",
    ),
    path(
        "apps/<id:app_id>/monetization/",
        views.monetization_editor,
        name="monetization_editor",
    ),
    path(
        "apps/<id:app_id>/monetization/<id:model_id>/edit/",
        views.monetization_edit,
        name="monetization_edit",
    ),
    path(
        "apps/<id:app_id>/monetization/<id:model_id>/delete/",
        views.monetization_delete,
        name="monetization_delete",
    ),
    path("apps/<id:app_id>/posts/", views.post_list, name="post_list"),
    path(
        "apps/<id:app_id>/posts/<id:post_id>/edit/",
        views.post_edit,
        name="post_edit",
    ),
    path(
        "apps/<id:app_id>/posts/<id:post_id>/delete/",
        views.post_delete,
        name="post_delete",
    ),
]
