/*
 * The scanning loops of _candidates.c for one kind of str storage.
 *
 * Included three times with CH (Py_UCS1, Py_UCS2, Py_UCS4) and S (a name suffix)
 * defined: a str keeps its characters in 1, 2 or 4 bytes each, and a loop that
 * reads them through PyUnicode_READ pays a switch per character, which doubled
 * the cost of a pass over Japanese text.
 */

#define FN2(name, suffix) name##_##suffix
#define FN1(name, suffix) FN2(name, suffix)
#define FN(name) FN1(name, S)

/* Decimal digit (Unicode Nd); the branch vanishes for 1- and 2-byte text. */
#define ISDIG(c) ((Py_UCS4)(c) < 0x10000 ? BIT(digit_map, (c)) != 0 : Py_UNICODE_ISDECIMAL(c))
#define INMAP(map, c) ((Py_UCS4)(c) < 0x10000 && BIT(map, (c)) != 0)
/* A digit or an invisible character (all of those are in the BMP). */
#define ISSTOP(c) ((Py_UCS4)(c) < 0x10000 ? BIT(stop_map, (c)) != 0 : Py_UNICODE_ISDECIMAL(c))

static inline int
FN(digit_at)(const CH *p, Py_ssize_t n, Py_ssize_t i)
{
    return i >= 0 && i < n && ISDIG(p[i]);
}

static inline int
FN(digits)(const CH *p, Py_ssize_t n, Py_ssize_t i, Py_ssize_t count)
{
    if (i + count > n) {
        return 0;
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        if (!ISDIG(p[i + k])) {
            return 0;
        }
    }
    return 1;
}

static inline Py_ssize_t
FN(next_digit)(const CH *p, Py_ssize_t n, Py_ssize_t i)
{
    if (sizeof(CH) == 1) {
        while (i + 8 <= n && !digit_or_high8(load8((const Py_UCS1 *)(p + i)))) {
            i += 8;
        }
    }
    while (i + 4 <= n && !(ISDIG(p[i]) | ISDIG(p[i + 1]) | ISDIG(p[i + 2]) | ISDIG(p[i + 3]))) {
        i += 4;
    }
    while (i < n && !ISDIG(p[i])) {
        i++;
    }
    return i;
}

/* Just past the run of digits holding i: no candidate starts inside a run. */
static inline Py_ssize_t
FN(skip_run)(const CH *p, Py_ssize_t n, Py_ssize_t i)
{
    i++;
    while (i < n && ISDIG(p[i])) {
        i++;
    }
    return i;
}

/* Fold the decimal digits of p[s:e] into d; returns how many. */
static inline int
FN(fold)(const CH *p, Py_ssize_t s, Py_ssize_t e, int *d, int room)
{
    int k = 0;
    for (Py_ssize_t j = s; j < e && k < room; j++) {
        if (ISDIG(p[j])) {
            d[k++] = digit_value(p[j]);
        }
    }
    return k;
}

/* A separator joining the digit at i - 2 (before) or e + 1 (after) to the run:
 * the candidate is a window of a longer number.  Joiners (hyphens, dots) always
 * join; spaces only continue a grouped number. */
static inline int
FN(joined)(const CH *p, Py_ssize_t n, Py_ssize_t s, Py_ssize_t e, int grouped)
{
    if (s >= 2) {
        Py_UCS4 c = p[s - 1];
        if ((INMAP(joiner_map, c) || (grouped && INMAP(sep_map, c))) && ISDIG(p[s - 2])) {
            return 1;
        }
    }
    if (e + 1 < n) {
        Py_UCS4 c = p[e];
        if ((INMAP(joiner_map, c) || (grouped && INMAP(sep_map, c))) && ISDIG(p[e + 1])) {
            return 1;
        }
    }
    return 0;
}

/* How many characters from j (one to three) may stand between the groups of a loose
 * 4-4-4 (KIND_LOOSE) before a digit; 0 if they are not such a gap. */
static inline Py_ssize_t
FN(loose_gap)(const CH *p, Py_ssize_t n, Py_ssize_t j)
{
    Py_ssize_t k = 0;
    while (k < 3 && j + k < n && is_loose((Py_UCS4)p[j + k])) {
        k++;
    }
    return k > 0 && j + k < n && ISDIG(p[j + k]) ? k : 0;
}

/* A loose gap and a digit on the other side of s - 1 (before) or e (after): the
 * candidate is part of a longer row. */
static inline int
FN(loose_row)(const CH *p, Py_ssize_t n, Py_ssize_t s, Py_ssize_t e)
{
    Py_ssize_t k = 0;
    while (k < 3 && s - 1 - k >= 0 && is_loose((Py_UCS4)p[s - 1 - k])) {
        k++;
    }
    if (k > 0 && s - 1 - k >= 0 && ISDIG(p[s - 1 - k])) {
        return 1;
    }
    return FN(loose_gap)(p, n, e) > 0;
}

/* 0 done, -1 error, 1 an invisible character (the scan stops there). */
static int
FN(mynumber_scan)(const CH *p, Py_ssize_t n, PyObject *out, Py_ssize_t *shaped)
{
    Py_ssize_t i = 0;
    int d[12];
    for (;;) {
        /* Below 0x100 the invisible characters are >= 0x80 (U+00AD): a word of
         * ASCII without a digit holds nothing that stops the scan. */
        if (sizeof(CH) == 1 && ascii_stops_only_at_digits) {
            while (i + 8 <= n && !digit_or_high8(load8((const Py_UCS1 *)(p + i)))) {
                i += 8;
            }
        }
        while (i + 4 <= n && !(ISSTOP(p[i]) | ISSTOP(p[i + 1]) | ISSTOP(p[i + 2])
                               | ISSTOP(p[i + 3]))) {
            i += 4;
        }
        while (i < n && !ISSTOP(p[i])) {
            i++;
        }
        if (i >= n) {
            return 0;
        }
        if (!ISDIG(p[i])) {
            return 1;
        }
        if (i > 0 && ISDIG(p[i - 1])) { /* (?<!\d\d) */
            i = FN(skip_run)(p, n, i);
            continue;
        }
        Py_ssize_t e = -1;
        int kind = -1;
        if (FN(digits)(p, n, i + 1, 3)) {
            if (FN(digits)(p, n, i + 4, 8)) {
                if (!FN(digit_at)(p, n, i + 12)) { /* \d{11}(?!\d) */
                    e = i + 12;
                    kind = KIND_PLAIN;
                }
            }
            else if (i + 14 <= n && INMAP(sep_map, p[i + 4]) && FN(digits)(p, n, i + 5, 4)
                     && INMAP(sep_map, p[i + 9]) && FN(digits)(p, n, i + 10, 4)
                     && !FN(digit_at)(p, n, i + 14)) {
                e = i + 14;
                kind = KIND_GROUPED;
            }
            else {
                Py_ssize_t g1 = FN(loose_gap)(p, n, i + 4);
                Py_ssize_t j = i + 4 + g1;
                if (g1 > 0 && FN(digits)(p, n, j, 4)) {
                    Py_ssize_t g2 = FN(loose_gap)(p, n, j + 4);
                    if (g2 > 0 && FN(digits)(p, n, j + 4 + g2, 4)
                        && !FN(digit_at)(p, n, j + 8 + g2)) {
                        e = j + 8 + g2;
                        kind = KIND_LOOSE;
                    }
                }
            }
        }
        else if (i + 23 <= n) { /* (?:G\d){11}(?!G\d)(?!\d) */
            int ok = 1;
            for (Py_ssize_t k = 1; k <= 11 && ok; k++) {
                ok = INMAP(gap_map, p[i + 2 * k - 1]) && ISDIG(p[i + 2 * k]);
            }
            if (ok && !(i + 24 < n && INMAP(gap_map, p[i + 23]) && ISDIG(p[i + 24]))
                && !FN(digit_at)(p, n, i + 23)) {
                e = i + 23;
                kind = KIND_BOXES;
            }
        }
        if (kind < 0) {
            i = FN(skip_run)(p, n, i);
            continue;
        }
        if (kind != KIND_BOXES && kind != KIND_LOOSE) {
            (*shaped)++;
        }
        FN(fold)(p, i, e, d, 12);
        if (mynumber_ok(d)) {
            int keep;
            if (kind == KIND_BOXES) { /* not the tail of a longer row of boxes */
                keep = !(i >= 2 && INMAP(gap_map, p[i - 1]) && ISDIG(p[i - 2]));
            }
            else if (kind == KIND_LOOSE) { /* not three cells of a longer row */
                keep = !FN(loose_row)(p, n, i, e);
            }
            else {
                keep = !FN(joined)(p, n, i, e, kind == KIND_GROUPED);
            }
            if (keep) {
                int flags = digit_flags(d);
                if ((i > 0 && INMAP(glue_map, p[i - 1])) || (e < n && INMAP(glue_map, p[e]))) {
                    flags |= FLAG_GLUED;
                }
                if (append_number(out, i, e, d, kind, flags) < 0) {
                    return -1;
                }
            }
        }
        i = e;
    }
}

static int
FN(cards_scan)(const CH *p, Py_ssize_t n, PyObject *out)
{
    Py_ssize_t i = 0;
    int d[19];
    for (;;) {
        i = FN(next_digit)(p, n, i);
        if (i >= n) {
            return 0;
        }
        if ((i > 0 && ISDIG(p[i - 1])) || !FN(digits)(p, n, i + 1, 3)) {
            i = FN(skip_run)(p, n, i);
            continue;
        }
        Py_ssize_t e = -1;
        if (FN(digit_at)(p, n, i + 4)) { /* \d{10,15}(?!\d): a run of 14 to 19 digits */
            Py_ssize_t j = i + 4;
            while (j < n && j - i <= 19 && ISDIG(p[j])) {
                j++;
            }
            if (j - i >= 14 && j - i <= 19 && !FN(digit_at)(p, n, j)) {
                e = j;
            }
        }
        else if (i + 4 < n && INMAP(sep_map, p[i + 4])) {
            CH sep = p[i + 4];
            if (FN(digits)(p, n, i + 5, 4) && i + 9 < n && p[i + 9] == sep) {
                /* (S)\d{4}\1\d{4}\1\d{4}(?!\d) */
                if (FN(digits)(p, n, i + 10, 4) && i + 14 < n && p[i + 14] == sep
                    && FN(digits)(p, n, i + 15, 4) && !FN(digit_at)(p, n, i + 19)) {
                    e = i + 19;
                }
            }
            else if (FN(digits)(p, n, i + 5, 6) && i + 11 < n && p[i + 11] == sep
                     && FN(digits)(p, n, i + 12, 4)) {
                /* (S)\d{6}\2\d{4,5}(?!\d) */
                if (!FN(digit_at)(p, n, i + 16)) {
                    e = i + 16;
                }
                else if (!FN(digit_at)(p, n, i + 17)) {
                    e = i + 17;
                }
            }
        }
        if (e < 0) {
            i = FN(skip_run)(p, n, i);
            continue;
        }
        int k = FN(fold)(p, i, e, d, 19);
        if (luhn_ok(d, k) && append_span(out, i, e) < 0) {
            return -1;
        }
        i = e;
    }
}

/* Two spaces in a row, an ideographic space or a tab: a gap of two display columns. */
static int
FN(column_gap)(const CH *p, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    if (sizeof(CH) == 1) {
        while (i + 8 <= n) {
            uint64_t x = load8((const Py_UCS1 *)(p + i));
            uint64_t spaces = equal8(x, ' ');
            if (equal8(x, '\t') | (spaces & (spaces >> 8))) {
                break;
            }
            i += 7; /* the next word overlaps this one's last byte: no pair falls between */
        }
    }
    for (; i < n; i++) {
        Py_UCS4 c = p[i];
        if (c == '\t' || c == 0x3000 || (c == ' ' && i + 1 < n && p[i + 1] == ' ')) {
            return 1;
        }
    }
    return 0;
}

/* Word k of w at p[i:] (its first character already matched), ending by hi. */
static inline int
FN(word_here)(const WordsObject *w, const CH *p, Py_ssize_t i, Py_ssize_t hi, Py_ssize_t k)
{
    Py_ssize_t len = w->lengths[k];
    if (i + len > hi) {
        return 0;
    }
    const Py_UCS4 *wc = w->chars[k];
    Py_ssize_t j = 1;
    while (j < len && (Py_UCS4)p[i + j] == wc[j]) {
        j++;
    }
    return j == len;
}

/* The word of w matching at i (the first in order), or -1. */
static inline Py_ssize_t
FN(word_at)(const WordsObject *w, const CH *p, Py_ssize_t i, Py_ssize_t hi)
{
    Py_UCS4 c0 = p[i];
    if (w->guard && is_ascii_letter(c0) && i > 0 && is_ascii_letter(p[i - 1])) {
        return -1;
    }
    for (Py_ssize_t k = w->heads[slot_of(w, c0)]; k >= 0; k = w->next[k]) {
        if (FN(word_here)(w, p, i, hi, k)) {
            return k;
        }
    }
    return -1;
}

/* The next start of a word at or after i (ending by hi), or -1; *which: the word. */
static inline Py_ssize_t
FN(next_word)(const WordsObject *w, const CH *p, Py_ssize_t i, Py_ssize_t hi, Py_ssize_t *which)
{
    const Py_ssize_t last = hi - w->shortest;
    const unsigned char *first = w->first;
    const int astral = w->astral;
#define MAYSTART(c) (INMAP(first, (c)) || (astral && (Py_UCS4)(c) >= 0x10000))
    /* Four characters a step while none may start a word (most text): a quarter
     * of the loop's branches. */
    while (i + 3 <= last && !(MAYSTART(p[i]) | MAYSTART(p[i + 1]) | MAYSTART(p[i + 2])
                              | MAYSTART(p[i + 3]))) {
        i += 4;
    }
    for (; i <= last; i++) {
        if (MAYSTART(p[i])) {
            Py_ssize_t k = FN(word_at)(w, p, i, hi);
            if (k >= 0) {
                *which = k;
                return i;
            }
        }
    }
#undef MAYSTART
    return -1;
}

/* Mark in found[] every word of w that occurs anywhere in p[0:n], overlapping
 * occurrences included; stop once all are marked.  Returns how many were. */
static Py_ssize_t
FN(present)(const WordsObject *w, const CH *p, Py_ssize_t n, char *found)
{
    Py_ssize_t marked = 0;
    const Py_ssize_t last = n - w->shortest;
    const unsigned char *first = w->first;
    const int astral = w->astral;
#define MAYSTART(c) (INMAP(first, (c)) || (astral && (Py_UCS4)(c) >= 0x10000))
    for (Py_ssize_t i = 0; i <= last && marked < w->count; i++) {
        /* Four characters a step while none may start a word, as in next_word. */
        while (i + 3 <= last && !(MAYSTART(p[i]) | MAYSTART(p[i + 1]) | MAYSTART(p[i + 2])
                                  | MAYSTART(p[i + 3]))) {
            i += 4;
        }
        if (i > last) {
            break;
        }
        Py_UCS4 c0 = p[i];
        if (!MAYSTART(c0)) {
            continue;
        }
        if (w->guard && is_ascii_letter(c0) && i > 0 && is_ascii_letter(p[i - 1])) {
            continue;
        }
        for (Py_ssize_t k = w->heads[slot_of(w, c0)]; k >= 0; k = w->next[k]) {
            if (!found[k] && FN(word_here)(w, p, i, n, k)) {
                found[k] = 1;
                marked++;
            }
        }
    }
#undef MAYSTART
    return marked;
}

#undef ISDIG
#undef INMAP
#undef ISSTOP
#undef FN
#undef FN1
#undef FN2
