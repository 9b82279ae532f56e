/* What the module's source files share: _plain_records.c and _scan_records.c give _speedups.c
 * their functions, and _plain_records.c gives _scan_records.c the end of taking a record. */
#ifndef DESTINATION_S3_SPEEDUPS_H
#define DESTINATION_S3_SPEEDUPS_H

#include <Python.h>

int plain_records_init(void);
int is_valid_utf8(const unsigned char *p, Py_ssize_t length);
PyObject *count_newlines(PyObject *module, PyObject *argument);
PyObject *take_plain_records(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
int encode_and_add(PyObject *route, PyObject *pending, PyObject *next_id, PyObject *data,
                   Py_ssize_t record_number, PyObject *last_emitted_at, PyObject *emitted_at_text);
extern PyTypeObject UuidIdsType;
/* next_id(): the C id generator's next id without a Python call, else a call of next_id. */
PyObject *next_record_id(PyObject *next_id);
void scan_records_init(void);
PyObject *scan_plain_records(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

#endif
