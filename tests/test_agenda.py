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
    assert agenda.pop_due(T0 + timedelta(seconds=25)) == ["early", "late"]
    assert agenda.pop_due(T0 + timedelta(seconds=25)) == []
    assert agenda.next_time() == T0 + timedelta(seconds=30)
    assert agenda.pop_due(T0 + timedelta(seconds=30)) == ["moved"]
    assert agenda.next_time() is None
