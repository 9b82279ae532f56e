/* What _plain_records.c gives _speedups.c (the module's other source file). */
#ifndef DESTINATION_S3_SPEEDUPS_H
#define DESTINATION_S3_SPEEDUPS_H

#include <Python.h>

int plain_records_init(void);
int is_valid_utf8(const unsigned char *p, Py_ssize_t length);
PyObject *count_newlines(PyObject *module, PyObject *argument);
PyObject *take_plain_records(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

#endif
