import pytest
from django.test import Client


@pytest.fixture
def other_client(other_user):
    client = Client()
    client.force_login(other_user)
    return client
