from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from procrastinate.contrib.django import app as jobs_app
from procrastinate.contrib.django.admin import ProcrastinateJobAdmin
from procrastinate.contrib.django.models import ProcrastinateEvent, ProcrastinateJob

from core.admin_tools import LargeTableAdmin, ReadOnlyAdmin, indexed_values_filter
from core.models import AuditLog, DatabaseDashboard, FeatureFlag, SystemMetric
from core.monitoring import database_report
from core.services import feature_flag_save


@admin.register(AuditLog)
class AuditLogAdmin(LargeTableAdmin, ReadOnlyAdmin):
    """Newest first (``auditlog_created_idx``); filters: action (fixed choices,
    ``auditlog_action_idx``), target type (values and rows through
    ``auditlog_type_created_idx``), date. Search: exact actor email
    (``auditlog_actor_email_idx`` on ``UPPER(actor_email)``, what ``=``
    compiles to; kept after the user is deleted) or exact target id
    (``auditlog_target_id_idx``)."""

    list_display = (
        "created_at",
        "actor_email",
        "action",
        "target_type",
        "target_repr",
        "ip_address",
    )
    list_filter = (
        "action",
        indexed_values_filter("target_type"),
        ("created_at", admin.DateFieldListFilter),
    )
    # Exact matches only, each served by an index: never a scan of seven years.
    search_fields = ("=actor_email", "target_id__exact")
    search_help_text = "Exact actor email or target id."
    ordering = ("-created_at",)
    list_select_related = ()
    raw_id_fields = ("actor",)
    readonly_fields = (
        "created_at",
        "actor",
        "actor_email",
        "action",
        "target_type",
        "target_id",
        "target_repr",
        "changes",
        "ip_address",
        "user_agent",
    )

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff


@admin.register(FeatureFlag)
class FeatureFlagAdmin(admin.ModelAdmin):
    list_display = ("key", "enabled", "rollout_percent", "description", "updated_at")
    list_filter = ("enabled",)
    search_fields = ("key",)
    ordering = ("key",)
    raw_id_fields = ("allowed_users",)
    readonly_fields = ("created_by", "created_at", "updated_at")
    fields = (
        "key",
        "description",
        "enabled",
        "rollout_percent",
        "allowed_users",
        "created_by",
        "created_at",
        "updated_at",
    )

    def save_model(self, request, obj, form, change):
        # The allow-list is saved with the flag by the service (save_related
        # would otherwise write it a second time).
        feature_flag_save(
            flag=obj,
            actor=request.user,
            request=request,
            allowed_users=list(form.cleaned_data.get("allowed_users") or []),
            changed_fields=form.changed_data,
        )

    def save_related(self, request, form, formsets, change):
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


@admin.register(SystemMetric)
class SystemMetricAdmin(LargeTableAdmin, ReadOnlyAdmin):
    """Newest first (``systemmetric_time_idx``); filter and search: exact metric
    name (``systemmetric_metric_ts_idx``; the filter's values are read through
    it too, no DISTINCT scan)."""

    list_display = ("timestamp", "metric", "value", "tags")
    list_filter = (indexed_values_filter("metric"),)
    # metric = '…' (systemmetric_metric_ts_idx); "=metric" would be UPPER(metric).
    search_fields = ("metric__exact",)
    search_help_text = "Exact metric name."
    ordering = ("-timestamp",)

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff


@admin.register(DatabaseDashboard)
class DatabaseDashboardAdmin(ReadOnlyAdmin):
    """The staff database dashboard: its "changelist" is the report page."""

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "",
                self.admin_site.admin_view(self.changelist_view),
                name="{}_{}_changelist".format(*info),
            ),
        ]

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        report = database_report()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Database dashboard",
            "report": report,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/ops/dashboard.html", context)


# Procrastinate registers its own job admin (importing the module above does,
# if autodiscovery has not yet); this one replaces it.
if admin.site.is_registered(ProcrastinateJob):
    admin.site.unregister(ProcrastinateJob)


@admin.register(ProcrastinateJob)
class JobAdmin(LargeTableAdmin, ProcrastinateJobAdmin):
    """Procrastinate's read-only job admin (events inline; Cancel and Abort
    actions), fitted to a table that keeps every job: estimated counts,
    filters an index serves (status: fixed choices; queue:
    ``procrastinate_jobs_queue_name_idx_v1``), search by exact job id (the
    primary key). It adds the attempts column, and its retry only takes
    *failed* jobs: retrying a running job would run it twice, and the job of a
    dead worker is requeued by ``core.jobs_stalled_retry``.

    A failed job shows its failure as the last event, with its time and
    attempts; Procrastinate 3 keeps no exception text (that is in the worker's
    log). Mail jobs' arguments are sealed (``core.mail``): no link or address
    shows here."""

    list_display = [
        "pk",
        "short_task_name",
        "queue_name",
        "pretty_status",
        "attempts",
        "pretty_args",
        "summary",
    ]
    list_filter = ["status", indexed_values_filter("queue_name", title="queue")]
    search_fields = ("pk",)
    search_help_text = "Exact job id."
    actions = [
        "retry_failed",
        ProcrastinateJobAdmin.cancel,
        ProcrastinateJobAdmin.abort,
    ]

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def get_queryset(self, request):
        # The summary column shows the newest event; events of one
        # transaction share their time, so the id breaks the tie.
        events = ProcrastinateEvent.objects.order_by("-at", "-id")
        return admin.ModelAdmin.get_queryset(self, request).prefetch_related(
            Prefetch("procrastinateevent_set", queryset=events)
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip().lstrip("#")
        if not term:
            return queryset, False
        if not term.isdigit():
            # No job has such an id. Still a query (the paginator EXPLAINs it;
            # .none() has no SQL).
            return queryset.filter(pk__isnull=True), False
        return queryset.filter(pk=int(term)), False

    @admin.action(description="Retry failed jobs")
    def retry_failed(self, request, queryset):
        failed = list(
            queryset.filter(status="failed").values_list(
                "id", "priority", "queue_name", "lock"
            )
        )
        for job_id, priority, queue, lock in failed:
            jobs_app.job_manager.retry_job_by_id(
                job_id, timezone.now(), priority, queue, lock
            )
        if not failed:
            self.message_user(
                request,
                "Nothing retried: only failed jobs can be retried here.",
                messages.WARNING,
            )
            return
        self.message_user(
            request,
            f"{len(failed)} failed job{'s' if len(failed) != 1 else ''} queued "
            "again; a worker picks them up at its next poll.",
            messages.SUCCESS,
        )
