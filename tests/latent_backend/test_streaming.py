"""Streaming pieces: text deltas always join into the final text; the relay hands events over in order."""

from __future__ import annotations

import threading

import pytest

from latent_backend.streaming import Relay, TextDeltas, final_text


def byte_decoder(pieces: dict[int, bytes]):
    """A decoder over byte pieces (like byte-level BPE): a split multi-byte character shows as U+FFFD."""
    return lambda tokens: b"".join(pieces[t] for t in tokens).decode("utf-8", errors="replace")


PIECES = {
    0: b"  The",
    1: b" answer",
    2: b" is",
    3: b" ",
    4: b"\xe2\x82",  # the first two bytes of the euro sign
    5: b"\xac",
    6: b"5",
    7: b"\nObs",
    8: b"ervation:",
    9: b" more",
    10: b" .",
}


@pytest.mark.parametrize(
    ("tokens", "stop"),
    [
        ([0, 1, 2, 3, 4, 5, 6], ()),
        ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], ("Observation:",)),
        ([0, 1, 2, 7, 9], ("Observation:",)),  # "Obs" held back, then released: no stop after all
        ([0, 1, 3, 3, 2, 10], ()),
        ([3, 3], ()),
    ],
)
def test_pieces_join_into_exactly_the_final_text(tokens: list[int], stop: tuple[str, ...]) -> None:
    decode = byte_decoder(PIECES)
    deltas = TextDeltas(decode, stop)
    pieces = [deltas.push(t) for t in tokens]
    final = final_text(decode(tokens), stop)
    assert "".join(pieces) + deltas.rest(final) == final
    assert all("\ufffd" not in p for p in pieces)


def test_pieces_come_out_as_tokens_arrive_and_hold_back_only_what_may_change() -> None:
    deltas = TextDeltas(byte_decoder(PIECES), ("Observation:",))
    assert [deltas.push(t) for t in (0, 1, 2, 3, 4, 5, 6)] == ["The", " answer", " is", "", "", " €", "5"]
    assert deltas.push(7) == ""  # "\nObs" may be the start of the stop string
    assert deltas.push(8) == ""  # it was: nothing after the stop is ever given out
    assert deltas.push(9) == ""
    assert deltas.emitted == "The answer is €5"


def test_relay_yields_events_on_the_callers_thread_while_the_work_runs_then_its_result() -> None:
    caller = threading.get_ident()
    release = threading.Event()
    seen: list[tuple[int, bool]] = []

    def work(emit) -> str:
        emit(1)
        assert release.wait(5)  # the caller received event 1 while the work was still running
        emit(2)
        return "done"

    relay = Relay(work)
    for event in relay:
        seen.append((event, threading.get_ident() == caller))
        release.set()
    assert seen == [(1, True), (2, True)] and relay.result == "done"


def test_relay_raises_the_works_error_after_the_events_before_it() -> None:
    def work(emit) -> None:
        emit("a")
        raise ConnectionError("boom")

    received = []
    with pytest.raises(ConnectionError, match="boom"):
        for event in Relay(work):
            received.append(event)
    assert received == ["a"]
