"""The events bench's scoring (MIVIA-style): windows, one match per true event, delays."""

import pytest

from bench.events import score


def case(alerts: list[tuple[str, float]], truth: list[tuple[str, float, float]]) -> dict:
    return {
        "alerts": [{"kind": k, "t": t} for k, t in alerts],
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
