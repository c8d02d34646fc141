"""The Redis store's Lua scripts, as files: every one compiles on a real server.

A syntax error in a script would otherwise show only when its operation first runs, in
production; here every file, with the parts it includes, is loaded with ``SCRIPT LOAD``.
"""

from __future__ import annotations

import importlib.resources
from typing import Any

import pytest
import redis

from conveyor.backends.redis import lua_script
from tests.backends.redis_backend import RedisServer, redis_server

__all__ = ["redis_server"]

SCRIPTS = sorted(
    path.name.removesuffix(".lua")
    for path in importlib.resources.files("conveyor.backends.redis").joinpath("lua").iterdir()
    if path.name.endswith(".lua")
)


def test_the_scripts_ship_as_files() -> None:
    assert {"prelude", "put", "claim", "ack", "retract", "counts"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_compiles(name: str, redis_server: RedisServer) -> None:
    source = lua_script(name)
    assert "$LEASED_PIN$" not in source
    client: Any = redis.Redis(host="127.0.0.1", port=redis_server.port)  # stubs vary by version
    try:
        sha = client.script_load(source)
        assert client.script_exists(sha) == [True]
    finally:
        client.close()


def test_a_script_with_a_syntax_error_is_refused_by_the_server(
    redis_server: RedisServer,
) -> None:
    # What the test above relies on: SCRIPT LOAD compiles, and says where it failed.
    client: Any = redis.Redis(host="127.0.0.1", port=redis_server.port)  # stubs vary by version
    try:
        with pytest.raises(redis.ResponseError, match="user_script"):
            client.script_load(lua_script("put") + "\nif then end\n")
    finally:
        client.close()
