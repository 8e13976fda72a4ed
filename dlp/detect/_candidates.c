/*
 * Candidate scanner for the digit-based detectors (dlp.detect.candidates is its
 * Python face and its pure-Python twin).
 *
 * Why C: on digit-rich text (a CSV dump, an order list) the regex finds a
 * 12-digit candidate every ~60 characters and nine in ten then fail the check
 * digit; creating a match object and calling a Python function for each of them
 * was most of the detector's time.  Here one pass over the characters finds the
 * shapes the regexes of mynumber.py and credit_card.py describe, applies the
 * check digit (My Number) or Luhn (cards), and hands Python only the survivors.
 *
 * The semantics are those of the regexes, position by position (the property
 * tests in tests/unit/test_candidates.py compare both on random text):
 *
 *   My Number  \d(?<!\d\d)(?:\d{11}|\d{3}S\d{4}S\d{4}|(?:G\d){11}(?!G\d))(?!\d)
 *   card       \d(?<!\d\d)\d{3}(?:\d{10,15}|(S)\d{4}\1\d{4}\1\d{4}|(S)\d{6}\2\d{4,5})(?!\d)
 *
 * where \d is any Unicode decimal digit (category Nd, what ``str.isdecimal`` and
 * the ``re`` module's \d accept), S one separator and G one box gap, both sets
 * given by Python once (set_separators) so that the Python module stays their one
 * source.  Nothing here keeps any text: results are offsets and, for My Number
 * survivors, the folded digits that Python needs for distinct counting.
 */
/* The interface's version: raise it with any change to a function's arguments or
 * results, and dlp/detect/native.py's API with it. */
#define CANDIDATES_API 2

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Decimal digits and the character sets Python gives (set_separators) as bit maps
 * of the Basic Multilingual Plane; digits are read from the Unicode database
 * CPython carries, once. */
static unsigned char digit_map[0x10000 / 8];
static unsigned char sep_map[0x10000 / 8];
static unsigned char joiner_map[0x10000 / 8];
static unsigned char gap_map[0x10000 / 8];
static unsigned char invisible_map[0x10000 / 8];
static unsigned char stop_map[0x10000 / 8]; /* digits and invisible characters */
static unsigned char glue_map[0x10000 / 8];
/* No ASCII character is invisible (set_separators): the SWAR skip holds. */
static int ascii_stops_only_at_digits = 0;

#define BIT(map, c) ((map)[(c) >> 3] & (1u << ((c) & 7)))
#define SETBIT(map, c) ((map)[(c) >> 3] |= (unsigned char)(1u << ((c) & 7)))

enum { KIND_PLAIN = 0, KIND_GROUPED = 1, KIND_BOXES = 2, KIND_LOOSE = 3 };
/* KIND_LOOSE: 4-4-4 whose gaps are one to three characters of table cells, line
 * ends, list punctuation or separators (a row pasted from a spreadsheet, a number
 * wrapped at the line end, "1234 - 5678 - 9012"); like boxes, a number only right
 * next to its label. */
/* What the caller weighs against a number (candidates.py names the same bits). */
enum { FLAG_GLUED = 1, FLAG_DATE8 = 2, FLAG_MOBILE = 4, FLAG_FAKE = 8 };

static inline int
digit_value(Py_UCS4 c)
{
    if (c >= '0' && c <= '9') {
        return (int)(c - '0');
    }
    return Py_UNICODE_TODECIMAL(c);
}

static inline int
is_ascii_letter(Py_UCS4 c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static const int WEIGHTS[11] = {6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2};

/* The check digit rule of the My Number (総務省令第85号 第5条) over 12 values. */
static int
mynumber_ok(const int *d)
{
    int s = 0;
    for (int k = 0; k < 11; k++) {
        s += WEIGHTS[k] * d[k];
    }
    int r = s % 11;
    return d[11] == (r <= 1 ? 0 : 11 - r);
}

/* Luhn (ISO/IEC 7812-1 annex B) over n values, check digit last. */
static int
luhn_ok(const int *d, int n)
{
    int total = 0;
    for (int k = 0; k < n; k++) {
        int v = d[n - 1 - k];
        if (k & 1) {
            v *= 2;
            if (v > 9) {
                v -= 9;
            }
        }
        total += v;
    }
    return total % 10 == 0;
}

/* The flags that depend on the digits alone (candidates.number_flags). */
static int
digit_flags(const int *d)
{
    int flags = 0;
    int year = d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3];
    int month = d[4] * 10 + d[5];
    int day = d[6] * 10 + d[7];
    if (year >= 1990 && year <= 2039 && month >= 1 && month <= 12 && day >= 1 && day <= 31) {
        flags |= FLAG_DATE8;
    }
    if (d[0] == 8 && d[1] == 1 && (d[2] == 7 || d[2] == 8 || d[2] == 9 || d[2] == 5) && d[3] == 0) {
        flags |= FLAG_MOBILE;
    }
    int same = 1;
    for (int k = 1; k < 11 && same; k++) {
        same = d[k] == d[0];
    }
    if (same) {
        flags |= FLAG_FAKE;
    }
    return flags;
}

/* Append (start, end, digits, kind, flags) to out.  Built by hand: Py_BuildValue
 * parses its format string each time, which cost more than the scan per survivor. */
static int
append_number(PyObject *out, Py_ssize_t s, Py_ssize_t e, const int *d, int kind, int flags)
{
    char buf[12];
    for (int k = 0; k < 12; k++) {
        buf[k] = (char)('0' + d[k]);
    }
    PyObject *item = PyTuple_New(5);
    if (item == NULL) {
        return -1;
    }
    PyObject *parts[5] = {
        PyLong_FromSsize_t(s), PyLong_FromSsize_t(e), PyUnicode_FromStringAndSize(buf, 12),
        PyLong_FromLong(kind), PyLong_FromLong(flags),
    };
    int failed = 0;
    for (int k = 0; k < 5; k++) {
        if (parts[k] == NULL) {
            failed = 1;
        }
        PyTuple_SET_ITEM(item, k, parts[k]); /* a NULL slot is fine for the DECREF below */
    }
    int rc = failed ? -1 : PyList_Append(out, item);
    Py_DECREF(item);
    return rc;
}

static int
append_span(PyObject *out, Py_ssize_t s, Py_ssize_t e)
{
    PyObject *item = PyTuple_New(2);
    if (item == NULL) {
        return -1;
    }
    PyObject *a = PyLong_FromSsize_t(s), *b = PyLong_FromSsize_t(e);
    PyTuple_SET_ITEM(item, 0, a);
    PyTuple_SET_ITEM(item, 1, b);
    int rc = (a == NULL || b == NULL) ? -1 : PyList_Append(out, item);
    Py_DECREF(item);
    return rc;
}

/* ------------------------------------------------------------------------
 * Words: a set of literal words found the way the regex alternation
 * ``w1|w2|...`` (base.Words) finds them: leftmost first, at one position the
 * first word in the given order, non-overlapping.  With ``guard`` a word whose
 * first character is an ASCII letter must not follow an ASCII letter (the
 * lookbehind of base.literal: "dummy number" is not "my number").
 *
 * Why: keyword, context-word and label searches over a whole chunk were, after
 * the candidate scan, the detectors' largest cost on long text; the regex engine
 * tests each character against a large class of first characters.  Here it is
 * one bit test per character; words are compared only where one may start.
 */

typedef struct {
    PyObject_HEAD
    PyObject *words;          /* tuple of str, in priority order */
    Py_UCS4 **chars;          /* each word's code points */
    Py_ssize_t *lengths;
    Py_ssize_t count;
    Py_ssize_t shortest;
    int guard;
    int astral;               /* some word starts beyond the BMP */
    unsigned char first[0x10000 / 8];
    /* first character -> its words, in order (open addressing over keys/heads) */
    Py_UCS4 *keys;
    Py_ssize_t *heads;        /* first word with this first character, or -1 */
    Py_ssize_t *next;         /* next word with the same first character, or -1 */
    Py_ssize_t slots;
} WordsObject;

static Py_ssize_t
slot_of(const WordsObject *w, Py_UCS4 c)
{
    Py_ssize_t mask = w->slots - 1;
    Py_ssize_t h = (Py_ssize_t)((c * 2654435761u) & (Py_UCS4)mask);
    while (w->heads[h] >= 0 && w->keys[h] != c) {
        h = (h + 1) & mask;
    }
    return h;
}

/* Eight 1-byte characters at a time.  A str of Latin-1 text (English mail, the
 * headers, the digits-and-letters of most bodies) is stored one byte a
 * character; testing a 64-bit word costs a few instructions where eight bitmap
 * look-ups cost forty.  Each test is a superset: where it stops, the exact
 * per-character loop after it decides. */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static inline uint64_t
load8(const Py_UCS1 *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

/* The high bit of every byte that is an ASCII digit, and of every byte >= 0x80
 * (whose own carry can spill into the next byte's test: a stop either way). */
static inline uint64_t
digit_or_high8(uint64_t x)
{
    return (x | ((x + 0x50 * ONES) & ~(x + 0x46 * ONES))) & HIGHS;
}

/* The high bit of exactly the bytes equal to b. */
static inline uint64_t
equal8(uint64_t x, unsigned char b)
{
    uint64_t v = x ^ (b * ONES);
    return ~(((v & ~HIGHS) + ~HIGHS) | v | ~HIGHS);
}

#define CH Py_UCS1
#define S ucs1
/* The gap characters of a loose 4-4-4 (KIND_LOOSE): the separators of a grouped
 * number, and what separates spreadsheet cells, lines and list items.  Mirrors
 * candidates.LOOSE_GAPS. */
static inline int
is_loose(Py_UCS4 c)
{
    switch (c) {
    case '\t': case '\r': case '\n': case ',': case '/': case ':': case '|':
    case 0x3001: /* 、 */
    case 0xFF0C: /* ， */
        return 1;
    default:
        return c < 0x10000 && BIT(sep_map, c) != 0;
    }
}

#include "_candidates_scan.h"
#undef CH
#undef S
#define CH Py_UCS2
#define S ucs2
#include "_candidates_scan.h"
#undef CH
#undef S
#define CH Py_UCS4
#define S ucs4
#include "_candidates_scan.h"
#undef CH
#undef S

/* One str's storage; `call` is a scanner name, run on the right kind. */
#define ON_KIND(obj, var, call1, call2, call4)                                       \
    switch (PyUnicode_KIND(obj)) {                                                    \
    case PyUnicode_1BYTE_KIND:                                                        \
        var = call1;                                                                  \
        break;                                                                        \
    case PyUnicode_2BYTE_KIND:                                                        \
        var = call2;                                                                  \
        break;                                                                        \
    default:                                                                          \
        var = call4;                                                                  \
        break;                                                                        \
    }

#define UCS1(obj) ((const Py_UCS1 *)PyUnicode_DATA(obj))
#define UCS2(obj) ((const Py_UCS2 *)PyUnicode_DATA(obj))
#define UCS4(obj) ((const Py_UCS4 *)PyUnicode_DATA(obj))

static int
fill_map(unsigned char *map, PyObject *chars)
{
    memset(map, 0, 0x10000 / 8);
    Py_ssize_t n = PyUnicode_GET_LENGTH(chars);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ_CHAR(chars, i);
        if (c >= 0x10000) {
            PyErr_SetString(PyExc_ValueError, "character sets must be in the BMP");
            return -1;
        }
        SETBIT(map, c);
    }
    return 0;
}

static PyObject *
set_separators(PyObject *self, PyObject *args)
{
    PyObject *seps, *gaps, *invisible, *glue;
    if (!PyArg_ParseTuple(args, "UUUU", &seps, &gaps, &invisible, &glue)) {
        return NULL;
    }
    if (fill_map(sep_map, seps) < 0 || fill_map(joiner_map, seps) < 0
        || fill_map(gap_map, gaps) < 0 || fill_map(invisible_map, invisible) < 0
        || fill_map(glue_map, glue) < 0) {
        return NULL;
    }
    for (size_t k = 0; k < sizeof(stop_map); k++) {
        stop_map[k] = digit_map[k] | invisible_map[k];
    }
    /* The one-byte skip (mynumber_scan) passes over ASCII that is not a digit: it
     * may only while no ASCII character stops the scan.  Were one ever named
     * invisible, the skip is off rather than wrong. */
    ascii_stops_only_at_digits = 1;
    for (Py_UCS4 c = 0; c < 0x80; c++) {
        if (BIT(invisible_map, c)) {
            ascii_stops_only_at_digits = 0;
        }
    }
    /* Spaces separate groups but do not join a number to the digits around it. */
    joiner_map[0x20 >> 3] &= (unsigned char)~(1u << (0x20 & 7));
    joiner_map[0xa0 >> 3] &= (unsigned char)~(1u << (0xa0 & 7));
    joiner_map[0x3000 >> 3] &= (unsigned char)~(1u << (0x3000 & 7));
    Py_RETURN_NONE;
}

/*
 * mynumber(text) -> (survivors, shaped, invisible)
 *
 * survivors: (start, end, twelve ASCII digits, kind, flags) for every match of
 * the My Number candidate regex with a valid check digit that is not a window of
 * a longer number; kind 0 contiguous, 1 grouped 4-4-4, 2 one digit per box;
 * flags: glued to an identifier, starts with a date, +81 mobile, placeholder.
 * shaped: contiguous or grouped candidates, valid or not (the chance model).
 * invisible: the text holds an invisible character; the scan then stops and
 * returns nothing else, since the caller reads the text again without them.
 */
static PyObject *
mynumber(PyObject *self, PyObject *arg)
{
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "expected str");
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg), shaped = 0;
    int rc;
    ON_KIND(arg, rc, mynumber_scan_ucs1(UCS1(arg), n, out, &shaped),
            mynumber_scan_ucs2(UCS2(arg), n, out, &shaped),
            mynumber_scan_ucs4(UCS4(arg), n, out, &shaped));
    if (rc < 0) {
        Py_DECREF(out);
        return NULL;
    }
    if (rc == 1) { /* an invisible character: the caller reads the text without them */
        Py_DECREF(out);
        return Py_BuildValue("([]nO)", (Py_ssize_t)0, Py_True);
    }
    return Py_BuildValue("(NnO)", out, shaped, Py_False);
}

/*
 * cards(text) -> [(start, end), ...]
 *
 * Every match of the card candidate regex whose digits pass Luhn; issuer ranges
 * and the other checks stay in credit_card.py (one candidate in ten gets there).
 */
static PyObject *
cards(PyObject *self, PyObject *arg)
{
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "expected str");
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    int rc;
    ON_KIND(arg, rc, cards_scan_ucs1(UCS1(arg), n, out), cards_scan_ucs2(UCS2(arg), n, out),
            cards_scan_ucs4(UCS4(arg), n, out));
    if (rc < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static void
words_free(WordsObject *w)
{
    if (w->chars != NULL) {
        for (Py_ssize_t k = 0; k < w->count; k++) {
            PyMem_Free(w->chars[k]);
        }
    }
    PyMem_Free(w->chars);
    PyMem_Free(w->lengths);
    PyMem_Free(w->keys);
    PyMem_Free(w->heads);
    PyMem_Free(w->next);
    w->chars = NULL;
    w->lengths = NULL;
    w->keys = NULL;
    w->heads = NULL;
    w->next = NULL;
}

static void
Words_dealloc(WordsObject *w)
{
    words_free(w);
    Py_XDECREF(w->words);
    Py_TYPE(w)->tp_free((PyObject *)w);
}


static int
Words_init(WordsObject *w, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"words", "guard", NULL};
    PyObject *seq;
    int guard = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|p", kwlist, &seq, &guard)) {
        return -1;
    }
    PyObject *words = PySequence_Tuple(seq);
    if (words == NULL) {
        return -1;
    }
    words_free(w);
    Py_XSETREF(w->words, words);
    Py_ssize_t count = PyTuple_GET_SIZE(words);
    w->count = 0;
    w->guard = guard;
    w->astral = 0;
    w->shortest = PY_SSIZE_T_MAX;
    memset(w->first, 0, sizeof(w->first));
    w->slots = 8;
    while (w->slots < 2 * count + 2) {
        w->slots *= 2;
    }
    w->chars = PyMem_Calloc((size_t)count + 1, sizeof(Py_UCS4 *));
    w->lengths = PyMem_Calloc((size_t)count + 1, sizeof(Py_ssize_t));
    w->next = PyMem_Calloc((size_t)count + 1, sizeof(Py_ssize_t));
    w->keys = PyMem_Calloc((size_t)w->slots, sizeof(Py_UCS4));
    w->heads = PyMem_Calloc((size_t)w->slots, sizeof(Py_ssize_t));
    if (!w->chars || !w->lengths || !w->next || !w->keys || !w->heads) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t h = 0; h < w->slots; h++) {
        w->heads[h] = -1;
    }
    /* Link each first character's words in the given order (append at the tail). */
    Py_ssize_t *tails = PyMem_Calloc((size_t)w->slots, sizeof(Py_ssize_t));
    if (tails == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *word = PyTuple_GET_ITEM(words, k);
        if (!PyUnicode_Check(word)) {
            PyMem_Free(tails);
            PyErr_SetString(PyExc_TypeError, "words must be str");
            return -1;
        }
        Py_ssize_t len = PyUnicode_GET_LENGTH(word);
        if (len == 0) {
            PyMem_Free(tails);
            PyErr_SetString(PyExc_ValueError, "empty word");
            return -1;
        }
        Py_UCS4 c0 = PyUnicode_READ_CHAR(word, 0);
        w->chars[k] = PyMem_Malloc((size_t)len * sizeof(Py_UCS4));
        if (w->chars[k] == NULL) {
            PyMem_Free(tails);
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t j = 0; j < len; j++) {
            w->chars[k][j] = PyUnicode_READ_CHAR(word, j);
        }
        w->lengths[k] = len;
        w->next[k] = -1;
        w->count = k + 1;
        if (len < w->shortest) {
            w->shortest = len;
        }
        if (c0 < 0x10000) {
            SETBIT(w->first, c0);
        }
        else {
            w->astral = 1; /* 𠮷田 …: such a word is tried at every astral character */
        }
        Py_ssize_t h = slot_of(w, c0);
        if (w->heads[h] < 0) {
            w->keys[h] = c0;
            w->heads[h] = k;
        }
        else {
            w->next[tails[h]] = k;
        }
        tails[h] = k;
    }
    PyMem_Free(tails);
    return 0;
}

/* Parse (text, lo=0, hi=-1) and clamp the window; 0 when it is empty. */
static int
window_args(PyObject *args, PyObject **s, Py_ssize_t *lo, Py_ssize_t *hi)
{
    *lo = 0;
    *hi = -1;
    if (!PyArg_ParseTuple(args, "U|nn", s, lo, hi)) {
        return -1;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(*s);
    if (*hi < 0 || *hi > n) {
        *hi = n;
    }
    if (*lo < 0) {
        *lo = 0;
    }
    return *lo < *hi;
}

static inline Py_ssize_t
next_word(const WordsObject *w, PyObject *s, Py_ssize_t i, Py_ssize_t hi, Py_ssize_t *k)
{
    Py_ssize_t at;
    ON_KIND(s, at, next_word_ucs1(w, UCS1(s), i, hi, k), next_word_ucs2(w, UCS2(s), i, hi, k),
            next_word_ucs4(w, UCS4(s), i, hi, k));
    return at;
}

/* spans(text, lo=0, hi=-1) -> [(start, end, word), ...] */
static PyObject *
Words_spans(WordsObject *w, PyObject *args)
{
    PyObject *s;
    Py_ssize_t lo, hi, k;
    int ok = window_args(args, &s, &lo, &hi);
    if (ok < 0) {
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL || !ok || w->count == 0) {
        return out;
    }
    Py_ssize_t i = lo;
    while ((i = next_word(w, s, i, hi, &k)) >= 0) {
        Py_ssize_t e = i + w->lengths[k];
        PyObject *item = Py_BuildValue("(nnO)", i, e, PyTuple_GET_ITEM(w->words, k));
        if (item == NULL || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(item);
        i = e;
    }
    return out;
}

/* search(text, lo=0, hi=-1) -> bool: any word there. */
static PyObject *
Words_search(WordsObject *w, PyObject *args)
{
    PyObject *s;
    Py_ssize_t lo, hi, k;
    int ok = window_args(args, &s, &lo, &hi);
    if (ok < 0) {
        return NULL;
    }
    if (!ok || w->count == 0) {
        Py_RETURN_FALSE;
    }
    return PyBool_FromLong(next_word(w, s, lo, hi, &k) >= 0);
}

/* last_end(text, lo=0, hi=-1) -> int: end of the last occurrence, or -1.
 * (A label just before a value: asked once per candidate, so no list is built.) */
static PyObject *
Words_last_end(WordsObject *w, PyObject *args)
{
    PyObject *s;
    Py_ssize_t lo, hi, k, end = -1;
    int ok = window_args(args, &s, &lo, &hi);
    if (ok < 0) {
        return NULL;
    }
    if (ok && w->count > 0) {
        Py_ssize_t i = lo;
        while ((i = next_word(w, s, i, hi, &k)) >= 0) {
            end = i + w->lengths[k];
            i = end;
        }
    }
    return PyLong_FromSsize_t(end);
}

/* present(text) -> tuple of the words that occur anywhere in text, overlapping
 * occurrences included (spans() reports one of two overlapping words only). */
static PyObject *
Words_present(WordsObject *w, PyObject *arg)
{
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "expected str");
        return NULL;
    }
    char *found = PyMem_Calloc((size_t)w->count + 1, 1);
    if (found == NULL) {
        return PyErr_NoMemory();
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg), marked = 0;
    if (w->count > 0) {
        ON_KIND(arg, marked, present_ucs1(w, UCS1(arg), n, found),
                present_ucs2(w, UCS2(arg), n, found), present_ucs4(w, UCS4(arg), n, found));
    }
    PyObject *out = PyTuple_New(marked);
    if (out != NULL) {
        Py_ssize_t j = 0;
        for (Py_ssize_t k = 0; k < w->count && j < marked; k++) {
            if (found[k]) {
                PyObject *word = PyTuple_GET_ITEM(w->words, k);
                Py_INCREF(word);
                PyTuple_SET_ITEM(out, j++, word);
            }
        }
    }
    PyMem_Free(found);
    return out;
}

static PyMethodDef Words_methods[] = {
    {"present", (PyCFunction)Words_present, METH_O,
     "present(text) -> tuple of the words occurring anywhere, overlapping ones included."},
    {"spans", (PyCFunction)Words_spans, METH_VARARGS,
     "spans(text, lo=0, hi=-1) -> [(start, end, word)]: every occurrence, leftmost first."},
    {"search", (PyCFunction)Words_search, METH_VARARGS,
     "search(text, lo=0, hi=-1) -> bool: whether any word occurs."},
    {"last_end", (PyCFunction)Words_last_end, METH_VARARGS,
     "last_end(text, lo=0, hi=-1) -> int: end of the last occurrence, or -1."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject WordsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dlp.detect._candidates.Words",
    .tp_basicsize = sizeof(WordsObject),
    .tp_dealloc = (destructor)Words_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Words(words, guard=False): literal words found like a regex alternation.",
    .tp_methods = Words_methods,
    .tp_init = (initproc)Words_init,
    .tp_new = PyType_GenericNew,
};


/* ------------------------------------------------------------------------
 * score: the My Number detector's weighing of its candidates, as
 * mynumber.MyNumberDetector._score_py does it (the twin the property tests hold
 * this to).  On a dump of numbers most of the detector's time went to this
 * per-candidate Python after the scan itself was compiled.
 */

typedef struct {
    Py_ssize_t *start, *end;
    PyObject **word; /* borrowed from a Words object's tuple */
    Py_ssize_t n, cap;
} spans_t;

static void
spans_free(spans_t *sp)
{
    PyMem_Free(sp->start);
    PyMem_Free(sp->end);
    PyMem_Free(sp->word);
    memset(sp, 0, sizeof(*sp));
}

static int
spans_push(spans_t *sp, Py_ssize_t s, Py_ssize_t e, PyObject *w)
{
    if (sp->n == sp->cap) {
        Py_ssize_t cap = sp->cap ? 2 * sp->cap : 64;
        Py_ssize_t *ns = PyMem_Realloc(sp->start, (size_t)cap * sizeof(Py_ssize_t));
        if (ns == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        sp->start = ns;
        Py_ssize_t *ne = PyMem_Realloc(sp->end, (size_t)cap * sizeof(Py_ssize_t));
        if (ne == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        sp->end = ne;
        PyObject **nw = PyMem_Realloc(sp->word, (size_t)cap * sizeof(PyObject *));
        if (nw == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        sp->word = nw;
        sp->cap = cap;
    }
    sp->start[sp->n] = s;
    sp->end[sp->n] = e;
    sp->word[sp->n] = w;
    sp->n++;
    return 0;
}

/* Every occurrence of w's words in text[lo:hi] into one or (split by is_ctx, a
 * byte per word) two span lists. */
static int
collect(const WordsObject *w, PyObject *text, Py_ssize_t lo, Py_ssize_t hi, spans_t *a,
        spans_t *b, const char *is_ctx)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), k;
    if (hi < 0 || hi > n) {
        hi = n;
    }
    if (lo < 0) {
        lo = 0;
    }
    if (lo >= hi || w->count == 0) {
        return 0;
    }
    Py_ssize_t i = lo;
    while ((i = next_word(w, text, i, hi, &k)) >= 0) {
        Py_ssize_t e = i + w->lengths[k];
        spans_t *to = (is_ctx != NULL && is_ctx[k]) ? b : a;
        if (spans_push(to, i, e, PyTuple_GET_ITEM(w->words, k)) < 0) {
            return -1;
        }
        i = e;
    }
    return 0;
}

/* _Positions.nearest: the nearest span within window of [lo, hi); 1 if found. */
static int
nearest(const spans_t *sp, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t window, Py_ssize_t max_word,
        Py_ssize_t *gap, PyObject **word)
{
    Py_ssize_t key = lo - window - max_word, a = 0, b = sp->n;
    while (a < b) { /* bisect_left(starts, key) */
        Py_ssize_t m = (a + b) / 2;
        if (sp->start[m] < key) {
            a = m + 1;
        }
        else {
            b = m;
        }
    }
    int found = 0;
    for (Py_ssize_t j = a; j < sp->n; j++) {
        Py_ssize_t s = sp->start[j], e = sp->end[j];
        if (s > hi + window) {
            break;
        }
        Py_ssize_t g = e <= lo ? lo - e : (s >= hi ? s - hi : 0);
        if (g <= window && (!found || g < *gap)) {
            found = 1;
            *gap = g;
            *word = sp->word[j];
        }
    }
    return found;
}

/* _Positions.last_before: end of the last span ending within reach before lo, or -1. */
static Py_ssize_t
last_before(const spans_t *sp, Py_ssize_t lo, Py_ssize_t reach)
{
    Py_ssize_t a = 0, b = sp->n;
    while (a < b) { /* bisect_left(ends, lo + 1) */
        Py_ssize_t m = (a + b) / 2;
        if (sp->end[m] < lo + 1) {
            a = m + 1;
        }
        else {
            b = m;
        }
    }
    Py_ssize_t i = a - 1;
    return (i >= 0 && lo - sp->end[i] <= reach) ? sp->end[i] : -1;
}

typedef struct {
    Py_ssize_t s, e, kind, flags;
    PyObject *digits;
} cand_t;

enum { CONF_NONE = -1, CONF_LOW = 0, CONF_MEDIUM = 1, CONF_HIGH = 2 };

/* One step down; below LOW it is dropped (base.demote). */
static inline int
demote(int c)
{
    return c <= CONF_LOW ? CONF_NONE : c - 1;
}

/* score(text, cands, keywords, context, words, is_ctx, negative, window, label_kw,
 *       hint, shaped, many, consts) -> [(start, end, digits, confidence, grouped,
 *       reason, gap)]
 * consts: (max_word, adjacent, negative_reach, negative_longest).
 * many(k, n) -> bool: the chance model (Python's, so its floating point is one). */
static PyObject *
score(PyObject *self, PyObject *args)
{
    PyObject *text, *cand_list, *many_fn;
    WordsObject *kw, *ctx, *words, *neg;
    const char *is_ctx;
    Py_ssize_t is_ctx_len, window, shaped, max_word, adjacent, neg_reach, neg_longest;
    int label_kw, hint;
    if (!PyArg_ParseTuple(args, "UO!O!O!O!y#O!nppnO(nnnn)", &text, &PyList_Type, &cand_list,
                          &WordsType, &kw, &WordsType, &ctx, &WordsType, &words, &is_ctx,
                          &is_ctx_len, &WordsType, &neg, &window, &label_kw, &hint, &shaped,
                          &many_fn, &max_word, &adjacent, &neg_reach, &neg_longest)) {
        return NULL;
    }
    if (is_ctx_len != words->count) {
        PyErr_SetString(PyExc_ValueError, "is_ctx must hold one byte per word");
        return NULL;
    }
    Py_ssize_t nc = PyList_GET_SIZE(cand_list), len = PyUnicode_GET_LENGTH(text);
    PyObject *out = PyList_New(0);
    if (out == NULL || nc == 0) {
        return out;
    }
    cand_t *cands = PyMem_Calloc((size_t)nc, sizeof(cand_t));
    Py_ssize_t *kgap = PyMem_Calloc((size_t)nc, sizeof(Py_ssize_t));
    PyObject **kword = PyMem_Calloc((size_t)nc, sizeof(PyObject *));
    spans_t *around = PyMem_Calloc((size_t)nc, sizeof(spans_t)); /* sparse: per candidate */
    spans_t kws = {0}, ctxs = {0}, local = {0};
    int ok = cands && kgap && kword && around;
    if (!ok) {
        PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; ok && i < nc; i++) {
        PyObject *t = PyList_GET_ITEM(cand_list, i);
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 5) {
            PyErr_SetString(PyExc_TypeError, "candidates are (start, end, digits, kind, flags)");
            ok = 0;
            break;
        }
        cands[i].s = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 0));
        cands[i].e = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 1));
        cands[i].digits = PyTuple_GET_ITEM(t, 2);
        cands[i].kind = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 3));
        cands[i].flags = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 4));
        if (PyErr_Occurred()) {
            ok = 0;
        }
        else if (cands[i].s < 0 || cands[i].e > len || cands[i].s >= cands[i].e) {
            /* The offsets index the text below: never trust them blindly. */
            PyErr_SetString(PyExc_ValueError, "candidate span outside the text");
            ok = 0;
        }
    }
    int dense = ok && nc * (2 * window + 2 * max_word) > len;
    if (ok && dense) { /* keywords and context words in one pass over the chunk */
        ok = collect(words, text, 0, -1, &kws, &ctxs, is_ctx) == 0;
    }
    Py_ssize_t explained = 0, k = 0;
    for (Py_ssize_t i = 0; ok && i < nc; i++) {
        const spans_t *sp = &kws;
        if (!dense) {
            Py_ssize_t reach = window + max_word;
            ok = collect(kw, text, cands[i].s - reach, cands[i].e + reach, &around[i], NULL, NULL)
                 == 0;
            sp = &around[i];
        }
        if (ok && nearest(sp, cands[i].s, cands[i].e, window, max_word, &kgap[i], &kword[i])) {
            explained++;
        }
        else {
            kword[i] = NULL;
            if (cands[i].kind != KIND_BOXES && cands[i].kind != KIND_LOOSE) {
                k++;
            }
        }
    }
    int many = 0;
    if (ok && k >= 3) {
        Py_ssize_t n_all = shaped - explained > k ? shaped - explained : k;
        PyObject *r = PyObject_CallFunction(many_fn, "nn", k, n_all);
        if (r == NULL) {
            ok = 0;
        }
        else {
            many = PyObject_IsTrue(r);
            Py_DECREF(r);
            ok = many >= 0;
        }
    }
    for (Py_ssize_t i = 0; ok && i < nc; i++) {
        const cand_t *c = &cands[i];
        int spaced = c->kind == KIND_BOXES, grouped = c->kind == KIND_GROUPED;
        if (c->flags & FLAG_FAKE) {
            continue;
        }
        if (spaced && kword[i] == NULL && !label_kw) {
            continue; /* digits in boxes are only a number next to its label */
        }
        if (c->kind == KIND_LOOSE && !label_kw) {
            /* Loose groups only right behind their label, on its line: a keyword in
             * the row above is a table's header, over whichever column it heads. */
            const spans_t *sp = dense ? &kws : &around[i];
            Py_ssize_t kb = last_before(sp, c->s, adjacent);
            int same_line = kb >= 0;
            for (Py_ssize_t j = kb; same_line && j < c->s; j++) {
                Py_UCS4 ch = PyUnicode_READ_CHAR(text, j);
                same_line = ch != '\n' && ch != '\r';
            }
            if (!same_line) {
                continue;
            }
        }
        int conf = CONF_LOW;
        PyObject *reason = PyUnicode_FromString("checksum"), *part = NULL;
        if (reason == NULL) {
            ok = 0;
            break;
        }
#define ADD(expr)                                                                            \
    do {                                                                                     \
        part = (expr);                                                                       \
        if (part == NULL) {                                                                  \
            ok = 0;                                                                          \
        }                                                                                    \
        else {                                                                               \
            PyObject *joined_ = PyUnicode_Concat(reason, part);                              \
            Py_DECREF(part);                                                                 \
            Py_SETREF(reason, joined_);                                                      \
            ok = reason != NULL;                                                             \
        }                                                                                    \
    } while (0)
        if (label_kw) {
            conf = CONF_HIGH;
            ADD(PyUnicode_FromString("; column header keyword"));
        }
        else if (kword[i] != NULL) {
            conf = CONF_HIGH;
            ADD(PyUnicode_FromFormat("; keyword %U within %zd chars", kword[i], kgap[i]));
        }
        else {
            const char *structure = NULL;
            PyObject *cw = NULL;
            Py_ssize_t cgap = 0;
            if (grouped) {
                structure = "; 4-4-4 layout";
            }
            else if (many) {
                structure = "; many valid numbers in one part";
            }
            else if (hint) {
                structure = "; keyword in subject or file name";
            }
            else {
                const spans_t *csp = &ctxs;
                if (!dense) {
                    Py_ssize_t reach = window + max_word;
                    local.n = 0;
                    ok = collect(ctx, text, c->s - reach, c->e + reach, &local, NULL, NULL) == 0;
                    csp = &local;
                }
                if (ok && nearest(csp, c->s, c->e, window, max_word, &cgap, &cw)) {
                    conf = CONF_MEDIUM;
                    ADD(PyUnicode_FromFormat("; personal-data word %U within %zd chars", cw,
                                             cgap));
                }
            }
            if (structure != NULL) {
                conf = CONF_MEDIUM;
                ADD(PyUnicode_FromString(structure));
            }
        }
        if (ok && !label_kw) { /* negative evidence; a header keyword is explicit */
            const spans_t *sp = dense ? &kws : &around[i];
            Py_ssize_t kw_before = last_before(sp, c->s, adjacent);
            Py_ssize_t lo = c->s - neg_reach - neg_longest, kk;
            Py_ssize_t neg_end = -1;
            if (lo < 0) {
                lo = 0;
            }
            if (neg->count > 0 && lo < c->s) {
                Py_ssize_t j = lo;
                while ((j = next_word(neg, text, j, c->s, &kk)) >= 0) {
                    neg_end = j + neg->lengths[kk];
                    j = neg_end;
                }
            }
            if (neg_end >= 0 && c->s - neg_end > neg_reach) {
                neg_end = -1;
            }
            if (neg_end >= 0 && (kw_before < 0 || neg_end > kw_before)) {
                conf = demote(conf);
                ADD(PyUnicode_FromString("; other number's label before it"));
            }
            if (ok && kw_before < 0) {
                if (c->flags & FLAG_DATE8) {
                    conf = demote(conf);
                    ADD(PyUnicode_FromString("; starts with a date"));
                }
                else if (c->flags & FLAG_MOBILE) {
                    conf = demote(conf);
                    ADD(PyUnicode_FromString("; looks like +81 mobile"));
                }
            }
            if (ok && (c->flags & FLAG_GLUED)) {
                conf = demote(conf);
                ADD(PyUnicode_FromString("; part of an identifier or address"));
            }
        }
        if (ok && conf != CONF_NONE && spaced) {
            ADD(PyUnicode_FromString("; one digit per box"));
        }
#undef ADD
        if (ok && conf != CONF_NONE) {
            Py_ssize_t gap = label_kw ? 0 : (kword[i] != NULL ? kgap[i] : ((Py_ssize_t)1 << 30));
            PyObject *item = Py_BuildValue("(nnOiOOn)", c->s, c->e, c->digits, conf,
                                           grouped ? Py_True : Py_False, reason, gap);
            ok = item != NULL && PyList_Append(out, item) == 0;
            Py_XDECREF(item);
        }
        Py_XDECREF(reason);
    }
    if (around != NULL) {
        for (Py_ssize_t i = 0; i < nc; i++) {
            spans_free(&around[i]);
        }
    }
    spans_free(&kws);
    spans_free(&ctxs);
    spans_free(&local);
    PyMem_Free(cands);
    PyMem_Free(kgap);
    PyMem_Free(kword);
    PyMem_Free(around);
    if (!ok) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

/* column_gap(text) -> bool: a gap of two display columns (aligned.might_hold_table). */
static PyObject *
column_gap(PyObject *self, PyObject *arg)
{
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "expected str");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    int found;
    ON_KIND(arg, found, column_gap_ucs1(UCS1(arg), n), column_gap_ucs2(UCS2(arg), n),
            column_gap_ucs4(UCS4(arg), n));
    return PyBool_FromLong(found);
}

static PyMethodDef methods[] = {
    {"set_separators", set_separators, METH_VARARGS,
     "set_separators(separators, box_gaps, invisible, glue): the character sets, once."},
    {"mynumber", mynumber, METH_O,
     "mynumber(text) -> (survivors, shaped, invisible): My Number candidates with a valid "
     "check digit."},
    {"cards", cards, METH_O, "cards(text) -> [(start, end)]: card candidates passing Luhn."},
    {"column_gap", column_gap, METH_O,
     "column_gap(text) -> bool: two spaces in a row, an ideographic space or a tab."},
    {"score", score, METH_VARARGS,
     "score(...) -> [(start, end, digits, confidence, grouped, reason, gap)]: the My Number "
     "detector's weighing (mynumber.MyNumberDetector._score_py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_candidates",
    "Compiled candidate scanner for the digit-based detectors.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__candidates(void)
{
    for (Py_UCS4 c = 0; c < 0x10000; c++) {
        if (Py_UNICODE_ISDECIMAL(c)) {
            SETBIT(digit_map, c);
        }
    }
    if (PyType_Ready(&WordsType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    /* native.py compares this with what the Python side expects: a module built
     * from older sources is then not used (its functions could differ). */
    if (PyModule_AddIntConstant(m, "API", CANDIDATES_API) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&WordsType);
    if (PyModule_AddObject(m, "Words", (PyObject *)&WordsType) < 0) {
        Py_DECREF(&WordsType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
