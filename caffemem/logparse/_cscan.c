/* caffemem.logparse._cscan: the curve-line scan of fastscan.scan_chunk, line by line in C.
 *
 * The same templates, the same acceptance rules and the same number reading as the numpy
 * scanner in fastscan.py (which stays the reference and the fallback where this module is
 * not built): a glog info line ("I" + 4 or 8 date digits and a space ... the line's first
 * "] " after a digit) whose body is one of the solver's five curve lines, every number well
 * formed, nothing left over where the template ends the line; and the data threads' chatter
 * lines (fastscan.QUIET).  Numbers are read as Python's float() reads them: a mantissa below
 * 2**53 with a power of ten up to 10**22 is one correctly rounded multiplication or
 * division (Clinger's fast path); anything else goes through PyOS_string_to_double, the
 * function float() itself uses.  Each value's text is kept where the token is what repr()
 * writes (fastscan.Text), by fastscan's rules.  The scan runs without the GIL.
 *
 * scan(buffer, size, nul, texts) -> a tuple of bytearrays and the names, which fastscan.py
 * turns into a ChunkScan (see _from_c there).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

enum { ITER = 1, LR = 2, TRAIN_OUT = 3, TEST_OUT = 4, TEST_START = 5 };
enum { C_TERM = 0, C_DIGIT = 1, C_DOT = 2, C_EXP = 3, C_SIGN = 4, C_WORD = 5 };
#define PAD 64
#define NAME_BYTES 32

static unsigned char num_class[256];
static double pow10d[23];
static const int64_t pow10i[16] = {1LL, 10LL, 100LL, 1000LL, 10000LL, 100000LL, 1000000LL, 10000000LL,
                                   100000000LL, 1000000000LL, 10000000000LL, 100000000000LL,
                                   1000000000000LL, 10000000000000LL, 100000000000000LL,
                                   1000000000000000LL};
static const int64_t days_before_month[14] = {0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365};

typedef struct {
    uint64_t lo, hi;
    int size;
} text_t;

typedef struct {
    int64_t line, iteration, time, index, name;
    double value, interval;
    text_t text, itext;
    int kind;
} row_t;

/* an output line's name, apart from the rows (only the output numbering reads it) */
typedef struct {
    int64_t row, index;
    int kind;
    unsigned char name[NAME_BYTES];
} named_t;

typedef struct {
    const unsigned char *a;
    PyThreadState *ts; /* the saved thread state while the GIL is released */
    int texts;         /* whether the values' texts are wanted */
    unsigned char name[NAME_BYTES]; /* the name of the output line last matched */
} ctx_t;

static inline int is_digit(unsigned char c) { return (unsigned char)(c - 48) < 10; }

static inline uint64_t word_at(const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w; /* little-endian hosts only: checked at import */
}

/* the leading digits (0..8) of the 8 bytes at p and their value */
static inline int int_run(const unsigned char *p, int64_t *value) {
    int n = 0;
    int64_t v = 0;
    while (n < 8 && is_digit(p[n])) {
        v = v * 10 + (p[n] - 48);
        n++;
    }
    *value = v;
    return n;
}

/* an unsigned integer of 1 to 15 digits at pos (fastscan._int_token) */
static inline int int_token(const unsigned char *a, int64_t pos, int64_t *value, int64_t *end) {
    int64_t v, v2;
    int n = int_run(a + pos, &v);
    int ok = n > 0 && n < 8;
    if (n == 8) {
        int n2 = int_run(a + pos + 8, &v2);
        v = v * pow10i[n2] + v2;
        n += n2;
        ok = n2 < 8;
    }
    *value = v;
    *end = pos + n;
    return ok;
}

static double slow_float(ctx_t *c, const unsigned char *tok, int n, int *ok) {
    char buf[20];
    char *end = NULL;
    double v;
    memcpy(buf, tok, n);
    buf[n] = 0;
    PyEval_RestoreThread(c->ts);
    v = PyOS_string_to_double(buf, &end, NULL);
    if (v == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        *ok = 0;
    } else if (end != buf + n) {
        *ok = 0;
    }
    c->ts = PyEval_SaveThread();
    return *ok ? v : Py_NAN;
}

static inline uint64_t shl(uint64_t x, unsigned s) { return s >= 64 ? 0 : x << s; }

/* a plain token (fastscan._float_token's word-wise case and _plain_text) */
static void plain_text(uint64_t x, int n, int p, int has_dot, double value, text_t *tx) {
    unsigned last = (unsigned)((x >> (8 * (n - 1))) & 255);
    int lead_zero = (x & 255) == '0' && n > 1 && !(has_dot && p == 1);
    int good = !lead_zero && !(has_dot && last == '0' && p != n - 2) && !(value > 0 && value < 1e-4);
    tx->lo = tx->hi = 0;
    tx->size = 0;
    if (!good)
        return;
    uint64_t b = n >= 8 ? x : (x & ((1ULL << (8 * n)) - 1));
    tx->lo = b;
    tx->size = n;
    if (!(has_dot && p > 0 && p < n - 1)) { /* "3", ".5", "5.": repr adds a "0" (or ".0") */
        unsigned sh = 8 * (unsigned)n;
        if (!has_dot) {
            tx->lo = b | shl('.', sh) | shl('0', sh + 8);
            tx->hi = n == 7 ? '0' : 0;
            tx->size = n + 2;
        } else if (p == 0) {
            tx->lo = (b << 8) | '0';
            tx->size = n + 1;
        } else {
            tx->lo = b | shl('0', sh);
            tx->size = n + 1;
        }
    }
}

/* any decimal token of up to 15 characters (fastscan._float_general) */
static int float_general(ctx_t *c, int64_t pos, double *value, int64_t *end, text_t *tx) {
    const unsigned char *t = c->a + pos;
    int n = 16, j;
    for (j = 0; j < 16; j++)
        if (num_class[t[j]] == C_TERM) {
            n = j;
            break;
        }
    if (n == 16)
        n = 0;
    *end = pos + n;
    *value = Py_NAN;
    tx->lo = tx->hi = 0;
    tx->size = 0;
    if (n == 0)
        return 0;
    int ok = 1;
    int neg = t[0] == '-';
    int start = num_class[t[0]] == C_SIGN;
    int epos = n;
    for (j = 0; j < n; j++)
        if (num_class[t[j]] == C_EXP) {
            epos = j;
            break;
        }
    int has_exp = epos < n;
    int dots = 0, digits = 0, dpos = -1, simple = 1;
    int64_t mant = 0;
    int frac = 0;
    for (j = start; j < epos; j++) {
        int k = num_class[t[j]];
        if (k == C_DOT) {
            if (dpos < 0)
                dpos = j;
            dots++;
        } else if (k == C_DIGIT) {
            digits++;
        } else {
            simple = 0;
        }
    }
    if (dpos < 0)
        dpos = epos;
    simple = simple && dots <= 1 && digits > 0 && digits <= 17;
    if (simple)
        for (j = start; j < epos; j++)
            if (num_class[t[j]] == C_DIGIT) {
                mant = mant * 10 + (t[j] - 48);
                frac += j > dpos;
            }
    int64_t exp = 0;
    if (has_exp && simple) { /* "e", an optional sign, 1 to 3 digits ending the token */
        int e0 = epos + 1;
        unsigned char first = t[e0 < 15 ? e0 : 15];
        int is_signed = num_class[first] == C_SIGN;
        int d0 = e0 + is_signed;
        int e_ok = n - d0 >= 1 && n - d0 <= 3;
        int64_t ev = 0;
        for (j = d0; j < n && e_ok; j++) {
            if (!is_digit(t[j]))
                e_ok = 0;
            ev = ev * 10 + (t[j] - 48);
        }
        exp = is_signed && first == '-' ? -ev : ev;
        if (!e_ok) {
            simple = 0;
            exp = 0;
        }
    }
    int64_t k = exp - frac;
    int fast = simple && mant < (1LL << 53) && k >= -22 && k <= 22;
    if (fast) {
        double mf = (double)mant;
        double v = k >= 0 ? mf * pow10d[k] : mf / pow10d[-k];
        *value = neg ? -v : v;
    } else {
        *value = slow_float(c, t, n, &ok);
    }
    /* the token is repr's text: fastscan._float_general's rules, in the same order */
    if (!fast || !c->texts)
        return ok;
    int unsigned_ = n - start;
    unsigned char first = t[start];
    int mant_end = has_exp ? epos : n;
    int lead_zero = first == '0' && mant_end - start > 1 && !(dots == 1 && dpos == start + 1);
    unsigned char last_mant = t[mant_end - 1 > 0 ? mant_end - 1 : 0];
    int trail_zero = dots == 1 && last_mant == '0' && dpos != mant_end - 2;
    int good = t[0] != '+' && !lead_zero && !trail_zero && unsigned_ > 0;
    good = good && (dots == 0 || (dpos > start && dpos < mant_end - 1));
    if (has_exp) {
        int exp_digits = n - epos - 2;
        unsigned char e_sign = t[epos + 1 < 15 ? epos + 1 : 15];
        good = good && t[epos < 15 ? epos : 15] == 'e' && num_class[e_sign] == C_SIGN
               && (exp_digits == 2 || (exp_digits == 3 && t[epos + 2 < 15 ? epos + 2 : 15] != '0'))
               && first != '0'
               && ((dots == 0 && epos - start == 1) || (dots == 1 && dpos == start + 1 && last_mant != '0'))
               && (exp < -4 || exp >= 16);
    } else {
        double av = *value < 0 ? -*value : *value;
        good = good && (av >= 1e-4 || av == 0) && av < 1e16 && n + 2 * (dots == 0) <= 16;
    }
    if (good) {
        unsigned char body[16];
        memset(body, 0, 16);
        memcpy(body, t, n);
        int append = !has_exp && dots == 0;
        if (append) {
            body[n] = '.';
            body[n + 1 < 15 ? n + 1 : 15] = '0';
        }
        memcpy(&tx->lo, body, 8);
        memcpy(&tx->hi, body + 8, 8);
        tx->size = n + 2 * append;
    }
    return ok;
}

/* a decimal token at pos (fastscan._float_token): plain ones (digits and at most one dot,
 * under 8 characters) word-wise, the others by float_general */
static int float_token(ctx_t *c, int64_t pos, double *value, int64_t *end, text_t *tx) {
    const unsigned char *p = c->a + pos;
    int n = 0, ndots = 0, dot = -1;
    int64_t d = 0;
    while (n < 8 && (is_digit(p[n]) || p[n] == '.')) {
        if (p[n] == '.') {
            if (dot < 0)
                dot = n;
            ndots++;
        } else {
            d = d * 10 + (p[n] - 48);
        }
        n++;
    }
    if (n < 8 && ndots <= 1 && n > ndots && num_class[p[n]] == C_TERM) {
        int frac = ndots ? n - 1 - dot : 0;
        *value = (double)d / pow10d[frac];
        *end = pos + n;
        if (c->texts)
            plain_text(word_at(p), n, ndots ? (dot < 7 ? dot : 7) : (n < 7 ? n : 7), ndots == 1, *value, tx);
        return 1;
    }
    return float_general(c, pos, value, end, tx);
}

/* whether the literal (len bytes, at most 24) stands at pos: compared 8 bytes at a time */
static inline int lit(const unsigned char *a, int64_t pos, const char *text, size_t len) {
    size_t k = 0;
    for (; k + 8 <= len; k += 8)
        if (word_at(a + pos + k) != word_at((const unsigned char *)text + k))
            return 0;
    for (; k < len; k++)
        if (a[pos + k] != (unsigned char)text[k])
            return 0;
    return 1;
}
#define LIT(a, pos, s) lit((a), (pos), (s), sizeof(s) - 1)

static inline int two(const unsigned char *a, int64_t pos, int64_t *v) {
    int hi = (int)a[pos] - 48, lo = (int)a[pos + 1] - 48;
    *v = hi * 10 + lo;
    return hi >= 0 && hi <= 9 && lo >= 0 && lo <= 9;
}

/* glog's clock of the line starting at st in microseconds (fastscan._clock), -1 if none */
static int64_t glog_clock(const unsigned char *a, int64_t st) {
    int long_date = a[st + 5] != 32;
    int64_t c = st + (long_date ? 10 : 6);
    int64_t month, day, hh, mm, ss, micro;
    int ok = two(a, c - 5, &month) & two(a, c - 3, &day) & two(a, c, &hh) & two(a, c + 3, &mm)
             & two(a, c + 6, &ss);
    int nmicro = int_run(a + c + 9, &micro);
    ok = ok && a[c + 2] == 58 && a[c + 5] == 58 && a[c + 8] == 46 && nmicro > 0 && nmicro <= 6
         && a[c + 9 + nmicro] == 32 && month >= 1 && month <= 12 && day >= 1 && day <= 31;
    if (!ok)
        return -1;
    micro *= pow10i[6 - nmicro];
    int64_t days = days_before_month[month] + day;
    if (long_date) {
        int64_t year = 0;
        for (int k = 0; k < 4; k++) {
            int digit = (int)a[st + 1 + k] - 48;
            if (digit < 0 || digit > 9)
                return -1;
            year = year * 10 + digit;
        }
        int64_t y = year - 1;
        int leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        days += 365 * y + y / 4 - y / 100 + y / 400 + (month > 2 && leap);
    }
    return ((days * 24 + hh) * 60 + mm) * 60000000LL + ss * 1000000LL + micro;
}

typedef struct {
    void *p;
    size_t n, cap, item;
} vec_t;

static int vec_grow(vec_t *v) {
    size_t cap = v->cap ? 2 * v->cap : 1024;
    void *q = realloc(v->p, cap * v->item);
    if (!q)
        return -1;
    v->p = q;
    v->cap = cap;
    return 0;
}

static inline int vec_push(vec_t *v, const void *x) {
    if (v->n == v->cap && vec_grow(v) < 0)
        return -1;
    memcpy((char *)v->p + v->n * v->item, x, v->item);
    v->n++;
    return 0;
}

/* Scratch space kept between calls (taken and given back while holding the GIL): fresh
 * megabytes for every chunk would cost a page fault per 4 KiB.  At most SCRATCH_KEPT sets
 * are kept (one per scanning thread). */
typedef struct {
    vec_t ends, rows, quiet, names, named;
    char *out;
    size_t out_cap;
} scratch_t;
#define SCRATCH_KEPT 4
static scratch_t *scratch_pool[SCRATCH_KEPT];
static int scratch_n = 0;

static scratch_t *scratch_take(void) {
    if (scratch_n)
        return scratch_pool[--scratch_n];
    return calloc(1, sizeof(scratch_t));
}

static void scratch_give(scratch_t *sc) {
    if (!sc)
        return;
    if (scratch_n < SCRATCH_KEPT) {
        scratch_pool[scratch_n++] = sc;
        return;
    }
    free(sc->ends.p);
    free(sc->rows.p);
    free(sc->named.p);
    free(sc->quiet.p);
    free(sc->names.p);
    free(sc->out);
    free(sc);
}

static const char *QUIET[] = {"Waiting for data", "Data layer prefetch queue empty",
                              "Restarting data prefetching from start.", "Restarting data pre-fetching"};

/* the curve line whose body starts at b and ends at e (the newline), into r (kind 0: none) */
static void match_line(ctx_t *c, int64_t b, int64_t e, row_t *r) {
    const unsigned char *a = c->a;
    int64_t it, p;
    double v;
    int64_t ve;
    r->kind = 0;
    if (LIT(a, b, "Iteration ")) {
        if (!int_token(a, b + 10, &it, &p))
            return;
        if (LIT(a, p, ", loss = ") || LIT(a, p, ", lr = ")) {
            int is_loss = a[p + 3] == 'o';
            if (float_token(c, p + (is_loss ? 9 : 7), &v, &ve, &r->text) && ve == e) {
                r->kind = is_loss ? ITER : LR;
                r->iteration = it;
                r->value = v;
            }
        } else if (LIT(a, p, " (")) {
            double first, secs, loss;
            int64_t e1, e2, e3, e4, at, k;
            text_t first_tx = {0, 0, 0}, secs_tx = {0, 0, 0};
            if (!float_token(c, p + 2, &first, &e1, &first_tx))
                return;
            if (LIT(a, e1, " iter/s, ")) {
                if (!float_token(c, e1 + 9, &secs, &e2, &secs_tx) || !LIT(a, e2, "s/"))
                    return;
                if (!int_token(a, e2 + 2, &k, &e3))
                    return;
                if (LIT(a, e3, " iters), loss = "))
                    at = e3 + 16;
                else if (LIT(a, e3, " iter), loss = ")) /* NVCaffe, DIGITS' Caffe */
                    at = e3 + 15;
                else
                    return;
            } else if (LIT(a, e1, " s), loss = ")) { /* NVCaffe: "Iteration 1 (0.635205 s), loss = 6.9" */
                secs = first;
                secs_tx = first_tx;
                at = e1 + 12;
            } else {
                return;
            }
            if (float_token(c, at, &loss, &e4, &r->text) && e4 == e) {
                r->kind = ITER;
                r->iteration = it;
                r->value = loss;
                r->interval = secs;
                r->itext = secs_tx;
            }
        } else if (LIT(a, p, ", Testing net (#")) {
            int64_t net, e5;
            if (int_token(a, p + 16, &net, &e5) && a[e5] == ')' && e5 + 1 == e) {
                r->kind = TEST_START;
                r->iteration = it;
                r->index = net;
            }
        }
        return;
    }
    int kind = 0, width = 0;
    if (LIT(a, b, "    Train net output #")) {
        kind = TRAIN_OUT;
        width = 22;
    } else if (LIT(a, b, "    Test net output #")) {
        kind = TEST_OUT;
        width = 21;
    } else {
        return;
    }
    int64_t idx, ie;
    if (!int_token(a, b + width, &idx, &ie) || a[ie] != ':' || a[ie + 1] != ' ')
        return;
    int64_t ns = ie + 2;
    int nlen = -1;
    for (int j = 0; j < NAME_BYTES; j++) {
        unsigned char ch = a[ns + j];
        if (ch == 32 || ch < 14) {
            nlen = j;
            break;
        }
    }
    if (nlen <= 0) /* no end within 32 bytes, or an empty name */
        return;
    if (!LIT(a, ns + nlen, " = "))
        return;
    if (!float_token(c, ns + nlen + 3, &v, &ve, &r->text) || (a[ve] != ' ' && a[ve] != '\n'))
        return;
    r->kind = kind;
    r->value = v;
    r->index = idx;
    memset(c->name, 0, NAME_BYTES);
    memcpy(c->name, a + ns, nlen);
}

/* byte order of two names */
static int cmp_named(const void *x, const void *y) { return memcmp(x, y, NAME_BYTES); }

static int name_index(vec_t *names, const unsigned char *nm) {
    size_t j;
    for (j = 0; j < names->n; j++)
        if (!memcmp((unsigned char *)names->p + j * NAME_BYTES, nm, NAME_BYTES))
            return (int)j;
    return vec_push(names, nm) < 0 ? -1 : (int)j;
}

/* Output names as fastscan._name_ids numbers them: per kind (train, then test), by output
 * number when every number has one name (Caffe's case), else in byte order; ids index the
 * chunk's list of distinct names in the order they are first numbered. */
static int number_names(named_t *outs, size_t m, row_t *rows, vec_t *names) {
    static const int kinds[2] = {TRAIN_OUT, TEST_OUT};
    for (int kk = 0; kk < 2; kk++) {
        int kind = kinds[kk];
        int64_t max_idx = -1;
        size_t count = 0;
        for (size_t i = 0; i < m; i++)
            if (outs[i].kind == kind) {
                count++;
                if (outs[i].index > max_idx)
                    max_idx = outs[i].index;
            }
        if (!count)
            continue;
        if (max_idx < 4096) {
            int64_t *ref = malloc(2 * sizeof(int64_t) * (size_t)(max_idx + 1));
            if (!ref)
                return -1;
            int64_t *ids = ref + max_idx + 1;
            int by_number = 1;
            for (int64_t k = 0; k <= max_idx; k++)
                ref[k] = -1;
            for (size_t i = 0; i < m && by_number; i++)
                if (outs[i].kind == kind) {
                    int64_t k = outs[i].index;
                    if (ref[k] < 0)
                        ref[k] = (int64_t)i;
                    else if (memcmp(outs[ref[k]].name, outs[i].name, NAME_BYTES))
                        by_number = 0;
                }
            if (by_number) {
                for (int64_t k = 0; k <= max_idx; k++)
                    if (ref[k] >= 0 && (ids[k] = name_index(names, outs[ref[k]].name)) < 0) {
                        free(ref);
                        return -1;
                    }
                for (size_t i = 0; i < m; i++)
                    if (outs[i].kind == kind)
                        rows[outs[i].row].name = ids[outs[i].index];
                free(ref);
                continue;
            }
            free(ref);
        }
        /* the distinct names of this kind in byte order */
        unsigned char *sorted = malloc(count * NAME_BYTES);
        if (!sorted)
            return -1;
        size_t s = 0;
        for (size_t i = 0; i < m; i++)
            if (outs[i].kind == kind)
                memcpy(sorted + NAME_BYTES * s++, outs[i].name, NAME_BYTES);
        qsort(sorted, count, NAME_BYTES, cmp_named);
        for (size_t i = 0; i < count; i++)
            if (name_index(names, sorted + NAME_BYTES * i) < 0) {
                free(sorted);
                return -1;
            }
        free(sorted);
        for (size_t i = 0; i < m; i++)
            if (outs[i].kind == kind)
                rows[outs[i].row].name = name_index(names, outs[i].name);
    }
    return 0;
}

static PyObject *from_vec(vec_t *v) {
    return PyByteArray_FromStringAndSize(v->p ? (const char *)v->p : "", (Py_ssize_t)(v->n * v->item));
}

static PyObject *scan(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view;
    Py_ssize_t size;
    int nul = 1, texts = 1;
    if (!PyArg_ParseTuple(args, "y*n|pp", &view, &size, &nul, &texts))
        return NULL;
    /* every read past a line stops at a NUL byte or a few bytes (under PAD) on: with PAD zero
     * bytes after the chunk, no read leaves the buffer (checked here, not trusted) */
    int padded = size >= 0 && view.len - PAD >= size;
    for (Py_ssize_t k = 0; padded && k < PAD; k++)
        padded = ((const unsigned char *)view.buf)[size + k] == 0;
    if (!padded) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "the chunk must be followed by PAD zero bytes in its buffer");
        return NULL;
    }
    ctx_t c;
    c.a = (const unsigned char *)view.buf;
    c.texts = texts;
    const unsigned char *a = c.a;
    scratch_t *sc = scratch_take();
    if (!sc) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    vec_t ends = sc->ends, rows = sc->rows, quiet = sc->quiet, names = sc->names, named = sc->named;
    ends.n = rows.n = quiet.n = names.n = named.n = 0;
    named.item = sizeof(named_t);
    ends.item = sizeof(int64_t);
    rows.item = sizeof(row_t);
    quiet.item = sizeof(int64_t);
    names.item = NAME_BYTES;
    size_t quiet_len[4];
    for (int q = 0; q < 4; q++)
        quiet_len[q] = strlen(QUIET[q]);
    int failed = 0;
    PyObject *result = NULL;
    c.ts = PyEval_SaveThread();
    int64_t line = 0, st = 0;
    while (st < size) {
        const unsigned char *nl = memchr(a + st, '\n', (size_t)(size - st));
        int64_t e = nl ? (int64_t)(nl - a) : size; /* the chunk ends with a newline */
        if (vec_push(&ends, &e) < 0) {
            failed = 1;
            break;
        }
        if (a[st] == 'I' && is_digit(a[st + 1]) && is_digit(a[st + 2]) && is_digit(a[st + 3])
            && is_digit(a[st + 4])
            && (a[st + 5] == ' ' || (is_digit(a[st + 5]) && is_digit(a[st + 6]) && is_digit(a[st + 7])
                                     && is_digit(a[st + 8]) && a[st + 9] == ' '))
            && !(nul && memchr(a + st, 0, (size_t)(e - st)))) {
            const unsigned char *br = memchr(a + st, ']', (size_t)(e - st));
            if (br && br[1] == ' ' && is_digit(br[-1])) {
                int64_t b = (int64_t)(br - a) + 2;
                if (rows.n == rows.cap && vec_grow(&rows) < 0) {
                    failed = 1;
                    break;
                }
                row_t *r = (row_t *)rows.p + rows.n; /* filled in place, kept if a template matched */
                r->line = line;
                r->iteration = r->time = r->index = r->name = -1;
                r->value = r->interval = Py_NAN;
                r->text.lo = r->text.hi = r->itext.lo = r->itext.hi = 0;
                r->text.size = r->itext.size = 0;
                match_line(&c, b, e, r);
                if (r->kind) {
                    if (r->kind == ITER || r->kind == TEST_START)
                        r->time = glog_clock(a, st);
                    if (r->kind == TRAIN_OUT || r->kind == TEST_OUT) {
                        named_t nd;
                        nd.row = (int64_t)rows.n;
                        nd.index = r->index;
                        nd.kind = r->kind;
                        memcpy(nd.name, c.name, NAME_BYTES);
                        if (vec_push(&named, &nd) < 0) {
                            failed = 1;
                            break;
                        }
                    }
                    rows.n++;
                } else {
                    for (int q = 0; q < 4; q++)
                        if ((size_t)(e - b) == quiet_len[q] && !memcmp(a + b, QUIET[q], quiet_len[q])) {
                            if (vec_push(&quiet, &line) < 0)
                                failed = 1;
                            break;
                        }
                }
            }
        }
        line++;
        st = e + 1;
    }
    if (!failed && number_names((named_t *)named.p, named.n, (row_t *)rows.p, &names) < 0)
        failed = 1;
    PyEval_RestoreThread(c.ts);
    PyBuffer_Release(&view);
    if (failed) {
        PyErr_NoMemory();
        goto fail;
    }
    {
        size_t m = rows.n;
        row_t *rows_p = (row_t *)rows.p;
        result = PyTuple_New(17);
        if (!result)
            goto fail;
        int slot = 0;
        PyObject *x = from_vec(&ends);
        if (!x)
            goto fail;
        PyTuple_SET_ITEM(result, slot++, x);
        { /* the rows as columns, in one pass */
            static const size_t width[14] = {8, 1, 8, 8, 8, 8, 8, 8, 8, 8, 1, 8, 8, 1};
            char *col[14];
            for (int k = 0; k < 14; k++) {
                PyObject *b = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)(m * width[k]));
                if (!b)
                    goto fail;
                col[k] = PyByteArray_AS_STRING(b);
                PyTuple_SET_ITEM(result, slot++, b);
            }
            int64_t *line_c = (int64_t *)col[0], *it_c = (int64_t *)col[2], *time_c = (int64_t *)col[5];
            int64_t *index_c = (int64_t *)col[6], *name_c = (int64_t *)col[7];
            double *value_c = (double *)col[3], *interval_c = (double *)col[4];
            uint64_t *tlo = (uint64_t *)col[8], *thi = (uint64_t *)col[9], *ilo = (uint64_t *)col[11];
            uint64_t *ihi = (uint64_t *)col[12];
            int8_t *tsize = (int8_t *)col[10], *isize = (int8_t *)col[13];
            uint8_t *kind_c = (uint8_t *)col[1];
            for (size_t i = 0; i < m; i++) {
                const row_t *r = rows_p + i;
                line_c[i] = r->line;
                kind_c[i] = (uint8_t)r->kind;
                it_c[i] = r->iteration;
                value_c[i] = r->value;
                interval_c[i] = r->interval;
                time_c[i] = r->time;
                index_c[i] = r->index;
                name_c[i] = r->name;
                tlo[i] = r->text.lo;
                thi[i] = r->text.hi;
                tsize[i] = (int8_t)r->text.size;
                ilo[i] = r->itext.lo;
                ihi[i] = r->itext.hi;
                isize[i] = (int8_t)r->itext.size;
            }
        }
        x = from_vec(&quiet);
        if (!x)
            goto fail;
        PyTuple_SET_ITEM(result, slot++, x);
        PyObject *list = PyList_New((Py_ssize_t)names.n);
        if (!list)
            goto fail;
        PyTuple_SET_ITEM(result, slot++, list);
        for (size_t j = 0; j < names.n; j++) {
            const char *nm = (const char *)names.p + j * NAME_BYTES;
            PyObject *b = PyBytes_FromStringAndSize(nm, (Py_ssize_t)strnlen(nm, NAME_BYTES));
            if (!b)
                goto fail;
            PyList_SET_ITEM(list, (Py_ssize_t)j, b);
        }
    }
    goto done;
fail:
    Py_CLEAR(result);
done: /* the scratch space, grown or not, kept for the next call */
    sc->ends = ends;
    sc->rows = rows;
    sc->quiet = quiet;
    sc->names = names;
    sc->named = named;
    scratch_give(sc);
    return result;
}


/* ---------------------------------------------------------------------------------------
 * render(pieces, n, start=0, stop=n) -> bytes: rows start to stop of text for the curves' CSV and JSON (export.py), the
 * job of textcols.join_rows with its cells made here.  Per row, each piece in order:
 *   (0, present, bytes)                    the bytes
 *   (1, present, int64 array)              the integer in decimal
 *   (2, present, float64 array, words, sizes, flags)
 *        the value as repr() writes it: its kept text (words: (n, 2) uint64, sizes: int8,
 *        0 = none; or None) where there is one, else formatted (put_short); flags:
 *        1 = seconds (whole microseconds are written with integer arithmetic), 2 = nan and
 *        inf as null (JSON)
 * present: None, or a bool array (a row whose entry is False gets nothing of the piece).
 * Formatting falls back to PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0), which is
 * repr() itself, for values put_short cannot write. */

typedef struct {
    int kind, flags;
    const char *cst;
    Py_ssize_t cst_len;
    const unsigned char *present;
    const int64_t *ints;
    const double *values;
    const uint64_t *words;
    const int8_t *sizes;
} piece_t;

typedef struct {
    char *p;
    size_t n, cap;
} out_t;

static int out_reserve(out_t *o, size_t more) {
    if (o->n + more <= o->cap)
        return 0;
    size_t cap = o->cap ? o->cap : 1 << 16;
    while (cap < o->n + more)
        cap *= 2;
    char *q = realloc(o->p, cap);
    if (!q)
        return -1;
    o->p = q;
    o->cap = cap;
    return 0;
}

static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                     "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                     "8081828384858687888990919293949596979899";

/* x in decimal at d; writes 24 bytes (a fixed-size copy), returns the end of the digits */
static inline char *put_uint(char *d, uint64_t x) {
    char tmp[48];
    char *t = tmp + 24;
    while (x >= 100) {
        t -= 2;
        memcpy(t, digit_pairs + 2 * (x % 100), 2);
        x /= 100;
    }
    if (x >= 10) {
        t -= 2;
        memcpy(t, digit_pairs + 2 * x, 2);
    } else {
        *--t = (char)('0' + x);
    }
    size_t k = (size_t)(tmp + 24 - t);
    memcpy(d, t, 24); /* what lies past the digits is written over next */
    return d + k;
}

/* whole microseconds k (100 <= k < 10**14) as repr(k / 1e6): "12.5", "0.0001", "3.0" */
static inline char *put_micro(char *d, int64_t k) {
    int64_t whole = k / 1000000, frac = k % 1000000;
    d = put_uint(d, (uint64_t)whole);
    *d++ = '.';
    char six[6];
    memcpy(six, digit_pairs + 2 * (frac / 10000), 2);
    memcpy(six + 2, digit_pairs + 2 * (frac / 100 % 100), 2);
    memcpy(six + 4, digit_pairs + 2 * (frac % 100), 2);
    int shown = 6;
    while (shown > 1 && six[shown - 1] == '0')
        shown--;
    memcpy(d, six, 6);
    return d + shown;
}

/* v (finite, not 0) as repr() writes it, where v is the double nearest a decimal of at most
 * 15 significant digits (every value Caffe prints, every clock difference): that decimal
 * D * 10**q is found by one scaling by an exact power of ten and checked by scaling back
 * (both steps round once, correctly), and D without its trailing zeros is the shortest text
 * that reads back as v (two decimals of 15 digits or fewer never round to one double), so
 * it is repr's.  NULL for any other v: the caller asks repr itself (textcols.float_cells
 * does the same with numpy). */
static char *put_short(char *d, double v) {
    double a = v < 0 ? -v : v, dd = 0, scale = 1;
    if (!(a >= 1e-8 && a < 1e37)) /* 10**(14 - e) must be an exact double: |14 - e| <= 22 */
        return NULL;
    uint64_t bits;
    memcpy(&bits, &a, 8);
    int b2 = (int)((bits >> 52) & 0x7ff) - 1022; /* frexp's exponent (a is a normal double) */
    /* floor(log10(a)), or one less: from the binary exponent (log10(2) ~ 1233 / 4096) */
    int e = ((b2 - 1) * 1233) >> 12, k = 0, pass;
    for (pass = 0; pass < 3; pass++) {
        k = 14 - e;
        if (k > 22 || k < -22)
            return NULL;
        scale = pow10d[k >= 0 ? k : -k];
        /* rounded half up: a value that is a short decimal is within 0.2 of an integer here */
        dd = (double)(int64_t)((k >= 0 ? a * scale : a / scale) + 0.5);
        if (dd >= 1e15)
            e++;
        else if (dd < 1e14)
            e--;
        else
            break;
    }
    if (pass == 3 || (k >= 0 ? dd / scale : dd * scale) != a)
        return NULL;
    int64_t digits = (int64_t)dd;
    int q = -k;
    static const int64_t strips[4] = {100000000, 10000, 100, 10};
    static const int strip_digits[4] = {8, 4, 2, 1};
    for (int j = 0; j < 4; j++) /* trailing zeros: 14 at most */
        if (digits % strips[j] == 0) {
            digits /= strips[j];
            q += strip_digits[j];
        }
    char buf[48];
    char *end = put_uint(buf, (uint64_t)digits);
    int n = (int)(end - buf);
    int x = q + n - 1; /* the decimal exponent of the first digit */
    if (v < 0)
        *d++ = '-';
    if (x < -4 || x >= 16) { /* d.ddde-XX */
        *d++ = buf[0];
        if (n > 1) {
            *d++ = '.';
            memcpy(d, buf + 1, 16);
            d += n - 1;
        }
        *d++ = 'e';
        *d++ = x < 0 ? '-' : '+';
        int ax = x < 0 ? -x : x;
        if (ax >= 100)
            *d++ = (char)('0' + ax / 100);
        memcpy(d, digit_pairs + 2 * (ax % 100), 2);
        return d + 2;
    }
    if (x >= 0) {
        if (n <= x + 1) { /* 1234500.0 */
            memcpy(d, buf, 16);
            d += n;
            memset(d, '0', (size_t)(x + 1 - n));
            d += x + 1 - n;
            memcpy(d, ".0", 2);
            return d + 2;
        }
        memcpy(d, buf, 16);
        d += x + 1;
        *d++ = '.';
        memcpy(d, buf + x + 1, 16);
        return d + n - x - 1;
    }
    memcpy(d, "0.", 2); /* 0.000123 */
    d += 2;
    memset(d, '0', (size_t)(-x - 1));
    d += -x - 1;
    memcpy(d, buf, 16);
    return d + n;
}

static int get_array(PyObject *obj, Py_buffer *view, Py_ssize_t need, Py_ssize_t itemsize, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    if (view->len < need * itemsize) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "render: %s holds fewer than n rows", what);
        return -1;
    }
    return 0;
}

static PyObject *render(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *list;
    Py_ssize_t n, start = 0, stop = -1;
    if (!PyArg_ParseTuple(args, "O!n|nn", &PyList_Type, &list, &n, &start, &stop))
        return NULL;
    if (stop < 0 || stop > n)
        stop = n;
    if (start < 0)
        start = 0;
    /* the pieces held in a tuple of our own while the lock is let go: another thread may
     * change the caller's list, not what is being read */
    PyObject *held = PyList_AsTuple(list);
    if (!held)
        return NULL;
    Py_ssize_t np_ = PyTuple_GET_SIZE(held);
    piece_t *pieces = calloc((size_t)np_ + 1, sizeof(piece_t));
    Py_buffer *views = calloc((size_t)np_ * 4 + 1, sizeof(Py_buffer));
    int nviews = 0;
    scratch_t *sc = scratch_take();
    out_t o = {NULL, 0, 0};
    PyObject *result = NULL;
    if (sc) {
        o.p = sc->out;
        o.cap = sc->out_cap;
    }
    if (!pieces || !views || !sc) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < np_; i++) {
        PyObject *t = PyTuple_GET_ITEM(held, i);
        piece_t *pc = &pieces[i];
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) < 3) {
            PyErr_SetString(PyExc_TypeError, "render: each piece is a tuple (kind, present, ...)");
            goto done;
        }
        pc->kind = (int)PyLong_AsLong(PyTuple_GET_ITEM(t, 0));
        PyObject *present = PyTuple_GET_ITEM(t, 1);
        if (present != Py_None) {
            if (get_array(present, &views[nviews], n, 1, "present") < 0)
                goto done;
            pc->present = views[nviews++].buf;
        }
        if (pc->kind == 0) {
            PyObject *b = PyTuple_GET_ITEM(t, 2);
            if (!PyBytes_Check(b)) {
                PyErr_SetString(PyExc_TypeError, "render: a constant piece is bytes");
                goto done;
            }
            pc->cst = PyBytes_AS_STRING(b);
            pc->cst_len = PyBytes_GET_SIZE(b);
        } else if (pc->kind == 1) {
            if (get_array(PyTuple_GET_ITEM(t, 2), &views[nviews], n, 8, "ints") < 0)
                goto done;
            pc->ints = views[nviews++].buf;
        } else if (pc->kind == 2 && PyTuple_GET_SIZE(t) == 6) {
            if (get_array(PyTuple_GET_ITEM(t, 2), &views[nviews], n, 8, "values") < 0)
                goto done;
            pc->values = views[nviews++].buf;
            if (PyTuple_GET_ITEM(t, 3) != Py_None) {
                if (get_array(PyTuple_GET_ITEM(t, 3), &views[nviews], n, 16, "words") < 0)
                    goto done;
                pc->words = views[nviews++].buf;
                if (get_array(PyTuple_GET_ITEM(t, 4), &views[nviews], n, 1, "sizes") < 0)
                    goto done;
                pc->sizes = views[nviews++].buf;
            }
            pc->flags = (int)PyLong_AsLong(PyTuple_GET_ITEM(t, 5));
        } else {
            PyErr_SetString(PyExc_ValueError, "render: unknown piece");
            goto done;
        }
    }
    if (PyErr_Occurred())
        goto done;
    {
        PyThreadState *ts = PyEval_SaveThread();
        int failed = 0;
        size_t row_max = 0; /* the most a row can take: constants, and 64 bytes a cell */
        for (Py_ssize_t i = 0; i < np_; i++)
            row_max += pieces[i].kind == 0 ? (size_t)pieces[i].cst_len : 64;
        for (Py_ssize_t r = start; r < stop && !failed; r++) {
            if (out_reserve(&o, row_max + 64) < 0) {
                failed = 1;
                break;
            }
            for (Py_ssize_t i = 0; i < np_; i++) {
                piece_t *pc = &pieces[i];
                if (pc->present && !pc->present[r])
                    continue;
                if (pc->kind == 0) {
                    memcpy(o.p + o.n, pc->cst, (size_t)pc->cst_len);
                    o.n += (size_t)pc->cst_len;
                    continue;
                }
                char *d = o.p + o.n;
                if (pc->kind == 1) {
                    int64_t x = pc->ints[r];
                    if (x < 0) {
                        *d++ = '-';
                        d = put_uint(d, (uint64_t)0 - (uint64_t)x);
                    } else {
                        d = put_uint(d, (uint64_t)x);
                    }
                    o.n = (size_t)(d - o.p);
                    continue;
                }
                double v = pc->values[r];
                if (pc->sizes && pc->sizes[r] > 0 && pc->sizes[r] <= 16) { /* a text is 16 bytes at most */
                    memcpy(d, pc->words + 2 * r, 16);
                    o.n += (size_t)pc->sizes[r];
                    continue;
                }
                if ((pc->flags & 2) && !(v - v == 0)) { /* nan or inf: JSON's null */
                    memcpy(d, "null", 4);
                    o.n += 4;
                    continue;
                }
                if (pc->flags & 1) {
                    double k = nearbyint(v * 1e6);
                    if (k / 1e6 == v && k >= 100 && k < 1e14) {
                        d = put_micro(d, (int64_t)k);
                        o.n = (size_t)(d - o.p);
                        continue;
                    }
                }
                if (v - v == 0) { /* finite */
                    char *end = NULL;
                    if (v == 0) {
                        memcpy(d, "-0.0", 4);
                        end = signbit(v) ? d + 4 : (memcpy(d, "0.0", 3), d + 3);
                    } else {
                        end = put_short(d, v);
                    }
                    if (end) {
                        o.n = (size_t)(end - o.p);
                        continue;
                    }
                }
                PyEval_RestoreThread(ts);
                char *text = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
                if (!text) {
                    failed = 2;
                    ts = PyEval_SaveThread();
                    break;
                }
                size_t len = strlen(text);
                memcpy(d, text, len);
                o.n += len;
                PyMem_Free(text);
                ts = PyEval_SaveThread();
            }
        }
        PyEval_RestoreThread(ts);
        if (failed) {
            if (failed == 1)
                PyErr_NoMemory();
            goto done;
        }
    }
    result = PyBytes_FromStringAndSize(o.p ? o.p : "", (Py_ssize_t)o.n);
done:
    for (int k = 0; k < nviews; k++)
        PyBuffer_Release(&views[k]);
    free(views);
    free(pieces);
    Py_DECREF(held);
    if (sc) {
        sc->out = o.p;
        sc->out_cap = o.cap;
        scratch_give(sc);
    } else {
        free(o.p);
    }
    return result;
}

#if defined(__GLIBC__)
#include <malloc.h>
#endif

/* tune_allocator() -> bool: glibc's malloc asked to keep the memory it is given back (no
 * trimming, no mmap below 4 MiB).  Scanning and folding a big log allocate and free
 * arrays of a few hundred KiB to a few MiB thousands of times; by default glibc hands them
 * back to the kernel and takes them again, a page fault for every 4 KiB each time (a fifth
 * of the command's CPU time on a 100 MiB log).  For a process that parses a log and exits
 * (the ``caffemem log`` command).  Measured on 100 MiB: page faults 55k -> 30k; on a 1 GiB
 * log peak RSS 119 -> 125 MB for --format json (32 MiB instead of 4 would give 143 MB). */
static PyObject *tune_allocator(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
#if defined(__GLIBC__)
    int ok = mallopt(M_MMAP_THRESHOLD, 4 << 20) && mallopt(M_TRIM_THRESHOLD, 256 << 20)
             && mallopt(M_TOP_PAD, 1 << 20);
    return PyBool_FromLong(ok);
#else
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"tune_allocator", tune_allocator, METH_NOARGS,
     "tune_allocator(): glibc's malloc keeps freed memory for reuse (see _cscan.c); False elsewhere."},
    {"scan", scan, METH_VARARGS,
     "scan(buffer, size, nul=True, texts=True): the curve lines of buffer[:size] (followed by PAD zero "
     "bytes), as fastscan.scan_chunk finds them; columns as bytearrays (see fastscan._from_c)."},
    {"render", render, METH_VARARGS,
     "render(pieces, n, start=0, stop=n): rows start..stop of n of text from constant pieces, integers and values (see _cscan.c)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cscan",
                                    "fastscan.scan_chunk's curve-line scan in C (see _cscan.c).", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__cscan(void) {
    const uint16_t probe = 1;
    if (*(const unsigned char *)&probe != 1) {
        PyErr_SetString(PyExc_ImportError, "_cscan reads little-endian words only");
        return NULL;
    }
    for (int i = 0; i < 256; i++)
        num_class[i] = C_TERM;
    for (int i = '0'; i <= '9'; i++)
        num_class[i] = C_DIGIT;
    num_class['.'] = C_DOT;
    num_class['e'] = num_class['E'] = C_EXP;
    num_class['+'] = num_class['-'] = C_SIGN;
    for (const char *w = "naifNAIFty"; *w; w++)
        num_class[(unsigned char)*w] = C_WORD;
    double p = 1.0;
    for (int k = 0; k < 23; k++) {
        pow10d[k] = p;
        p *= 10.0;
    }
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "PAD", PAD) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
