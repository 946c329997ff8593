"""The limiter's RESP2 client: encoding, parsing of partial and pipelined replies, URL forms."""

from __future__ import annotations

import asyncio

import pytest

from spotless.lib.resp import RespClient, RespError, _Incomplete, _Protocol, encode, parse


def test_commands_are_encoded_as_arrays_of_bulk_strings():
    assert encode("EVALSHA", "ab", 1, "k", 600000) == (
        b"*5\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n$1\r\nk\r\n$6\r\n600000\r\n"
    )


def test_replies_of_every_kind_parse():
    reply = b"*4\r\n:1\r\n:29\r\n:0\r\n:500000\r\n"
    assert parse(reply) == ([1, 29, 0, 500000], len(reply))
    assert parse(b"+PONG\r\n") == ("PONG", 7)
    assert parse(b"$3\r\nabc\r\n") == (b"abc", 9)
    assert parse(b"$-1\r\n") == (None, 5)
    error, _ = parse(b"-NOSCRIPT No matching script.\r\n")
    assert isinstance(error, RespError) and error.no_script


@pytest.mark.parametrize("cut", [b"*4\r\n:1\r\n:29", b"$3\r\nab", b":1", b""])
def test_a_reply_cut_short_waits_for_more(cut):
    with pytest.raises(_Incomplete):
        parse(cut)


async def test_pipelined_replies_resolve_waiters_in_order_across_packets():
    protocol = _Protocol()

    class Transport:
        def write(self, data: bytes) -> None:
            pass

        def is_closing(self) -> bool:
            return False

    protocol.connection_made(Transport())  # type: ignore[arg-type]
    first, second, third = (protocol.send(b"") for _ in range(3))
    second.cancel()  # a request that gave up: its reply still arrives and is dropped
    protocol.data_received(b"*2\r\n:1\r\n:2\r\n:7\r")
    assert first.result() == [1, 2] and not third.done()
    protocol.data_received(b"\n-ERR boom\r\n")
    with pytest.raises(RespError, match="boom"):
        third.result()
    fourth = protocol.send(b"")
    protocol.connection_lost(None)
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(fourth, 1)


def test_url_forms():
    client = RespClient("redis://user:p%40ss@cache.internal:6380/3")
    assert (client.host, client.port, client.db, client.username, client.password) == (
        "cache.internal",
        6380,
        3,
        "user",
        "p@ss",
    )
    assert RespClient("rediss://:secret@h/0").tls and RespClient("rediss://:secret@h/0").password == "secret"
    assert RespClient("unix:///run/redis.sock?db=2").unix_path == "/run/redis.sock"
    assert RespClient("unix:///run/redis.sock?db=2").db == 2
    with pytest.raises(ValueError):
        RespClient("http://nope")


async def test_deadline_keeps_a_reply_that_arrived_while_the_loop_was_busy():
    """The reply is in before the deadline is checked, but the loop only gets to it late."""
    from spotless.lib.resp import Deadline

    loop = asyncio.get_running_loop()
    reply: asyncio.Future[int] = loop.create_future()

    async def wait() -> int:
        async with Deadline(0.01) as deadline:
            deadline.track(reply)
            return await reply

    task = asyncio.create_task(wait())
    await asyncio.sleep(0)  # the task is now waiting
    loop.call_later(0.005, reply.set_result, 7)  # in time...
    import time

    time.sleep(0.03)  # ...but the loop is blocked past the deadline before it can run anything
    assert await task == 7


async def test_deadline_gives_up_on_a_reply_that_never_comes():
    from spotless.lib.resp import Deadline

    reply: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    started = asyncio.get_running_loop().time()
    with pytest.raises(TimeoutError):
        async with Deadline(0.02) as deadline:
            deadline.track(reply)
            await reply
    assert asyncio.get_running_loop().time() - started < 0.2
