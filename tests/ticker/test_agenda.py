from datetime import UTC, datetime, timedelta

from natscron_ticker.agenda import Agenda

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_pops_due_ids_in_time_order_and_honours_rescheduling() -> None:
    agenda = Agenda()
    agenda.set("late", T0 + timedelta(seconds=20))
    agenda.set("moved", T0 + timedelta(seconds=5))
    agenda.set("early", T0 + timedelta(seconds=1))
    agenda.set("moved", T0 + timedelta(seconds=30))
    agenda.set("gone", T0)
    agenda.set("gone", None)

    assert len(agenda) == 3
    assert agenda.next_time() == T0 + timedelta(seconds=1)
    assert agenda.pop_due(T0 + timedelta(seconds=25)) == [
        ("early", T0 + timedelta(seconds=1)),
        ("late", T0 + timedelta(seconds=20)),
    ]
    assert agenda.pop_due(T0 + timedelta(seconds=25)) == []
    assert agenda.next_time() == T0 + timedelta(seconds=30)
    assert agenda.pop_due(T0 + timedelta(seconds=30)) == [("moved", T0 + timedelta(seconds=30))]
    assert agenda.next_time() is None


def test_counts_the_jobs_due_at_each_time_through_moves_and_pops() -> None:
    agenda = Agenda()
    burst = T0 + timedelta(seconds=10)
    for n in range(5):
        agenda.set(f"job-{n}", burst)
    agenda.set("job-0", T0 + timedelta(seconds=20))
    agenda.set("job-1", None)
    assert agenda.due_at(burst) == 3
    assert agenda.due_at(T0 + timedelta(seconds=20)) == 1

    agenda.pop_due(burst)
    assert agenda.due_at(burst) == 0
    assert agenda.due_at(T0 + timedelta(seconds=20)) == 1
