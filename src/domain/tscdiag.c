/*
 * tscdiag: tsc's diagnostics and the bare imports of a source file (contract in
 * include/dream/domain/tscdiag.h). Pure; any thread.
 */
#include "dream/domain/tscdiag.h"
#include "dream/core/text.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIAGS_DEFAULT 200

void dm_tsc_diags_free(struct dm_tsc_diags *d)
{
    if (!d) {
        return;
    }
    for (size_t i = 0; i < d->n; i++) {
        free(d->items[i].file);
        free(d->items[i].message);
    }
    free(d->items);
    memset(d, 0, sizeof(*d));
}

/* Reads a decimal number at *p (advancing it); returns 0 when there is none. */
static int read_uint(const char **p, const char *end, unsigned *out)
{
    unsigned long v = 0;
    const char *s = *p;
    while (s < end && isdigit((unsigned char)*s) && v < 100000000ul) {
        v = v * 10 + (unsigned long)(*s - '0');
        s++;
    }
    if (s == *p) {
        return 0;
    }
    *p = s;
    *out = (unsigned)v;
    return 1;
}

/* Parses "error TS1234: msg" or "warning TS1234: msg" at p; sets *msg to the message. */
static int parse_tail(const char *p, const char *end, struct dm_tsc_diag *d, const char **msg)
{
    if ((size_t)(end - p) >= 8 && memcmp(p, "error TS", 8) == 0) {
        p += 8;
    } else if ((size_t)(end - p) >= 10 && memcmp(p, "warning TS", 10) == 0) {
        d->warning = 1;
        p += 10;
    } else {
        return 0;
    }
    if (!read_uint(&p, end, &d->code) || p + 1 >= end || p[0] != ':' || p[1] != ' ') {
        return 0;
    }
    *msg = p + 2;
    return 1;
}

/* Parses one diagnostic line into d (file and message left unset); *msg points at the text. */
static int parse_line(const char *s, const char *end, struct dm_tsc_diag *d, const char **msg,
                      size_t *file_len)
{
    const char *open;

    memset(d, 0, sizeof(*d));
    *file_len = 0;
    if (parse_tail(s, end, d, msg)) {
        return 1;
    }
    /* "<file>(<line>,<col>): error TS...": the last "(" before "): " that parses. */
    for (open = s; open < end; open++) {
        const char *q = open + 1;
        if (*open != '(' || open == s) {
            continue;
        }
        if (!read_uint(&q, end, &d->line) || q >= end || *q != ',') {
            continue;
        }
        q++;
        if (!read_uint(&q, end, &d->col) || end - q < 3 || memcmp(q, "): ", 3) != 0) {
            continue;
        }
        if (parse_tail(q + 3, end, d, msg)) {
            *file_len = (size_t)(open - s);
            return 1;
        }
    }
    return 0;
}

/* The message of d: one clean line of at most DM_TSC_MESSAGE_MAX bytes. */
static char *clean(const char *s, size_t n)
{
    char *raw = malloc(n + 1);
    char *out;
    if (!raw) {
        return NULL;
    }
    memcpy(raw, s, n);
    raw[n] = '\0';
    out = dm_text_clean_line(raw, DM_TSC_MESSAGE_MAX);
    free(raw);
    return out;
}

int dm_tsc_parse(struct dm_tsc_diags *out, const char *text, size_t len, size_t max,
                 struct dm_error *err)
{
    const char *p = text;
    const char *end = text + len;
    struct dm_tsc_diag *last = NULL;
    size_t cap = 0;

    memset(out, 0, sizeof(*out));
    if (!max) {
        max = DIAGS_DEFAULT;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *msg = NULL;
        struct dm_tsc_diag d;
        size_t file_len;

        if (le > p && le[-1] == '\r') {
            le--;
        }
        if (le > p && (*p == ' ' || *p == '\t')) {
            /* A continuation line of the last diagnostic kept. */
            if (last && strlen(last->message) < DM_TSC_MESSAGE_MAX) {
                const char *c = p;
                size_t have = strlen(last->message);
                char *joined;
                while (c < le && (*c == ' ' || *c == '\t')) {
                    c++;
                }
                joined = malloc(have + 1 + (size_t)(le - c) + 1);
                if (!joined) {
                    goto nomem;
                }
                memcpy(joined, last->message, have);
                joined[have] = ' ';
                memcpy(joined + have + 1, c, (size_t)(le - c));
                joined[have + 1 + (size_t)(le - c)] = '\0';
                free(last->message);
                last->message = clean(joined, strlen(joined));
                free(joined);
                if (!last->message) {
                    goto nomem;
                }
            }
        } else if (parse_line(p, le, &d, &msg, &file_len)) {
            last = NULL;
            if (out->n >= max) {
                out->dropped++;
            } else {
                if (out->n == cap) {
                    size_t ncap = cap ? cap * 2 : 16;
                    struct dm_tsc_diag *ni = realloc(out->items, ncap * sizeof(*ni));
                    if (!ni) {
                        goto nomem;
                    }
                    out->items = ni;
                    cap = ncap;
                }
                if (file_len) {
                    d.file = clean(p, file_len < 1024 ? file_len : 1024);
                    if (!d.file) {
                        goto nomem;
                    }
                }
                d.message = clean(msg, (size_t)(le - msg));
                if (!d.message) {
                    free(d.file);
                    goto nomem;
                }
                out->items[out->n++] = d;
                last = &out->items[out->n - 1];
            }
        } else {
            last = NULL;
        }
        p = nl ? nl + 1 : end;
    }
    return 0;
nomem:
    dm_tsc_diags_free(out);
    return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
}

void dm_tsc_diag_format(const struct dm_tsc_diag *d, char *out, size_t n)
{
    if (!n) {
        return;
    }
    if (d->file) {
        snprintf(out, n, "%s:%u: TS%u: %s", d->file, d->line, d->code, d->message);
    } else {
        snprintf(out, n, "TS%u: %s", d->code, d->message);
    }
}

/* ---- bare imports ---- */

static int is_ident(int c)
{
    return isalnum(c) || c == '_' || c == '$';
}

/* The end of the string literal opened at s[i] (index of its closing quote, or len). */
static size_t string_end(const char *s, size_t len, size_t i)
{
    char q = s[i];
    for (i++; i < len; i++) {
        if (s[i] == '\\') {
            i++;
        } else if (s[i] == q || (q != '`' && s[i] == '\n')) {
            return i;
        }
    }
    return len;
}

static int is_bare(const char *spec, size_t n)
{
    if (!n || spec[0] == '.' || spec[0] == '/' || memchr(spec, '\n', n)) {
        return 0;
    }
    for (size_t i = 0; i + 2 < n; i++) {
        if (spec[i] == ':' && spec[i + 1] == '/' && spec[i + 2] == '/') {
            return 0; /* a URL */
        }
    }
    return 1;
}

int dm_tsc_bare_imports(const char *text, size_t len,
                        int (*fn)(void *arg, const char *spec, size_t len), void *arg)
{
    /* The last two significant tokens: an identifier, or a punctuation character. */
    char prev[16] = "", prev2[16] = "";
    size_t i = 0;

    while (i < len) {
        char c = text[i];
        if (c == '/' && i + 1 < len && text[i + 1] == '/') {
            while (i < len && text[i] != '\n') {
                i++;
            }
        } else if (c == '/' && i + 1 < len && text[i + 1] == '*') {
            i += 2;
            while (i + 1 < len && !(text[i] == '*' && text[i + 1] == '/')) {
                i++;
            }
            i += 2;
        } else if (c == '\'' || c == '"' || c == '`') {
            size_t e = string_end(text, len, i);
            int is_spec = strcmp(prev, "from") == 0 || strcmp(prev, "import") == 0 ||
                          (strcmp(prev, "(") == 0 &&
                           (strcmp(prev2, "import") == 0 || strcmp(prev2, "require") == 0));
            if (c != '`' && is_spec && e < len && is_bare(text + i + 1, e - i - 1)) {
                int rc = fn(arg, text + i + 1, e - i - 1);
                if (rc) {
                    return rc;
                }
            }
            memcpy(prev2, prev, sizeof(prev));
            snprintf(prev, sizeof(prev), "\"");
            i = e + 1;
        } else if (is_ident((unsigned char)c)) {
            size_t s = i;
            while (i < len && is_ident((unsigned char)text[i])) {
                i++;
            }
            memcpy(prev2, prev, sizeof(prev));
            snprintf(prev, sizeof(prev), "%.*s", (int)((i - s) < 15 ? (i - s) : 15), text + s);
            if (s > 0 && text[s - 1] == '.') {
                /* obj.import / obj.require are not the keywords */
                snprintf(prev, sizeof(prev), ".");
            }
        } else if (isspace((unsigned char)c)) {
            i++;
        } else {
            memcpy(prev2, prev, sizeof(prev));
            prev[0] = c;
            prev[1] = '\0';
            i++;
        }
    }
    return 0;
}
