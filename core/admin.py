from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.db.models import Prefetch
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from procrastinate.contrib.django.admin import ProcrastinateJobAdmin
from procrastinate.contrib.django.models import ProcrastinateEvent, ProcrastinateJob

from core.admin_tools import (
    IndexedSearchMixin,
    LargeTableAdmin,
    ReadOnlyAdmin,
    RelationsMixin,
    indexed_values_filter,
    labelled_link,
    reads,
    related_link,
)
from core.audit import NONE, change_rows, changes_summary, changes_trimmed
from core.models import AuditLog, DatabaseDashboard, FeatureFlag, SystemMetric
from core.monitoring import (
    TABS,
    backend_lookup,
    backend_refusal,
    dashboard_tab,
    dashboard_tagged,
    pid_parse,
    statistics_fresh,
)
from core.selectors import user_may_signal_backends
from core.services import (
    feature_flag_delete,
    feature_flag_save,
    jobs_cancel_by_staff,
    jobs_retry_failed_by_staff,
    query_cancel,
    query_terminate,
    statement_statistics_reset,
)


@admin.register(AuditLog)
class AuditLogAdmin(LargeTableAdmin, IndexedSearchMixin, ReadOnlyAdmin):
    """Newest first (``auditlog_created_idx``); filters: action (fixed choices,
    ``auditlog_action_idx``), target type (values and rows through
    ``auditlog_type_created_idx``), date. Search: any part of the target, its
    id or the actor's email (``auditlog_*_trgm_idx``, ``pg_trgm`` GIN on
    ``UPPER(col)``; the email stays when the actor's account is deleted). The
    actor and target columns link to their rows without a join (the row keeps
    the actor's id and email, the target's type and id)."""

    list_display = (
        "created_at",
        "actor_link",
        "action",
        "target_type",
        "target_link",
        "changes_summary",
        "ip_address",
    )
    list_filter = (
        "action",
        indexed_values_filter("target_type"),
        ("created_at", admin.DateFieldListFilter),
    )
    # Any part, each column served by its trigram index: never a scan of
    # seven years (a term under 3 letters matches the start, same indexes).
    search_fields = ("target_repr", "target_id", "actor_email")
    search_help_text = (
        "Any part of the target, the target's id or the actor's email (3+ letters)."
    )
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
        "changes_diff",
        "ip_address",
        "user_agent",
    )
    # Shown as a field / old / new table (changes_diff), not as raw JSON.
    exclude = ("changes",)

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    @admin.display(description="Actor", ordering="actor_email")
    @reads("actor", "actor_email")
    def actor_link(self, obj):
        # The email kept on the row, linked through the kept id: no join.
        text = obj.actor_email or self.get_empty_value_display()
        if obj.actor_id is None:
            return text
        return related_link(
            self.admin_site, AuditLog.actor.field.related_model, obj.actor_id, text
        )

    @admin.display(description="Target", ordering="target_repr")
    @reads("target_type", "target_id", "target_repr")
    def target_link(self, obj):
        text = obj.target_repr or obj.target_id or self.get_empty_value_display()
        return labelled_link(self.admin_site, obj.target_type, obj.target_id, text)

    def get_changelist_instance(self, request):
        # The page's diffs come in one more query, each value cut short by the
        # database: the rows themselves never load the changes JSON.
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)
        trimmed = changes_trimmed(ids=[row.pk for row in rows])
        for row in rows:
            row.changes_trimmed = trimmed.get(row.pk, {})
        return changelist

    @admin.display(description="Changes")
    @reads("id")
    def changes_summary(self, obj):
        return changes_summary(getattr(obj, "changes_trimmed", {}))

    @admin.display(description="Changes")
    def changes_diff(self, obj):
        rows = change_rows(obj.changes)
        if not rows:
            return self.get_empty_value_display()
        # Long values wrap inside their cell instead of widening the page.
        cell = '<td style="white-space: pre-wrap; overflow-wrap: anywhere">{}</td>'
        body = format_html_join(
            "",
            '<tr><th scope="row">{}</th>' + cell + cell + "</tr>",
            ((field, NONE if old is None else old, new) for field, old, new in rows),
        )
        return format_html(
            '<table class="audit-diff"><thead><tr><th scope="col">Field</th>'
            '<th scope="col">Old value</th><th scope="col">New value</th></tr>'
            "</thead><tbody>{}</tbody></table>",
            body,
        )


@admin.register(FeatureFlag)
class FeatureFlagAdmin(RelationsMixin, admin.ModelAdmin):
    list_display = ("key", "enabled", "rollout_percent", "description", "updated_at")
    list_filter = ("enabled",)
    # A handful of rows: a plain scan, no index needed.
    search_fields = ("key", "description")
    search_help_text = "Any part of the key or description."
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
        )

    def save_related(self, request, form, formsets, change):
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request, obj):
        feature_flag_delete(flag=obj, actor=request.user, request=request)

    def delete_queryset(self, request, queryset):
        for flag in queryset:
            feature_flag_delete(flag=flag, actor=request.user, request=request)


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
    """The staff database dashboard: its "changelist" is the report, in tabs
    (``?tab=overview|queries|tables|replication``, plain links, no script).
    ADMINs also get confirmation pages that cancel or terminate a running
    query and reset pg_stat_statements (POST, audit-logged by the services);
    other staff see the same lists without those buttons."""

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        view = self.admin_site.admin_view
        return [
            path(
                "",
                view(self.changelist_view),
                name="{}_{}_changelist".format(*info),
            ),
            path(
                "queries/<str:pid>/cancel/",
                view(self.query_cancel_view),
                name="{}_{}_query_cancel".format(*info),
            ),
            path(
                "queries/<str:pid>/terminate/",
                view(self.query_terminate_view),
                name="{}_{}_query_terminate".format(*info),
            ),
            path(
                "statements/reset/",
                view(self.statements_reset_view),
                name="{}_{}_statements_reset".format(*info),
            ),
        ]

    def _context(self, request, **extra):
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "may_signal": user_may_signal_backends(request.user),
            **extra,
        }

    def _tab_url(self, tab: str) -> str:
        info = self.opts.app_label, self.opts.model_name
        return reverse("admin:{}_{}_changelist".format(*info)) + f"?tab={tab}"

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        data = dashboard_tab(request.GET.get("tab", ""))
        title = dict(TABS)[data["tab"]]
        context = self._context(
            request,
            title=f"Database dashboard: {title}",
            tabs=TABS,
            tab_title=title,
            **data,
            **(extra_context or {}),
        )
        return TemplateResponse(request, "admin/ops/dashboard.html", context)

    def _signal_view(self, request, pid, *, verb: str, service, question: str):
        if not self.has_view_permission(request):
            raise PermissionDenied
        if not user_may_signal_backends(request.user):
            raise PermissionDenied
        back = self._tab_url("queries")
        if request.method == "POST":
            try:
                changes = service(pid=pid, actor=request.user, request=request)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
                return redirect(back)
            messages.success(
                request,
                f"{verb} pid {changes['pid']} (audit-logged). "
                "The list below is read again now.",
            )
            return redirect(back)
        number = pid_parse(pid)
        if number is None:
            messages.error(request, f"“{str(pid)[:40]}” is not a process id.")
            return redirect(back)
        with dashboard_tagged(), connection.cursor() as cursor:
            statistics_fresh(cursor)
            backend = backend_lookup(cursor, number)
        refusal = backend_refusal(backend, number)
        if refusal:
            messages.error(request, refusal)
            return redirect(back)
        context = self._context(
            request,
            title=question.format(pid=number),
            backend=backend,
            verb=verb,
            back_url=back,
        )
        return TemplateResponse(request, "admin/ops/query_confirm.html", context)

    def query_cancel_view(self, request, pid):
        return self._signal_view(
            request,
            pid,
            verb="Cancel request sent to",
            service=query_cancel,
            question="Cancel the query of pid {pid}?",
        )

    def query_terminate_view(self, request, pid):
        return self._signal_view(
            request,
            pid,
            verb="Terminated the connection of",
            service=query_terminate,
            question="Terminate the connection of pid {pid}?",
        )

    def statements_reset_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        if not user_may_signal_backends(request.user):
            raise PermissionDenied
        back = self._tab_url("queries")
        if request.method == "POST":
            try:
                discarded = statement_statistics_reset(
                    actor=request.user, request=request
                )
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
                return redirect(back)
            messages.success(
                request,
                f"Statement statistics reset: {discarded} statement"
                f"{'' if discarded == 1 else 's'} discarded (audit-logged).",
            )
            return redirect(back)
        context = self._context(
            request, title="Reset statement statistics?", back_url=back
        )
        return TemplateResponse(request, "admin/ops/statements_reset.html", context)


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
    # Procrastinate's own actions write without an audit row: these go through
    # core.services (one audit row per job changed).
    actions = ["retry_failed", "cancel_queued", "abort_jobs"]

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
        retried = jobs_retry_failed_by_staff(
            job_ids=queryset.values_list("pk", flat=True),
            actor=request.user,
            request=request,
        )
        if not retried:
            self.message_user(
                request,
                "Nothing retried: only failed jobs can be retried here.",
                messages.WARNING,
            )
            return
        self.message_user(
            request,
            f"{retried} failed job{'s' if retried != 1 else ''} queued "
            "again; a worker picks them up at its next poll.",
            messages.SUCCESS,
        )

    @admin.action(description="Cancel jobs (only queued ones)")
    def cancel_queued(self, request, queryset):
        self._cancel(request, queryset, abort=False)

    @admin.action(description="Abort jobs (queued and running ones)")
    def abort_jobs(self, request, queryset):
        self._cancel(request, queryset, abort=True)

    def _cancel(self, request, queryset, *, abort: bool) -> None:
        changed = jobs_cancel_by_staff(
            job_ids=queryset.values_list("pk", flat=True),
            actor=request.user,
            abort=abort,
            request=request,
        )
        what = "queued or running" if abort else "queued"
        if not changed:
            self.message_user(
                request, f"Nothing changed: no {what} job selected.", messages.WARNING
            )
            return
        verb = "asked to stop" if abort else "cancelled"
        self.message_user(
            request,
            f"{changed} job{'s' if changed != 1 else ''} {verb}.",
            messages.SUCCESS,
        )
