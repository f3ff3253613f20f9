// The fast reading of plain CSV rows of numbers: stages._fastcsv.
//
// One pass over the bytes: each line is cut at the delimiter into exactly
// `width` cells; the feature cells are parsed with std::from_chars (correctly
// rounded, as Python's float() and NumPy's parser are), and the byte spans of
// a few text cells (the label, a fold column) are recorded for Python to
// decode. Anything this pass does not accept -- a quote, a cell count other
// than `width`, a cell that is not a plain finite number (a missing value,
// text, infinity, Python's 1_000) -- makes it give up and say where; the
// careful reading in Python then explains the first bad cell. So this pass
// only ever accepts what the careful one accepts, with the same values.
//
// Why by hand: numpy.loadtxt on a list of lines is the best library parser
// we have without pandas, and it takes about four times as long; pandas'
// parser would cost a half-second import on every run.

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <vector>

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

struct Buffer {  // a held Py_buffer, released on every way out
    Py_buffer view{};
    bool held = false;
    ~Buffer() {
        if (held) PyBuffer_Release(&view);
    }
};

bool take(PyObject* obj, Buffer& buffer, const char* name, int ndim, Py_ssize_t itemsize,
          bool writable) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, &buffer.view, flags) < 0) return false;
    buffer.held = true;
    if (buffer.view.ndim != ndim || buffer.view.itemsize != itemsize) {
        PyErr_Format(PyExc_TypeError, "%s: want a C-contiguous %d-d array of %zd-byte items",
                     name, ndim, itemsize);
        return false;
    }
    return true;
}

// A cell's number, trimmed of spaces; false for anything but a plain finite number.
bool parse_number(const char* begin, const char* end, double& value) {
    while (begin < end && is_space(*begin)) ++begin;
    while (end > begin && is_space(end[-1])) --end;
    if (begin < end && *begin == '+') ++begin;  // float() takes a leading plus, from_chars not
    if (begin == end) return false;
    const auto [stop, error] = std::from_chars(begin, end, value);
    return error == std::errc() && stop == end && std::isfinite(value);
}

const char PARSE_DOC[] =
    "parse(data, delimiter, width, features, spans_of, X, spans) -> (rows, failed_line)\n\n"
    "Read the lines of data (bytes): blank lines and lines of only delimiters and spaces\n"
    "are skipped; every other line must have width cells. The cells at the positions in\n"
    "features (intp) go into X (float64, capacity x len(features)), the byte spans of the\n"
    "cells at spans_of (intp) into spans (intp, capacity x len(spans_of) x 2). Returns\n"
    "the rows read and -1, or, where a line is not plain numbers, the rows before it and\n"
    "its 0-based line number in data.";

PyObject* parse(PyObject*, PyObject* args) {
    PyObject *data_obj, *features_obj, *spans_of_obj, *X_obj, *spans_obj;
    int delimiter;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "OCnOOOO:parse", &data_obj, &delimiter, &width, &features_obj,
                          &spans_of_obj, &X_obj, &spans_obj))
        return nullptr;
    Buffer data, features, spans_of, X, spans;
    if (!take(data_obj, data, "data", 1, 1, false) ||
        !take(features_obj, features, "features", 1, sizeof(Py_ssize_t), false) ||
        !take(spans_of_obj, spans_of, "spans_of", 1, sizeof(Py_ssize_t), false) ||
        !take(X_obj, X, "X", 2, sizeof(double), true) ||
        !take(spans_obj, spans, "spans", 3, sizeof(Py_ssize_t), true))
        return nullptr;
    const Py_ssize_t n_features = features.view.shape[0], n_spans = spans_of.view.shape[0];
    const Py_ssize_t capacity = X.view.shape[0];
    if (X.view.shape[1] != n_features || spans.view.shape[0] != capacity ||
        spans.view.shape[1] != n_spans || spans.view.shape[2] != 2 || width < 1 ||
        delimiter < 1 || delimiter > 127) {
        PyErr_SetString(PyExc_ValueError, "shapes of the arrays do not match");
        return nullptr;
    }
    const auto* feature_at = static_cast<const Py_ssize_t*>(features.view.buf);
    const auto* span_at = static_cast<const Py_ssize_t*>(spans_of.view.buf);
    for (Py_ssize_t i = 0; i < n_features; ++i)
        if (feature_at[i] < 0 || feature_at[i] >= width) {
            PyErr_SetString(PyExc_ValueError, "a feature column is out of range");
            return nullptr;
        }
    for (Py_ssize_t i = 0; i < n_spans; ++i)
        if (span_at[i] < 0 || span_at[i] >= width) {
            PyErr_SetString(PyExc_ValueError, "a span column is out of range");
            return nullptr;
        }
    // column -> slot in X (or -1), column -> slot in spans (or -1)
    std::vector<Py_ssize_t> feature_slot(width, -1), span_slot(width, -1);
    for (Py_ssize_t i = 0; i < n_features; ++i) feature_slot[feature_at[i]] = i;
    for (Py_ssize_t i = 0; i < n_spans; ++i) span_slot[span_at[i]] = i;

    const char* const start = static_cast<const char*>(data.view.buf);
    const char* const finish = start + data.view.len;
    auto* out = static_cast<double*>(X.view.buf);
    auto* out_spans = static_cast<Py_ssize_t*>(spans.view.buf);
    const char sep = static_cast<char>(delimiter);
    Py_ssize_t rows = 0, line = 0, failed = -1;

    Py_BEGIN_ALLOW_THREADS
    for (const char* at = start; at < finish; ++line) {
        const char* end = static_cast<const char*>(std::memchr(at, '\n', finish - at));
        if (end == nullptr) end = finish;
        const char* next = end < finish ? end + 1 : finish;
        bool blank = true;
        for (const char* c = at; c < end; ++c)
            if (!is_space(*c) && *c != sep) {
                blank = false;
                break;
            }
        if (blank) {
            at = next;
            continue;
        }
        if (rows == capacity || std::memchr(at, '"', end - at) != nullptr) {
            failed = line;
            break;
        }
        double* row = out + rows * n_features;
        Py_ssize_t* row_spans = out_spans + rows * n_spans * 2;
        Py_ssize_t column = 0;
        bool ok = true;
        for (const char* cell = at;; ++column) {
            const char* cell_end = static_cast<const char*>(std::memchr(cell, sep, end - cell));
            if (cell_end == nullptr) cell_end = end;
            if (column >= width) {
                ok = false;
                break;
            }
            const Py_ssize_t slot = feature_slot[column];
            if (slot >= 0 && !parse_number(cell, cell_end, row[slot])) {
                ok = false;
                break;
            }
            const Py_ssize_t span = span_slot[column];
            if (span >= 0) {
                row_spans[2 * span] = cell - start;
                row_spans[2 * span + 1] = cell_end - start;
            }
            if (cell_end == end) break;
            cell = cell_end + 1;
        }
        if (!ok || column != width - 1) {
            failed = line;
            break;
        }
        ++rows;
        at = next;
    }
    Py_END_ALLOW_THREADS
    return Py_BuildValue("nn", rows, failed);
}

PyMethodDef METHODS[] = {
    {"parse", parse, METH_VARARGS, PARSE_DOC},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef MODULE = {
    PyModuleDef_HEAD_INIT,
    "stages._fastcsv",
    "The fast reading of plain CSV rows of numbers (compiled).",
    -1,
    METHODS,
};

}  // namespace

PyMODINIT_FUNC PyInit__fastcsv() { return PyModule_Create(&MODULE); }
