/*
 * UuidIds: encoders.RecordIds' id generator in C, part of destination_s3._speedups.
 *
 * UuidIds(random_bytes)() returns the same ids as encoders._uuid4_blocks(random_bytes) given the
 * same random bytes: version-4 UUIDs as 36 ASCII bytes, 106 random bits drawn from
 * random_bytes(14) (os.urandom) for each block of 65,536 ids, and the id's number within the
 * block in the last four hex digits. The Python generator cost a frame resumption and a
 * concatenation per record, about a tenth of the main thread's time per JSONL record.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "_speedups.h"

#define BLOCK_IDS 65536
#define RANDOM_BYTES 14
#define PREFIX_LENGTH 32
#define ID_LENGTH 36

typedef struct {
    PyObject_HEAD
    PyObject *random_bytes;
    char prefix[PREFIX_LENGTH];
    long next; /* the next id's number in the block; BLOCK_IDS: a new block is due */
} UuidIds;

static const char HEX[] = "0123456789abcdef";

/* h[:8]-h[8:12]-4h[13:16]-{89ab}[int(h[16], 16) & 3]h[17:20]-h[20:28], h the random bytes' hex. */
static int
new_block(UuidIds *self)
{
    PyObject *random = PyObject_CallFunction(self->random_bytes, "n", (Py_ssize_t)RANDOM_BYTES);
    if (random == NULL) {
        return -1;
    }
    if (!PyBytes_Check(random) || PyBytes_GET_SIZE(random) != RANDOM_BYTES) {
        PyErr_SetString(PyExc_TypeError, "random_bytes(14) must return 14 bytes");
        Py_DECREF(random);
        return -1;
    }
    const unsigned char *bytes = (const unsigned char *)PyBytes_AS_STRING(random);
    char h[2 * RANDOM_BYTES];
    for (int i = 0; i < RANDOM_BYTES; i++) {
        h[2 * i] = HEX[bytes[i] >> 4];
        h[2 * i + 1] = HEX[bytes[i] & 15];
    }
    char *p = self->prefix;
    memcpy(p, h, 8);
    p += 8;
    *p++ = '-';
    memcpy(p, h + 8, 4);
    p += 4;
    *p++ = '-';
    *p++ = '4';
    memcpy(p, h + 13, 3);
    p += 3;
    *p++ = '-';
    *p++ = "89ab"[(bytes[8] >> 4) & 3]; /* h[16] is the high digit of byte 8 */
    memcpy(p, h + 17, 3);
    p += 3;
    *p++ = '-';
    memcpy(p, h + 20, 8);
    Py_DECREF(random);
    self->next = 0;
    return 0;
}

PyObject *
next_record_id(PyObject *ids)
{
    if (!Py_IS_TYPE(ids, &UuidIdsType)) {
        return PyObject_CallNoArgs(ids);
    }
    UuidIds *self = (UuidIds *)ids;
    if (self->random_bytes == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "UuidIds was not initialised");
        return NULL;
    }
    if (self->next >= BLOCK_IDS && new_block(self) < 0) {
        return NULL;
    }
    PyObject *id = PyBytes_FromStringAndSize(NULL, ID_LENGTH);
    if (id == NULL) {
        return NULL;
    }
    char *out = PyBytes_AS_STRING(id);
    memcpy(out, self->prefix, PREFIX_LENGTH);
    long number = self->next++;
    for (int i = 3; i >= 0; i--) {
        out[PREFIX_LENGTH + i] = HEX[number & 15];
        number >>= 4;
    }
    return id;
}

static PyObject *
UuidIds_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "UuidIds() takes no arguments");
        return NULL;
    }
    return next_record_id(self);
}

static int
UuidIds_init(UuidIds *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"random_bytes", NULL};
    PyObject *random_bytes;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:UuidIds", names, &random_bytes)) {
        return -1;
    }
    if (!PyCallable_Check(random_bytes)) {
        PyErr_SetString(PyExc_TypeError, "random_bytes must be callable");
        return -1;
    }
    Py_XSETREF(self->random_bytes, Py_NewRef(random_bytes));
    self->next = BLOCK_IDS;
    return 0;
}

static int
UuidIds_traverse(UuidIds *self, visitproc visit, void *arg)
{
    Py_VISIT(self->random_bytes);
    return 0;
}

static int
UuidIds_clear(UuidIds *self)
{
    Py_CLEAR(self->random_bytes);
    return 0;
}

static void
UuidIds_dealloc(UuidIds *self)
{
    PyObject_GC_UnTrack(self);
    UuidIds_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyTypeObject UuidIdsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "destination_s3._speedups.UuidIds",
    .tp_doc = PyDoc_STR("UuidIds(random_bytes)() -> bytes: the next record id "
                        "(encoders._uuid4_blocks in C)."),
    .tp_basicsize = sizeof(UuidIds),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)UuidIds_traverse,
    .tp_clear = (inquiry)UuidIds_clear,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)UuidIds_init,
    .tp_dealloc = (destructor)UuidIds_dealloc,
    .tp_call = UuidIds_call,
};
