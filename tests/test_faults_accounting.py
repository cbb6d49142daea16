"""The fault suite's accounting (faults/accounting.py) on synthetic data: what counts as lost, duplicated, missed."""

from faults.accounting import LIVE, HttpTally, Row, Sent, account

MEMBERS = {1: [10, 11, 12], 2: [10, 13]}


def sent(chat_id: int = 1, sender_id: int = 10, *, acked: bool = True) -> Sent:
    return Sent(chat_id=chat_id, sender_id=sender_id, transport="rest", acked=acked)


def test_a_message_every_other_member_got_live_is_delivered():
    # given one acked, stored message that both other members of the chat got on their sockets
    row = account(Row("x"), {"m1": sent()}, MEMBERS, {"m1": 1}, {11: {"m1": LIVE}, 12: {"m1": LIVE}})

    # then it is delivered, by no catch-up, and nothing is missed
    assert (row.sent, row.acked, row.stored, row.delivered, row.caught_up) == (1, 1, 1, 1, 0)
    assert (row.lost, row.duplicated, row.silent_misses) == (0, 0, 0)
    assert row.passed


def test_a_catch_up_after_resync_or_gap_counts_as_delivered_but_is_counted_apart():
    row = account(Row("x"), {"m1": sent()}, MEMBERS, {"m1": 1}, {11: {"m1": "resync"}, 12: {"m1": "gap"}})

    assert (row.delivered, row.caught_up, row.silent_misses) == (1, 2, 0)


def test_a_member_that_never_heard_of_an_acked_message_is_a_silent_miss():
    row = account(Row("x"), {"m1": sent()}, MEMBERS, {"m1": 1}, {11: {"m1": LIVE}})

    assert (row.delivered, row.silent_misses) == (0, 1)
    assert not row.passed


def test_the_sender_itself_is_not_expected_to_receive_its_message():
    row = account(Row("x"), {"m1": sent(chat_id=2, sender_id=10)}, MEMBERS, {"m1": 1}, {13: {"m1": LIVE}})

    assert (row.delivered, row.silent_misses) == (1, 0)


def test_acked_but_not_stored_is_lost_and_stored_twice_is_duplicated():
    messages = {"m1": sent(), "m2": sent(), "m3": sent(acked=False)}
    receipts = {11: {"m1": LIVE, "m2": LIVE}, 12: {"m1": LIVE, "m2": LIVE}}

    row = account(Row("x"), messages, MEMBERS, {"m2": 2, "m3": 1}, receipts)

    assert (row.acked, row.stored, row.lost, row.duplicated) == (2, 2, 1, 1)
    assert not row.passed


def test_an_unacked_message_is_never_a_miss():
    row = account(Row("x"), {"m1": sent(acked=False)}, MEMBERS, {}, {})

    assert (row.lost, row.silent_misses, row.delivered) == (0, 0, 0)


def test_the_tally_flags_html_non_json_errors_and_503s_outside_a_fault():
    tally = HttpTally()
    tally.record(500, "text/html", b"<!doctype html>", in_fault_window=True, retry_after=False)
    tally.record(500, "application/json", b'{"detail": "Server error."}', in_fault_window=False, retry_after=False)
    tally.record(503, "application/json", b'{"detail": "down"}', in_fault_window=True, retry_after=True)
    tally.record(503, "application/json", b'{"detail": "down"}', in_fault_window=False, retry_after=False)
    tally.record(None, "", b"", in_fault_window=False, retry_after=False)

    assert (tally.server_errors, tally.html_pages, tally.non_json_errors) == (4, 1, 1)
    assert (tally.unavailable, tally.unavailable_outside, tally.unavailable_without_retry_after) == (2, 1, 1)
    assert tally.no_answer == 1


def test_a_skipped_experiment_does_not_fail_the_run():
    assert Row("disk", skipped="not root").passed
    assert not Row("disk", error="crashed").passed


def test_the_table_has_a_row_per_experiment_and_says_why_one_failed():
    from faults.run import COLUMNS, table

    failed = Row("worker", error="launcher exited")
    missed = Row("sigterm", checks={"sockets closed with 1001": False, "launcher exits": True})

    silent = Row("database", silent_misses=2)

    text = table([Row("redis"), failed, missed, Row("disk", skipped="not root"), silent])

    lines = text.splitlines()
    assert len(lines) == 7 and all(line.count("|") == len(COLUMNS) + 1 for line in lines)
    assert lines[2].endswith("| pass |")
    assert "FAIL (launcher exited)" in lines[3]
    assert "FAIL (1 of 2 checks missed)" in lines[4]
    assert "skipped: not root" in lines[5]
    assert "FAIL (silent misses)" in lines[6]
