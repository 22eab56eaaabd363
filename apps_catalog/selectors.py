"""Reads shared by the catalog's pages, the landing page and the admin."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Cast, JSONObject

from accounts.models import PUBLIC_NAME_FALLBACK, PUBLIC_NAME_FIELDS, User
from accounts.selectors import public_name_sql
from apps_catalog.models import (
    App,
    MonetizationModel,
    Post,
    Requirement,
    price_label,
    pricing_badge_label,
)
from core.pagination import PeekPage, peek_page

EXPLORE_SORTS = {
    "newest": ("-created_at", "-id"),
    "forks": ("-fork_count", "-created_at", "-id"),
}

EXPLORE_CARD_FIELDS = (
    "id",
    "name",
    "description",
    "status",
    "fork_count",
    "created_at",
    "owner__id",
    *(f"owner__{name}" for name in PUBLIC_NAME_FIELDS),
)
MY_APPS_FIELDS = (
    "id",
    "name",
    "domain",
    "status",
    "owner_id",
    "fork_count",
    "created_at",
    "updated_at",
    "forked_from__id",
    "forked_from__name",
    "forked_from__status",
    "forked_from__owner_id",
)

# How far the fork tree walks, and how many nodes a page shows at most: a
# popular app may have thousands of descendants.
FORK_TREE_MAX_DEPTH = 25
FORK_TREE_MAX_NODES = 200


def apps_visible_to(user) -> QuerySet[App]:
    """ACTIVE apps for everyone, plus the user's own DRAFT and ARCHIVED ones."""
    return App.objects.visible_to(user)


def apps_explore(
    *, query: str = "", monetization_type: str = "", sort: str = "newest"
) -> QuerySet[App]:
    """The public catalog: ACTIVE apps, searched and filtered.

    Search is a case-insensitive substring match on name or description
    (``UPPER(col) LIKE UPPER('%q%')``), served by the trigram GIN indexes.
    Sorting uses ``app_status_created_idx`` / ``app_status_forks_idx``.
    """
    apps = App.objects.filter(status=App.Status.ACTIVE)
    query = (query or "").strip()
    if query:
        apps = apps.filter(Q(name__icontains=query) | Q(description__icontains=query))
    if monetization_type:
        apps = apps.filter(
            Exists(
                MonetizationModel.objects.filter(
                    app=OuterRef("pk"), type=monetization_type
                )
            )
        )
    # Only what the cards render (the owner's public name included): the
    # owner's other columns (email above all) and the app's domain/timestamps
    # are never shown here.
    return (
        apps.select_related("owner")
        .only(*EXPLORE_CARD_FIELDS)
        .order_by(*EXPLORE_SORTS.get(sort, EXPLORE_SORTS["newest"]))
    )


EXPLORE_PER_PAGE = 24


def _pricing_rows(**extra) -> ArraySubquery:
    """The app's monetization models as an array of JSON objects (type, price,
    interval, and ``extra`` columns), oldest first: a list shows its pricing
    from the app's own row, without a prefetch query or model instances."""
    return ArraySubquery(
        MonetizationModel.objects.filter(app=OuterRef("pk"))
        .order_by("created_at", "id")
        .values(
            row=JSONObject(
                type="type",
                # As text: "10.00" stays "10.00" (a JSON number would be 10.0).
                price=Cast("price", CharField()),
                interval="subscription_interval",
                **extra,
            )
        )
    )


APP_PAGE_FIELDS = (
    "id",
    "name",
    "description",
    "owner_id",
    "status",
    "domain",
    "fork_count",
    "created_at",
    "owner__id",
    *(f"owner__{name}" for name in PUBLIC_NAME_FIELDS),
)


def app_for_page(*, app_id: str, viewer) -> App:
    """The app page's app, if ``viewer`` may see it (else ``App.DoesNotExist``),
    in one query: of the owner only their public name's columns, and its
    pricing as ``app.pricing``, a list of dicts (``label``, ``price_label``,
    ``features``) in the editor's order."""
    app = (
        apps_visible_to(viewer)
        .select_related("owner")
        .only(*APP_PAGE_FIELDS)
        .annotate(pricing=_pricing_rows(features="features"))
        .get(pk=app_id)
    )
    for item in app.pricing:
        item["label"] = MonetizationModel.Type(item["type"]).label
        item["price_label"] = price_label(item["price"], item["interval"])
    return app


def explore_page(
    *,
    query: str = "",
    monetization_type: str = "",
    sort: str = "newest",
    number=None,
    per_page: int = EXPLORE_PER_PAGE,
) -> PeekPage:
    """A page of :func:`apps_explore` as plain rows, in one query.

    Each row holds what a card shows: the app's columns, the owner's public
    name computed by the database (``public_name``) and the pricing badges'
    labels (``pricing``, from an ``ARRAY(SELECT jsonb_build_object(…))`` of
    the app's monetization rows): no model instances, no prefetch query, no
    count (a :class:`~core.pagination.PeekPage`).
    """
    apps = apps_explore(
        query=query, monetization_type=monetization_type, sort=sort
    ).values(
        "id",
        "name",
        "description",
        "fork_count",
        "created_at",
        owner_name=public_name_sql("owner__"),
        pricing=_pricing_rows(),
    )
    page = peek_page(apps, number, per_page=per_page)
    for row in page:
        row["pricing"] = [
            pricing_badge_label(item["type"], item["price"], item["interval"])
            for item in row["pricing"]
        ]
    return page


def apps_of_owner(*, owner) -> QuerySet[App]:
    """My apps: everything but soft-deleted, newest first (the columns the
    table renders; of the parent only what its link needs)."""
    return (
        App.objects.owned_by(owner)
        .select_related("forked_from")
        .only(*MY_APPS_FIELDS)
        .order_by("-created_at", "-id")
    )


TRASH_FIELDS = ("id", "name", "status", "owner_id", "deleted_at")


def apps_in_trash(*, owner) -> QuerySet[App]:
    """The owner's trash: apps they deleted within ``TRASH_RETENTION``, most
    recently deleted first (``app_owner_trash_idx``)."""
    return (
        App.objects.in_trash_of(owner)
        .only(*TRASH_FIELDS)
        .order_by("-deleted_at", "-id")
    )


# Past this page the trash (at most 30 days of deletions) is not paged further.
TRASH_MAX_PAGE = 500


def apps_in_trash_page(*, owner, number, size: int) -> PeekPage:
    """Page ``number`` of :func:`apps_in_trash` (anything not a page number
    reads as page 1, past the end as page 1 too): one query, no count
    (:func:`core.pagination.peek_page`)."""
    return peek_page(
        apps_in_trash(owner=owner),
        number,
        per_page=size,
        max_rows=TRASH_MAX_PAGE * size,
    )


def apps_recent_active(*, limit: int = 6) -> list[App]:
    return list(
        App.objects.filter(status=App.Status.ACTIVE)
        .select_related("owner")
        .only(*EXPLORE_CARD_FIELDS)
        .order_by("-created_at", "-id")[:limit]
    )


PRIORITY_RANK = Case(
    When(priority=Requirement.Priority.CRITICAL, then=Value(0)),
    When(priority=Requirement.Priority.HIGH, then=Value(1)),
    When(priority=Requirement.Priority.MEDIUM, then=Value(2)),
    default=Value(3),
    output_field=IntegerField(),
)


def requirements_of_app(
    *, app: App, status: str = "", priority: str = ""
) -> QuerySet[Requirement]:
    """The requirements board: most urgent first, then oldest first."""
    requirements = Requirement.objects.filter(app=app)
    if status:
        requirements = requirements.filter(status=status)
    if priority:
        requirements = requirements.filter(priority=priority)
    return requirements.order_by(PRIORITY_RANK, "created_at", "id")


def monetization_of_app(*, app: App) -> QuerySet[MonetizationModel]:
    return MonetizationModel.objects.filter(app=app).order_by("created_at", "id")


POST_FIELDS = (
    "id",
    "app_id",
    "author_id",
    "title",
    "content",
    "published",
    "created_at",
    "updated_at",
)


def posts_of_app(*, app: App, viewer) -> QuerySet[Post]:
    """Published posts; the app's owner (the only one who posts on it) also
    sees the unpublished ones."""
    # Of the author only what names them (User.public_name): never the email.
    posts = (
        Post.objects.filter(app=app)
        .select_related("author")
        .only(*POST_FIELDS, "author__id", *(f"author__{f}" for f in PUBLIC_NAME_FIELDS))
    )
    if not (viewer.is_authenticated and viewer.pk == app.owner_id):
        posts = posts.filter(published=True)
    return posts.order_by("-created_at", "-id")


# --- fork tree ----------------------------------------------------------------

_FORK_TREE_SQL = """
WITH RECURSIVE
ancestors (id, forked_from_id, depth) AS (
    SELECT id, forked_from_id, 0 FROM {table} WHERE id = %(id)s
    UNION ALL
    SELECT parent.id, parent.forked_from_id, ancestors.depth - 1
    FROM {table} AS parent JOIN ancestors ON parent.id = ancestors.forked_from_id
    WHERE ancestors.depth > -%(max_depth)s
),
descendants (id, forked_from_id, depth) AS (
    SELECT id, forked_from_id, 0 FROM {table} WHERE id = %(id)s
    UNION ALL
    SELECT child.id, child.forked_from_id, descendants.depth + 1
    FROM {table} AS child JOIN descendants ON child.forked_from_id = descendants.id
    WHERE descendants.depth < %(max_depth)s
),
tree AS (
    SELECT id, depth FROM ancestors
    UNION ALL
    -- No ORDER BY here: PostgreSQL evaluates the recursion level by level and
    -- stops once LIMIT rows are out, so a huge subtree costs only its top.
    (SELECT id, depth FROM descendants WHERE depth > 0 LIMIT %(limit)s)
)
-- Only what a node shows, and its owner's public name (User.public_name's
-- rule, as accounts.selectors.public_name_sql): no second query for owners.
SELECT app.id, app.name, app.status, app.owner_id, app.forked_from_id,
       app.created_at, tree.depth AS tree_depth,
       COALESCE(
           NULLIF(owner.name, ''),
           NULLIF(CONCAT_WS(' ', NULLIF(owner.first_name, ''),
                                 NULLIF(owner.last_name, '')), ''),
           %(fallback)s
       ) AS owner_name
FROM tree
JOIN {table} AS app ON app.id = tree.id
JOIN {users} AS owner ON owner.id = app.owner_id
ORDER BY tree.depth, app.created_at, app.id
"""


def app_fork_tree_nodes(
    *,
    app: App,
    max_depth: int = FORK_TREE_MAX_DEPTH,
    limit: int = FORK_TREE_MAX_NODES,
) -> list[App]:
    """Ancestors (negative ``tree_depth``), the app itself (0) and descendants
    (positive, the ``limit`` nearest ones) in ONE recursive query. The depth
    bound also stops a cycle someone made by hand in the admin."""
    quote = connection.ops.quote_name
    sql = _FORK_TREE_SQL.format(
        table=quote(App._meta.db_table), users=quote(User._meta.db_table)
    )
    params = {
        "id": app.pk,
        "max_depth": max_depth,
        "limit": limit,
        "fallback": PUBLIC_NAME_FALLBACK,
    }
    return list(App.objects.raw(sql, params))


@dataclass
class ForkTreeNode:
    app: App
    depth: int
    visible: bool
    children: list[ForkTreeNode] = field(default_factory=list)


@dataclass
class ForkTree:
    ancestors: list[ForkTreeNode]  # root first
    root: ForkTreeNode  # the app asked about, with its descendants nested
    size: int
    truncated: bool


def app_fork_tree(*, app: App, viewer) -> ForkTree:
    """The fork tree of ``app`` for ``viewer``: one query whatever its size
    (the recursive CTE, owners' names included: ``node.app.owner_name``).
    Nodes ``viewer`` may not see are kept so the shape stays true, but the page
    shows them without name or link."""
    nodes = app_fork_tree_nodes(app=app)
    user_id = viewer.pk if viewer is not None and viewer.is_authenticated else None
    wrapped: dict[str, ForkTreeNode] = {}
    ancestors: list[ForkTreeNode] = []
    root = None
    for node in nodes:
        visible = node.status == App.Status.ACTIVE or (
            node.owner_id == user_id and node.status != App.Status.DELETED
        )
        wrapped[node.pk] = item = ForkTreeNode(
            app=node, depth=node.tree_depth, visible=visible
        )
        if node.tree_depth < 0:
            ancestors.append(item)
        elif node.tree_depth == 0:
            root = item
        else:
            parent = wrapped.get(node.forked_from_id)
            if parent is not None:
                parent.children.append(item)
    if root is None:  # the app itself vanished between page load and query
        app.owner_name = app.owner.public_name
        root = ForkTreeNode(app=app, depth=0, visible=True)
    return ForkTree(
        ancestors=ancestors,
        root=root,
        size=len(nodes),
        truncated=sum(1 for node in nodes if node.tree_depth > 0)
        >= FORK_TREE_MAX_NODES,
    )


# --- the user's data archive ("Download my data", accounts.hooks) ---------------------


def user_export_apps(*, user) -> list[dict]:
    """Every app the user owns, in the trash too, with its requirements and
    monetization models (three queries). Of a parent app only its id: it may
    be someone else's."""
    apps = (
        App.objects.filter(owner=user)
        .order_by("created_at", "id")
        .prefetch_related(
            Prefetch(
                "requirements", queryset=Requirement.objects.order_by("created_at")
            ),
            Prefetch(
                "monetization_models",
                queryset=MonetizationModel.objects.order_by("created_at"),
            ),
        )
    )
    return [
        {
            "id": app.pk,
            "name": app.name,
            "description": app.description,
            "status": app.status,
            "domain": app.domain,
            "forked_from_id": app.forked_from_id,
            "fork_count": app.fork_count,
            "created_at": app.created_at,
            "updated_at": app.updated_at,
            "requirements": [
                {
                    "id": requirement.pk,
                    "description": requirement.description,
                    "priority": requirement.priority,
                    "status": requirement.status,
                    "version": requirement.version,
                    "created_at": requirement.created_at,
                    "updated_at": requirement.updated_at,
                }
                for requirement in app.requirements.all()
            ],
            "monetization_models": [
                {
                    "id": model.pk,
                    "type": model.type,
                    "price": model.price,
                    "subscription_interval": model.subscription_interval,
                    "features": model.features,
                    "created_at": model.created_at,
                    "updated_at": model.updated_at,
                }
                for model in app.monetization_models.all()
            ],
        }
        for app in apps
    ]


def user_export_posts(*, user) -> list[dict]:
    """Every post the user wrote, published or not."""
    return list(
        Post.objects.filter(author=user)
        .order_by("created_at", "id")
        .values(
            "id", "app_id", "title", "content", "published", "created_at", "updated_at"
        )
    )


# --- requirements board -------------------------------------------------------

# A board shows every card at once; past this many it shows the most urgent ones
# and says so, so that one huge app cannot make the page (and its query) unbounded.
REQUIREMENT_BOARD_LIMIT = 500
REQUIREMENT_BOARD_FIELDS = (
    "id",
    "app_id",
    "description",
    "priority",
    "status",
    "version",
)


@dataclass(frozen=True)
class BoardColumn:
    status: str
    label: str
    count: int
    cards: list[Requirement]


@dataclass(frozen=True)
class RequirementBoard:
    columns: list[BoardColumn]
    total: int
    shown: int
    limit: int

    @property
    def capped(self) -> bool:
        return self.shown < self.total

    def _count(self, status: str) -> int:
        return next(c.count for c in self.columns if c.status == status)

    @property
    def completed(self) -> int:
        return self._count(Requirement.Status.COMPLETED)

    @property
    def rejected(self) -> int:
        return self._count(Requirement.Status.REJECTED)

    @property
    def planned(self) -> int:
        """What progress is measured against: rejected requirements are not
        work left to do."""
        return self.total - self.rejected

    @property
    def percent(self) -> int:
        return round(100 * self.completed / self.planned) if self.planned else 0


def requirement_board(
    *,
    app: App,
    status: str = "",
    priority: str = "",
    limit: int | None = None,
) -> RequirementBoard:
    """The requirements of ``app`` (matching the filters) as one column per
    status, most urgent first in each: one query, two when over ``limit``."""
    limit = limit or REQUIREMENT_BOARD_LIMIT
    requirements = requirements_of_app(app=app, status=status, priority=priority)
    rows = list(requirements.only(*REQUIREMENT_BOARD_FIELDS)[: limit + 1])
    if len(rows) > limit:
        rows = rows[:limit]
        # Counts cover every matching requirement, not just the cards shown
        # (served by requirement_app_status_idx).
        counts = dict(
            requirements.order_by()
            .values("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
    else:
        counts = {}
        for row in rows:
            counts[row.status] = counts.get(row.status, 0) + 1
    by_status: dict[str, list[Requirement]] = {s: [] for s in Requirement.Status}
    for row in rows:
        row.app = app
        by_status.setdefault(row.status, []).append(row)
    columns = [
        BoardColumn(
            status=value,
            label=label,
            count=counts.get(value, 0),
            cards=by_status[value],
        )
        for value, label in Requirement.Status.choices
    ]
    return RequirementBoard(
        columns=columns, total=sum(counts.values()), shown=len(rows), limit=limit
    )
