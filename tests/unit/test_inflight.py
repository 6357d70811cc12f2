import threading
import time

from jules.inflight import InFlight, Outcome


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def clean(ctl: InFlight, clock: Clock, latency: float = 0.05) -> None:
    started = ctl.acquire()
    clock.now += latency
    ctl.release(started, Outcome())


def throttled(ctl: InFlight, retry_after: float | None = None) -> None:
    started = ctl.acquire()
    out = Outcome()
    out.throttled = True
    out.retry_after = retry_after
    ctl.release(started, out)


def test_grows_on_clean_answers_and_never_exceeds_ceiling():
    clock = Clock()
    ctl = InFlight(ceiling=5, start=2, clock=clock)
    for _ in range(3):
        clean(ctl, clock)
    assert ctl.limit == 3
    for _ in range(200):
        clean(ctl, clock)
    assert ctl.limit == 5


def test_does_not_grow_when_answers_get_slower():
    clock = Clock()
    ctl = InFlight(ceiling=16, start=2, clock=clock)
    clean(ctl, clock, 0.01)
    for _ in range(20):
        clean(ctl, clock, 0.1)
    assert ctl.limit == 2


def test_answers_in_flight_together_halve_once():
    clock = Clock()
    ctl = InFlight(ceiling=16, start=8, clock=clock)
    started = [ctl.acquire() for _ in range(8)]
    clock.now += 0.05
    for at in started:
        out = Outcome()
        out.throttled = True
        ctl.release(at, out)
    # One storm seen by eight answers of one round trip is one halving, not eight.
    assert ctl.limit == 4
    # An attempt sent after the cut and throttled again halves again.
    clock.now += 0.05
    throttled(ctl)
    assert ctl.limit == 2


def test_halves_on_throttle_down_to_one():
    clock = Clock()
    ctl = InFlight(ceiling=16, start=8, clock=clock)
    throttled(ctl)
    assert ctl.limit == 4
    throttled(ctl)
    throttled(ctl)
    throttled(ctl)
    assert ctl.limit == 1
    assert [limit for _, limit in ctl.history] == [8, 4, 2, 1]


def test_holds_new_attempts_for_retry_after():
    ctl = InFlight(ceiling=4, start=2)
    throttled(ctl, retry_after=0.3)
    started = time.monotonic()
    ctl.acquire()
    assert time.monotonic() - started >= 0.25


def test_threads_never_exceed_limit():
    ctl = InFlight(ceiling=3, start=3)
    seen = []
    lock = threading.Lock()
    current = [0]

    def work():
        for _ in range(20):
            with ctl.slot():
                with lock:
                    current[0] += 1
                    seen.append(current[0])
                time.sleep(0.001)
                with lock:
                    current[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(seen) <= 3
    assert ctl.peak <= 3
    assert ctl.active == 0
    assert len(seen) == 200
