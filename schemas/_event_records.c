/* Event records (FlatBuffers, file identifier PZEV) in C: what schemas/event_codec.py's Python
 * specifies, several times faster (the edge encodes every beacon, the aggregator decodes every event).
 *
 * decode_event(data, types) with types = (Event, Attribution, DecodeError, type names by code) returns
 * the same Event, or raises the same DecodeError with the same message, for any bytes (tests hold the
 * two equal). Every read is bounds-checked against the buffer; nothing is allocated from a size read
 * from it.
 *
 * encode_event(event, type_codes) writes one record that decodes (here, in Python, and through the
 * generated FlatBuffers accessors) to the same event. Layout, front to back: root offset, identifier,
 * the event's vtable and table (every field present), the attribution's vtable and table, then the
 * strings; every offset points forward, every scalar is aligned to its size.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_FIELDS 16

typedef struct {
    const uint8_t *data;
    Py_ssize_t size, pos;
    int fields;
    uint16_t offsets[MAX_FIELDS];
} Table;

static uint32_t u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t u64(const uint8_t *p) { return (uint64_t)u32(p) | (uint64_t)u32(p + 4) << 32; }

static int fail(PyObject *error, const char *message) {
    PyErr_SetString(error, message);
    return -1;
}

static int open_table(Table *t, const uint8_t *data, Py_ssize_t size, Py_ssize_t pos, PyObject *error) {
    if (pos < 0 || pos > size - 4) return fail(error, "table outside the buffer");
    Py_ssize_t vt = pos - (Py_ssize_t)(int32_t)u32(data + pos);
    if (vt < 0 || vt > size - 4) return fail(error, "vtable outside the buffer");
    int vtable_size = data[vt] | data[vt + 1] << 8;
    int fields = (vtable_size - 4) / 2; /* Python's floor division: -4 // 2 and -3 // 2 clamp to 0 */
    if (vtable_size < 4) fields = 0;
    if (fields > MAX_FIELDS) fields = MAX_FIELDS;
    if (vt + 4 + 2 * fields > size) return fail(error, "vtable runs past the buffer");
    t->data = data;
    t->size = size;
    t->pos = pos;
    t->fields = fields;
    for (int k = 0; k < fields; k++) t->offsets[k] = (uint16_t)(data[vt + 4 + 2 * k] | data[vt + 5 + 2 * k] << 8);
    return 0;
}

/* Where field `index` is (0: absent), -1 with an error set when it runs past the buffer. */
static Py_ssize_t field(const Table *t, int index, int width, PyObject *error) {
    if (index >= t->fields || t->offsets[index] == 0) return 0;
    Py_ssize_t at = t->pos + t->offsets[index];
    if (at + width > t->size) return fail(error, "field outside the buffer");
    return at;
}

static PyObject *text(const Table *t, int index, PyObject *error) {
    Py_ssize_t at = field(t, index, 4, error);
    if (at < 0) return NULL;
    if (at == 0) return PyUnicode_New(0, 0);
    Py_ssize_t start = at + (Py_ssize_t)u32(t->data + at);
    if (start + 4 > t->size) {
        fail(error, "string outside the buffer");
        return NULL;
    }
    Py_ssize_t length = (Py_ssize_t)u32(t->data + start);
    if (start + 4 + length > t->size) {
        fail(error, "string runs past the buffer");
        return NULL;
    }
    PyObject *decoded = PyUnicode_DecodeUTF8((const char *)t->data + start + 4, length, "strict");
    if (decoded == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyObject *type, *value, *traceback; /* as the Python says it: "malformed event buffer: ..." */
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        PyObject *reason = PyObject_Str(value);
        if (reason != NULL) {
            PyErr_Format(error, "malformed event buffer: %U", reason);
            Py_DECREF(reason);
        }
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(traceback);
    }
    return decoded;
}

static PyObject *attribution_of(const Table *event, PyObject *attribution_type, PyObject *error) {
    Py_ssize_t at = field(event, 9, 4, error);
    if (at < 0) return NULL;
    if (at == 0) Py_RETURN_NONE;
    Table t;
    if (open_table(&t, event->data, event->size, at + (Py_ssize_t)u32(event->data + at), error) < 0) return NULL;
    PyObject *parts[4] = {NULL, NULL, NULL, NULL};
    PyObject *result = NULL;
    for (int k = 0; k < 4; k++) {
        if ((parts[k] = text(&t, k, error)) == NULL) goto done;
    }
    result = PyObject_Vectorcall(attribution_type, parts, 4, NULL);
done:
    for (int k = 0; k < 4; k++) Py_XDECREF(parts[k]);
    return result;
}

static PyObject *decode_event(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 2 || !PyTuple_Check(args[1]) || PyTuple_GET_SIZE(args[1]) != 4 ||
        !PyDict_Check(PyTuple_GET_ITEM(args[1], 3))) {
        PyErr_SetString(PyExc_TypeError, "decode_event(data, (Event, Attribution, DecodeError, names))");
        return NULL;
    }
    PyObject *event_type = PyTuple_GET_ITEM(args[1], 0), *attribution_type = PyTuple_GET_ITEM(args[1], 1);
    PyObject *error = PyTuple_GET_ITEM(args[1], 2), *names = PyTuple_GET_ITEM(args[1], 3);
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) return NULL;
    const uint8_t *data = view.buf;
    Py_ssize_t size = view.len;
    PyObject *result = NULL, *fields[10] = {NULL};
    Table ev;
    if (size < 8 || memcmp(data + 4, "PZEV", 4) != 0) {
        fail(error, "not a pz event (file identifier PZEV missing)");
        goto done;
    }
    if (open_table(&ev, data, size, (Py_ssize_t)u32(data), error) < 0) goto done;
    Py_ssize_t at = field(&ev, 0, 1, error);
    if (at < 0) goto done;
    int code = at ? data[at] : 0;
    PyObject *code_object = PyLong_FromLong(code);
    if (code_object == NULL) goto done;
    PyObject *type_name = PyDict_GetItemWithError(names, code_object);
    Py_DECREF(code_object);
    if (type_name == NULL) {
        if (!PyErr_Occurred()) PyErr_Format(error, "unknown event type code %d", code);
        goto done;
    }
    Py_INCREF(type_name);
    fields[0] = type_name;
    if ((fields[9] = attribution_of(&ev, attribution_type, error)) == NULL) goto done;
    /* user_key (u64), client_ms and server_ms (i64), then texts and the value (f64), in field order */
    Py_ssize_t number_at[3];
    for (int k = 0; k < 3; k++) {
        if ((number_at[k] = field(&ev, k + 1, 8, error)) < 0) goto done;
        uint64_t raw = number_at[k] ? u64(data + number_at[k]) : 0;
        fields[k + 1] = k == 0 ? PyLong_FromUnsignedLongLong(raw) : PyLong_FromLongLong((int64_t)raw);
        if (fields[k + 1] == NULL) goto done;
    }
    if ((fields[4] = text(&ev, 4, error)) == NULL || (fields[5] = text(&ev, 5, error)) == NULL) goto done;
    Py_ssize_t value_at = field(&ev, 6, 8, error);
    if (value_at < 0) goto done;
    double value = 0.0;
    if (value_at) {
        uint64_t raw = u64(data + value_at);
        memcpy(&value, &raw, sizeof value);
    }
    if ((fields[6] = PyFloat_FromDouble(value)) == NULL) goto done;
    if ((fields[7] = text(&ev, 7, error)) == NULL || (fields[8] = text(&ev, 8, error)) == NULL) goto done;
    result = PyObject_Vectorcall(event_type, fields, 10, NULL);
done:
    for (int k = 0; k < 10; k++) Py_XDECREF(fields[k]);
    PyBuffer_Release(&view);
    return result;
}

/* ---- writing ------------------------------------------------------------------------------ */

#define EVENT_FIELDS 10
#define EVENT_VTABLE (4 + 2 * EVENT_FIELDS) /* 24 bytes */
#define EVENT_TABLE 64  /* soffset, pad, 4 x 8-byte scalars, 5 x uoffset, type byte, pad */
#define ATTRIBUTION_VTABLE (4 + 2 * 4)
#define ATTRIBUTION_TABLE 20

static void put16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v) {
    put16(p, v & 0xFFFF);
    put16(p + 2, v >> 16);
}

static void put64(uint8_t *p, uint64_t v) {
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static Py_ssize_t string_size(Py_ssize_t length) { return (4 + length + 1 + 3) & ~(Py_ssize_t)3; }

/* Writes a string at `at` (4-aligned) and points the uoffset at `field` to it; returns the next free spot. */
static Py_ssize_t put_string(uint8_t *buf, Py_ssize_t field, Py_ssize_t at, const char *text, Py_ssize_t length) {
    put32(buf + field, (uint32_t)(at - field));
    put32(buf + at, (uint32_t)length);
    memcpy(buf + at + 4, text, (size_t)length); /* the NUL and padding are already zero */
    return at + string_size(length);
}

static PyObject *s_type, *s_user_key, *s_client_ms, *s_server_ms, *s_item, *s_category, *s_value, *s_path,
    *s_session, *s_attribution, *s_slot, *s_variant, *s_experiment, *s_rule;

static PyObject *encode_event(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 2 || !PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "encode_event(event, type_codes: dict)");
        return NULL;
    }
    PyObject *event = args[0], *result = NULL;
    PyObject *held[12] = {NULL}; /* type, 4 event texts, attribution, 4 attribution texts, numbers */
    const char *text[8];
    Py_ssize_t length[8];
    PyObject *text_names[8] = {s_item, s_category, s_path, s_session, s_slot, s_variant, s_experiment, s_rule};
    int texts = 4;
    if ((held[0] = PyObject_GetAttr(event, s_type)) == NULL) goto done;
    PyObject *code = PyDict_GetItemWithError(args[1], held[0]);
    if (code == NULL) {
        if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, held[0]);
        goto done;
    }
    long type_code = PyLong_AsLong(code);
    if (type_code == -1 && PyErr_Occurred()) goto done;
    if ((held[5] = PyObject_GetAttr(event, s_attribution)) == NULL) goto done;
    if (held[5] != Py_None) texts = 8;
    for (int k = 0; k < texts; k++) {
        PyObject *owner = k < 4 ? event : held[5];
        if ((held[1 + k + (k >= 4)] = PyObject_GetAttr(owner, text_names[k])) == NULL) goto done;
        text[k] = PyUnicode_AsUTF8AndSize(held[1 + k + (k >= 4)], &length[k]);
        if (text[k] == NULL) goto done;
        if (length[k] > 0x3FFFFFFF) {
            PyErr_SetString(PyExc_ValueError, "event text too long for a record");
            goto done;
        }
    }
    PyObject *user_key = PyObject_GetAttr(event, s_user_key);
    if (user_key == NULL) goto done;
    unsigned long long key = PyLong_AsUnsignedLongLong(user_key);
    Py_DECREF(user_key);
    if (key == (unsigned long long)-1 && PyErr_Occurred()) goto done;
    long long times[2];
    PyObject *time_names[2] = {s_client_ms, s_server_ms};
    for (int k = 0; k < 2; k++) {
        PyObject *value = PyObject_GetAttr(event, time_names[k]);
        if (value == NULL) goto done;
        times[k] = PyLong_AsLongLong(value);
        Py_DECREF(value);
        if (times[k] == -1 && PyErr_Occurred()) goto done;
    }
    PyObject *value_object = PyObject_GetAttr(event, s_value);
    if (value_object == NULL) goto done;
    double value = PyFloat_AsDouble(value_object);
    Py_DECREF(value_object);
    if (value == -1.0 && PyErr_Occurred()) goto done;

    Py_ssize_t vtable = 8, table = vtable + EVENT_VTABLE + 8; /* the table 8-aligned, at 40 */
    Py_ssize_t after = table + EVENT_TABLE;
    Py_ssize_t attribution_vtable = 0, attribution_table = 0;
    if (texts == 8) {
        attribution_vtable = after;
        attribution_table = attribution_vtable + ATTRIBUTION_VTABLE; /* 4-aligned: 104 + 12 */
        after = attribution_table + ATTRIBUTION_TABLE;
    }
    Py_ssize_t size = after;
    for (int k = 0; k < texts; k++) size += string_size(length[k]);
    result = PyBytes_FromStringAndSize(NULL, size);
    if (result == NULL) goto done;
    uint8_t *buf = (uint8_t *)PyBytes_AS_STRING(result);
    memset(buf, 0, (size_t)size);
    put32(buf, (uint32_t)table);
    memcpy(buf + 4, "PZEV", 4);
    /* field slots: type, user_key, client_ms, server_ms, item, category, value, path, session, attribution */
    static const uint16_t slot[EVENT_FIELDS] = {60, 8, 16, 24, 40, 44, 32, 48, 52, 56};
    put16(buf + vtable, EVENT_VTABLE);
    put16(buf + vtable + 2, EVENT_TABLE);
    for (int k = 0; k < EVENT_FIELDS; k++) put16(buf + vtable + 4 + 2 * k, k == 9 && texts == 4 ? 0 : slot[k]);
    put32(buf + table, (uint32_t)(table - vtable)); /* soffset: the vtable is before the table */
    buf[table + 60] = (uint8_t)type_code;
    put64(buf + table + 8, key);
    put64(buf + table + 16, (uint64_t)times[0]);
    put64(buf + table + 24, (uint64_t)times[1]);
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    put64(buf + table + 32, bits);
    Py_ssize_t at = after;
    static const uint16_t event_text_slot[4] = {40, 44, 48, 52};
    for (int k = 0; k < 4; k++) at = put_string(buf, table + event_text_slot[k], at, text[k], length[k]);
    if (texts == 8) {
        put32(buf + table + 56, (uint32_t)(attribution_table - (table + 56)));
        put16(buf + attribution_vtable, ATTRIBUTION_VTABLE);
        put16(buf + attribution_vtable + 2, ATTRIBUTION_TABLE);
        for (int k = 0; k < 4; k++) put16(buf + attribution_vtable + 4 + 2 * k, (uint16_t)(4 + 4 * k));
        put32(buf + attribution_table, (uint32_t)(attribution_table - attribution_vtable));
        for (int k = 0; k < 4; k++) {
            at = put_string(buf, attribution_table + 4 + 4 * k, at, text[4 + k], length[4 + k]);
        }
    }
done:
    for (int k = 0; k < 12; k++) Py_XDECREF(held[k]);
    return result;
}

static PyMethodDef methods[] = {
    {"decode_event", (PyCFunction)(void (*)(void))decode_event, METH_FASTCALL,
     "Decode a PZEV event record (see schemas/event_codec.py)."},
    {"encode_event", (PyCFunction)(void (*)(void))encode_event, METH_FASTCALL,
     "Encode an Event as a PZEV record (see schemas/event_codec.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_event_records", "Event records, read and written in C.", -1, methods,
};

PyMODINIT_FUNC PyInit__event_records(void) {
    struct {
        PyObject **name;
        const char *text;
    } names[] = {{&s_type, "type"},         {&s_user_key, "user_key"}, {&s_client_ms, "client_ms"},
                 {&s_server_ms, "server_ms"}, {&s_item, "item"},         {&s_category, "category"},
                 {&s_value, "value"},         {&s_path, "path"},         {&s_session, "session"},
                 {&s_attribution, "attribution"}, {&s_slot, "slot"},     {&s_variant, "variant"},
                 {&s_experiment, "experiment"},   {&s_rule, "rule"}};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        if ((*names[k].name = PyUnicode_InternFromString(names[k].text)) == NULL) return NULL;
    }
    return PyModule_Create(&module_def);
}
