/* The injector's fast path in C: how far a run of ordinary markup goes.
 *
 * ordinary_run_end(buf, pos) returns exactly what edge_worker.html_inject._ORDINARY_RUN.match(buf,
 * pos).end() returns (tests hold the two equal on generated pages): the end of the longest run of
 * text, start tags that neither open raw text nor carry a data-pz-slot attribute, end tags, and whole
 * comments that are not pz markers. The regex, Python's `re`, scans at ~90 MB/s; this scans at memchr
 * speed through text and attribute values. It only reads `buf`, never past its length, and allocates
 * nothing.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

enum {
    WS = 1,            /* [\t\n\f\r ] */
    NAME_END = 2,      /* [\t\n\f\r />]: ends a tag name */
    ATTR_END = 4,      /* [\t\n\f\r />=]: ends an attribute name */
    ATTR_NOT_FIRST = 8, /* [\t\n\f\r />"'=]: cannot begin an attribute name */
    VALUE_END = 16,    /* [\t\n\f\r >]: ends an unquoted value */
    VALUE_NOT_FIRST = 32, /* [\t\n\f\r >"']: cannot begin an unquoted value */
    GAP = 64,          /* [\t\n\f\r /]: between attributes */
    SPACE = 128,       /* \s of a bytes pattern: [ \t\n\r\f\v] */
};

static unsigned char classes[256];

static void init_classes(void) {
    const char *ws = "\t\n\f\r ";
    for (const char *c = ws; *c; c++) {
        classes[(unsigned char)*c] |= WS | NAME_END | ATTR_END | ATTR_NOT_FIRST | VALUE_END |
                                      VALUE_NOT_FIRST | GAP | SPACE;
    }
    classes['\v'] |= SPACE;
    classes['/'] |= NAME_END | ATTR_END | ATTR_NOT_FIRST | GAP;
    classes['>'] |= NAME_END | ATTR_END | ATTR_NOT_FIRST | VALUE_END | VALUE_NOT_FIRST;
    classes['='] |= ATTR_END | ATTR_NOT_FIRST;
    classes['"'] |= ATTR_NOT_FIRST | VALUE_NOT_FIRST;
    classes['\''] |= ATTR_NOT_FIRST | VALUE_NOT_FIRST;
}

static inline int is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }

static inline unsigned char lower(unsigned char c) {
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* `word` (lower case, n bytes) at b[i], ASCII case-insensitively, followed by a byte of class
 * `follow`. */
static inline int word_at(const unsigned char *b, Py_ssize_t i, Py_ssize_t end, const char *word,
                          Py_ssize_t n, unsigned char follow) {
    if (end - i <= n) return 0; /* the word and the byte after it must both be there */
    for (Py_ssize_t k = 0; k < n; k++) {
        if (lower(b[i + k]) != (unsigned char)word[k]) return 0;
    }
    return (classes[b[i + n]] & follow) != 0;
}

#define WORD_AT(b, i, end, literal, follow) word_at(b, i, end, literal, sizeof(literal) - 1, follow)

/* Does a raw-text element's name (script, style, ...) start at b[i]? */
static inline int raw_text_name_at(const unsigned char *b, Py_ssize_t i, Py_ssize_t end) {
    switch (lower(b[i])) {
    case 'i':
        return WORD_AT(b, i, end, "iframe", NAME_END);
    case 'n':
        return WORD_AT(b, i, end, "noembed", NAME_END) || WORD_AT(b, i, end, "noframes", NAME_END);
    case 's':
        return WORD_AT(b, i, end, "script", NAME_END) || WORD_AT(b, i, end, "style", NAME_END);
    case 't':
        return WORD_AT(b, i, end, "textarea", NAME_END) || WORD_AT(b, i, end, "title", NAME_END);
    case 'x':
        return WORD_AT(b, i, end, "xmp", NAME_END);
    default:
        return 0;
    }
}

/* An ordinary start tag at b[p] == '<': its end, or -1. */
static Py_ssize_t start_tag(const unsigned char *b, Py_ssize_t p, Py_ssize_t end) {
    Py_ssize_t i = p + 1;
    if (i >= end || !is_alpha(b[i])) return -1;
    if (raw_text_name_at(b, i, end)) return -1;
    i++;
    while (i < end && !(classes[b[i]] & NAME_END)) i++;
    for (;;) { /* attributes */
        Py_ssize_t j = i;
        while (j < end && (classes[b[j]] & GAP)) j++;
        if (j >= end || (classes[b[j]] & ATTR_NOT_FIRST) ||
            ((b[j] | 0x20) == 'd' && WORD_AT(b, j, end, "data-pz-slot", ATTR_END))) {
            break;
        }
        Py_ssize_t k = j + 1;
        while (k < end && !(classes[b[k]] & ATTR_END)) k++;
        Py_ssize_t m = k; /* an optional value, taken whole or not at all */
        while (m < end && (classes[b[m]] & WS)) m++;
        if (m < end && b[m] == '=') {
            m++;
            while (m < end && (classes[b[m]] & WS)) m++;
            if (m < end && (b[m] == '"' || b[m] == '\'')) {
                const unsigned char *q = memchr(b + m + 1, b[m], (size_t)(end - m - 1));
                if (q != NULL) k = (q - b) + 1;
            } else if (m < end && !(classes[b[m]] & VALUE_NOT_FIRST)) {
                m++;
                while (m < end && !(classes[b[m]] & VALUE_END)) m++;
                k = m;
            }
        }
        i = k;
    }
    while (i < end && (classes[b[i]] & GAP)) i++;
    return (i < end && b[i] == '>') ? i + 1 : -1;
}

/* An end tag at b[p] == '<': its end, or -1. */
static Py_ssize_t end_tag(const unsigned char *b, Py_ssize_t p, Py_ssize_t end) {
    if (p + 2 >= end || b[p + 1] != '/' || !is_alpha(b[p + 2])) return -1;
    const unsigned char *q = memchr(b + p + 3, '>', (size_t)(end - p - 3));
    return q == NULL ? -1 : (q - b) + 1;
}

/* A whole comment that is not a pz marker at b[p] == '<': its end, or -1. */
static Py_ssize_t comment(const unsigned char *b, Py_ssize_t p, Py_ssize_t end) {
    if (end - p < 4 || memcmp(b + p, "<!--", 4) != 0) return -1;
    Py_ssize_t k = p + 4;
    while (k < end && (classes[b[k]] & SPACE)) k++;
    if (k < end && b[k] == '/') k++;
    if (end - k >= 7 && memcmp(b + k, "pz:slot", 7) == 0) return -1;
    for (Py_ssize_t x = p + 6; x < end;) { /* the first "-->" that starts at p + 4 or later */
        const unsigned char *q = memchr(b + x, '>', (size_t)(end - x));
        if (q == NULL) return -1;
        Py_ssize_t gt = q - b;
        if (b[gt - 1] == '-' && b[gt - 2] == '-') return gt + 1;
        x = gt + 1;
    }
    return -1;
}

static Py_ssize_t run_end(const unsigned char *b, Py_ssize_t pos, Py_ssize_t end) {
    Py_ssize_t i = pos;
    while (i < end) {
        if (b[i] != '<') {
            const unsigned char *q = memchr(b + i, '<', (size_t)(end - i));
            if (q == NULL) return end;
            i = q - b;
            continue;
        }
        Py_ssize_t next = start_tag(b, i, end);
        if (next < 0) next = end_tag(b, i, end);
        if (next < 0) next = comment(b, i, end);
        if (next < 0) return i;
        i = next;
    }
    return i;
}

static PyObject *ordinary_run_end(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "ordinary_run_end(buf: bytes, pos: int)");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t end = PyBytes_GET_SIZE(args[0]);
    if (pos < 0 || pos > end) {
        PyErr_SetString(PyExc_ValueError, "pos outside buf");
        return NULL;
    }
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    return PyLong_FromSsize_t(run_end(b, pos, end));
}

static PyMethodDef methods[] = {
    {"ordinary_run_end", (PyCFunction)(void (*)(void))ordinary_run_end, METH_FASTCALL,
     "ordinary_run_end(buf, pos, /) -> int: where the run of ordinary markup at buf[pos] ends."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_html_scan", "The injector's fast path over ordinary markup.", -1, methods,
};

PyMODINIT_FUNC PyInit__html_scan(void) {
    init_classes();
    return PyModule_Create(&module_def);
}
