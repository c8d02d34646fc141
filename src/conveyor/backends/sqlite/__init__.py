"""The SQLite backend: durable queues shared by the processes of one machine, in one file.

URL: ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (the SQLAlchemy
convention: the path is what follows the third slash).  Many named queues share one file;
the file and its schema are created on first use.

Durability (option ``durability``): the file is in WAL mode.

* ``"process"`` (the default, ``synchronous=NORMAL``): a committed ``put``/``ack`` survives
  the crash or kill of any process; a power loss or OS crash may lose the last commits
  (never corrupts the file).
* ``"power"`` (``synchronous=FULL``): every commit is flushed to the disk before it
  returns, so it also survives a power loss, at a large cost in speed.

``open_queue("sqlite://...")`` lands in ``open_store()``.  The parts, each in a module of
its own:

* ``_store.py``: ``SQLiteStore``, the ``Store`` interface: it sends each operation to the
  store's worker thread (``backends/_worker.py``), to run in one transaction;
* ``_wakeups.py``: waking the tasks that wait for a change, made in this process or
  another;
* ``_operations.py``: the SQL of each operation, one function on a connection each, and
  the receipts' format;
* ``_connection.py``: the connection on the worker thread: opening, transactions, lock
  retries, a full disk, a file replaced under the store;
* ``_schema.py``: the tables, their version, migrations, and the checks that leave a
  foreign or newer file untouched;
* ``_errors.py``: what SQLite's errors mean to a user;
* ``_url.py``: the URL and its options.
"""

from ._schema import SCHEMA_VERSION
from ._store import SQLiteStore
from ._url import list_queues, open_existing_store, open_store

__all__ = ["SCHEMA_VERSION", "SQLiteStore", "list_queues", "open_existing_store", "open_store"]
