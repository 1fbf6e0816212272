/* Optional accelerator for sansio_wss: XOR-unmasking of a client frame's payload.
 *
 * The pure-Python path (sansio_wss/_frames.py: unmask) is the reference and is
 * always available; this module only makes the same result cheaper. It reads
 * the payload and the mask straight out of the receive buffer, so the caller
 * does not slice either.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* unmask_from(buffer, start, stop) -> bytes
 * The mask is the 4 bytes before `start`; the payload is buffer[start:stop]. */
static PyObject *
unmask_from(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Py_ssize_t start, stop;
    PyObject *result;

    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "unmask_from(buffer, start, stop)");
        return NULL;
    }
    start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred()) return NULL;
    stop = PyLong_AsSsize_t(args[2]);
    if (stop == -1 && PyErr_Occurred()) return NULL;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) return NULL;
    if (start < 4 || stop < start || stop > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "payload or mask outside the buffer");
        return NULL;
    }
    result = PyBytes_FromStringAndSize(NULL, stop - start);
    if (result != NULL) {
        const unsigned char *src = (const unsigned char *)view.buf + start;
        const unsigned char *mask = src - 4;
        unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(result);
        Py_ssize_t n = stop - start, i = 0;
        uint32_t m4;
        uint64_t m8, word;
        memcpy(&m4, mask, 4);
        m8 = ((uint64_t)m4 << 32) | m4;
        for (; i + 8 <= n; i += 8) {
            memcpy(&word, src + i, 8);
            word ^= m8;
            memcpy(dst + i, &word, 8);
        }
        for (; i < n; i++) dst[i] = src[i] ^ mask[i & 3];
    }
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"unmask_from", (PyCFunction)(void (*)(void))unmask_from, METH_FASTCALL,
     "unmask_from(buffer, start, stop) -> bytes: buffer[start:stop] XOR the mask in buffer[start-4:start]."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "sansio_wss._speedups", "Optional C helpers for sansio_wss.", -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
