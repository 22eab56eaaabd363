import datetime as dt

from core.backups import backups_prune, retention_keep

UTC = dt.UTC


def _at(y, m, d, h=2):
    return dt.datetime(y, m, d, h, tzinfo=UTC)


def _daily(start, end):
    day = start
    while day <= end:
        yield _at(day.year, day.month, day.day)
        day += dt.timedelta(days=1)


def test_two_years_of_daily_backups_keep_30_daily_12_weekly_12_monthly():
    times = list(_daily(dt.date(2024, 1, 1), dt.date(2025, 12, 31)))

    kept = retention_keep(times)

    daily = set(_daily(dt.date(2025, 12, 2), dt.date(2025, 12, 31)))
    # Newest of each of the 12 newest ISO weeks; Dec 31 2025 is a Wednesday, the
    # others are Sundays. Dec 7..28 are already daily; these add 7.
    weekly_extra = {
        _at(2025, 11, 30),
        _at(2025, 11, 23),
        _at(2025, 11, 16),
        _at(2025, 11, 9),
        _at(2025, 11, 2),
        _at(2025, 10, 26),
        _at(2025, 10, 19),
    }
    # Last day of each of the 12 newest months; Dec 31 and Nov 30 already kept.
    monthly_extra = {
        _at(2025, 10, 31),
        _at(2025, 9, 30),
        _at(2025, 8, 31),
        _at(2025, 7, 31),
        _at(2025, 6, 30),
        _at(2025, 5, 31),
        _at(2025, 4, 30),
        _at(2025, 3, 31),
        _at(2025, 2, 28),
        _at(2025, 1, 31),
    }
    assert kept == daily | weekly_extra | monthly_extra
    assert len(kept) == 47


def test_several_backups_a_day_keep_the_newest_of_each_day():
    times = [_at(2025, 5, 1, h) for h in (1, 9, 17)] + [_at(2025, 5, 2, 3)]

    assert retention_keep(times) == {_at(2025, 5, 1, 17), _at(2025, 5, 2, 3)}


def test_newest_backup_is_kept_even_when_every_rule_is_zero():
    times = [_at(2025, 5, d) for d in range(1, 10)]

    assert retention_keep(times, daily=0, weekly=0, monthly=0) == {_at(2025, 5, 9)}


def test_old_backups_survive_a_long_gap():
    # Backups stopped a year ago: counting periods that have backups keeps them.
    times = list(_daily(dt.date(2024, 1, 1), dt.date(2024, 1, 10)))

    assert retention_keep(times) == set(times)


def test_prune_deletes_exactly_the_unkept_files_and_their_manifests(tmp_path):
    times = list(_daily(dt.date(2025, 1, 1), dt.date(2025, 3, 31)))
    for when in times:
        name = f"app-{when:%Y%m%dT%H%M%SZ}.dump"
        (tmp_path / name).write_bytes(b"x")
        (tmp_path / f"{name}.manifest.json").write_text("{}")
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("keep me")

    deleted = backups_prune(directory=tmp_path, prefix="app")

    kept = retention_keep(times)
    remaining = sorted(p.name for p in tmp_path.glob("app-*.dump"))
    assert remaining == sorted(f"app-{t:%Y%m%dT%H%M%SZ}.dump" for t in kept)
    assert len(deleted) == len(times) - len(kept)
    assert len(list(tmp_path.glob("*.manifest.json"))) == len(kept)
    assert unrelated.exists()
