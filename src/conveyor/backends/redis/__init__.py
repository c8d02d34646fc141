"""The Redis backend: one durable queue shared by every machine that reaches the server.

``open_queue("redis://...")`` lands in ``open_store()``.  The parts, each in a module of
its own:

* ``_store.py``: ``RedisStore``, what the queue's operations mean in Redis (the keys
  of a queue and their roles are documented there);
* ``_scripts.py`` and ``lua/``: the Lua scripts, one a file, and the queue's key names;
* ``_connection.py``: how the store reaches the server (connections, deadlines, retries,
  outcome-unknown errors, batching of concurrent calls): a Sentinel or Cluster
  connection would replace this part under the same store;
* ``_url.py``: the URL, its options and the checks made when a queue is opened.
"""

from ._scripts import lua_script, queue_keys
from ._store import RedisStore
from ._url import open_store

__all__ = ["RedisStore", "lua_script", "open_store", "queue_keys"]
