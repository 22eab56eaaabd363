import factory

from core.models import AuditLog, FeatureFlag, SystemMetric


class FeatureFlagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FeatureFlag

    key = factory.Sequence(lambda n: f"flag-{n}")
    enabled = True
    rollout_percent = 0


class SystemMetricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SystemMetric

    metric = "db.response_time_ms"
    value = 1.0


class AuditLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditLog

    action = AuditLog.Action.UPDATED
