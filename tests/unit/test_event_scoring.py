"""The events bench's scoring (MIVIA-style): windows, one match per true event, delays."""

import pytest

from bench.events import half_visible_at, score, score_views


def case(alerts: list[tuple[str, float]], truth: list[tuple[str, float, float]]) -> dict:
    """Alerts of incidents of one alert each (dumping: its confirmation)."""
    return {
        "alerts": [
            {"kind": k, "t": t, "id": str(i), "stage": "confirmed" if k == "dumping" else None}
            for i, (k, t) in enumerate(alerts)
        ],
        "truth": [{"kind": k, "start": s, "end": e} for k, s, e in truth],
    }


def test_hits_misses_false_alarms_and_delays() -> None:
    results = [
        # on time, then a repeat of the same incident (false alarm), a miss in another case
        case([("dumping", 11.0), ("dumping", 12.0)], [("dumping", 10.0, 20.0)]),
        case([], [("dumping", 5.0, 9.0)]),
        # one second early is allowed; alerts long after the end are false alarms
        case(
            [("crowd_dispersal", 29.0), ("crowd_dispersal", 50.0)],
            [("crowd_dispersal", 30.0, 34.0)],
        ),
        # loitering is due dwell_s (30 s) after its start: an alert before that has no delay
        case([("loitering", 30.0)], [("loitering", 8.0, 78.0)]),
        case([("loitering", 45.0)], [("loitering", 8.0, 78.0)]),
    ]
    s = score(results)
    d = s["dumping"]
    assert (d["tp"], d["fp"], d["fn"]) == (1, 1, 1)
    assert d["precision"] == 0.5 and d["recall"] == 0.5 and d["f1"] == 0.5
    assert d["delay_p50_s"] == pytest.approx(1.0)
    c = s["crowd_dispersal"]
    assert (c["tp"], c["fp"], c["fn"]) == (1, 1, 0) and c["delay_p50_s"] == 0.0
    lo = s["loitering"]
    assert (lo["tp"], lo["fp"]) == (2, 0)
    assert lo["delay_p95_s"] == pytest.approx(7 * 0.95)  # delays 0 and 7 s
    # kinds with no true events and no alerts are perfect, not undefined
    assert s["abandoned_object"]["f1"] == 1.0


def staged(view: str, stages: list[tuple[str, float, str]], truth: list[dict]) -> dict:
    return {
        "view": view,
        "alerts": [{"kind": "dumping", "t": t, "stage": st, "id": i} for i, t, st in stages],
        "truth": truth,
    }


def test_dumping_counts_confirmed_incidents_with_two_delays_and_per_view() -> None:
    dump = {"kind": "dumping", "start": 10.0, "end": 25.0, "pile_half_visible": 14.0}
    results = [
        # suspected 2 s after the stop, confirmed 1 s after the pile is half visible
        staged(
            "fixed",
            [("a", 12.0, "suspected"), ("a", 15.0, "confirmed"), ("a", 22.0, "vehicle_left")],
            [dump],
        ),
        # a delivery stop, cleared: no dumping, and none happened (a true negative)
        staged(
            "fixed",
            [("b", 6.0, "suspected"), ("b", 20.0, "vehicle_left"), ("b", 23.0, "cleared")],
            [],
        ),
        # the drone saw the stop but never confirmed a pile: a miss
        staged("drone", [("c", 11.0, "suspected")], [dump]),
    ]
    s = score(results)
    d = s["dumping"]
    assert (d["tp"], d["fp"], d["fn"]) == (1, 0, 1)
    assert d["delay_suspected_p95_s"] == pytest.approx(2.0)
    assert d["delay_confirmed_p95_s"] == pytest.approx(1.0)
    assert d["delay_p95_s"] == pytest.approx(2.0)  # the larger
    views = score_views(results)
    assert views["dumping_fixed"]["f1"] == 1.0 and views["dumping_drone"]["recall"] == 0.0


def test_a_later_pass_confirms_the_incident_it_suspected() -> None:
    dump = {"kind": "dumping", "start": 10.0, "end": 22.0, "pile_half_visible": 13.0}
    # the drone suspected the stop at 12 s and confirmed on its next pass at 32 s: the same
    # incident, a hit, with the confirmation's whole delay
    late = staged("drone", [("a", 12.0, "suspected"), ("a", 32.0, "confirmed")], [dump])
    d = score([late])["dumping"]
    assert (d["tp"], d["fp"], d["fn"]) == (1, 0, 0)
    assert d["delay_confirmed_p95_s"] == pytest.approx(19.0)
    # an incident first raised long after the event is another one: a false alarm and a miss
    other = staged("drone", [("b", 30.0, "suspected"), ("b", 32.0, "confirmed")], [dump])
    d = score([other])["dumping"]
    assert (d["tp"], d["fp"], d["fn"]) == (0, 1, 1)


def test_a_pile_is_half_visible_once_half_grown() -> None:
    # (time, image area) of a pile growing to 400 px², then standing
    seen = [(10.0, 20.0), (11.0, 100.0), (12.0, 199.0), (13.0, 210.0), (14.0, 400.0), (20.0, 400.0)]
    assert half_visible_at(seen) == 13.0


def test_an_alert_about_one_person_counts_only_for_that_person() -> None:
    touts = [
        {"kind": "loitering", "start": 8.0, "end": 78.0, "actor": 60},
        {"kind": "loitering", "start": 8.0, "end": 78.0, "actor": 61},
    ]
    # tout 60 reported twice (the second is a false alarm), tout 61 never: a miss; a third
    # alert shows somebody else
    results = [
        {
            "alerts": [
                {"kind": "loitering", "t": 38.0, "stage": None, "id": "a", "actors": [60]},
                {"kind": "loitering", "t": 44.0, "stage": None, "id": "b", "actors": [60]},
                {"kind": "loitering", "t": 50.0, "stage": None, "id": "c", "actors": [27]},
            ],
            "truth": touts,
        }
    ]
    lo = score(results)["loitering"]
    assert (lo["tp"], lo["fp"], lo["fn"]) == (1, 2, 1)
    # one alert each: both hits, whichever order they come in
    results[0]["alerts"] = [
        {"kind": "loitering", "t": 38.0, "stage": None, "id": "a", "actors": [61]},
        {"kind": "loitering", "t": 39.0, "stage": None, "id": "b", "actors": [60, 61]},
    ]
    lo = score(results)["loitering"]
    assert (lo["tp"], lo["fp"], lo["fn"]) == (2, 0, 0)
