"""The Redis backend: one durable queue shared by every machine that reaches the server.

``open_queue("redis://...")`` lands in ``open_store()``.  The parts, each in a module of
its own:

* ``_store.py``: ``RedisStore``, which composes the parts below (the keys of a queue
  and their roles are documented there);
* ``_identity.py``: the queue's incarnation (epoch), reset detection, the layout,
  eviction-policy and permission checks, what an error reply means;
* ``_wakeups.py``: the pub/sub listener, the change counter and ``wait_changed()``;
* ``_runner.py``: how a script is run, with the head every change sends;
* ``_puts.py``, ``_claims.py``, ``_leases.py``, ``_admin.py``: the operations (put and
  retract; claim and ack; retry, release, fail, extend; counts, shutdown, maxsize, dead
  letters), reading replies with ``_replies.py``;
* ``_scripts.py`` and ``lua/``: the Lua scripts, one a file, and the queue's key names;
* ``_connection.py``: how the store reaches the server (connections, deadlines, retries,
  outcome-unknown errors, batching of concurrent calls, following a Sentinel failover,
  ``WAIT`` for replicas, redirections in a Redis Cluster);
* ``_url.py``: the URL, its options and the checks made when a queue is opened;
* ``_sentinel.py``: ``redis+sentinel://`` URLs and the client whose connections go to
  the primary the sentinels name;
* ``_cluster.py``: ``redis+cluster://`` URLs and the router that knows which primary
  serves the queue's slot (``_hosts.py``: the host lists both kinds of URL give).
"""

from ._scripts import lua_script, queue_keys
from ._store import RedisStore
from ._url import list_queues, open_existing_store, open_store

__all__ = [
    "RedisStore",
    "list_queues",
    "lua_script",
    "open_existing_store",
    "open_store",
    "queue_keys",
]
