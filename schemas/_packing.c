/* Packed user profiles in C: what schemas/profile_packing.py specifies, ~10x faster.
 *
 * pack_profiles_into(data, ends, item_index, item_categories, segment_index, profiles, created_s, kinds)
 *     appends each profile's packed bytes to the bytearray `data` and its end to `ends`, growing the
 *     dictionaries as pack_profiles_in_python does; same bytes (tests hold the two equal).
 * unpack_profile(key, data, start, end, created_s, names, categories, load_item, segments, types)
 *     decodes data[start:end] (any buffer) as ProfileUnpacker.unpack_in_python does, with the same
 *     errors; types = (ItemHistory, Profile, DecodeError, EVENT_KINDS, Lifetime).
 *
 * Every read is bounds-checked; numbers are limited as the specification limits them, so no
 * arithmetic here can overflow.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>

#define KINDS 3
#define NUMBER_LIMIT ((uint64_t)1 << 63)
#define TIME_LIMIT_S ((int64_t)1 << 40)
#define CENTS_LIMIT ((int64_t)1 << 53)

/* ---- packing ------------------------------------------------------------------------------ */

typedef struct {
    uint8_t *bytes;
    Py_ssize_t length, capacity;
} Out;

static int out_reserve(Out *out, Py_ssize_t more) {
    if (out->length + more <= out->capacity) return 0;
    Py_ssize_t capacity = out->capacity ? out->capacity * 2 : 256;
    while (capacity < out->length + more) capacity *= 2;
    uint8_t *grown = PyMem_Realloc(out->bytes, (size_t)capacity);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    out->bytes = grown;
    out->capacity = capacity;
    return 0;
}

static int put_varint(Out *out, uint64_t value) {
    if (out_reserve(out, 10) < 0) return -1;
    while (value > 0x7F) {
        out->bytes[out->length++] = (uint8_t)((value & 0x7F) | 0x80);
        value >>= 7;
    }
    out->bytes[out->length++] = (uint8_t)value;
    return 0;
}

static uint64_t zigzag(int64_t value) {
    return value >= 0 ? (uint64_t)value * 2 : (uint64_t)(-(value + 1)) * 2 + 1;
}

/* Python's floor division of a by b > 0. */
static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

static PyObject *s_items, *s_segments, *s_updated_ms, *s_item, *s_category, *s_times_s, *s_event, *s_value,
    *s_lifetime;

/* dict[key] = len(dict) if absent; the index either way (-1 with an error set). */
static Py_ssize_t index_of(PyObject *index, PyObject *key, int *added) {
    PyObject *found = PyDict_GetItemWithError(index, key);
    if (found != NULL) {
        *added = 0;
        return PyLong_AsSsize_t(found);
    }
    if (PyErr_Occurred()) return -1;
    Py_ssize_t next = PyDict_GET_SIZE(index);
    PyObject *number = PyLong_FromSsize_t(next);
    if (number == NULL) return -1;
    int failed = PyDict_SetItem(index, key, number);
    Py_DECREF(number);
    *added = 1;
    return failed ? -1 : next;
}

/* One item; *newest_before is the newest time of the item before it (the snapshot's time for the
 * first), and becomes this item's newest. */
static int pack_item(Out *out, PyObject *history, int64_t *newest_before, PyObject *item_index,
                     PyObject *kinds) {
    int ok = -1;
    PyObject *item = NULL, *event = NULL, *value = NULL, *times = NULL;
    item = PyObject_GetAttr(history, s_item);
    event = item ? PyObject_GetAttr(history, s_event) : NULL;
    value = event ? PyObject_GetAttr(history, s_value) : NULL;
    times = value ? PyObject_GetAttr(history, s_times_s) : NULL;
    if (times == NULL) goto done;
    PyObject *index = PyDict_GetItemWithError(item_index, item);
    if (index == NULL) {
        if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, item);
        goto done;
    }
    Py_ssize_t kind = PySequence_Index(kinds, event);
    Py_ssize_t i = PyLong_AsSsize_t(index);
    if (kind < 0 || (i == -1 && PyErr_Occurred())) goto done;
    double amount = PyFloat_AsDouble(value);
    if (amount == -1.0 && PyErr_Occurred()) goto done;
    if (!isfinite(amount) || fabs(amount * 100.0) >= (double)CENTS_LIMIT) {
        PyErr_Format(PyExc_ValueError, "value of %R is not a price in range", item);
        goto done;
    }
    int64_t cents = (int64_t)nearbyint(amount * 100.0); /* round half to even, as round() does */
    PyObject *seq = PySequence_Fast(times, "times_s must be a sequence");
    if (seq == NULL) goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (put_varint(out, (uint64_t)i) < 0 ||
        put_varint(out, ((uint64_t)n * KINDS + (uint64_t)kind) * 2 + (cents ? 1 : 0)) < 0) {
        Py_DECREF(seq);
        goto done;
    }
    int64_t previous = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        int64_t t = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, k));
        if (t == -1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            goto done;
        }
        if (t < -TIME_LIMIT_S || t > TIME_LIMIT_S) {
            PyErr_Format(PyExc_ValueError, "a time of %R is out of range", item);
            Py_DECREF(seq);
            goto done;
        }
        int failed;
        if (k == 0) {
            failed = put_varint(out, zigzag(*newest_before - t));
            *newest_before = t;
        } else if (t > previous) {
            PyErr_Format(PyExc_ValueError, "view times of %R must be newest first", item);
            Py_DECREF(seq);
            goto done;
        } else {
            failed = put_varint(out, (uint64_t)(previous - t));
        }
        if (failed) {
            Py_DECREF(seq);
            goto done;
        }
        previous = t;
    }
    Py_DECREF(seq);
    if (cents && put_varint(out, zigzag(cents)) < 0) goto done;
    ok = 0;
done:
    Py_XDECREF(item);
    Py_XDECREF(event);
    Py_XDECREF(value);
    Py_XDECREF(times);
    return ok;
}

/* A profile's lifetime totals (a Lifetime: a tuple of six ints), checked as _pack_lifetime checks them. */
static int pack_lifetime(Out *out, PyObject *lifetime, int64_t created_s) {
    if (!PyTuple_Check(lifetime) || PyTuple_GET_SIZE(lifetime) != 6) {
        PyErr_SetString(PyExc_TypeError, "lifetime must be a Lifetime");
        return -1;
    }
    int64_t n[6];
    int too_large = 0; /* a count of 2**63 or more */
    for (int k = 0; k < 6; k++) {
        int overflow;
        n[k] = PyLong_AsLongLongAndOverflow(PyTuple_GET_ITEM(lifetime, k), &overflow);
        if (n[k] == -1 && PyErr_Occurred()) return -1;
        if (overflow) n[k] = overflow > 0 ? INT64_MAX : INT64_MIN; /* out of the time and cents ranges */
        if (overflow > 0 && k >= 2 && k < 5) too_large = 1;
    }
    int64_t first_s = n[0], last_s = n[1], revenue_cents = n[5];
    if (!(-TIME_LIMIT_S <= first_s && first_s <= last_s && last_s <= TIME_LIMIT_S)) {
        PyErr_SetString(PyExc_ValueError,
                        "lifetime: first and last seen must be in range, first no later than last");
        return -1;
    }
    if (too_large || n[2] < 0 || n[3] < 0 || n[4] < 0) {
        PyErr_SetString(PyExc_ValueError, "lifetime: counts must be in 0 .. 2**63");
        return -1;
    }
    if (revenue_cents <= -CENTS_LIMIT || revenue_cents >= CENTS_LIMIT) {
        PyErr_SetString(PyExc_ValueError, "lifetime: revenue out of range");
        return -1;
    }
    uint64_t numbers[6] = {zigzag(created_s - last_s), (uint64_t)(last_s - first_s), (uint64_t)n[2],
                           (uint64_t)n[3], (uint64_t)n[4], zigzag(revenue_cents)};
    for (int k = 0; k < 6; k++) {
        if (put_varint(out, numbers[k]) < 0) return -1;
    }
    return 0;
}

/* One profile: its dictionary entries first (as the Python does), then its bytes. */
static int pack_one(Out *out, PyObject *profile, int64_t created_s, PyObject *item_index,
                    PyObject *item_categories, PyObject *segment_index, PyObject *kinds) {
    int ok = -1;
    PyObject *items = NULL, *items_seq = NULL, *segments = NULL, *segments_seq = NULL, *updated = NULL,
             *lifetime = NULL;
    items = PyObject_GetAttr(profile, s_items);
    items_seq = items ? PySequence_Fast(items, "items must be a sequence") : NULL;
    segments = items_seq ? PyObject_GetAttr(profile, s_segments) : NULL;
    segments_seq = segments ? PySequence_Fast(segments, "segments must be a sequence") : NULL;
    updated = segments_seq ? PyObject_GetAttr(profile, s_updated_ms) : NULL;
    lifetime = updated ? PyObject_GetAttr(profile, s_lifetime) : NULL;
    if (lifetime == NULL) goto done;
    Py_ssize_t n_items = PySequence_Fast_GET_SIZE(items_seq);
    Py_ssize_t n_segments = PySequence_Fast_GET_SIZE(segments_seq);
    for (Py_ssize_t k = 0; k < n_items; k++) {
        PyObject *history = PySequence_Fast_GET_ITEM(items_seq, k);
        PyObject *item = PyObject_GetAttr(history, s_item);
        if (item == NULL) goto done;
        int added;
        Py_ssize_t index = index_of(item_index, item, &added);
        Py_DECREF(item);
        if (index < 0) goto done;
        if (added) {
            PyObject *category = PyObject_GetAttr(history, s_category);
            if (category == NULL) goto done;
            int failed = PyList_Append(item_categories, category);
            Py_DECREF(category);
            if (failed) goto done;
        }
    }
    int64_t updated_ms = PyLong_AsLongLong(updated);
    if (updated_ms == -1 && PyErr_Occurred()) goto done;
    if (put_varint(out, zigzag(created_s - floor_div(updated_ms, 1000))) < 0) goto done;
    if (put_varint(out, (uint64_t)n_segments) < 0) goto done;
    for (Py_ssize_t k = 0; k < n_segments; k++) {
        int added;
        Py_ssize_t index = index_of(segment_index, PySequence_Fast_GET_ITEM(segments_seq, k), &added);
        if (index < 0 || put_varint(out, (uint64_t)index) < 0) goto done;
    }
    if (put_varint(out, (uint64_t)n_items * 2 + (lifetime != Py_None)) < 0) goto done;
    int64_t newest_before = created_s;
    for (Py_ssize_t k = 0; k < n_items; k++) {
        if (pack_item(out, PySequence_Fast_GET_ITEM(items_seq, k), &newest_before, item_index, kinds) < 0) {
            goto done;
        }
    }
    if (lifetime != Py_None && pack_lifetime(out, lifetime, created_s) < 0) goto done;
    ok = 0;
done:
    Py_XDECREF(lifetime);
    Py_XDECREF(items);
    Py_XDECREF(items_seq);
    Py_XDECREF(segments);
    Py_XDECREF(segments_seq);
    Py_XDECREF(updated);
    return ok;
}

static PyObject *pack_profiles_into(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 8 || !PyByteArray_Check(args[0]) || !PyList_Check(args[1]) || !PyDict_Check(args[2]) ||
        !PyList_Check(args[3]) || !PyDict_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError,
                        "pack_profiles_into(data: bytearray, ends: list, item_index: dict, "
                        "item_categories: list, segment_index: dict, profiles, created_s, kinds)");
        return NULL;
    }
    PyObject *data = args[0], *ends = args[1];
    int64_t created_s = PyLong_AsLongLong(args[6]);
    if (created_s == -1 && PyErr_Occurred()) return NULL;
    if (created_s < -TIME_LIMIT_S || created_s > TIME_LIMIT_S) {
        PyErr_SetString(PyExc_ValueError, "snapshot time out of range");
        return NULL;
    }
    PyObject *iterator = PyObject_GetIter(args[5]);
    if (iterator == NULL) return NULL;
    Out out = {NULL, 0, 0};
    Py_ssize_t base = PyByteArray_GET_SIZE(data);
    PyObject *profile;
    while ((profile = PyIter_Next(iterator)) != NULL) {
        int failed = pack_one(&out, profile, created_s, args[2], args[3], args[4], args[7]);
        Py_DECREF(profile);
        if (failed) break;
        PyObject *end = PyLong_FromSsize_t(base + out.length);
        if (end == NULL || PyList_Append(ends, end) < 0) {
            Py_XDECREF(end);
            break;
        }
        Py_DECREF(end);
    }
    Py_DECREF(iterator);
    if (!PyErr_Occurred() && out.length) {
        if (PyByteArray_Resize(data, base + out.length) == 0) {
            memcpy(PyByteArray_AS_STRING(data) + base, out.bytes, (size_t)out.length);
        }
    }
    PyMem_Free(out.bytes);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

/* ---- unpacking ---------------------------------------------------------------------------- */

typedef struct {
    int64_t *values;
    Py_ssize_t count, next;
} Numbers;

static int64_t unzigzag(int64_t v) { return (int64_t)((uint64_t)v >> 1) ^ -(v & 1); }

/* Every number of the profile, read first (so errors come in the order the Python raises them). */
static int read_numbers(const uint8_t *p, Py_ssize_t length, Numbers *numbers, int64_t *stack,
                        Py_ssize_t stack_size, PyObject *decode_error) {
    numbers->values = stack;
    numbers->count = numbers->next = 0;
    Py_ssize_t capacity = stack_size;
    uint64_t value = 0;
    int shift = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        uint8_t byte = p[i];
        if (shift == 63 && !(byte & 0x80) && (byte & 0x7F)) { /* bit 63 or past it: too large */
            PyErr_SetString(decode_error, "number larger than 63 bits in a packed profile");
            return -1;
        }
        value |= (uint64_t)(byte & 0x7F) << shift;
        if (byte & 0x80) {
            shift += 7;
            if (shift > 63) {
                PyErr_SetString(decode_error, "varint longer than 64 bits");
                return -1;
            }
            continue;
        }
        if (value >= NUMBER_LIMIT) {
            PyErr_SetString(decode_error, "number larger than 63 bits in a packed profile");
            return -1;
        }
        if (numbers->count == capacity) {
            capacity *= 2;
            int64_t *grown;
            if (numbers->values == stack) {
                grown = PyMem_Malloc((size_t)capacity * sizeof(int64_t));
                if (grown != NULL) memcpy(grown, stack, (size_t)numbers->count * sizeof(int64_t));
            } else {
                grown = PyMem_Realloc(numbers->values, (size_t)capacity * sizeof(int64_t));
            }
            if (grown == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            numbers->values = grown;
        }
        numbers->values[numbers->count++] = (int64_t)value;
        value = 0;
        shift = 0;
    }
    if (shift) {
        PyErr_SetString(decode_error, "packed profile ends inside a number");
        return -1;
    }
    return 0;
}

#define TRUNCATED "packed profile is truncated or refers past a dictionary"

/* The next number, or -1 with the truncation error set (numbers are never negative). */
static int64_t take(Numbers *numbers, PyObject *decode_error) {
    if (numbers->next == numbers->count) {
        PyErr_SetString(decode_error, TRUNCATED);
        return -1;
    }
    return numbers->values[numbers->next++];
}

static int in_range(int64_t value, int64_t limit, const char *what, PyObject *decode_error) {
    if (value < -limit || value > limit) {
        PyErr_Format(decode_error, "%s out of range in a packed profile", what);
        return -1;
    }
    return 0;
}

/* A tuple subclass instance (ItemHistory) made as CPython's tuple_subtype_new makes one. */
static PyObject *new_item_history(PyTypeObject *type, PyObject *name, PyObject *category,
                                  PyObject *times, PyObject *kind, PyObject *value) {
    PyObject *history = type->tp_alloc(type, 5);
    if (history == NULL) return NULL;
    PyObject *fields[5] = {name, category, times, kind, value};
    for (int k = 0; k < 5; k++) {
        Py_INCREF(fields[k]);
        PyTuple_SET_ITEM(history, k, fields[k]);
    }
    return history;
}

/* A tuple no longer than the numbers left can fill: a count read from a bad profile cannot ask for
 * more memory than the profile has bytes, and the loop fails (as the Python does) before passing it. */
static PyObject *new_tuple_for(int64_t count, const Numbers *numbers, int64_t per_entry) {
    int64_t room = (numbers->count - numbers->next) / per_entry + 1;
    return PyTuple_New((Py_ssize_t)(count < room ? count : room));
}

/* A tuple filled to `used` of its entries, shrunk to that length when the count was larger. */
static PyObject *finished(PyObject *tuple, Py_ssize_t used) {
    if (PyTuple_GET_SIZE(tuple) == used) return tuple;
    PyObject *exact = PyTuple_GetSlice(tuple, 0, used);
    Py_DECREF(tuple);
    return exact;
}

static PyObject *unpack_items(Numbers *numbers, int64_t n_items, int64_t created_s, PyObject *names,
                              PyObject *categories, PyObject *load_item, PyObject *kinds,
                              PyTypeObject *item_history, PyObject *decode_error) {
    PyObject *items = new_tuple_for(n_items, numbers, 2); /* an item takes two numbers at least */
    if (items == NULL) return NULL;
    PyObject *times = NULL;
    int64_t newest_before = created_s;
    for (int64_t k = 0; k < n_items; k++) {
        int64_t index = take(numbers, decode_error);
        int64_t counted = index < 0 ? -1 : take(numbers, decode_error);
        if (counted < 0) goto fail;
        int64_t kind = (counted / 2) % KINDS, n_times = (counted / 2) / KINDS;
        times = new_tuple_for(n_times, numbers, 1);
        if (times == NULL) goto fail;
        int64_t t = 0;
        for (int64_t j = 0; j < n_times; j++) {
            int64_t number = take(numbers, decode_error);
            if (number < 0) goto fail;
            /* |newest_before|, |t| <= 2**40 and |unzigzag(number)| < 2**62: no overflow; a gap past
             * 2**41 takes any t out of range, so it is not subtracted */
            if (j == 0) {
                t = newest_before = newest_before - unzigzag(number); /* checked just below */
            } else {
                t = number > 2 * TIME_LIMIT_S ? -2 * TIME_LIMIT_S : t - number;
            }
            PyObject *time_value;
            if (in_range(t, TIME_LIMIT_S, "event time", decode_error) < 0 ||
                (time_value = PyLong_FromLongLong(t)) == NULL) {
                goto fail;
            }
            PyTuple_SET_ITEM(times, j, time_value);
        }
        times = finished(times, (Py_ssize_t)n_times);
        if (times == NULL) goto fail;
        double value = 0.0;
        if (counted & 1) {
            int64_t number = take(numbers, decode_error);
            if (number < 0) goto fail;
            int64_t cents = unzigzag(number);
            if (in_range(cents, CENTS_LIMIT, "value", decode_error) < 0) goto fail;
            value = (double)cents / 100.0; /* exact operands below 2**53: rounded as Python's / */
        }
        if (index >= PyList_GET_SIZE(names) || index >= PyList_GET_SIZE(categories)) {
            PyErr_SetString(decode_error, TRUNCATED);
            goto fail;
        }
        if (PyList_GET_ITEM(names, index) == Py_None) {
            PyObject *position = PyLong_FromLongLong(index);
            PyObject *loaded = position ? PyObject_CallOneArg(load_item, position) : NULL;
            Py_XDECREF(position);
            if (loaded == NULL) goto fail;
            Py_DECREF(loaded);
            if (index >= PyList_GET_SIZE(names) || index >= PyList_GET_SIZE(categories)) {
                PyErr_SetString(PyExc_RuntimeError, "load_item shrank the item lists");
                goto fail;
            }
        }
        PyObject *value_object = PyFloat_FromDouble(value);
        if (value_object == NULL) goto fail;
        PyObject *history = new_item_history(item_history, PyList_GET_ITEM(names, index),
                                             PyList_GET_ITEM(categories, index), times,
                                             PyTuple_GET_ITEM(kinds, kind), value_object);
        Py_DECREF(value_object);
        Py_CLEAR(times);
        if (history == NULL) goto fail;
        PyTuple_SET_ITEM(items, (Py_ssize_t)k, history);
    }
    return finished(items, (Py_ssize_t)n_items);
fail:
    Py_XDECREF(times);
    Py_DECREF(items);
    return NULL;
}

static PyObject *unpack_segments(Numbers *numbers, PyObject *segments, PyObject *decode_error) {
    int64_t count = take(numbers, decode_error);
    if (count < 0) return NULL;
    PyObject *found = new_tuple_for(count, numbers, 1);
    if (found == NULL) return NULL;
    for (int64_t k = 0; k < count; k++) {
        int64_t index = take(numbers, decode_error);
        if (index < 0) goto fail;
        if (index >= PyList_GET_SIZE(segments)) {
            PyErr_SetString(decode_error, TRUNCATED);
            goto fail;
        }
        PyObject *name = PyList_GET_ITEM(segments, index);
        Py_INCREF(name);
        PyTuple_SET_ITEM(found, (Py_ssize_t)k, name);
    }
    return finished(found, (Py_ssize_t)count);
fail:
    Py_DECREF(found);
    return NULL;
}

/* The lifetime totals after the items, read as unpack_in_python reads them. */
static PyObject *unpack_lifetime(Numbers *numbers, int64_t created_s, PyObject *lifetime_type,
                                 PyObject *decode_error) {
    int64_t n[6];
    n[0] = take(numbers, decode_error);
    if (n[0] < 0) return NULL;
    int64_t last_s = created_s - unzigzag(n[0]);
    if (in_range(last_s, TIME_LIMIT_S, "last seen time", decode_error) < 0) return NULL;
    n[1] = take(numbers, decode_error);
    if (n[1] < 0) return NULL;
    /* a span past 2**41 takes first seen out of range whatever last seen is: not subtracted */
    int64_t first_s = n[1] > 2 * TIME_LIMIT_S ? -2 * TIME_LIMIT_S : last_s - n[1];
    if (in_range(first_s, TIME_LIMIT_S, "first seen time", decode_error) < 0) return NULL;
    for (int k = 2; k < 6; k++) {
        n[k] = take(numbers, decode_error);
        if (n[k] < 0) return NULL;
    }
    int64_t revenue_cents = unzigzag(n[5]);
    if (in_range(revenue_cents, CENTS_LIMIT, "revenue", decode_error) < 0) return NULL;
    int64_t values[6] = {first_s, last_s, n[2], n[3], n[4], revenue_cents};
    PyObject *fields[6] = {NULL};
    PyObject *lifetime = NULL;
    for (int k = 0; k < 6; k++) {
        fields[k] = PyLong_FromLongLong(values[k]);
        if (fields[k] == NULL) goto done;
    }
    lifetime = PyObject_Vectorcall(lifetime_type, fields, 6, NULL);
done:
    for (int k = 0; k < 6; k++) Py_XDECREF(fields[k]);
    return lifetime;
}

static PyObject *unpack_profile(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 10 || !PyList_Check(args[5]) || !PyList_Check(args[6]) || !PyList_Check(args[8]) ||
        !PyTuple_Check(args[9]) || PyTuple_GET_SIZE(args[9]) != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "unpack_profile(key, data, start, end, created_s, names: list, categories: list, "
                        "load_item, segments: list, types: tuple of 5)");
        return NULL;
    }
    PyObject *key = args[0], *types = args[9];
    PyTypeObject *item_history = (PyTypeObject *)PyTuple_GET_ITEM(types, 0);
    PyObject *profile_type = PyTuple_GET_ITEM(types, 1);
    PyObject *decode_error = PyTuple_GET_ITEM(types, 2);
    PyObject *kinds = PyTuple_GET_ITEM(types, 3);
    PyObject *lifetime_type = PyTuple_GET_ITEM(types, 4);
    if (!PyType_Check(item_history) || !PyType_IsSubtype(item_history, &PyTuple_Type) ||
        !PyTuple_Check(kinds) || PyTuple_GET_SIZE(kinds) != KINDS) {
        PyErr_SetString(PyExc_TypeError,
                        "types: (a tuple subclass, Profile, DecodeError, 3 kinds, Lifetime)");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[2]), end = PyLong_AsSsize_t(args[3]);
    int64_t created_s = PyLong_AsLongLong(args[4]);
    if (PyErr_Occurred()) return NULL;
    if (in_range(created_s, TIME_LIMIT_S, "snapshot time", decode_error) < 0) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0) return NULL;
    PyObject *result = NULL, *segments = NULL, *items = NULL, *lifetime = NULL;
    int64_t stack[256];
    Numbers numbers = {stack, 0, 0};
    if (start < 0 || end < start || end > view.len) {
        PyErr_SetString(decode_error, "profile bounds outside the data");
        goto done;
    }
    if (read_numbers((const uint8_t *)view.buf + start, end - start, &numbers, stack, 256, decode_error) < 0) {
        goto done;
    }
    int64_t age = take(&numbers, decode_error);
    if (age < 0) goto done;
    int64_t updated_s = created_s - unzigzag(age);
    if (in_range(updated_s, TIME_LIMIT_S, "updated time", decode_error) < 0) goto done;
    segments = unpack_segments(&numbers, args[8], decode_error);
    if (segments == NULL) goto done;
    int64_t counted = take(&numbers, decode_error);
    if (counted < 0) goto done;
    items = unpack_items(&numbers, counted / 2, created_s, args[5], args[6], args[7], kinds, item_history,
                         decode_error);
    if (items == NULL) goto done;
    if (counted & 1) {
        lifetime = unpack_lifetime(&numbers, created_s, lifetime_type, decode_error);
        if (lifetime == NULL) goto done;
    } else {
        lifetime = Py_NewRef(Py_None);
    }
    if (numbers.next != numbers.count) {
        PyErr_SetString(decode_error, "stray numbers after the packed profile");
        goto done;
    }
    PyObject *updated_ms = PyLong_FromLongLong(updated_s * 1000);
    if (updated_ms == NULL) goto done;
    PyObject *call_args[5] = {key, items, segments, updated_ms, lifetime};
    result = PyObject_Vectorcall(profile_type, call_args, 5, NULL);
    Py_DECREF(updated_ms);
done:
    Py_XDECREF(lifetime);
    Py_XDECREF(segments);
    Py_XDECREF(items);
    if (numbers.values != stack) PyMem_Free(numbers.values);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"pack_profiles_into", (PyCFunction)(void (*)(void))pack_profiles_into, METH_FASTCALL,
     "Pack profiles after the bytes already in `data` (see schemas/profile_packing.py)."},
    {"unpack_profile", (PyCFunction)(void (*)(void))unpack_profile, METH_FASTCALL,
     "Unpack one profile from data[start:end] (see schemas/profile_packing.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_packing", "Packed user profiles, in C.", -1, methods,
};

PyMODINIT_FUNC PyInit__packing(void) {
    s_items = PyUnicode_InternFromString("items");
    s_segments = PyUnicode_InternFromString("segments");
    s_updated_ms = PyUnicode_InternFromString("updated_ms");
    s_item = PyUnicode_InternFromString("item");
    s_category = PyUnicode_InternFromString("category");
    s_times_s = PyUnicode_InternFromString("times_s");
    s_event = PyUnicode_InternFromString("event");
    s_value = PyUnicode_InternFromString("value");
    s_lifetime = PyUnicode_InternFromString("lifetime");
    if (!s_items || !s_segments || !s_updated_ms || !s_item || !s_category || !s_times_s || !s_event ||
        !s_value || !s_lifetime) {
        return NULL;
    }
    return PyModule_Create(&module_def);
}
