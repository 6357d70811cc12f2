import heapq
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


def steady(ctl: InFlight, clock: Clock, answers: int, latency, work: float = 0.0) -> list[int]:
    """A busy sync: as many attempts as the limit allows stay in flight; each answer takes
    `latency(limit)` seconds and then `work` seconds of the client's own serial time (what
    it does with the answer) before the next attempt. Returns the limit after each answer."""
    flight: list[tuple[float, int, float, Outcome]] = []
    sent = 0

    def fill() -> None:
        nonlocal sent
        while ctl.active < ctl.limit:
            out = Outcome()
            started = ctl.acquire(out)
            heapq.heappush(flight, (clock.now + latency(ctl.limit), sent, started, out))
            sent += 1

    limits = []
    fill()
    for _ in range(answers):
        finish, _, started, out = heapq.heappop(flight)
        clock.now = max(clock.now, finish)
        ctl.release(started, out)
        clock.now += work
        fill()
        limits.append(ctl.limit)
    return limits


def test_grows_to_the_ceiling_while_the_network_is_the_wait():
    clock = Clock()
    ctl = InFlight(ceiling=16, start=4, clock=clock)
    # 50 ms a request, half a millisecond of work an answer: every slot pays.
    limits = steady(ctl, clock, 2000, lambda limit: 0.05, work=0.0005)
    assert max(limits) == 16
    assert limits[-1] >= 15


def test_stays_near_its_start_when_more_slots_do_not_add_answers():
    clock = Clock()
    ctl = InFlight(ceiling=16, start=4, clock=clock)
    # Fast answers, but the client's own work caps it at 2,000 answers a second from two
    # slots on: answers are no slower with more in flight, they just do not come faster.
    limits = steady(ctl, clock, 4000, lambda limit: 0.001, work=0.0005)
    assert max(limits) <= 5
    assert limits[-1] <= 5


def test_does_not_grow_when_answers_get_slower():
    clock = Clock()
    ctl = InFlight(ceiling=16, start=2, clock=clock)
    # A server that serves one at a time: each answer waits behind the others.
    limits = steady(ctl, clock, 1000, lambda limit: 0.01 * limit)
    assert max(limits) <= 3


def test_one_request_at_a_time_never_grows_it():
    clock = Clock()
    ctl = InFlight(ceiling=16, start=2, clock=clock)
    # A serial phase (the listing's pages): the limit holds nothing back.
    for _ in range(200):
        clean(ctl, clock)
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
