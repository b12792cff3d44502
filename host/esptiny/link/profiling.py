"""PROFILE over one connected board (docs/protocol.md): infer an input, then read the
steps of that inference, page by page. Request and reply one at a time: a profile is
read on a few images at the end of a bench, so nothing here needs the pipelined stream."""
from __future__ import annotations

import time
from dataclasses import dataclass

from . import protocol as P
from .client import LinkError


@dataclass(frozen=True)
class Profile:
    """Every step of one inference, with the whole inference from its INFER reply."""
    unit: int               # P.COUNTER_UNITS
    steps: tuple            # P.ProfileStep, in the order they ran
    inference: P.InferResult

    @property
    def unit_name(self) -> str:
        return P.COUNTER_UNITS[self.unit]


class ProfileRefused(LinkError):
    """The board answers, but keeps no profile (a build without profiling, an older firmware)."""


def _ask(session, ftype: int, payload: bytes, want: int) -> bytes:
    """Send one request and return its reply's payload, resending on a lost or damaged
    exchange until the session's stall time-out (or its --retries, if set) runs out, as
    the bench does. Any other ERROR reply raises LinkError."""
    parser = P.Parser(max(session.info.max_payload, P.ERROR_MAX_BYTES))
    give_up = time.monotonic() + session.s.stall_timeout
    attempts = 0
    while True:
        attempts += 1
        seq = session._next_seq()
        session._write(P.encode_frame(ftype, seq, payload))
        reply = _reply(session, parser, seq, want)
        if reply is not None:
            return reply
        session.counts["profile retries"] += 1
        out_of_tries = session.s.retries is not None and attempts > session.s.retries
        if out_of_tries or time.monotonic() > give_up:
            raise LinkError(f"{session.label}: no reply to a "
                            f"{'PROFILE' if ftype == P.PROFILE_REQ else 'INFER'} request in "
                            f"{attempts} attempts over {session.s.stall_timeout:g} s")


def _reply(session, parser, seq: int, want: int):
    """The payload of the reply of type `want` to seq; None when it was lost or damaged."""
    deadline = last_rx = time.monotonic()
    deadline += max(session.s.timeout, 5.0)
    while time.monotonic() < deadline:
        events, _, last_rx = session._receive(parser, 0.02, last_rx)
        for ev in events:
            if not isinstance(ev, P.Frame) or ev.seq != seq:
                continue
            if ev.type == want:
                return ev.payload
            if ev.type != P.ERROR:
                continue
            code, text = P.unpack_error(ev.payload)
            if code == P.ERR_UNKNOWN_TYPE:
                raise ProfileRefused(f"{session.label} does not answer PROFILE requests "
                                     f"(its firmware predates them)")
            if code in (P.ERR_CRC, P.ERR_TRUNCATED):
                return None  # the request was damaged on the way: send it again
            raise LinkError(f"{session.label}: {P.ERROR_NAMES.get(code, code)}: {text}")
    return None


def read_steps(session) -> tuple:
    """(counter unit, every step of the last inference), paged. ProfileRefused when the
    firmware was built without profiling."""
    steps, first = [], 0
    while True:
        try:
            page = P.ProfilePage.unpack(_ask(session, P.PROFILE_REQ, P.pack_profile_req(first), P.PROFILE_RSP))
        except ValueError as e:
            raise LinkError(f"{session.label}: malformed PROFILE reply: {e}") from None
        if page.state != P.PROFILE_RECORDED:
            raise ProfileRefused(f"{session.label} keeps no profile: {P.PROFILE_STATE_NAMES[page.state]}")
        if page.first != first or (not page.steps and first < page.total):
            raise LinkError(f"{session.label}: PROFILE reply for steps from {page.first} of {page.total}, "
                            f"asked from {first}")
        steps += page.steps
        first += len(page.steps)
        if first >= page.total:
            return page.unit, tuple(steps)


def profile(session, payload: bytes) -> Profile:
    """Infer `payload` on the board, then read that inference's steps."""
    try:
        r = P.InferResult.unpack(_ask(session, P.INFER_REQ, payload, P.INFER_RSP))
    except ValueError as e:
        raise LinkError(f"{session.label}: malformed INFER reply: {e}") from None
    unit, steps = read_steps(session)
    return Profile(unit, steps, r)
