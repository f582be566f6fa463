"""Time rules: candidate zones, quiet hours across zones (DST included) and calendar-day windows."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from rules.policy import load_policy
from rules.schedule import DayCap, DayPause, in_quiet_window, next_quiet_ok, plan_send, window_peak
from rules.zones import candidate_zones, phone_number_zones, reference_zone
from schemas.events import PatientUpdated

NY = ZoneInfo("America/New_York")
EIGHT, NINE_PM = time(8), time(21)


def person(**data: object) -> PatientUpdated:
    return PatientUpdated(account_id="A", patient_id="P", practice_id="X", **data)


def test_candidate_zones_come_from_stated_zone_address_state_and_phone_area_codes() -> None:
    policy = load_policy()
    p = person(timezone="America/Chicago", address={"state": "CA"}, mobile_phone="+12125550123")
    assert candidate_zones(p, policy) == ("America/Chicago", "America/Los_Angeles", "America/New_York")
    assert reference_zone(p, policy) == "America/Chicago"
    # An Arizona address has no DST; a Navajo Nation stated zone (Denver) is kept as well.
    assert candidate_zones(person(address={"state": "AZ"}), policy) == ("America/Phoenix",)
    assert candidate_zones(person(timezone="America/Denver", address={"state": "AZ"}), policy) == (
        "America/Denver",
        "America/Phoenix",
    )


def test_toll_free_numbers_say_nothing_about_location() -> None:
    assert phone_number_zones("+18005550123", 4) == ()
    assert phone_number_zones("+14155550123", 4) == ("America/Los_Angeles",)


def test_edge_1_eastern_mobile_and_california_address_allow_11_to_21_eastern() -> None:
    """compliance-rules 14.1: the patient's zones, never the practice's (a CT practice changes nothing)."""
    zones = candidate_zones(person(mobile_phone="+12125550123", address={"state": "CA"}), load_policy())
    morning = datetime(2026, 6, 10, 9, 0, tzinfo=NY)  # 09:00 ET is 06:00 PT
    allowed = next_quiet_ok(morning, zones, EIGHT, NINE_PM)
    assert allowed is not None
    assert allowed.astimezone(NY).time() == time(11, 0)
    assert in_quiet_window(datetime(2026, 6, 10, 20, 59, tzinfo=NY), zones, EIGHT, NINE_PM)
    late = next_quiet_ok(datetime(2026, 6, 10, 21, 0, tzinfo=NY), zones, EIGHT, NINE_PM)
    assert late == datetime(2026, 6, 11, 11, 0, tzinfo=NY)


def test_edge_2_spring_forward_and_fall_back_keep_08_00_local() -> None:
    """compliance-rules 14.2: an SMS queued for 08:00 local must not fire at 07:00."""
    for day in (date(2026, 3, 8), date(2026, 11, 1)):  # DST starts; DST ends
        before = datetime.combine(day, time(6, 30), tzinfo=NY)
        allowed = next_quiet_ok(before, ("America/New_York",), EIGHT, NINE_PM)
        assert allowed is not None
        assert allowed.astimezone(NY).time() == time(8, 0)
        assert allowed.astimezone(NY).date() == day
    # The same UTC instant is 07:30 in New York before the change, 08:30 after it.
    assert not in_quiet_window(
        datetime(2026, 3, 7, 12, 30, tzinfo=UTC), ("America/New_York",), EIGHT, NINE_PM
    )
    assert in_quiet_window(datetime(2026, 3, 9, 12, 30, tzinfo=UTC), ("America/New_York",), EIGHT, NINE_PM)
    # Arizona keeps its clock: 15:00 UTC is 08:00 there all year.
    for day in (date(2026, 1, 15), date(2026, 7, 15)):
        at = datetime.combine(day, time(15), tzinfo=UTC)
        assert in_quiet_window(at, ("America/Phoenix",), EIGHT, NINE_PM)
        assert not in_quiet_window(at - timedelta(minutes=1), ("America/Phoenix",), EIGHT, NINE_PM)


def test_zones_that_never_share_an_hour_give_no_window() -> None:
    # Two 13-hour windows always overlap; three zones eight hours apart do not.
    at = datetime(2026, 6, 10, 12, tzinfo=UTC)
    assert next_quiet_ok(at, ("America/New_York", "Asia/Dubai", "Pacific/Auckland"), EIGHT, NINE_PM) is None


def test_windows_count_calendar_days_not_168_hours() -> None:
    """compliance-rules 14.2: a call at 23:00 on day 1 and one at 08:00 on day 8 are in different windows."""
    days = Counter({date(2026, 3, 2): 6})
    assert window_peak(days, date(2026, 3, 8), 7) == 6  # 2 March is day 1 of the window ending 8 March
    assert window_peak(days, date(2026, 3, 9), 7) == 0  # 9 March is day 8
    cap = DayCap("G-CALL-FREQ", Counter({date(2026, 3, 2): 7}), 7, 7)
    assert not cap.allows(date(2026, 3, 8)) and cap.allows(date(2026, 3, 9))


def test_a_conversation_pauses_calls_through_day_seven() -> None:
    pause = DayPause("G-CALL-PAUSE", (date(2026, 3, 2),), 7)  # Monday: day 1
    assert [pause.allows(date(2026, 3, 2) + timedelta(days=d)) for d in range(9)] == [False] * 7 + [
        True,
        True,
    ]


def test_plan_send_combines_windows_quiet_hours_and_expiry() -> None:
    now = datetime(2026, 3, 10, 23, 0, tzinfo=NY)
    cap = DayCap("G-SMS-FREQ", Counter({date(2026, 3, 10): 3}), 3, 7)
    schedule = plan_send(
        now, now + timedelta(days=14), [cap], ("America/New_York",), "America/New_York", EIGHT, NINE_PM
    )
    assert schedule.reason == "delayed"
    assert schedule.not_before == datetime(2026, 3, 17, 8, 0, tzinfo=NY)
    short = plan_send(
        now, now + timedelta(days=3), [cap], ("America/New_York",), "America/New_York", EIGHT, NINE_PM
    )
    assert short == type(short)(None, "past_expiry")
    letter = plan_send(now, now + timedelta(days=3), [], None, "America/New_York", EIGHT, NINE_PM)
    assert letter.not_before == now and letter.reason == "now"
