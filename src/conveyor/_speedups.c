/* conveyor._speedups: the hot paths of conveyor.Queue in C.
 *
 * QueueCore is the first base of conveyor.Queue.  It holds the queue's state in C
 * fields (the Python code in _queue.py reads and writes them as ordinary attributes
 * through member descriptors) and implements put_nowait, get_nowait, put and get.
 * Everything else -- timeouts, batches, join, shutdown, the storage seam of subclasses
 * -- stays in Python, in conveyor._queue.PurePythonQueue, which is also the whole queue
 * when this module is not built.
 *
 * put() and get() without a timeout return an Op: a small coroutine object that does
 * nothing until it is first resumed (as a coroutine would: an unawaited get() takes no
 * item) and then either finishes at once or parks on a future, exactly as the Python
 * code does.  It implements send/throw/close and is registered as a
 * collections.abc.Coroutine, so asyncio.create_task(), wait_for() and gather() accept
 * it.  A waiter that leaves (cancelled, closed, destroyed) goes through the Python
 * _abandon(), which passes on a wake-up it may have received.
 *
 * The module keeps its configuration (exception classes, messages, deque methods) in
 * static variables set once by _setup(): it is single-phase and not for
 * subinterpreters.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

/* -- configuration, set by _setup() ------------------------------------------------ */

static PyObject *QueueFull;
static PyObject *QueueEmpty;
static PyObject *QueueShutDown;
static PyObject *put_after_shutdown;
static PyObject *get_after_shutdown;
static PyObject *get_running_loop;
static PyObject *future_type;        /* asyncio.Future */
static PyObject *base_create_future; /* asyncio.BaseEventLoop.create_future */
static PyObject *future_done;        /* asyncio.Future's own methods, called directly on */
static PyObject *future_set_result;  /* futures of exactly that type */
static PyObject *future_result;
static PyObject *future_blocking;    /* its _asyncio_future_blocking descriptor */
static PyObject *kw_loop;            /* ("loop",) */
static PyTypeObject *plain_loop_type; /* last loop type whose create_future is the base one */
static PyTypeObject *other_loop_type; /* last loop type with a create_future of its own */
static PyTypeObject *deque_type;
static PyObject *deque_append;
static PyObject *deque_popleft;
static PyTypeObject *heap_type;     /* PriorityQueue's buffer, a list kept as a heap */
static PyObject *heap_push;         /* heapq.heappush and heappop, called on it directly */
static PyObject *heap_pop;
static PyObject *s_append;
static PyObject *s_popleft;

static PyObject *s_create_future;
static PyObject *s_done;
static PyObject *s_set_result;
static PyObject *s_result;
static PyObject *s_blocking;
static PyObject *s_bind;
static PyObject *s_abandon;
static PyObject *s_full;
static PyObject *s_empty;
static PyObject *s_put_timed;
static PyObject *s_get_timed;

/* -- QueueCore --------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *queue;        /* _queue: the buffer (a deque for conveyor.Queue) */
    PyObject *getters;      /* _getters: deque of futures */
    PyObject *putters;      /* _putters */
    PyObject *join_waiters; /* _join_waiters */
    PyObject *loop;         /* _loop: the loop the queue is bound to, or NULL */
    PyObject *maxsize;      /* _maxsize */
    double limit;           /* _limit: put blocks at this size; -1 after shutdown */
    char is_shutdown;       /* _is_shutdown */
    Py_ssize_t got;         /* _got */
    Py_ssize_t dropped;     /* _dropped */
    Py_ssize_t finished;    /* _finished */
    Py_ssize_t peak;        /* _peak */
} QueueCore;

static int
core_traverse(QueueCore *self, visitproc visit, void *arg)
{
    Py_VISIT(self->queue);
    Py_VISIT(self->getters);
    Py_VISIT(self->putters);
    Py_VISIT(self->join_waiters);
    Py_VISIT(self->loop);
    Py_VISIT(self->maxsize);
    return 0;
}

static int
core_clear(QueueCore *self)
{
    Py_CLEAR(self->queue);
    Py_CLEAR(self->getters);
    Py_CLEAR(self->putters);
    Py_CLEAR(self->join_waiters);
    Py_CLEAR(self->loop);
    Py_CLEAR(self->maxsize);
    return 0;
}

static void
core_dealloc(QueueCore *self)
{
    PyObject_GC_UnTrack(self);
    core_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
check_ready(QueueCore *self)
{
    if (self->queue == NULL || self->getters == NULL || self->putters == NULL) {
        /* What the Python version raises when __init__() did not run. */
        PyErr_Format(PyExc_AttributeError, "'%.100s' object has no attribute '%s'",
                     Py_TYPE(self)->tp_name,
                     self->queue == NULL     ? "_queue"
                     : self->getters == NULL ? "_getters"
                                             : "_putters");
        return -1;
    }
    return 0;
}

/* future.done(), future.set_result(arg), future.result(): straight to asyncio.Future's
 * methods for futures of exactly that type, by name for others. */
static inline PyObject *
future_call(PyObject *fut, PyObject *method, PyObject *name, PyObject *arg)
{
    if (Py_IS_TYPE(fut, (PyTypeObject *)future_type)) {
        PyObject *args[2] = {fut, arg};
        return PyObject_Vectorcall(method, args, arg == NULL ? 1 : 2, NULL);
    }
    return arg == NULL ? PyObject_CallMethodNoArgs(fut, name)
                       : PyObject_CallMethodOneArg(fut, name, arg);
}

/* loop.create_future(), without a Python frame when the loop's is BaseEventLoop's (which
 * returns asyncio.Future(loop=loop)).  The two loop types last seen are remembered. */
static PyObject *
new_future(PyObject *loop)
{
    PyTypeObject *type = Py_TYPE(loop);
    if (type != plain_loop_type) {
        if (type != other_loop_type) {
            PyObject *method = PyObject_GetAttr((PyObject *)type, s_create_future);
            if (method == NULL) {
                return NULL;
            }
            int plain = method == base_create_future;
            Py_DECREF(method);
            /* Strong references: a cached pointer must never outlive its type. */
            if (plain) {
                Py_XSETREF(plain_loop_type, (PyTypeObject *)Py_NewRef(type));
            }
            else {
                Py_XSETREF(other_loop_type, (PyTypeObject *)Py_NewRef(type));
            }
        }
        if (type != plain_loop_type) {
            return PyObject_CallMethodNoArgs(loop, s_create_future);
        }
    }
    PyObject *args[1] = {loop};
    return PyObject_Vectorcall(future_type, args, 0, kw_loop);
}

/* What Future.__await__ does before yielding the future to the task. */
static inline int
set_blocking(PyObject *fut)
{
    if (Py_IS_TYPE(fut, (PyTypeObject *)future_type) && future_blocking != Py_None) {
        return Py_TYPE(future_blocking)->tp_descr_set(future_blocking, fut, Py_True);
    }
    return PyObject_SetAttr(fut, s_blocking, Py_True);
}

/* Wake the first waiter of *waiters* that is not done yet: set its result to True. */
static int
wake_one(PyObject *waiters)
{
    while (PyObject_Size(waiters) > 0) {
        PyObject *waiter = PyObject_Vectorcall(deque_popleft, &waiters, 1, NULL);
        if (waiter == NULL) {
            return -1;
        }
        PyObject *done = future_call(waiter, future_done, s_done, NULL);
        if (done == NULL) {
            Py_DECREF(waiter);
            return -1;
        }
        int is_done = PyObject_IsTrue(done);
        Py_DECREF(done);
        if (is_done < 0) {
            Py_DECREF(waiter);
            return -1;
        }
        if (!is_done) {
            PyObject *r = future_call(waiter, future_set_result, s_set_result, Py_True);
            Py_DECREF(waiter);
            if (r == NULL) {
                return -1;
            }
            Py_DECREF(r);
            return 0;
        }
        Py_DECREF(waiter);
    }
    return 0;
}

/* Wake one waiter if any waits. */
static inline int
wake_next(PyObject *waiters)
{
    Py_ssize_t n = PyObject_Size(waiters);
    if (n < 0) {
        return -1;
    }
    return n > 0 ? wake_one(waiters) : 0;
}

/* Append *item*: the caller checked there is room. */
static int
core_append(QueueCore *self, PyObject *item, Py_ssize_t size)
{
    PyObject *r;
    if (Py_IS_TYPE(self->queue, deque_type)) {
        PyObject *args[2] = {self->queue, item};
        r = PyObject_Vectorcall(deque_append, args, 2, NULL);
    }
    else if (Py_IS_TYPE(self->queue, heap_type)) {
        /* What its append() does, without the Python frame. */
        PyObject *args[2] = {self->queue, item};
        r = PyObject_Vectorcall(heap_push, args, 2, NULL);
    }
    else {
        /* A buffer set by a subclass's _init(): its own append(), as in Python. */
        r = PyObject_CallMethodOneArg(self->queue, s_append, item);
    }
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    if (size >= self->peak) {
        self->peak = size + 1;
    }
    return wake_next(self->getters);
}


/* Remove and return the first item: the caller checked there is one. */
static PyObject *
core_popleft(QueueCore *self)
{
    PyObject *item = Py_IS_TYPE(self->queue, deque_type)
                         ? PyObject_Vectorcall(deque_popleft, &self->queue, 1, NULL)
                     : Py_IS_TYPE(self->queue, heap_type)
                         ? PyObject_Vectorcall(heap_pop, &self->queue, 1, NULL)
                         : PyObject_CallMethodNoArgs(self->queue, s_popleft);
    if (item == NULL) {
        return NULL;
    }
    self->got++;
    if (wake_next(self->putters) < 0) {
        Py_DECREF(item);
        return NULL;
    }
    return item;
}

PyDoc_STRVAR(put_nowait_doc,
"put_nowait($self, item, /)\n--\n\n"
"Put an item into the queue without blocking.\n\n"
"Raises:\n"
"    QueueFull: No free slot is immediately available.\n"
"    QueueShutDown: The queue has been shut down.");

static PyObject *
core_put_nowait(QueueCore *self, PyObject *item)
{
    if (check_ready(self) < 0) {
        return NULL;
    }
    Py_ssize_t size = PyObject_Size(self->queue);
    if (size < 0) {
        return NULL;
    }
    if ((double)size >= self->limit) {
        if (self->is_shutdown) {
            PyErr_SetObject(QueueShutDown, put_after_shutdown);
        }
        else {
            PyErr_SetNone(QueueFull);
        }
        return NULL;
    }
    if (core_append(self, item, size) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(get_nowait_doc,
"get_nowait($self, /)\n--\n\n"
"Remove and return an item if one is immediately available.\n\n"
"Raises:\n"
"    QueueEmpty: The queue is empty.\n"
"    QueueShutDown: The queue has been shut down and is empty.");

static PyObject *
core_get_nowait(QueueCore *self, PyObject *Py_UNUSED(ignored))
{
    if (check_ready(self) < 0) {
        return NULL;
    }
    Py_ssize_t size = PyObject_Size(self->queue);
    if (size < 0) {
        return NULL;
    }
    if (size == 0) {
        if (self->is_shutdown) {
            PyErr_SetObject(QueueShutDown, get_after_shutdown);
        }
        else {
            PyErr_SetNone(QueueEmpty);
        }
        return NULL;
    }
    return core_popleft(self);
}

/* -- Op: the coroutine returned by put() and get() ---------------------------------- */

enum { OP_PUT, OP_GET };
enum { ST_INIT, ST_RUNNING, ST_WAITING, ST_DONE };

typedef struct {
    PyObject_HEAD
    QueueCore *queue;
    PyObject *item;   /* put: the item until it is in the buffer */
    PyObject *waiter; /* the future parked on while ST_WAITING */
    char kind;
    char state;
} Op;

static PyTypeObject OpType;

/* Finished ops kept for reuse: put() and get() allocate one per call. */
#define OP_FREELIST_SIZE 64
static Op *op_freelist[OP_FREELIST_SIZE];
static int op_numfree;

static int
op_traverse(Op *op, visitproc visit, void *arg)
{
    Py_VISIT(op->queue);
    Py_VISIT(op->item);
    Py_VISIT(op->waiter);
    return 0;
}

static int
op_clear(Op *op)
{
    Py_CLEAR(op->queue);
    Py_CLEAR(op->item);
    Py_CLEAR(op->waiter);
    return 0;
}

static void
op_finish(Op *op)
{
    op->state = ST_DONE;
    Py_CLEAR(op->item);
    Py_CLEAR(op->waiter);
    /* As a finished coroutine drops its frame: a done task keeping its op must not keep
     * the queue (and the items in it) alive. */
    Py_CLEAR(op->queue);
}

/* Take the exception being raised, normalized, and clear it (NULL if none). */
static PyObject *
take_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) {
        return NULL;
    }
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL) {
        PyException_SetTraceback(value, tb);
        Py_DECREF(tb);
    }
    Py_DECREF(type);
    return value;
#endif
}

/* Raise *exc* again: a reference from take_exception(), or NULL for none. */
static void
restore_exception(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    if (exc != NULL) {
        PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
    }
#endif
}

/* An error leaves the coroutine: as from an async def (PEP 479), a StopIteration becomes
 * a RuntimeError; a task would otherwise take it for the coroutine's return. */
static void
stop_iteration_to_runtime_error(void)
{
    if (!PyErr_ExceptionMatches(PyExc_StopIteration)) {
        return;
    }
    PyObject *stop = take_exception();
    PyErr_SetString(PyExc_RuntimeError, "coroutine raised StopIteration");
    PyObject *exc = take_exception();
    PyException_SetCause(exc, Py_NewRef(stop));
    PyException_SetContext(exc, stop);
    restore_exception(exc);
}

/* The waiter leaves before its operation is done (an exception was thrown in, the
 * coroutine is closed or destroyed): queue._abandon() takes it off the waiters and
 * passes on a wake-up it got.  Keeps an exception that is already set. */
static int
op_leave(Op *op)
{
    QueueCore *q = op->queue;
    /* The exception being raised is the one handled while _abandon() runs, as in the
     * except block of the Python version: an error there chains to it and replaces it. */
    PyObject *exc = take_exception();
    PyObject *htype = NULL, *hvalue = NULL, *htb = NULL;
    if (exc != NULL) {
        PyErr_GetExcInfo(&htype, &hvalue, &htb);
        PyErr_SetExcInfo(Py_NewRef((PyObject *)Py_TYPE(exc)), Py_NewRef(exc),
                         PyException_GetTraceback(exc));
    }
    PyObject *waiters = op->kind == OP_PUT ? q->putters : q->getters;
    PyObject *blocked = PyObject_GetAttr((PyObject *)q, op->kind == OP_PUT ? s_full : s_empty);
    PyObject *r = NULL;
    if (blocked != NULL) {
        /* (A NULL argument would end the argument list.) */
        r = PyObject_CallMethodObjArgs((PyObject *)q, s_abandon,
                                       waiters != NULL ? waiters : Py_None, op->waiter,
                                       blocked, NULL);
        Py_DECREF(blocked);
    }
    if (exc != NULL) {
        PyErr_SetExcInfo(htype, hvalue, htb);
    }
    op_finish(op);
    if (r == NULL) {
        Py_XDECREF(exc);
        return -1;
    }
    Py_DECREF(r);
    restore_exception(exc);
    return 0;
}

/* Run until the operation finishes (PYGEN_RETURN), parks (PYGEN_NEXT, yielding the
 * future) or fails (PYGEN_ERROR). */
static PySendResult
op_run(Op *op, PyObject **presult)
{
    QueueCore *q = op->queue;
    *presult = NULL;
    if (check_ready(q) < 0) {
        goto error;
    }
    Py_ssize_t size = PyObject_Size(q->queue);
    if (size < 0) {
        goto error;
    }
    PyObject *waiters;
    if (op->kind == OP_PUT) {
        if (q->is_shutdown) {
            PyErr_SetObject(QueueShutDown, put_after_shutdown);
            goto error;
        }
        if ((double)size < q->limit) {
            if (core_append(q, op->item, size) < 0) {
                goto error;
            }
            op_finish(op);
            *presult = Py_NewRef(Py_None);
            return PYGEN_RETURN;
        }
        waiters = q->putters;
    }
    else {
        if (size > 0) {
            PyObject *item = core_popleft(q);
            if (item == NULL) {
                goto error;
            }
            op_finish(op);
            *presult = item;
            return PYGEN_RETURN;
        }
        if (q->is_shutdown) {
            PyErr_SetObject(QueueShutDown, get_after_shutdown);
            goto error;
        }
        waiters = q->getters;
    }

    /* Park on a new future in the waiters. */
    PyObject *loop = PyObject_Vectorcall(get_running_loop, NULL, 0, NULL);
    if (loop == NULL) {
        goto error;
    }
    if (loop != q->loop) {
        PyObject *r = PyObject_CallMethodOneArg((PyObject *)q, s_bind, loop);
        if (r == NULL) {
            Py_DECREF(loop);
            goto error;
        }
        Py_DECREF(r);
    }
    PyObject *waiter = new_future(loop);
    Py_DECREF(loop);
    if (waiter == NULL) {
        goto error;
    }
    if (set_blocking(waiter) < 0) {
        Py_DECREF(waiter);
        goto error;
    }
    PyObject *args[2] = {waiters, waiter};
    PyObject *r = PyObject_Vectorcall(deque_append, args, 2, NULL);
    if (r == NULL) {
        Py_DECREF(waiter);
        goto error;
    }
    Py_DECREF(r);
    op->waiter = Py_NewRef(waiter);
    op->state = ST_WAITING;
    *presult = waiter;
    return PYGEN_NEXT;

error:
    op_finish(op);
    stop_iteration_to_runtime_error();
    return PYGEN_ERROR;
}

/* The waiter's result() raised where the op waits: CancelledError, as it was cancelled,
 * or an error because it is not done (the op was resumed by something other than the
 * waiter's wake-up), which Future.__await__ reports as below.  The op leaves. */
static PySendResult
op_resume_failed(Op *op)
{
    PyObject *exc = take_exception();
    PyObject *done = future_call(op->waiter, future_done, s_done, NULL);
    int is_done = done == NULL ? -1 : PyObject_IsTrue(done);
    Py_XDECREF(done);
    if (is_done == 0) {
        Py_XDECREF(exc);
        PyErr_SetString(PyExc_RuntimeError, "await wasn't used with future");
    }
    else if (is_done > 0) {
        restore_exception(exc);
    }
    else {
        Py_XDECREF(exc); /* done()'s own error is raised instead */
    }
    op_leave(op);
    stop_iteration_to_runtime_error();
    return PYGEN_ERROR;
}

static PySendResult
op_am_send(Op *op, PyObject *arg, PyObject **presult)
{
    *presult = NULL;
    switch (op->state) {
    case ST_INIT:
        if (arg != Py_None) {
            PyErr_SetString(PyExc_TypeError,
                            "can't send non-None value to a just-started coroutine");
            return PYGEN_ERROR;
        }
        op->state = ST_RUNNING;
        return op_run(op, presult);
    case ST_WAITING: {
        /* Resumed by the task: the future is done; its result() raises if it was
         * cancelled, as awaiting it would. */
        PyObject *r = future_call(op->waiter, future_result, s_result, NULL);
        if (r == NULL) {
            return op_resume_failed(op);
        }
        Py_DECREF(r);
        Py_CLEAR(op->waiter);
        op->state = ST_RUNNING;
        return op_run(op, presult);
    }
    case ST_RUNNING:
        /* Re-entered from Python code it runs (a subclass's _bind(), say). */
        PyErr_SetString(PyExc_ValueError, "coroutine already executing");
        return PYGEN_ERROR;
    default:
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
        return PYGEN_ERROR;
    }
}

static int
set_stop_iteration(PyObject *value)
{
    if (value == Py_None) {
        PyErr_SetNone(PyExc_StopIteration);
        return 0;
    }
    /* StopIteration(value), built explicitly: a tuple would otherwise become its args. */
    PyObject *exc = PyObject_CallOneArg(PyExc_StopIteration, value);
    if (exc == NULL) {
        return -1;
    }
    PyErr_SetObject(PyExc_StopIteration, exc);
    Py_DECREF(exc);
    return 0;
}

static PyObject *
op_send(Op *op, PyObject *arg)
{
    PyObject *result;
    switch (op_am_send(op, arg, &result)) {
    case PYGEN_RETURN:
        set_stop_iteration(result);
        Py_DECREF(result);
        return NULL;
    case PYGEN_NEXT:
        return result;
    default:
        return NULL;
    }
}

static PyObject *
op_iternext(Op *op)
{
    return op_send(op, Py_None);
}

/* Raise what throw(typ[, val[, tb]]) is given, checked as coroutine.throw() checks it. */
static int
set_thrown(PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *typ = args[0];
    PyObject *val = nargs > 1 ? args[1] : Py_None;
    PyObject *tb = nargs > 2 ? args[2] : Py_None;
    if (tb != Py_None && !PyTraceBack_Check(tb)) {
        PyErr_SetString(PyExc_TypeError, "throw() third argument must be a traceback object");
        return -1;
    }
    if (PyExceptionInstance_Check(typ)) {
        if (val != Py_None) {
            PyErr_SetString(PyExc_TypeError, "instance exception may not have a separate value");
            return -1;
        }
        PyErr_SetObject((PyObject *)Py_TYPE(typ), typ);
    }
    else if (PyExceptionClass_Check(typ)) {
        PyErr_SetObject(typ, val);
    }
    else {
        PyErr_Format(PyExc_TypeError,
                     "exceptions must be classes or instances deriving from BaseException, "
                     "not %s",
                     Py_TYPE(typ)->tp_name);
        return -1;
    }
    /* Normalized, with its traceback (an instance keeps its own unless tb is given). */
    PyObject *exc = take_exception();
    if (tb != Py_None) {
        PyException_SetTraceback(exc, tb);
    }
    restore_exception(exc);
    return 0;
}

static PyObject *
op_throw(Op *op, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 3) {
        PyErr_Format(PyExc_TypeError, nargs < 1 ? "throw expected at least 1 argument, got %zd"
                                                : "throw expected at most 3 arguments, got %zd",
                     nargs);
        return NULL;
    }
#if PY_VERSION_HEX >= 0x030C0000
    if (nargs > 1 && PyErr_WarnEx(PyExc_DeprecationWarning,
                                  "the (type, exc, tb) signature of throw() is deprecated, "
                                  "use the single-arg signature instead.",
                                  1) < 0) {
        return NULL;
    }
#endif
    if (op->state == ST_RUNNING) {
        PyErr_SetString(PyExc_ValueError, "coroutine already executing");
        return NULL;
    }
    if (set_thrown(args, nargs) < 0) {
        /* Where the op waits, the TypeError is raised there (by Future's iterator in
         * the Python version): the waiter leaves. */
        if (op->state == ST_WAITING) {
            op_leave(op);
        }
        return NULL;
    }
    switch (op->state) {
    case ST_WAITING:
        /* Raised where the op waits: the waiter leaves the queue's waiters first. */
        op_leave(op);
        stop_iteration_to_runtime_error();
        break;
    case ST_INIT:
        op_finish(op);
#if PY_VERSION_HEX < 0x030C0000
        /* Before 3.12 an unstarted coroutine runs its frame to raise it. */
        stop_iteration_to_runtime_error();
#endif
        break;
    default:
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
    }
    return NULL;
}

static PyObject *
op_close(Op *op, PyObject *Py_UNUSED(ignored))
{
    switch (op->state) {
    case ST_RUNNING:
        PyErr_SetString(PyExc_ValueError, "coroutine already executing");
        return NULL;
    case ST_WAITING:
        /* GeneratorExit raised where the op waits, as coroutine.close() does: an error
         * in _abandon() chains to it; GeneratorExit itself is swallowed. */
        PyErr_SetNone(PyExc_GeneratorExit);
        if (op_leave(op) < 0) {
            stop_iteration_to_runtime_error();
            if (!PyErr_ExceptionMatches(PyExc_GeneratorExit)) {
                return NULL;
            }
        }
        PyErr_Clear();
        break;
    default:
        op_finish(op);
    }
    Py_RETURN_NONE;
}

static PyObject *
op_await(Op *op)
{
    return Py_NewRef(op);
}

static const char *
op_name(Op *op)
{
    return op->kind == OP_PUT ? "put" : "get";
}

static void
op_finalize(Op *op)
{
    if (op->state != ST_WAITING && op->state != ST_INIT) {
        return;
    }
    PyObject *exc = take_exception();
    if (op->state == ST_WAITING) {
        PyObject *r = op_close(op, NULL);
        if (r == NULL) {
            PyErr_WriteUnraisable((PyObject *)op);
        }
        Py_XDECREF(r);
    }
    else {
        op->state = ST_DONE;
        /* As for a coroutine: put() or get() that is never awaited does nothing. */
        if (PyErr_WarnFormat(PyExc_RuntimeWarning, 1, "coroutine 'Queue.%s' was never awaited",
                             op_name(op)) < 0) {
            PyErr_WriteUnraisable((PyObject *)op);
        }
    }
    restore_exception(exc);
}

static void
op_dealloc(Op *op)
{
    if (op->state == ST_WAITING || op->state == ST_INIT) {
        if (PyObject_CallFinalizerFromDealloc((PyObject *)op) < 0) {
            return; /* resurrected */
        }
    }
    PyObject_GC_UnTrack(op);
    op_clear(op);
    /* Kept for reuse unless finalized once: a reused op's finalizer must run again. */
    if (op_numfree < OP_FREELIST_SIZE && !PyObject_GC_IsFinalized((PyObject *)op)) {
        op_freelist[op_numfree++] = op;
        return;
    }
    PyObject_GC_Del(op);
}

static PyObject *
op_get_name(Op *op, void *Py_UNUSED(closure))
{
    return PyUnicode_FromString(op_name(op));
}

static PyObject *
op_get_qualname(Op *op, void *Py_UNUSED(closure))
{
    return PyUnicode_FromFormat("Queue.%s", op_name(op));
}

static PyObject *
op_get_running(Op *op, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(op->state == ST_RUNNING);
}

static PyObject *
op_get_suspended(Op *op, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(op->state == ST_WAITING);
}

static PyObject *
op_get_await(Op *op, void *Py_UNUSED(closure))
{
    return Py_NewRef(op->waiter != NULL ? op->waiter : Py_None);
}

static PyObject *
op_get_none(Op *op, void *Py_UNUSED(closure))
{
    Py_RETURN_NONE;
}

static PyObject *
op_repr(Op *op)
{
    return PyUnicode_FromFormat("<coroutine object Queue.%s at %p>", op_name(op), op);
}

static PyGetSetDef op_getset[] = {
    {"__name__", (getter)op_get_name, NULL, NULL, NULL},
    {"__qualname__", (getter)op_get_qualname, NULL, NULL, NULL},
    {"cr_running", (getter)op_get_running, NULL, NULL, NULL},
    {"cr_suspended", (getter)op_get_suspended, NULL, NULL, NULL},
    {"cr_await", (getter)op_get_await, NULL, NULL, NULL},
    {"cr_frame", (getter)op_get_none, NULL, NULL, NULL},
    {"cr_code", (getter)op_get_none, NULL, NULL, NULL},
    {NULL},
};

static PyMethodDef op_methods[] = {
    {"send", (PyCFunction)op_send, METH_O, "send(value) -> next yielded value or StopIteration"},
    {"throw", (PyCFunction)(void (*)(void))op_throw, METH_FASTCALL,
     "throw(value) -> raise the exception where the coroutine waits"},
    {"close", (PyCFunction)op_close, METH_NOARGS, "close() -> leave the queue if waiting"},
    {NULL},
};

static PyAsyncMethods op_as_async = {
    .am_await = (unaryfunc)op_await,
    .am_send = (sendfunc)op_am_send,
};

static PyTypeObject OpType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "conveyor._speedups.QueueOperation",
    .tp_doc = "The coroutine returned by Queue.put() and Queue.get().",
    .tp_basicsize = sizeof(Op),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)op_dealloc,
    .tp_finalize = (destructor)op_finalize,
    .tp_traverse = (traverseproc)op_traverse,
    .tp_clear = (inquiry)op_clear,
    .tp_repr = (reprfunc)op_repr,
    .tp_as_async = &op_as_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)op_iternext,
    .tp_methods = op_methods,
    .tp_getset = op_getset,
};

static PyObject *
op_new(QueueCore *queue, int kind, PyObject *item)
{
    Op *op;
    if (op_numfree > 0) {
        op = op_freelist[--op_numfree];
        PyObject_Init((PyObject *)op, &OpType);
    }
    else {
        op = PyObject_GC_New(Op, &OpType);
        if (op == NULL) {
            return NULL;
        }
    }
    op->queue = (QueueCore *)Py_NewRef(queue);
    op->item = Py_XNewRef(item);
    op->waiter = NULL;
    op->kind = (char)kind;
    op->state = ST_INIT;
    PyObject_GC_Track(op);
    return (PyObject *)op;
}

/* -- put() and get() ---------------------------------------------------------------- */

/* Parse (positional..., keywords) against *names*; the first *required* are required. */
static int
parse_args(const char *func, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
           const char *const *names, Py_ssize_t count, Py_ssize_t required, PyObject **out)
{
    if (nargs > count) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %zd arguments (%zd given)", func,
                     count, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        out[i] = i < nargs ? args[i] : NULL;
    }
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        Py_ssize_t i = 0;
        while (i < count && PyUnicode_CompareWithASCIIString(key, names[i]) != 0) {
            i++;
        }
        if (i == count) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", func,
                         key);
            return -1;
        }
        if (out[i] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", func,
                         names[i]);
            return -1;
        }
        out[i] = args[nargs + k];
    }
    for (Py_ssize_t i = 0; i < required; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", func, names[i]);
            return -1;
        }
    }
    return 0;
}

PyDoc_STRVAR(put_doc,
"put($self, /, item, timeout=None)\n--\n\n"
"Put an item into the queue, waiting for a free slot if it is full.\n\n"
"A coroutine: nothing happens until it is awaited.\n\n"
"Args:\n"
"    item: The item to add.\n"
"    timeout: Seconds to wait for a free slot; ``None`` (the default) waits forever.\n\n"
"Raises:\n"
"    TimeoutError: No slot became free within *timeout*; the item was not put.\n"
"    QueueShutDown: The queue has been shut down, before or while waiting.");

static PyObject *
core_put(QueueCore *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"item", "timeout"};
    PyObject *parsed[2];
    if (parse_args("put", args, nargs, kwnames, names, 2, 1, parsed) < 0) {
        return NULL;
    }
    if (parsed[1] != NULL && parsed[1] != Py_None) {
        return PyObject_CallMethodObjArgs((PyObject *)self, s_put_timed, parsed[0], parsed[1],
                                          NULL);
    }
    return op_new(self, OP_PUT, parsed[0]);
}

PyDoc_STRVAR(get_doc,
"get($self, /, timeout=None)\n--\n\n"
"Remove and return an item, waiting until one is available.\n\n"
"A coroutine: nothing is removed until it is awaited.\n\n"
"Args:\n"
"    timeout: Seconds to wait for an item; ``None`` (the default) waits forever.\n\n"
"Raises:\n"
"    TimeoutError: No item arrived within *timeout*; nothing was removed.\n"
"    QueueShutDown: The queue has been shut down and is empty, or shut down\n"
"        with ``immediate=True``.");

static PyObject *
core_get(QueueCore *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"timeout"};
    PyObject *parsed[1];
    if (parse_args("get", args, nargs, kwnames, names, 1, 0, parsed) < 0) {
        return NULL;
    }
    if (parsed[0] != NULL && parsed[0] != Py_None) {
        return PyObject_CallMethodOneArg((PyObject *)self, s_get_timed, parsed[0]);
    }
    return op_new(self, OP_GET, NULL);
}

static PyMethodDef core_methods[] = {
    {"put_nowait", (PyCFunction)core_put_nowait, METH_O, put_nowait_doc},
    {"get_nowait", (PyCFunction)core_get_nowait, METH_NOARGS, get_nowait_doc},
    {"put", (PyCFunction)(void (*)(void))core_put, METH_FASTCALL | METH_KEYWORDS, put_doc},
    {"get", (PyCFunction)(void (*)(void))core_get, METH_FASTCALL | METH_KEYWORDS, get_doc},
    {NULL},
};

static PyMemberDef core_members[] = {
    /* _EX: unset (before __init__, or deleted), reading one raises AttributeError. */
    {"_queue", T_OBJECT_EX, offsetof(QueueCore, queue), 0, NULL},
    {"_getters", T_OBJECT_EX, offsetof(QueueCore, getters), 0, NULL},
    {"_putters", T_OBJECT_EX, offsetof(QueueCore, putters), 0, NULL},
    {"_join_waiters", T_OBJECT_EX, offsetof(QueueCore, join_waiters), 0, NULL},
    {"_loop", T_OBJECT_EX, offsetof(QueueCore, loop), 0, NULL},
    {"_maxsize", T_OBJECT_EX, offsetof(QueueCore, maxsize), 0, NULL},
    {"_is_shutdown", T_BOOL, offsetof(QueueCore, is_shutdown), 0, NULL},
    {"_got", T_PYSSIZET, offsetof(QueueCore, got), 0, NULL},
    {"_dropped", T_PYSSIZET, offsetof(QueueCore, dropped), 0, NULL},
    {"_finished", T_PYSSIZET, offsetof(QueueCore, finished), 0, NULL},
    {"_peak", T_PYSSIZET, offsetof(QueueCore, peak), 0, NULL},
    {NULL},
};

/* _limit as a member would be T_DOUBLE, which rejects an int beyond a double's range:
 * Queue(10**400) is as unbounded as in Python. */
static PyObject *
core_get_limit(QueueCore *self, void *Py_UNUSED(closure))
{
    return PyFloat_FromDouble(self->limit);
}

static int
core_set_limit(QueueCore *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_TypeError, "can't delete numeric/char attribute");
        return -1;
    }
    double limit = PyFloat_AsDouble(value);
    if (limit == -1.0 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
            return -1;
        }
        PyErr_Clear();
        PyObject *zero = PyLong_FromLong(0);
        int positive = zero == NULL ? -1 : PyObject_RichCompareBool(value, zero, Py_GT);
        Py_XDECREF(zero);
        if (positive < 0) {
            return -1;
        }
        limit = positive ? Py_HUGE_VAL : -Py_HUGE_VAL;
    }
    self->limit = limit;
    return 0;
}

static PyGetSetDef core_getset[] = {
    {"_limit", (getter)core_get_limit, (setter)core_set_limit, NULL, NULL},
    {NULL},
};

static PyTypeObject QueueCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "conveyor._speedups.QueueCore",
    .tp_doc = "State and hot paths of conveyor.Queue (its first base class).",
    .tp_basicsize = sizeof(QueueCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)core_dealloc,
    .tp_traverse = (traverseproc)core_traverse,
    .tp_clear = (inquiry)core_clear,
    .tp_methods = core_methods,
    .tp_members = core_members,
    .tp_getset = core_getset,
};

/* -- module ------------------------------------------------------------------------- */

PyDoc_STRVAR(setup_doc,
"_setup(QueueFull, QueueEmpty, QueueShutDown, put_after_shutdown, get_after_shutdown, "
"get_running_loop, Future, BaseEventLoop, heap_type, /)\n--\n\n"
"Give the module the exception classes and messages it raises, and the type of "
"PriorityQueue's buffer (called once by conveyor._queue).");

static PyObject *
module_setup(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "_setup() takes 9 arguments");
        return NULL;
    }
    if (!PyType_Check(args[8]) || !PyType_IsSubtype((PyTypeObject *)args[8], &PyList_Type)) {
        PyErr_SetString(PyExc_TypeError, "_setup(): heap_type must be a subclass of list");
        return NULL;
    }
    if (!PyType_Check(args[6])) {
        PyErr_SetString(PyExc_TypeError, "_setup(): Future must be a type");
        return NULL;
    }
    PyObject *fut = args[6];
    PyObject *done = PyObject_GetAttrString(fut, "done");
    PyObject *set_result = PyObject_GetAttrString(fut, "set_result");
    PyObject *result = PyObject_GetAttrString(fut, "result");
    PyObject *blocking = PyObject_GetAttrString(fut, "_asyncio_future_blocking");
    PyObject *create = PyObject_GetAttrString(args[7], "create_future");
    if (done == NULL || set_result == NULL || result == NULL || blocking == NULL ||
        create == NULL) {
        Py_XDECREF(done);
        Py_XDECREF(set_result);
        Py_XDECREF(result);
        Py_XDECREF(blocking);
        Py_XDECREF(create);
        return NULL;
    }
    if (Py_TYPE(blocking)->tp_descr_set == NULL) {
        /* A Python Future keeps it in the instance: set it by name. */
        Py_SETREF(blocking, Py_NewRef(Py_None));
    }
    Py_XSETREF(future_type, Py_NewRef(fut));
    Py_XSETREF(future_done, done);
    Py_XSETREF(future_set_result, set_result);
    Py_XSETREF(future_result, result);
    Py_XSETREF(future_blocking, blocking);
    Py_XSETREF(base_create_future, create);
    Py_CLEAR(plain_loop_type);
    Py_CLEAR(other_loop_type);
    Py_XSETREF(QueueFull, Py_NewRef(args[0]));
    Py_XSETREF(QueueEmpty, Py_NewRef(args[1]));
    Py_XSETREF(QueueShutDown, Py_NewRef(args[2]));
    Py_XSETREF(put_after_shutdown, Py_NewRef(args[3]));
    Py_XSETREF(get_after_shutdown, Py_NewRef(args[4]));
    Py_XSETREF(get_running_loop, Py_NewRef(args[5]));
    Py_XSETREF(heap_type, (PyTypeObject *)Py_NewRef(args[8]));
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"_setup", (PyCFunction)(void (*)(void))module_setup, METH_FASTCALL, setup_doc},
    {NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "conveyor._speedups",
    .m_doc = "The hot paths of conveyor.Queue in C (optional; _queue.py is the fallback).",
    .m_size = -1,
    .m_methods = module_methods,
};

static int
intern(PyObject **slot, const char *name)
{
    *slot = PyUnicode_InternFromString(name);
    return *slot == NULL ? -1 : 0;
}

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (intern(&s_create_future, "create_future") < 0 || intern(&s_done, "done") < 0 ||
        intern(&s_set_result, "set_result") < 0 || intern(&s_result, "result") < 0 ||
        intern(&s_blocking, "_asyncio_future_blocking") < 0 || intern(&s_bind, "_bind") < 0 ||
        intern(&s_abandon, "_abandon") < 0 || intern(&s_full, "full") < 0 ||
        intern(&s_empty, "empty") < 0 || intern(&s_put_timed, "_put_timed") < 0 ||
        intern(&s_get_timed, "_get_timed") < 0 || intern(&s_append, "append") < 0 ||
        intern(&s_popleft, "popleft") < 0) {
        return NULL;
    }
    kw_loop = Py_BuildValue("(s)", "loop");
    if (kw_loop == NULL) {
        return NULL;
    }
    PyObject *collections = PyImport_ImportModule("collections");
    if (collections == NULL) {
        return NULL;
    }
    PyObject *deque = PyObject_GetAttrString(collections, "deque");
    Py_DECREF(collections);
    if (deque == NULL) {
        return NULL;
    }
    if (!PyType_Check(deque)) {
        Py_DECREF(deque);
        PyErr_SetString(PyExc_TypeError, "collections.deque is not a type");
        return NULL;
    }
    deque_type = (PyTypeObject *)deque;
    deque_append = PyObject_GetAttrString(deque, "append");
    deque_popleft = PyObject_GetAttrString(deque, "popleft");
    if (deque_append == NULL || deque_popleft == NULL) {
        return NULL;
    }
    PyObject *heapq = PyImport_ImportModule("heapq");
    if (heapq == NULL) {
        return NULL;
    }
    heap_push = PyObject_GetAttrString(heapq, "heappush");
    heap_pop = PyObject_GetAttrString(heapq, "heappop");
    Py_DECREF(heapq);
    if (heap_push == NULL || heap_pop == NULL) {
        return NULL;
    }
    if (PyType_Ready(&QueueCoreType) < 0 || PyType_Ready(&OpType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObject(module, "QueueCore", Py_NewRef(&QueueCoreType)) < 0 ||
        PyModule_AddObject(module, "QueueOperation", Py_NewRef(&OpType)) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
