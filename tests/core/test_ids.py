import pytest
from django.apps import apps
from django.db import connection

from core.ids import ID_LENGTH, IdField, new_id


def test_new_ids_are_url_safe_unique_and_start_with_a_letter():
    ids = {new_id() for _ in range(10_000)}

    assert len(ids) == 10_000
    assert all(len(i) == ID_LENGTH and i.isalnum() and i.islower() for i in ids)
    assert all(i[0].isalpha() for i in ids)


@pytest.mark.django_db
def test_id_columns_use_c_collation_and_have_no_duplicate_like_indexes():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, collation_name "
            "FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = 'accounts_user' "
            "AND column_name = 'id'"
        )
        assert cursor.fetchall() == [("accounts_user", "id", "C")]
        id_tables = [
            model._meta.db_table
            for model in apps.get_models()
            if isinstance(model._meta.pk, IdField)
        ]
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename = ANY(%s) "
            "AND indexdef ~ '\\((\\w+_)?id varchar_pattern_ops\\)'",
            [id_tables],
        )
        assert len(id_tables) >= 10
        assert cursor.fetchall() == []
