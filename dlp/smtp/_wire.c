/*
 * dlp.smtp._wire: byte tests on a whole message that the relay makes for every
 * message it sends, in C because in Python they cost more than the rest of the
 * relay: finding a bare CR or LF took two regular-expression passes (about
 * 1 ns a byte, 2 ms for a 2 MB message); memchr from one line end to the next
 * costs a few nanoseconds a line.  dlp/smtp/datareader.py keeps the regular
 * expressions as the definition and the fallback; tests/unit/test_datareader.py
 * holds the two to the same answers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define WIRE_API 1

/* Whether data holds a CR not followed by LF, or an LF not preceded by CR. */
static PyObject *
has_bare_line_end(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const char *p = view.buf;
    const Py_ssize_t n = view.len;
    int bare = 0;
    Py_BEGIN_ALLOW_THREADS
    const char *end = p + n;
    const char *q = p;
    /* Every LF must follow a CR ... */
    while (q < end && (q = memchr(q, '\n', (size_t)(end - q))) != NULL) {
        if (q == p || q[-1] != '\r') {
            bare = 1;
            break;
        }
        q++;
    }
    /* ... and every CR must precede an LF. */
    q = p;
    while (!bare && q < end && (q = memchr(q, '\r', (size_t)(end - q))) != NULL) {
        if (q + 1 >= end || q[1] != '\n') {
            bare = 1;
            break;
        }
        q += 2;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return PyBool_FromLong(bare);
}

static PyMethodDef wire_methods[] = {
    {"has_bare_line_end", has_bare_line_end, METH_O,
     "Whether the bytes hold a CR without its LF or an LF without its CR."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef wire_module = {
    PyModuleDef_HEAD_INIT, "_wire", "Whole-message byte tests for the relay.", -1, wire_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__wire(void)
{
    PyObject *m = PyModule_Create(&wire_module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "API", WIRE_API) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
