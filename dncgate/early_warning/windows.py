"""One originator's call facts over sliding windows (1 min, 1 h, 24 h, and a baseline over weeks).

Nothing resets at midnight: each window is a ring of time slots that slides with the facts'
own time (5 s slots for the minute, 2 min slots for the hour, 1 h slots for the day): a window
holds its last ``RING - 1`` finished slots and the current one, so "the last hour" is the last
58-60 minutes, "the last minute" the last 55-60 seconds, "the last day" the last 23-24 hours. A fact adds
to the current 5 s slot's counters only (a handful of integer increments, no allocation); when a
fact falls in a later slot, :meth:`Windows.close` moves the finished slot into the rings (at most
once per 5 s of an originator's traffic) and the analyser evaluates the rules then (at most once
per 15 s: ``EVALUATE_EVERY``; the checkpoint evaluates every originator it writes).

Memory per originator is fixed whatever its traffic: the rings (``array('i')``: 12 + 30 x 9 +
24 x 3 counters), two sketch byte arrays (distinct callees: 6 x 64 registers; caller IDs: 6 x 32),
a few samples of decision and call ids and one level byte per rule: about 2 KB in all (measured by
``bench/early_warning.py`` as peak memory per originator).
"""

from __future__ import annotations

import struct
from array import array

from dncgate.early_warning import sketch

# each window: its finished slots and the current one (so a window spans its length to one slot more)
SLOT_1M, RING_1M = 5, 12  # 5 s slots, a minute
SLOT_1H, RING_1H = 120, 30  # 2 min slots, an hour
SLOT_24H, RING_24H = 3600, 24  # 1 h slots, a day
SUB_SPAN, SUBS = 600, 6  # sketch sub-sketches: 10 min each, an hour
CALLEE_BITS, CID_BITS = 6, 5
EVALUATE_EVERY = 3  # slots (15 s) between evaluations of an originator's rules
SAMPLES = 4  # decision and call ids kept as evidence (the latest)
BASELINE_ALPHA = 1.0 / (24 * 14)  # hourly EWMA with a two-week time constant
BASELINE_WARMUP_H = 24 * 7  # a baseline counts after a week of history
MAX_CALL_S = 4 * 3600  # calls in progress are forgotten after this long without an end

# the hour window's counters (ring index) and the day window's
H_ATTEMPTS, H_REFUSED, H_SEQUENTIAL, H_SERVICE, H_ENDED, H_ANSWERED, H_ANSWERED_S, H_SHORT6, H_SHORT30 = range(9)
H_COUNTERS = 9
D_ATTEMPTS, D_NIGHT, D_COMPLAINTS = range(3)
D_COUNTERS = 3


class Windows:
    """The windows of one originator. The analyser updates the ``cur_*`` counters directly."""

    __slots__ = (  # noqa: RUF023 -- grouped by line width
        "acc_1h", "acc_24h", "baseline", "baseline_hours", "callee_base", "callees", "call_samples", "calls",
        "cid_base",
        "cid_estimate", "cids", "cur_answered", "cur_answered_s", "cur_attempts", "cur_complaints", "cur_ended",
        "cur_night", "cur_refused", "cur_sequential", "cur_service", "cur_short30", "cur_short6", "decisions",
        "evaluated",
        "in_progress", "last_callee", "last_caller_id", "levels", "peak", "ring_1h", "ring_1m", "ring_24h",
        "samples", "seen", "slot_1h", "slot_1m", "slot_24h", "sub_slot", "sum_1h", "sum_1m", "sum_24h",
    )

    def __init__(self, at: int, rules: int) -> None:
        self.slot_1m, self.slot_1h, self.slot_24h = at // SLOT_1M, at // SLOT_1H, at // SLOT_24H
        self.ring_1m = array("i", bytes(4 * RING_1M))
        self.ring_1h = array("i", bytes(4 * RING_1H * H_COUNTERS))
        self.ring_24h = array("i", bytes(4 * RING_24H * D_COUNTERS))
        self.sum_1m = 0
        self.sum_1h = [0] * H_COUNTERS
        self.sum_24h = [0] * D_COUNTERS
        self.acc_1h = [0] * H_COUNTERS
        self.acc_24h = [0] * D_COUNTERS
        self.callees = bytearray(SUBS << CALLEE_BITS)
        self.cids = bytearray(SUBS << CID_BITS)
        self.cid_estimate = -1.0  # cached until a register rises or the sketches rotate
        self.sub_slot = at // SUB_SPAN
        self.callee_base = (self.sub_slot % SUBS) << CALLEE_BITS
        self.cid_base = (self.sub_slot % SUBS) << CID_BITS
        self.cur_attempts = self.cur_refused = self.cur_night = self.cur_sequential = self.cur_service = 0
        self.cur_ended = self.cur_answered = self.cur_answered_s = self.cur_short6 = self.cur_short30 = 0
        self.cur_complaints = 0
        self.in_progress = self.peak = 0
        self.last_callee = -10
        self.last_caller_id = ""
        self.decisions: list[str] = [""] * SAMPLES
        self.calls: list[str] = [""] * SAMPLES
        self.samples = self.call_samples = 0
        self.baseline = 0.0
        self.baseline_hours = 0
        self.levels = bytearray(rules)
        self.seen = at  # the latest fact (the analyser sets it)
        self.evaluated = -EVALUATE_EVERY  # the 5 s slot the rules were last evaluated in

    # -- moving the finished slot into the rings --------------------------------------------------

    def close(self, at: int) -> None:
        """Move the current 5 s slot's counters into the windows and slide them to ``at``."""
        if at - self.seen > MAX_CALL_S:
            self.in_progress = 0  # their ends were lost (a feed down): not in progress for ever
        new_1m = at // SLOT_1M
        ring = self.ring_1m
        ring[self.slot_1m % RING_1M] = self.cur_attempts
        self.sum_1m += self.cur_attempts
        self.sum_1m -= _clear(ring, 1, self.slot_1m, new_1m, RING_1M, None)
        self.slot_1m = new_1m
        acc = self.acc_1h
        for index, value in enumerate((
                self.cur_attempts, self.cur_refused, self.cur_sequential, self.cur_service, self.cur_ended,
                self.cur_answered, self.cur_answered_s, self.cur_short6, self.cur_short30)):
            acc[index] += value
        day = self.acc_24h
        day[D_ATTEMPTS] += self.cur_attempts
        day[D_NIGHT] += self.cur_night
        day[D_COMPLAINTS] += self.cur_complaints
        self.cur_attempts = self.cur_refused = self.cur_night = self.cur_sequential = self.cur_service = 0
        self.cur_ended = self.cur_answered = self.cur_answered_s = self.cur_short6 = self.cur_short30 = 0
        self.cur_complaints = 0
        if at // SLOT_1H != self.slot_1h:
            self._slide(self.ring_1h, self.sum_1h, acc, H_COUNTERS, self.slot_1h, at // SLOT_1H, RING_1H)
            self.slot_1h = at // SLOT_1H
        if at // SLOT_24H != self.slot_24h:
            self._baseline(day[D_ATTEMPTS], at // SLOT_24H - self.slot_24h)
            self._slide(self.ring_24h, self.sum_24h, day, D_COUNTERS, self.slot_24h, at // SLOT_24H, RING_24H)
            self.slot_24h = at // SLOT_24H
        if at // SUB_SPAN != self.sub_slot:
            self._rotate_sketches(at // SUB_SPAN)
        self.peak = self.in_progress

    @staticmethod
    def _slide(ring: array[int], sums: list[int], acc: list[int], width: int, old: int, new: int, size: int) -> None:
        base = (old % size) * width
        for index in range(width):
            ring[base + index] = acc[index]
            sums[index] += acc[index]
            acc[index] = 0
        _clear(ring, width, old, new, size, sums)

    def _baseline(self, hour_attempts: int, hours: int) -> None:
        """The hourly EWMA, fed the hour that ended and the empty hours after it."""
        if self.baseline_hours == 0:
            self.baseline = float(hour_attempts)
        else:
            self.baseline += BASELINE_ALPHA * (hour_attempts - self.baseline)
        empty = min(max(hours - 1, 0), 24 * 7 * 12)
        self.baseline *= (1 - BASELINE_ALPHA) ** empty
        self.baseline_hours += 1 + empty

    def _rotate_sketches(self, sub_slot: int) -> None:
        steps = min(sub_slot - self.sub_slot, SUBS)
        for offset in range(1, steps + 1):
            index = (self.sub_slot + offset) % SUBS
            self.callees[index << CALLEE_BITS:(index + 1) << CALLEE_BITS] = bytes(1 << CALLEE_BITS)
            self.cids[index << CID_BITS:(index + 1) << CID_BITS] = bytes(1 << CID_BITS)
        self.sub_slot = sub_slot
        self.cid_estimate = -1.0
        self.callee_base = (sub_slot % SUBS) << CALLEE_BITS
        self.cid_base = (sub_slot % SUBS) << CID_BITS

    # -- what the rules read ----------------------------------------------------------------------

    def hour(self, index: int) -> int:
        return self.sum_1h[index] + self.acc_1h[index]

    def day(self, index: int) -> int:
        return self.sum_24h[index] + self.acc_24h[index]

    def distinct_callees(self) -> float:
        return sketch.estimate(self.callees, CALLEE_BITS, SUBS)

    def distinct_caller_ids(self) -> float:
        if self.cid_estimate < 0:
            self.cid_estimate = sketch.estimate(self.cids, CID_BITS, SUBS)
        return self.cid_estimate

    def surge(self) -> float:
        """The last 24 h's attempts over the baseline's day (0 until a week of history)."""
        if self.baseline_hours < BASELINE_WARMUP_H:
            return 0.0
        return self.day(D_ATTEMPTS) / max(24.0 * self.baseline, 1.0)

    def sample_ids(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return tuple(i for i in self.decisions if i), tuple(i for i in self.calls if i)

    # -- persistence ------------------------------------------------------------------------------

    def dump(self) -> bytes:
        """The state as bytes (``load`` reads it back); the current slot is closed first by the caller."""
        head = struct.pack(
            "<qqqqqqqdqqq", self.slot_1m, self.slot_1h, self.slot_24h, self.sub_slot, self.sum_1m, self.in_progress,
            self.last_callee, self.baseline, self.baseline_hours, self.seen, len(self.levels))
        counts = array("q", [*self.sum_1h, *self.sum_24h, *self.acc_1h, *self.acc_24h])
        return b"".join((head, counts.tobytes(), self.ring_1m.tobytes(), self.ring_1h.tobytes(),
                         self.ring_24h.tobytes(), bytes(self.callees), bytes(self.cids), bytes(self.levels)))

    @classmethod
    def load(cls, raw: bytes, rules: int) -> Windows:
        """A state from ``dump``. Raises ``ValueError`` on bytes that are not one."""
        head = struct.calcsize("<qqqqqqqdqqq")
        widths = [8 * 2 * (H_COUNTERS + D_COUNTERS), 4 * RING_1M, 4 * RING_1H * H_COUNTERS,
                  4 * RING_24H * D_COUNTERS, SUBS << CALLEE_BITS, SUBS << CID_BITS]
        if len(raw) < head + sum(widths):
            raise ValueError("window state too short")
        (s1m, s1h, s24h, sub, sum_1m, in_progress, last_callee, baseline, baseline_hours, seen,
         levels) = struct.unpack_from("<qqqqqqqdqqq", raw)
        if len(raw) != head + sum(widths) + levels:
            raise ValueError("window state of the wrong length")
        state = cls(0, rules)
        state.slot_1m, state.slot_1h, state.slot_24h, state.sub_slot = s1m, s1h, s24h, sub
        state.sum_1m, state.in_progress, state.last_callee = sum_1m, in_progress, last_callee
        state.baseline, state.baseline_hours, state.seen = baseline, baseline_hours, seen
        parts, offset = [], head
        for width in widths:
            parts.append(raw[offset:offset + width])
            offset += width
        counts = array("q")
        counts.frombytes(parts[0])
        values = counts.tolist()
        state.sum_1h, state.sum_24h = values[:H_COUNTERS], values[H_COUNTERS:H_COUNTERS + D_COUNTERS]
        state.acc_1h = values[H_COUNTERS + D_COUNTERS:2 * H_COUNTERS + D_COUNTERS]
        state.acc_24h = values[2 * H_COUNTERS + D_COUNTERS:]
        for ring, part in ((state.ring_1m, parts[1]), (state.ring_1h, parts[2]), (state.ring_24h, parts[3])):
            ring[:] = array("i", part)
        state.callees, state.cids = bytearray(parts[4]), bytearray(parts[5])
        state.callee_base, state.cid_base = (sub % SUBS) << CALLEE_BITS, (sub % SUBS) << CID_BITS
        if levels == rules:  # the rules changed: their levels start again
            state.levels = bytearray(raw[offset:offset + levels])
        return state


def _clear(ring: array[int], width: int, old: int, new: int, size: int, sums: list[int] | None) -> int:
    """Zero the slots after ``old`` up to ``new`` (the ring's oldest, now entered again); returns
    what was cleared from a one-counter ring, and takes it off ``sums`` for a wider one."""
    cleared = 0
    for slot in range(old + 1, min(new, old + size) + 1):
        base = (slot % size) * width
        for index in range(width):
            value = ring[base + index]
            if value:
                if sums is not None:
                    sums[index] -= value
                cleared += value
                ring[base + index] = 0
    return cleared
