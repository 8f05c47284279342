"""AmiClient against a fake Asterisk manager on 127.0.0.1: replay, login, deadlines, reconnects."""

from __future__ import annotations

import asyncio
import random
import socket

import pytest
from structlog.testing import capture_logs

from dncgate.ami.calls import CallTracker
from dncgate.ami.client import AmiClient
from dncgate.ami.errors import (
    AmiActionError,
    AmiConnectionLost,
    AmiEncodingError,
    AmiLoginError,
    AmiTimeout,
    AmiUnavailable,
)
from dncgate.ami.message import AmiMessage
from dncgate.ami.settings import AmiSettings
from dncgate.backoff import Backoff
from dncgate.events import CallEventStream
from tests.ami.ami_helpers import (
    COMPLETED,
    REJECTED,
    FakeAmi,
    RecordingBackoff,
    RecordingSleep,
    event_bytes,
    transcript_parts,
    wait_until,
)


def settings(port: int, **overrides: object) -> AmiSettings:
    values: dict[str, object] = {
        "username": "e2e",
        "secret": "e2epass",
        "port": port,
        # deadlines the tests expect NOT to fire are long (issue 11 item 20); a test of a deadline sets it
        "connect_timeout": 30.0,
        "action_timeout": 30.0,
        "keepalive_interval": None,
    }
    values.update(overrides)
    return AmiSettings(**values)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_replay_transcript_yields_exact_records(fake: FakeAmi) -> None:
    recorded_login, fake.after_login = transcript_parts()
    stream = CallEventStream()
    records = stream.subscribe()
    first = asyncio.ensure_future(anext(records))
    await asyncio.sleep(0)  # the subscription exists before the first record
    seen: list[str] = []
    client = AmiClient(settings(fake.port))
    tracker = CallTracker(stream)
    tracker.attach(client)
    client.add_listener(lambda event: seen.append(event.event))
    async with client:
        async with asyncio.timeout(30):
            got = [await first, await anext(records)]
        await records.aclose()
    assert got == [REJECTED, COMPLETED]
    assert tracker.in_flight == 0

    login = fake.actions[0]
    assert {k: v for k, v in login.items() if k != "ActionID"} == {
        "Action": "Login",
        "Events": "on",
        "Secret": "e2epass",
        "Username": "e2e",
    }
    assert login["ActionID"]
    assert b"Action: Login" in recorded_login  # the recorded client sent the same fields
    assert not {"TestEvent", "VarSet", "Newexten", "FullyBooted", "SuccessfulAuth"} & set(seen)
    assert seen.count("Hangup") == 3
    assert seen.count("Cdr") == 2
    assert client.filtered == 11 + 65 + 10 + 2


async def test_bad_login_raises_login_error_without_retrying(fake: FakeAmi) -> None:
    client = AmiClient(settings(fake.port, secret="wrong"))
    with capture_logs() as logs, pytest.raises(AmiLoginError, match="Authentication failed"):
        await client.connect()
    assert [e["event"] for e in logs] == ["ami.login_failed"]
    assert fake.connections == 1
    assert not client.connected
    await client.close()


async def test_not_listening_raises_unavailable_fast() -> None:
    client = AmiClient(settings(free_port(), connect_timeout=3600.0))
    async with asyncio.timeout(60):  # refused at once: the connect deadline plays no part
        with pytest.raises(AmiUnavailable, match="failed"):
            await client.connect()
    await client.close()


async def test_silent_login_is_unavailable_within_connect_timeout(fake: FakeAmi) -> None:
    fake.silent_login = True
    client = AmiClient(settings(fake.port, connect_timeout=0.2))
    with pytest.raises(AmiUnavailable, match=r"AMI login at .* took over 0\.2s"):  # that deadline fired
        await client.connect()
    assert fake.connections == 1  # connect() raises, the retries are the supervisor's
    await client.close()


async def test_close_before_login_reply_is_unavailable(fake: FakeAmi) -> None:
    fake.refuse_connections = 1
    client = AmiClient(settings(fake.port, connect_timeout=3600.0))
    async with asyncio.timeout(60):  # the close is seen at once, not at the connect deadline
        with pytest.raises(AmiUnavailable, match="closed the connection"):
            await client.connect()
    await client.close()


async def test_stalled_action_times_out_and_connection_stays_usable(fake: FakeAmi) -> None:
    def responder(server: FakeAmi, action: dict[str, str]) -> bytes | None:
        if action["Action"] == "Status":
            return None  # never answer
        return f"Response: Success\r\nActionID: {action['ActionID']}\r\nPing: Pong\r\n\r\n".encode()

    fake.responder = responder
    async with AmiClient(settings(fake.port)) as client:
        with pytest.raises(AmiTimeout, match=r"Status: no response within 0\.2s"):  # its own deadline fired
            await client.action({"Action": "Status"}, timeout=0.2)
        reply = await client.action({"Action": "Ping"})
        assert reply.ok
        assert reply.response.get("ping") == "Pong"
        assert client._live is not None
        assert not client._live.responses


async def test_error_response_raises_action_error(fake: FakeAmi) -> None:
    def responder(server: FakeAmi, action: dict[str, str]) -> bytes:
        return f"Response: Error\r\nActionID: {action['ActionID']}\r\nMessage: Permission denied\r\n\r\n".encode()

    fake.responder = responder
    async with AmiClient(settings(fake.port)) as client:
        with pytest.raises(AmiActionError, match="Originate: Permission denied") as info:
            await client.action({"Action": "Originate", "Channel": "PJSIP/uas"})
        assert info.value.message == "Permission denied"


async def test_list_action_collects_following_events(fake: FakeAmi) -> None:
    def responder(server: FakeAmi, action: dict[str, str]) -> bytes:
        aid = action["ActionID"]
        return (
            f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\nMessage: Channels will follow\r\n\r\n"
            f"Event: CoreShowChannel\r\nActionID: {aid}\r\nChannel: PJSIP/uac-00000016\r\n\r\n"
            f"Event: CoreShowChannelsComplete\r\nActionID: {aid}\r\nEventList: Complete\r\nListItems: 1\r\n\r\n"
        ).encode()

    fake.responder = responder
    async with AmiClient(settings(fake.port)) as client:
        reply = await client.action({"Action": "CoreShowChannels"})
    assert [e.event for e in reply.events] == ["CoreShowChannel", "CoreShowChannelsComplete"]
    assert reply.events[0].get("Channel") == "PJSIP/uac-00000016"


@pytest.mark.parametrize(
    "action",
    [
        {"Action": "Setvar", "Value": "x\r\nAction: Originate"},
        {"Action": "Setvar", "Bad\nName": "x"},
        {"Action": "Setvar", "Variable": ["ok", "no\r"]},
        {"Action": ""},
        {"Channel": "no action"},
    ],
)
async def test_unsafe_action_fields_are_refused_before_sending(fake: FakeAmi, action: dict[str, object]) -> None:
    async with AmiClient(settings(fake.port)) as client:
        with pytest.raises(AmiEncodingError):
            await client.action(action)  # type: ignore[arg-type]
    assert [a["Action"] for a in fake.actions] == ["Login"]


async def test_action_when_not_connected_or_closed(fake: FakeAmi) -> None:
    client = AmiClient(settings(fake.port))
    with pytest.raises(AmiUnavailable, match="not connected"):
        await client.action({"Action": "Ping"})
    await client.connect()
    await client.close()
    await client.close()  # idempotent
    with pytest.raises(AmiUnavailable, match="closed"):
        await client.action({"Action": "Ping"})
    with pytest.raises(AmiUnavailable, match="closed"):
        await client.connect()


async def test_drop_reconnects_with_backoff_and_events_flow_again(fake: FakeAmi) -> None:
    backoff, sleep = RecordingBackoff([0.5, 1.0, 2.0]), RecordingSleep()
    got: list[AmiMessage] = []
    client = AmiClient(settings(fake.port), backoff=backoff, sleep=sleep)
    client.add_listener(got.append)
    with capture_logs() as logs:
        await client.connect()
        fake.send(event_bytes("UserEvent", UserEvent="first"))
        await wait_until(lambda: len(got) == 1)

        fake.refuse_connections = 3  # connection 1 was good; 2 and 3 close at once, 4 works
        fake.drop()
        await wait_until(lambda: client.connects == 2)
        fake.send(event_bytes("TestEvent", Type="StateChange"))
        fake.send(event_bytes("UserEvent", UserEvent="second"))
        await wait_until(lambda: len(got) == 2)
        await client.close()
    assert [e.get("UserEvent") for e in got] == ["first", "second"]
    assert backoff.attempts == [0, 1, 2]
    assert sleep.calls == [0.5, 1.0, 2.0]
    assert fake.connections == 4
    names = [e["event"] for e in logs]
    assert names.count("ami.connected") == 2
    assert names.count("ami.disconnected") == 1
    assert names.count("ami.reconnecting") == 3
    assert names.count("ami.connect_failed") == 2


async def test_login_refused_on_reconnect_keeps_trying(fake: FakeAmi) -> None:
    client = AmiClient(settings(fake.port), backoff=RecordingBackoff(), sleep=RecordingSleep())
    await client.connect()
    fake.secret = "rotated"
    with capture_logs() as logs:
        fake.drop()
        await wait_until(lambda: sum(e["event"] == "ami.login_failed" for e in logs) >= 2)
        fake.secret = "e2epass"
        await wait_until(lambda: client.connects == 2)
    await client.close()


async def test_pending_action_fails_on_drop_and_is_not_resent(fake: FakeAmi) -> None:
    fake.responder = lambda server, action: None
    client = AmiClient(settings(fake.port), backoff=RecordingBackoff(), sleep=RecordingSleep())
    await client.connect()
    pending = asyncio.ensure_future(client.action({"Action": "Originate", "Channel": "PJSIP/uas"}, timeout=2))
    await wait_until(lambda: len(fake.actions) == 2)
    fake.drop()
    with pytest.raises(AmiConnectionLost):
        await pending
    await wait_until(lambda: client.connects == 2)
    fake.send(event_bytes("FullyBooted", Status="Fully Booted"))  # panoramisk would resend here
    await asyncio.sleep(0.05)
    await client.close()
    assert [a["Action"] for a in fake.actions] == ["Login", "Originate", "Login"]


async def test_keepalive_timeout_forces_reconnect(fake: FakeAmi) -> None:
    stall = {"on": True}

    def responder(server: FakeAmi, action: dict[str, str]) -> bytes | None:
        if stall["on"]:
            stall["on"] = False
            return None
        return f"Response: Success\r\nActionID: {action['ActionID']}\r\nPing: Pong\r\n\r\n".encode()

    fake.responder = responder
    client = AmiClient(
        settings(fake.port, keepalive_interval=0.05, action_timeout=0.1),
        backoff=RecordingBackoff(),
        sleep=RecordingSleep(),
    )
    with capture_logs() as logs:
        await client.connect()
        await wait_until(lambda: client.connects == 2)
        await wait_until(lambda: sum(a["Action"] == "Ping" for a in fake.actions) >= 2)  # answered now
        await client.close()
    names = [e["event"] for e in logs]
    assert "ami.keepalive_failed" in names
    assert {"event": "ami.disconnected", "reason": "keepalive"}.items() <= next(
        e for e in logs if e["event"] == "ami.disconnected"
    ).items()


async def test_noise_is_filtered_and_listener_errors_are_contained(fake: FakeAmi) -> None:
    fake.after_login = b"".join(
        [
            event_bytes("TestEvent", Type="StateChange"),
            event_bytes("VarSet", Variable="X"),
            event_bytes("Newexten", Application="NoOp"),
            event_bytes("UserEvent", UserEvent="kept"),
        ]
    )
    got: list[str] = []

    def broken(event: AmiMessage) -> None:
        raise RuntimeError("consumer bug")

    client = AmiClient(settings(fake.port))
    client.add_listener(broken)
    remove = client.add_listener(lambda e: got.append(e.event))
    with capture_logs() as logs:
        async with client:
            await wait_until(lambda: got == ["UserEvent"])
            remove()
            remove()
    assert client.filtered == 3
    assert [e["event"] for e in logs if e["event"] == "ami.listener_failed"] == ["ami.listener_failed"]


async def test_events_iterator(fake: FakeAmi) -> None:
    fake.after_login = event_bytes("UserEvent", UserEvent="a") + event_bytes("UserEvent", UserEvent="b")
    client = AmiClient(settings(fake.port))
    events = client.events(buffer=1)
    first = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0)  # subscribe before connecting
    with capture_logs() as logs:
        async with client:
            event = await asyncio.wait_for(first, 30)
        await events.aclose()
    assert event.get("UserEvent") == "b"  # buffer of one: "a" was dropped for the lagging consumer
    assert [e["event"] for e in logs if e["event"] == "ami.consumer_lagging"] == ["ami.consumer_lagging"]


async def test_close_is_bounded_when_supervisor_is_reconnecting(fake: FakeAmi) -> None:
    async def slow_sleep(delay: float) -> None:
        await asyncio.sleep(3600)

    client = AmiClient(settings(fake.port), backoff=RecordingBackoff(), sleep=slow_sleep)
    await client.connect()
    fake.drop()
    await wait_until(lambda: not client.connected)
    async with asyncio.timeout(60):  # bounded by close's timeout, not by the supervisor's 3600 s sleep
        await client.close(timeout=0.5)


def test_exponential_backoff_grows_caps_and_jitters() -> None:
    exact = Backoff(initial=0.5, maximum=4.0, jitter=0.0)
    assert [exact.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert exact.delay(10_000) == 4.0
    jittered = Backoff(initial=1.0, maximum=8.0, jitter=0.25, rng=random.Random(7))
    delays = [jittered.delay(3) for _ in range(200)]
    assert all(6.0 <= d <= 10.0 for d in delays)
    assert len(set(delays)) > 100


def test_settings_repr_hides_secret() -> None:
    assert "e2epass" not in repr(settings(5038))


async def test_close_while_reconnect_waits_for_login_leaves_no_socket(fake: FakeAmi) -> None:
    client = AmiClient(settings(fake.port, connect_timeout=3600.0), backoff=RecordingBackoff(), sleep=RecordingSleep())
    await client.connect()
    fake.silent_login = True
    fake.drop()
    await wait_until(lambda: fake.connections == 2 and len(fake.actions) == 2)  # the second Login is pending
    async with asyncio.timeout(60):  # not the pending login's 3600 s deadline
        await client.close(timeout=0.5)
    await wait_until(lambda: not fake._tasks)  # the server saw our socket close


async def test_start_connects_in_the_background_and_reports_every_state(fake: FakeAmi) -> None:
    """A feed's start(): the first attempt at once, failures reported (not raised), then the backoff."""
    fake.refuse_connections = 2  # connections 1 and 2 close at once, 3 works
    states: list[tuple[str, str]] = []
    backoff, sleep = RecordingBackoff([0.5, 1.0]), RecordingSleep()
    client = AmiClient(settings(fake.port), backoff=backoff, sleep=sleep,
                       on_state=lambda s, why: states.append((s, why)))
    client.start()
    assert not client.connected  # start() returns at once
    await wait_until(lambda: client.connected)
    fake.drop()
    await wait_until(lambda: client.connects == 2)
    await client.close()
    assert [s for s, _ in states] == ["down", "down", "connected", "down", "connected"]  # close is not a loss
    assert "closed the connection before answering Login" in states[0][1]
    assert states[2][1] == ""
    assert backoff.attempts == [0, 1, 0]  # the first try did not wait; the loss restarted the backoff
    assert sleep.calls == [0.5, 1.0, 0.5]


async def test_start_reports_refused_credentials_and_keeps_trying(fake: FakeAmi) -> None:
    states: list[tuple[str, str]] = []
    sleep = RecordingSleep()
    client = AmiClient(settings(fake.port, secret="wrong"), backoff=RecordingBackoff(), sleep=sleep,
                       on_state=lambda s, why: states.append((s, why)))
    client.start()
    await wait_until(lambda: len(states) >= 2)
    await client.close()
    assert states[:2] == [("down", "AMI login refused: Authentication failed")] * 2
    assert not client.connected
