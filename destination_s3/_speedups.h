/* What the module's source files share: _plain_records.c and _scan_records.c give _speedups.c
 * their functions, _plain_records.c gives _scan_records.c the end of taking a record, and they
 * use the string scan, UTF-8 and hex-digit checks below. */
#ifndef DESTINATION_S3_SPEEDUPS_H
#define DESTINATION_S3_SPEEDUPS_H

#include <Python.h>

#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#define SPEEDUPS_SSE2 1
#endif

/* The first byte from p on, before end, that can end a run of plain string text: '"', '\\', a
 * control character and, with `non_ascii_stops`, a byte >= 0x80 (the caller checks its UTF-8).
 * Returns end when there is none. Strings are about half of a record's bytes, and a
 * byte-at-a-time loop here was most of the scanners' string time: with SSE2 (every x86-64) this
 * tests 16 bytes at once, loading only within [p, end), and the byte loop only sees the last 15
 * bytes before `end`. Each caller passes a constant `non_ascii_stops`, which the inlined code
 * folds. */
static inline const unsigned char *
find_string_stop(const unsigned char *p, const unsigned char *end, int non_ascii_stops)
{
#ifdef SPEEDUPS_SSE2
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20), last_control = _mm_set1_epi8(0x1F);
    while (end - p >= 16) {
        __m128i bytes = _mm_loadu_si128((const __m128i *)p);
        __m128i hits = _mm_or_si128(_mm_cmpeq_epi8(bytes, quote),
                                    _mm_cmpeq_epi8(bytes, backslash));
        /* Signed, bytes >= 0x80 are negative: below 0x20 along with the control characters. */
        hits = _mm_or_si128(hits, non_ascii_stops
                                      ? _mm_cmplt_epi8(bytes, space)
                                      : _mm_cmpeq_epi8(_mm_min_epu8(bytes, last_control), bytes));
        int found = _mm_movemask_epi8(hits);
        if (found) {
            return p + __builtin_ctz((unsigned int)found);
        }
        p += 16;
    }
#endif
    for (; p < end; p++) {
        unsigned char c = *p;
        if (c == '"' || c == '\\' || c < 0x20 || (non_ascii_stops && c >= 0x80)) {
            break;
        }
    }
    return p;
}

/* The length of the valid UTF-8 sequence of 2 to 4 bytes at p (a byte >= 0x80), or 0: no
 * overlong forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, as Python's strict
 * decoder sees it. Reads only [p, end). */
static inline Py_ssize_t
utf8_sequence_length(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    Py_ssize_t left = end - p;
    if (c >= 0xC2 && c <= 0xDF) {
        return left >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (left < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) {
            return 0;
        }
        return (c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F) ? 0 : 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (left < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
            (p[3] & 0xC0) != 0x80) {
            return 0;
        }
        return (c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F) ? 0 : 4;
    }
    return 0; /* a continuation byte first, 0xC0, 0xC1 or 0xF5..0xFF */
}

/* The four hex digits at p as a number, or -1 (the caller checks that four bytes remain). Defined
 * in _speedups.c: out of line, so the escape path does not weigh on the string scanners' loops
 * (inlined into _scan_records.c's, it cost about 6 % per record). */
long hex4(const unsigned char *p);

int plain_records_init(void);
int is_valid_utf8(const unsigned char *p, Py_ssize_t length);
PyObject *count_newlines(PyObject *module, PyObject *argument);
PyObject *take_plain_records(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
/* What taking a record reads from its route: the route, its encoder and its two lists (new
 * references). The block scanner keeps them for the length of one call. */
typedef struct {
    PyObject *route, *encode, *lines, *emitted_at;
} RouteParts;
/* Fills `parts`: 0, or -1 with an exception set and `parts` cleared. */
int route_parts(PyObject *route, RouteParts *parts);
void route_parts_clear(RouteParts *parts);
/* The end of taking a record, for the block scanner: encode `data` (bytes the caller holds, a
 * slice of the block) with a fresh id, then append the line and emitted_at to the route's
 * lists. Returns -1 when taken, NEEDS_LOOK (3) when the encoder refused it, -2 with an
 * exception set. */
int encode_and_append(const RouteParts *parts, PyObject *pending, PyObject *next_id,
                      const char *data, Py_ssize_t length, Py_ssize_t record_number,
                      PyObject *last_emitted_at, PyObject *emitted_at_text);
/* encoder(ab_id, emitted_at, data) with `data` as bytes the caller holds, when `encoder` is one
 * of this module's (encode_jsonl, encode_csv_no_flattening, a CsvRowEncoder): no `data` object,
 * no Python call. The line; or NULL with an exception set; or NULL without one and
 * *call_instead set to what to call with a `data` object: `encoder` itself when it is not this
 * module's, a CsvRowEncoder's Python fallback for a record it leaves to it (borrowed). */
PyObject *encode_raw(PyObject *encoder, PyObject *ab_id, PyObject *emitted_at, const char *data,
                     Py_ssize_t length, PyObject **call_instead);
extern PyTypeObject UuidIdsType;
/* next_id(): the C id generator's next id without a Python call, else a call of next_id. */
PyObject *next_record_id(PyObject *next_id);
PyObject *scan_plain_records(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

#endif
