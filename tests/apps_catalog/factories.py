from decimal import Decimal

import factory

from apps_catalog.models import App, MonetizationModel, Post, Requirement
from tests.accounts.factories import UserFactory


class AppFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = App

    name = factory.Sequence(lambda n: f"App {n}")
    description = factory.Faker("sentence")
    owner = factory.SubFactory(UserFactory)
    status = App.Status.ACTIVE


class RequirementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Requirement

    app = factory.SubFactory(AppFactory)
    description = factory.Sequence(lambda n: f"Requirement {n}")
    priority = Requirement.Priority.MEDIUM
    status = Requirement.Status.PENDING


class MonetizationModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MonetizationModel

    app = factory.SubFactory(AppFactory)
    type = MonetizationModel.Type.FREE
    features = factory.LazyFunction(lambda: ["Core features"])

    class Params:
        subscription = factory.Trait(
            type=MonetizationModel.Type.SUBSCRIPTION,
            price=Decimal("9.99"),
            subscription_interval=MonetizationModel.Interval.MONTHLY,
        )
        one_time = factory.Trait(
            type=MonetizationModel.Type.ONE_TIME, price=Decimal("29.00")
        )


class PostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Post

    author = factory.LazyAttribute(
        lambda post: post.app.owner if post.app else UserFactory()
    )
    app = factory.SubFactory(AppFactory)
    title = factory.Sequence(lambda n: f"Post {n}")
    content = factory.Faker("paragraph")
    published = True
