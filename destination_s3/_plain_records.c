/*
 * take_plain_records: the intake's hot loop in C, part of destination_s3._speedups.
 *
 * Same contract and same effects as plain_records.take_plain_records (read its docstring): from
 * `start`, take each envelope while it is a plain RECORD — route found, `data` a JSON object in
 * valid UTF-8 without CR, accepted by its encoder — and stop at the first that is not, returning
 * (index, why, record_number, last_emitted_at, emitted_at_text). The checks run in the same order
 * as in Python, so both stop at the same envelope for the same reason.
 *
 * The envelopes come from msgspec, which parsed and validated every line; this code reads their
 * fields through the Python C API and the raw `data` bytes through the buffer protocol, and only
 * scans those bytes (first byte, CR, UTF-8), never past their length.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_speedups.h"

enum { END = 0, OTHER = 1, NEW_STREAM = 2, NEEDS_LOOK = 3 };

static PyObject *s_type, *s_record, *s_data, *s_namespace, *s_stream, *s_emitted_at, *s_encode,
    *s_lines, *s_first_record, *s_RECORD;

int
plain_records_init(void)
{
    s_type = PyUnicode_InternFromString("type");
    s_record = PyUnicode_InternFromString("record");
    s_data = PyUnicode_InternFromString("data");
    s_namespace = PyUnicode_InternFromString("namespace");
    s_stream = PyUnicode_InternFromString("stream");
    s_emitted_at = PyUnicode_InternFromString("emitted_at");
    s_encode = PyUnicode_InternFromString("encode");
    s_lines = PyUnicode_InternFromString("lines");
    s_first_record = PyUnicode_InternFromString("first_record");
    s_RECORD = PyUnicode_InternFromString("RECORD");
    if (!s_type || !s_record || !s_data || !s_namespace || !s_stream || !s_emitted_at ||
        !s_encode || !s_lines || !s_first_record || !s_RECORD) {
        return -1;
    }
    return 0;
}

/* Whether [p, p + length) is valid UTF-8 as Python's strict decoder sees it: no overlong forms,
 * no surrogates (U+D800..U+DFFF), nothing above U+10FFFF. */
int
is_valid_utf8(const unsigned char *p, Py_ssize_t length)
{
    const unsigned char *end = p + length;
    while (p < end) {
        /* ASCII eight bytes at a time: most of a record's bytes are ASCII. */
        while (end - p >= 8) {
            uint64_t chunk;
            memcpy(&chunk, p, 8);
            if (chunk & UINT64_C(0x8080808080808080)) {
                break;
            }
            p += 8;
        }
        if (p >= end) {
            break;
        }
        unsigned char c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        Py_ssize_t sequence = utf8_sequence_length(p, end);
        if (sequence == 0) {
            return 0;
        }
        p += sequence;
    }
    return 1;
}

/* The `data` checks of plain_records.py: a JSON object, no CR, valid UTF-8. */
static int
data_is_plain(const unsigned char *bytes, Py_ssize_t length)
{
    if (length < 1 || bytes[0] != '{') {
        return 0;
    }
    if (memchr(bytes, '\r', (size_t)length) != NULL) {
        return 0;
    }
    return is_valid_utf8(bytes, length);
}

/* route.<name>, which must be a list: a new reference, or NULL with an exception set. */
static PyObject *
route_list(PyObject *route, PyObject *name)
{
    PyObject *list = PyObject_GetAttr(route, name);
    if (list != NULL && !PyList_Check(list)) {
        PyErr_Format(PyExc_TypeError, "a route's %U must be a list", name);
        Py_CLEAR(list);
    }
    return list;
}

/* encode(record_id, emitted_at_text, data): the line, or NULL. NULL with *refused set means the
 * encoder refused `data` (a ValueError or RecursionError, cleared: the line-by-line step names
 * it); NULL without it, an exception is set. */
static PyObject *
call_encoder(PyObject *encode, PyObject *record_id, PyObject *emitted_at_text, PyObject *data,
             int *refused)
{
    PyObject *call_args[3] = {record_id, emitted_at_text, data};
    PyObject *line = PyObject_Vectorcall(encode, call_args, 3, NULL);
    /* msgspec.DecodeError is a ValueError. */
    *refused = line == NULL && (PyErr_ExceptionMatches(PyExc_ValueError) ||
                                PyErr_ExceptionMatches(PyExc_RecursionError));
    if (*refused) {
        PyErr_Clear();
    }
    return line;
}

static PyObject *
encode_line(PyObject *encode, PyObject *next_id, PyObject *data, PyObject *emitted_at_text,
            int *refused)
{
    *refused = 0;
    PyObject *record_id = next_record_id(next_id);
    if (record_id == NULL) {
        return NULL;
    }
    PyObject *line = call_encoder(encode, record_id, emitted_at_text, data, refused);
    Py_DECREF(record_id);
    return line;
}

/* encode_line with `data` as bytes: this module's encoders take them as they are (encode_raw);
 * any other encoder, or a row encoder's fallback, gets them as a bytes object. */
static PyObject *
encode_raw_line(PyObject *encode, PyObject *next_id, const char *data, Py_ssize_t length,
                PyObject *emitted_at_text, int *refused)
{
    *refused = 0;
    PyObject *record_id = next_record_id(next_id);
    if (record_id == NULL) {
        return NULL;
    }
    PyObject *call_instead = NULL;
    PyObject *line = encode_raw(encode, record_id, emitted_at_text, data, length, &call_instead);
    if (line == NULL && call_instead != NULL) {
        PyObject *data_object = PyBytes_FromStringAndSize(data, length);
        if (data_object != NULL) {
            line = call_encoder(call_instead, record_id, emitted_at_text, data_object, refused);
            Py_DECREF(data_object);
        }
    }
    Py_DECREF(record_id);
    return line;
}

/* Appends `line` to the route's `lines`; a route's first line of the block also sets its
 * first_record and queues it in `pending`. Returns 0, or -1 with an exception set. */
static int
add_line(PyObject *route, PyObject *lines, PyObject *line, PyObject *pending,
         Py_ssize_t record_number)
{
    if (PyList_GET_SIZE(lines) == 0) {
        PyObject *first = PyLong_FromSsize_t(record_number);
        int failed = first == NULL || PyObject_SetAttr(route, s_first_record, first) < 0 ||
                     PyList_Append(pending, route) < 0;
        Py_XDECREF(first);
        if (failed) {
            return -1;
        }
    }
    return PyList_Append(lines, line);
}

/* The end of taking a plain record: encode `data` with a fresh id and the current emitted_at
 * text, then append the line and emitted_at to the route's lists (add_line). Returns -1 when
 * taken, NEEDS_LOOK when the encoder refused the record, -2 with an exception set. The route's
 * attributes are read as plain_records.take_plain_records reads them, once per record. */
static int
encode_and_add(PyObject *route, PyObject *pending, PyObject *next_id, PyObject *data,
               Py_ssize_t record_number, PyObject *last_emitted_at, PyObject *emitted_at_text)
{
    int result = -2, refused;
    PyObject *encode = NULL, *line = NULL, *lines = NULL, *emitted_list = NULL;

    encode = PyObject_GetAttr(route, s_encode);
    if (encode == NULL) {
        goto done;
    }
    line = encode_line(encode, next_id, data, emitted_at_text, &refused);
    if (line == NULL) {
        result = refused ? NEEDS_LOOK : -2;
        goto done;
    }
    lines = route_list(route, s_lines);
    if (lines == NULL || add_line(route, lines, line, pending, record_number) < 0) {
        goto done;
    }
    emitted_list = route_list(route, s_emitted_at);
    if (emitted_list == NULL) {
        goto done;
    }
    if (PyList_Append(emitted_list, last_emitted_at) < 0) {
        goto done;
    }
    result = -1;
done:
    Py_XDECREF(encode);
    Py_XDECREF(line);
    Py_XDECREF(lines);
    Py_XDECREF(emitted_list);
    return result;
}

int
route_parts(PyObject *route, RouteParts *parts)
{
    parts->route = Py_NewRef(route);
    parts->encode = PyObject_GetAttr(route, s_encode);
    parts->lines = parts->encode == NULL ? NULL : route_list(route, s_lines);
    parts->emitted_at = parts->lines == NULL ? NULL : route_list(route, s_emitted_at);
    if (parts->emitted_at == NULL) {
        route_parts_clear(parts);
        return -1;
    }
    return 0;
}

void
route_parts_clear(RouteParts *parts)
{
    Py_CLEAR(parts->route);
    Py_CLEAR(parts->encode);
    Py_CLEAR(parts->lines);
    Py_CLEAR(parts->emitted_at);
}

int
encode_and_append(const RouteParts *parts, PyObject *pending, PyObject *next_id,
                  const char *data, Py_ssize_t length, Py_ssize_t record_number,
                  PyObject *last_emitted_at, PyObject *emitted_at_text)
{
    int refused;
    PyObject *line =
        encode_raw_line(parts->encode, next_id, data, length, emitted_at_text, &refused);
    if (line == NULL) {
        return refused ? NEEDS_LOOK : -2;
    }
    int failed = add_line(parts->route, parts->lines, line, pending, record_number) < 0 ||
                 PyList_Append(parts->emitted_at, last_emitted_at) < 0;
    Py_DECREF(line);
    return failed ? -2 : -1;
}

/* Takes one envelope, in the order of plain_records.take_plain_records (every Python-visible
 * step: attribute reads, calls, appends). Returns the reason to stop (OTHER, NEW_STREAM,
 * NEEDS_LOOK), -1 when it was taken, or -2 with an exception set. */
static int
take_one(PyObject *envelope, PyObject *routes, PyObject *pending, PyObject *next_id,
         Py_ssize_t record_number, PyObject **last_emitted_at, PyObject **emitted_at_text)
{
    int result = -2, same;
    PyObject *kind = NULL, *record = NULL, *raw = NULL, *data = NULL, *namespace = NULL;
    PyObject *stream = NULL, *key = NULL, *route = NULL, *emitted_at = NULL;

    kind = PyObject_GetAttr(envelope, s_type);
    if (kind == NULL) {
        goto done;
    }
    if (!PyUnicode_Check(kind) || PyUnicode_Compare(kind, s_RECORD) != 0) {
        if (PyErr_Occurred()) {
            goto done;
        }
        result = OTHER;
        goto done;
    }
    record = PyObject_GetAttr(envelope, s_record);
    if (record == NULL) {
        goto done;
    }
    if (record == Py_None) {
        result = NEEDS_LOOK;
        goto done;
    }
    /* bytes(record.data) first, then the checks on that copy, as in Python. */
    raw = PyObject_GetAttr(record, s_data);
    if (raw == NULL) {
        goto done;
    }
    if (PyBytes_CheckExact(raw)) {
        data = Py_NewRef(raw);
    }
    else {
        Py_buffer view;
        if (PyObject_GetBuffer(raw, &view, PyBUF_SIMPLE) < 0) {
            goto done;
        }
        data = PyBytes_FromStringAndSize(view.buf, view.len);
        PyBuffer_Release(&view);
        if (data == NULL) {
            goto done;
        }
    }
    if (!data_is_plain((const unsigned char *)PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))) {
        result = NEEDS_LOOK;
        goto done;
    }
    namespace = PyObject_GetAttr(record, s_namespace);
    if (namespace == NULL) {
        goto done;
    }
    stream = PyObject_GetAttr(record, s_stream);
    if (stream == NULL) {
        goto done;
    }
    if (namespace == Py_None) {
        key = Py_NewRef(stream);
    }
    else if ((key = PyTuple_Pack(2, namespace, stream)) == NULL) {
        goto done;
    }
    route = PyDict_GetItemWithError(routes, key); /* borrowed: a reference is taken below */
    if (route == NULL || route == Py_None) {       /* routes.get(key) is None */
        route = NULL;
        if (!PyErr_Occurred()) {
            result = NEW_STREAM;
        }
        goto done;
    }
    Py_INCREF(route); /* the encoder below runs Python code */
    emitted_at = PyObject_GetAttr(record, s_emitted_at);
    if (emitted_at == NULL) {
        goto done;
    }
    /* The same value of the same type (1.0 after 1 is a new one, as in Python). */
    same = emitted_at == *last_emitted_at ? 1
           : Py_TYPE(emitted_at) != Py_TYPE(*last_emitted_at)
               ? 0
               : PyObject_RichCompareBool(emitted_at, *last_emitted_at, Py_EQ);
    if (same < 0) {
        goto done;
    }
    if (!same) {
        /* str(int(emitted_at)).encode(): msgspec refuses numbers out of a float's range. */
        PyObject *whole = PyNumber_Long(emitted_at);
        PyObject *text = whole == NULL ? NULL : PyObject_Str(whole);
        PyObject *encoded = text == NULL ? NULL : PyUnicode_AsUTF8String(text);
        Py_XDECREF(whole);
        Py_XDECREF(text);
        if (encoded == NULL) {
            goto done;
        }
        Py_SETREF(*last_emitted_at, Py_NewRef(emitted_at));
        Py_SETREF(*emitted_at_text, encoded);
    }
    result = encode_and_add(route, pending, next_id, data, record_number, *last_emitted_at,
                            *emitted_at_text);
done:
    Py_XDECREF(kind);
    Py_XDECREF(record);
    Py_XDECREF(raw);
    Py_XDECREF(data);
    Py_XDECREF(namespace);
    Py_XDECREF(stream);
    Py_XDECREF(key);
    Py_XDECREF(route);
    Py_XDECREF(emitted_at);
    return result;
}

PyObject *
take_plain_records(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError,
                        "take_plain_records(envelopes, start, routes, pending, next_id, "
                        "record_number, last_emitted_at, emitted_at_text)");
        return NULL;
    }
    PyObject *envelopes = args[0], *routes = args[2], *pending = args[3], *next_id = args[4];
    if (!PyList_Check(envelopes) || !PyDict_Check(routes) || !PyList_Check(pending)) {
        PyErr_SetString(PyExc_TypeError, "envelopes and pending must be lists, routes a dict");
        return NULL;
    }
    Py_ssize_t index = PyLong_AsSsize_t(args[1]);
    if (index == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t record_number = PyLong_AsSsize_t(args[5]);
    if (record_number == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (index < 0) {
        PyErr_SetString(PyExc_ValueError, "start must not be negative");
        return NULL;
    }
    PyObject *last_emitted_at = Py_NewRef(args[6]);
    PyObject *emitted_at_text = Py_NewRef(args[7]);
    int why = END;
    /* The size is read on every turn: the encoders are Python code (they cannot reach this
     * list, which is the intake's own, but the loop does not rely on it). */
    while (index < PyList_GET_SIZE(envelopes)) {
        PyObject *envelope = Py_NewRef(PyList_GET_ITEM(envelopes, index));
        int taken = take_one(envelope, routes, pending, next_id, record_number,
                             &last_emitted_at, &emitted_at_text);
        Py_DECREF(envelope);
        if (taken == -2) {
            Py_DECREF(last_emitted_at);
            Py_DECREF(emitted_at_text);
            return NULL;
        }
        if (taken >= 0) {
            why = taken;
            break;
        }
        record_number++;
        index++;
    }
    PyObject *result = Py_BuildValue("(ninOO)", index, why, record_number, last_emitted_at,
                                     emitted_at_text);
    Py_DECREF(last_emitted_at);
    Py_DECREF(emitted_at_text);
    return result;
}

/* block.count(b"\n") with memchr, which skips a whole line per call where bytes.count looks at
 * every byte. */
PyObject *
count_newlines(PyObject *Py_UNUSED(module), PyObject *argument)
{
    Py_buffer view;
    if (PyObject_GetBuffer(argument, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const char *p = view.buf;
    const char *end = p + view.len;
    Py_ssize_t count = 0;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        count++;
        p++;
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(count);
}
