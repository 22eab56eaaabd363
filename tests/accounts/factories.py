import factory
from django.contrib.auth.hashers import make_password

from accounts.models import User


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Faker("name")
    # Nobody signs in with a password: store Django's unusable marker.
    password = factory.LazyFunction(lambda: make_password(None))
