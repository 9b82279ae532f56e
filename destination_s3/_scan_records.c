/*
 * scan_plain_records: the intake's block scanner in C, part of destination_s3._speedups.
 *
 * scan_plain_records(block, start, routes, pending, next_id, record_number, last_emitted_at,
 * emitted_at_text) -> (offset, record_number, last_emitted_at, emitted_at_text)
 *
 * Reads `block` (bytes of whole lines) line by line from byte `start`, and takes each line that
 * is a plain RECORD as plain_records.take_plain_records would take msgspec's envelope of it (same
 * line, same id order, same appends; _plain_records.c does that part, with the route's attributes
 * read once per call for most streams (see RouteCache) and `data` read by this module's encoders
 * where it lies in the block, with no bytes object made of it), skipping blank lines. It stops
 * at the first line it does not take and returns that line's offset (len(block) when it took
 * everything); the intake then decodes that one line with msgspec and deals with it. So the
 * scanner only ever says "taken" or "not mine": it never refuses input, and every error keeps
 * the msgspec path's wording and line number.
 *
 * A line is taken only when all of this holds, else it is not this code's:
 * - one JSON object, strict RFC 8259 grammar (spaces, tabs and CRs around tokens, but no CR
 *   inside `data`, which the line-by-line step repairs); nesting at most MAX_DEPTH deep;
 * - every string valid UTF-8 without control characters, its escapes valid and its \u escapes
 *   whole characters (a surrogate only as a high-low pair), as msgspec requires;
 * - at the top level `type` is "RECORD" and `record` an object, each once, no `state`; in
 *   `record`: `stream` a string, `namespace` a string or null, `emitted_at` an integer of at
 *   most 18 digits, `data` an object, each at most once; no key at these two levels holds an
 *   escape (msgspec matches keys after unescaping them); other keys are skipped (as msgspec
 *   ignores unknown fields), their values checked as JSON all the same;
 * - the route of (namespace, stream) exists and its encoder accepts `data`.
 * `data` then is the object's exact bytes, as msgspec.Raw gives them. Whatever this accepts,
 * msgspec accepts with the same meaning; unit_tests/test_scan_records.py holds the two paths to
 * the same effects on a seeded corpus, and `make asan` runs it under AddressSanitizer.
 *
 * Every read is bounded by the line's end: the scan never looks past `block`.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "_speedups.h"

/* Deeper values go to msgspec (whose own limit is Python's recursion limit). */
#define MAX_DEPTH 64
/* An emitted_at with more digits goes to msgspec: 18 digits always fit a long long. */
#define MAX_EMITTED_AT_DIGITS 18

typedef const unsigned char *Ptr;

/* JSON whitespace within a line (LF ends it). A CR inside `data` is refused after the scan (the
 * line-by-line step replaces it); elsewhere it is whitespace, as CRLF line ends make it. */
static Ptr
skip_space(Ptr p, Ptr end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) {
        p++;
    }
    return p;
}

/* p at an opening quote: returns the byte after the closing quote, or NULL. Sets *escaped when
 * the string holds an escape. */
static Ptr
scan_string(Ptr p, Ptr end, int *escaped)
{
    p++;
    for (;;) {
        /* Stops at the closing quote, an escape, a control character (refused) and a
         * non-ASCII byte (checked as UTF-8). */
        p = find_string_stop(p, end, 1);
        if (p >= end) {
            return NULL;
        }
        unsigned char c = *p;
        if (c == '"') {
            return p + 1;
        }
        if (c == '\\') {
            *escaped = 1;
            if (end - p < 2) {
                return NULL;
            }
            switch (p[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                p += 2;
                break;
            case 'u': {
                long unit = end - p >= 6 ? hex4(p + 2) : -1;
                if (unit < 0 || (unit >= 0xDC00 && unit <= 0xDFFF)) {
                    return NULL;
                }
                p += 6;
                if (unit >= 0xD800 && unit <= 0xDBFF) {
                    if (end - p < 6 || p[0] != '\\' || p[1] != 'u') {
                        return NULL;
                    }
                    long low = hex4(p + 2);
                    if (low < 0xDC00 || low > 0xDFFF) {
                        return NULL;
                    }
                    p += 6;
                }
                break;
            }
            default:
                return NULL;
            }
        }
        else if (c < 0x20) {
            return NULL;
        }
        else {
            Py_ssize_t length = utf8_sequence_length(p, end);
            if (length == 0) {
                return NULL;
            }
            p += length;
        }
    }
}

static Ptr
scan_digits(Ptr p, Ptr end)
{
    while (p < end && *p >= '0' && *p <= '9') {
        p++;
    }
    return p;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static Ptr
scan_number(Ptr p, Ptr end)
{
    if (p < end && *p == '-') {
        p++;
    }
    if (p >= end) {
        return NULL;
    }
    if (*p == '0') {
        p++;
    }
    else if (*p >= '1' && *p <= '9') {
        p = scan_digits(p, end);
    }
    else {
        return NULL;
    }
    if (p < end && *p == '.') {
        Ptr digits = p + 1;
        p = scan_digits(digits, end);
        if (p == digits) {
            return NULL;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }
        Ptr digits = p;
        p = scan_digits(digits, end);
        if (p == digits) {
            return NULL;
        }
    }
    return p;
}

static Ptr
scan_literal(Ptr p, Ptr end, const char *word, Py_ssize_t length)
{
    return end - p >= length && memcmp(p, word, (size_t)length) == 0 ? p + length : NULL;
}

static Ptr scan_container(Ptr p, Ptr end, int depth);

static Ptr
scan_value(Ptr p, Ptr end, int depth)
{
    int escaped = 0;
    if (p >= end) {
        return NULL;
    }
    switch (*p) {
    case '"':
        return scan_string(p, end, &escaped);
    case '{':
    case '[':
        return scan_container(p, end, depth + 1);
    case 't':
        return scan_literal(p, end, "true", 4);
    case 'f':
        return scan_literal(p, end, "false", 5);
    case 'n':
        return scan_literal(p, end, "null", 4);
    default:
        return scan_number(p, end);
    }
}

/* p at an object's key: returns the start of its value, or NULL. The key's text (between its
 * quotes) through *key and *key_length; *escaped set when it holds an escape. */
static Ptr
scan_key(Ptr p, Ptr end, Ptr *key, Py_ssize_t *key_length, int *escaped)
{
    if (p >= end || *p != '"') {
        return NULL;
    }
    *key = p + 1;
    if ((p = scan_string(p, end, escaped)) == NULL) {
        return NULL;
    }
    *key_length = p - 1 - *key;
    p = skip_space(p, end);
    return p < end && *p == ':' ? skip_space(p + 1, end) : NULL;
}

/* p after a member or element: the start of the next one (*closed = 0), the byte after the
 * closing bracket (*closed = 1), or NULL. */
static Ptr
next_member(Ptr p, Ptr end, unsigned char close, int *closed)
{
    p = skip_space(p, end);
    if (p >= end) {
        return NULL;
    }
    if (*p == ',') {
        *closed = 0;
        return skip_space(p + 1, end);
    }
    *closed = 1;
    return *p == close ? p + 1 : NULL;
}

/* p at '{' or '[': returns the byte after its closing bracket, or NULL. */
static Ptr
scan_container(Ptr p, Ptr end, int depth)
{
    if (depth > MAX_DEPTH) {
        return NULL;
    }
    unsigned char close = *p == '{' ? '}' : ']';
    p = skip_space(p + 1, end);
    if (p < end && *p == close) {
        return p + 1;
    }
    for (;;) {
        Ptr key;
        Py_ssize_t key_length;
        int escaped = 0, closed;
        if (close == '}' && (p = scan_key(p, end, &key, &key_length, &escaped)) == NULL) {
            return NULL;
        }
        if ((p = scan_value(p, end, depth)) == NULL) {
            return NULL;
        }
        if ((p = next_member(p, end, close, &closed)) == NULL || closed) {
            return p;
        }
    }
}

/* What a plain RECORD line says. */
typedef struct {
    Ptr stream, namespace, data;
    Py_ssize_t stream_length, namespace_length, data_length;
    int has_namespace; /* a string namespace; absent or null is none */
    long long emitted_at;
} Fields;

enum { HAS_TYPE = 1, HAS_RECORD = 2, HAS_STREAM = 4, HAS_NAMESPACE = 8, HAS_EMITTED_AT = 16,
       HAS_DATA = 32 };

static int
is_key(Ptr key, Py_ssize_t length, const char *name)
{
    return (size_t)length == strlen(name) && memcmp(key, name, (size_t)length) == 0;
}

/* An integer emitted_at of at most MAX_EMITTED_AT_DIGITS digits; NULL for anything else. */
static Ptr
scan_emitted_at(Ptr p, Ptr end, long long *value)
{
    int negative = p < end && *p == '-';
    p += negative;
    Ptr digits = p;
    long long whole = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (p - digits == MAX_EMITTED_AT_DIGITS) {
            return NULL;
        }
        whole = whole * 10 + (*p - '0');
        p++;
    }
    if (p == digits || (p - digits > 1 && *digits == '0')) {
        return NULL;
    }
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E')) {
        return NULL; /* a float: msgspec's */
    }
    *value = negative ? -whole : whole;
    return p;
}

/* One member of the envelope (depth 1) or of its `record` (depth 2), p at the value. */
static Ptr scan_member(Ptr key, Py_ssize_t key_length, Ptr p, Ptr end, int depth, int *seen,
                       Fields *fields);

/* p at '{': the envelope (depth 1) or its record (depth 2), each member through scan_member. */
static Ptr
scan_message_object(Ptr p, Ptr end, int depth, int *seen, Fields *fields)
{
    if (p >= end || *p != '{') {
        return NULL;
    }
    p = skip_space(p + 1, end);
    for (;;) {
        /* An empty object lacks what is required: scan_key refuses its '}'. */
        Ptr key;
        Py_ssize_t key_length;
        int escaped = 0, closed;
        if ((p = scan_key(p, end, &key, &key_length, &escaped)) == NULL || escaped) {
            return NULL;
        }
        if ((p = scan_member(key, key_length, p, end, depth, seen, fields)) == NULL) {
            return NULL;
        }
        if ((p = next_member(p, end, '}', &closed)) == NULL || closed) {
            return p;
        }
    }
}

/* A string value without escapes: its text through *text and *length. */
static Ptr
scan_plain_string(Ptr p, Ptr end, Ptr *text, Py_ssize_t *length)
{
    int escaped = 0;
    if (p >= end || *p != '"') {
        return NULL;
    }
    Ptr after = scan_string(p, end, &escaped);
    if (after == NULL || escaped) {
        return NULL;
    }
    *text = p + 1;
    *length = after - 1 - *text;
    return after;
}

static Ptr
scan_member(Ptr key, Py_ssize_t key_length, Ptr p, Ptr end, int depth, int *seen, Fields *fields)
{
    int flag = 0;
    if (depth == 1) {
        flag = is_key(key, key_length, "type")     ? HAS_TYPE
               : is_key(key, key_length, "record") ? HAS_RECORD
               : is_key(key, key_length, "state")  ? -1
                                                    : 0;
    }
    else {
        flag = is_key(key, key_length, "stream")       ? HAS_STREAM
               : is_key(key, key_length, "namespace")  ? HAS_NAMESPACE
               : is_key(key, key_length, "emitted_at") ? HAS_EMITTED_AT
               : is_key(key, key_length, "data")       ? HAS_DATA
                                                        : 0;
    }
    if (flag == 0) {
        return scan_value(p, end, depth);
    }
    if (flag < 0 || (*seen & flag)) {
        return NULL; /* a `state` beside a record, or a field given twice: msgspec decides */
    }
    *seen |= flag;
    Ptr text, after;
    Py_ssize_t length;
    switch (flag) {
    case HAS_TYPE:
        after = scan_plain_string(p, end, &text, &length);
        return after != NULL && is_key(text, length, "RECORD") ? after : NULL;
    case HAS_RECORD:
        return scan_message_object(p, end, 2, seen, fields);
    case HAS_STREAM:
        return scan_plain_string(p, end, &fields->stream, &fields->stream_length);
    case HAS_NAMESPACE:
        if (p < end && *p == 'n') {
            return scan_literal(p, end, "null", 4);
        }
        fields->has_namespace = 1;
        return scan_plain_string(p, end, &fields->namespace, &fields->namespace_length);
    case HAS_EMITTED_AT:
        return scan_emitted_at(p, end, &fields->emitted_at);
    default: /* HAS_DATA */
        if (p >= end || *p != '{' || (after = scan_container(p, end, depth + 1)) == NULL) {
            return NULL;
        }
        fields->data = p;
        fields->data_length = after - p;
        return after;
    }
}

/* Whether [p, end) is a plain RECORD line; its fields through *fields. */
static int
scan_line(Ptr p, Ptr end, Fields *fields)
{
    int seen = 0;
    p = scan_message_object(p, end, 1, &seen, fields);
    const int required = HAS_TYPE | HAS_RECORD | HAS_STREAM | HAS_EMITTED_AT | HAS_DATA;
    return p != NULL && skip_space(p, end) == end && (seen & required) == required &&
           memchr(fields->data, '\r', (size_t)fields->data_length) == NULL;
}

/* The routes one call has taken records for, by the raw bytes of their (namespace, stream) in
 * the block. A record of one of them needs no decoding, hashing or dict lookup of its stream's
 * name, and no read of its route's attributes: those are read once per call. That is sound
 * because nothing changes a route's lists during a call (the intake replaces them only between
 * calls, in _Route.add_pending) and the block is held for the whole call. The scanner reads a
 * route's lists before it encodes (once per call for a remembered stream), where the Python loop
 * reads them after each encoding: only a route without list attributes, which the intake never
 * makes, could tell (the scanner then raises the TypeError even for a record the encoder
 * refuses).
 *
 * Direct-mapped, by a hash of the names: a hit costs the hash and one comparison. A stream
 * whose slot another holds takes the route's attributes record by record, as without the cache
 * (with 500 interleaved streams, most do: they pay the hash and comparison on top). */
#define ROUTE_CACHE_BITS 6
#define ROUTE_CACHE_SIZE (1 << ROUTE_CACHE_BITS)

typedef struct {
    Ptr stream, namespace;
    Py_ssize_t stream_length, namespace_length;
    int has_namespace;
    RouteParts parts;
} CachedRoute;

typedef struct {
    uint64_t filled; /* a bit per slot; a slot's other fields mean something only when set */
    CachedRoute slots[ROUTE_CACHE_SIZE];
} RouteCache;

static uint64_t
fnv1a(uint64_t hash, Ptr bytes, Py_ssize_t length)
{
    for (Py_ssize_t index = 0; index < length; index++) {
        hash = (hash ^ bytes[index]) * UINT64_C(0x100000001B3);
    }
    return hash;
}

static int
route_slot(const Fields *fields)
{
    uint64_t hash = fnv1a(UINT64_C(0xCBF29CE484222325), fields->stream, fields->stream_length);
    if (fields->has_namespace) {
        hash = fnv1a(hash ^ UINT64_C(0xFF), fields->namespace, fields->namespace_length);
    }
    return (int)((hash * UINT64_C(0x9E3779B97F4A7C15)) >> (64 - ROUTE_CACHE_BITS));
}

static int
same_bytes(Ptr a, Py_ssize_t a_length, Ptr b, Py_ssize_t b_length)
{
    return a_length == b_length && memcmp(a, b, (size_t)a_length) == 0;
}

/* The route of the record's names if the slot holds it, else NULL. */
static CachedRoute *
cached_route(RouteCache *cache, int slot, const Fields *fields)
{
    CachedRoute *entry = &cache->slots[slot];
    if (!(cache->filled >> slot & 1) || entry->has_namespace != fields->has_namespace ||
        !same_bytes(entry->stream, entry->stream_length, fields->stream, fields->stream_length) ||
        (fields->has_namespace && !same_bytes(entry->namespace, entry->namespace_length,
                                              fields->namespace, fields->namespace_length))) {
        return NULL;
    }
    return entry;
}

/* Remembers `route` for the record's names in its free slot: the entry, or NULL with an
 * exception set. A slot stays with its first stream for the whole call: with more streams than
 * slots, replacing would cost every record a fill. */
static CachedRoute *
remember_route(RouteCache *cache, int slot, const Fields *fields, PyObject *route)
{
    CachedRoute *entry = &cache->slots[slot];
    if (route_parts(route, &entry->parts) < 0) {
        return NULL;
    }
    cache->filled |= UINT64_C(1) << slot;
    entry->stream = fields->stream;
    entry->stream_length = fields->stream_length;
    entry->has_namespace = fields->has_namespace;
    entry->namespace = fields->namespace;
    entry->namespace_length = fields->namespace_length;
    return entry;
}

static void
forget_routes(RouteCache *cache)
{
    for (int slot = 0; slot < ROUTE_CACHE_SIZE; slot++) {
        if (cache->filled >> slot & 1) {
            route_parts_clear(&cache->slots[slot].parts);
        }
    }
    cache->filled = 0;
}

/* routes.get(key) for the record's names: a new reference, or NULL (with an exception set, or
 * without one when the stream has no route yet). */
static PyObject *
lookup_route(const Fields *fields, PyObject *routes)
{
    PyObject *namespace = NULL, *key = NULL, *route = NULL;
    PyObject *stream =
        PyUnicode_DecodeUTF8((const char *)fields->stream, fields->stream_length, NULL);
    if (stream == NULL) {
        return NULL;
    }
    if (!fields->has_namespace) {
        key = Py_NewRef(stream);
    }
    else {
        namespace = PyUnicode_DecodeUTF8((const char *)fields->namespace,
                                         fields->namespace_length, NULL);
        key = namespace == NULL ? NULL : PyTuple_Pack(2, namespace, stream);
    }
    if (key != NULL) {
        route = PyDict_GetItemWithError(routes, key); /* borrowed */
        route = route == Py_None ? NULL : Py_XNewRef(route);
    }
    Py_DECREF(stream);
    Py_XDECREF(namespace);
    Py_XDECREF(key);
    return route;
}

/* Takes a scanned record: -1 when taken, 0 when the line is not this code's after all (no
 * route yet, or the encoder refused it), -2 with an exception set. */
static int
take_scanned(const Fields *fields, RouteCache *cache, PyObject *routes, PyObject *pending,
             PyObject *next_id, Py_ssize_t record_number, PyObject **last_emitted_at,
             PyObject **emitted_at_text)
{
    int result = -2;
    RouteParts uncached = {NULL, NULL, NULL, NULL}; /* read for this record alone */
    const RouteParts *parts;
    int slot = route_slot(fields);
    CachedRoute *entry = cached_route(cache, slot, fields);
    if (entry != NULL) {
        parts = &entry->parts;
    }
    else {
        PyObject *route = lookup_route(fields, routes);
        if (route == NULL) {
            return PyErr_Occurred() ? -2 : 0; /* a stream without a route yet: the intake's */
        }
        if (!(cache->filled >> slot & 1)) {
            entry = remember_route(cache, slot, fields, route);
            parts = entry == NULL ? NULL : &entry->parts;
        }
        else { /* the slot is another stream's */
            parts = route_parts(route, &uncached) < 0 ? NULL : &uncached;
        }
        Py_DECREF(route);
        if (parts == NULL) {
            return -2;
        }
    }
    /* As the Python loop: a new emitted_at only when it differs from the last one, in value or
     * in type (the scanner's is always an int). */
    int same = 0;
    if (PyLong_CheckExact(*last_emitted_at)) {
        int overflow;
        long long last = PyLong_AsLongLongAndOverflow(*last_emitted_at, &overflow);
        if (last == -1 && PyErr_Occurred()) {
            goto done;
        }
        same = !overflow && last == fields->emitted_at;
    }
    if (!same) {
        char digits[24];
        int length = snprintf(digits, sizeof digits, "%lld", fields->emitted_at);
        PyObject *value = PyLong_FromLongLong(fields->emitted_at);
        PyObject *text = value == NULL ? NULL : PyBytes_FromStringAndSize(digits, length);
        if (text == NULL) {
            Py_XDECREF(value);
            goto done;
        }
        Py_SETREF(*last_emitted_at, value);
        Py_SETREF(*emitted_at_text, text);
    }
    /* `data` stays in the block: this module's encoders read it there. */
    result = encode_and_append(parts, pending, next_id, (const char *)fields->data,
                               fields->data_length, record_number, *last_emitted_at,
                               *emitted_at_text);
    if (result >= 0) {
        result = 0; /* the encoder refused it: the line-by-line step names it */
    }
done:
    route_parts_clear(&uncached);
    return result;
}

PyObject *
scan_plain_records(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError,
                        "scan_plain_records(block, start, routes, pending, next_id, "
                        "record_number, last_emitted_at, emitted_at_text)");
        return NULL;
    }
    PyObject *routes = args[2], *pending = args[3], *next_id = args[4];
    if (!PyDict_Check(routes) || !PyList_Check(pending)) {
        PyErr_SetString(PyExc_TypeError, "routes must be a dict, pending a list");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t record_number = PyLong_AsSsize_t(args[5]);
    if (record_number == -1 && PyErr_Occurred()) {
        return NULL;
    }
    /* Any buffer (the intake's are bytes; the tests also pass buffers of their exact size, with
     * no terminating NUL, for AddressSanitizer). Held for the whole call: the encoders are Python
     * code, and an exported buffer cannot be resized under the scan. */
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Py_ssize_t size = view.len;
    if (start < 0 || start > size) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "start must be an offset in the block");
        return NULL;
    }
    PyObject *last_emitted_at = Py_NewRef(args[6]);
    PyObject *emitted_at_text = Py_NewRef(args[7]);
    RouteCache cache;
    cache.filled = 0;
    Ptr base = (Ptr)view.buf, end = base + size, line = base + start;
    while (line < end) {
        Ptr line_end = memchr(line, '\n', (size_t)(end - line));
        if (line_end == NULL) {
            line_end = end;
        }
        Ptr p = skip_space(line, line_end);
        if (p < line_end) {
            Fields fields = {0};
            if (!scan_line(p, line_end, &fields)) {
                break;
            }
            int taken = take_scanned(&fields, &cache, routes, pending, next_id, record_number,
                                     &last_emitted_at, &emitted_at_text);
            if (taken == -2) {
                forget_routes(&cache);
                PyBuffer_Release(&view);
                Py_DECREF(last_emitted_at);
                Py_DECREF(emitted_at_text);
                return NULL;
            }
            if (taken == 0) {
                break;
            }
            record_number++;
        }
        line = line_end < end ? line_end + 1 : end;
    }
    forget_routes(&cache);
    PyObject *result = Py_BuildValue("(nnOO)", (Py_ssize_t)(line - base), record_number,
                                     last_emitted_at, emitted_at_text);
    PyBuffer_Release(&view);
    Py_DECREF(last_emitted_at);
    Py_DECREF(emitted_at_text);
    return result;
}
