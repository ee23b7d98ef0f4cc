/*
 * validate: the choice of check per file, the JSON check, and the advisory warnings for the PR
 * body (see include/dream/domain/validate.h); the SQL check is validate_sql.c.
 *
 * Owns nothing beyond one call: patterns are compiled per call. Pure; any thread.
 */
#include "dream/domain/validate.h"
#include "dream/core/text.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define WARN_MAX_PER_FILE 20
/* Progress-handler calls (of 1000 VM steps each) allowed for the schema statements of a file. */

enum dm_validate_kind dm_validate_kind_of(const char *path)
{
    static const struct {
        const char *ext;
        enum dm_validate_kind kind;
    } exts[] = {
        {".sql", DM_VALIDATE_SQL}, {".json", DM_VALIDATE_JSON}, {".ts", DM_VALIDATE_TS},
        {".mts", DM_VALIDATE_TS},  {".cts", DM_VALIDATE_TS},    {".tsx", DM_VALIDATE_TSX},
        {".js", DM_VALIDATE_JS},   {".mjs", DM_VALIDATE_JS},    {".cjs", DM_VALIDATE_JS},
        {".jsx", DM_VALIDATE_JSX},
    };
    const char *slash;
    const char *dot;

    if (!path) {
        return DM_VALIDATE_NONE;
    }
    slash = strrchr(path, '/');
    dot = strrchr(slash ? slash : path, '.');
    if (!dot) {
        return DM_VALIDATE_NONE;
    }
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        if (!strcasecmp(dot, exts[i].ext)) {
            return exts[i].kind;
        }
    }
    return DM_VALIDATE_NONE;
}

const char *dm_validate_esbuild_loader(const char *path)
{
    switch (dm_validate_kind_of(path)) {
    case DM_VALIDATE_TS:
        return "ts";
    case DM_VALIDATE_TSX:
        return "tsx";
    case DM_VALIDATE_JS:
        return "js";
    case DM_VALIDATE_JSX:
        return "jsx";
    default:
        return NULL;
    }
}

/* ---- JSON --------------------------------------------------------------------------------- */

int dm_validate_json(const char *text, size_t len, struct dm_error *err)
{
    const char *endp = NULL;
    cJSON *item;
    size_t pos;
    unsigned line;
    unsigned col;

    for (pos = 0; pos < len && isspace((unsigned char)text[pos]); pos++) {
    }
    if (pos == len) {
        return dm_error_set(err, DM_ERR_INVALID, "empty document");
    }
    item = cJSON_ParseWithLengthOpts(text, len, &endp, 0);
    if (!item) {
        char snippet[24];
        size_t n = 0;
        pos = endp && endp >= text && endp <= text + len ? (size_t)(endp - text) : 0;
        for (size_t i = pos; i < len && n < 16; i++) {
            unsigned char c = (unsigned char)text[i];
            if (c == '\n') {
                break;
            }
            snippet[n++] = (char)(c >= 0x20 && c < 0x7f ? c : '?');
        }
        snippet[n] = '\0';
        dm_text_line_col(text, pos, &line, &col);
        return dm_error_set(err, DM_ERR_INVALID, "line %u, column %u: invalid JSON near '%s'", line,
                            col, snippet);
    }
    cJSON_Delete(item);
    pos = endp && endp >= text && endp <= text + len ? (size_t)(endp - text) : len;
    while (pos < len && isspace((unsigned char)text[pos])) {
        pos++;
    }
    if (pos < len) {
        dm_text_line_col(text, pos, &line, &col);
        return dm_error_set(err, DM_ERR_INVALID,
                            "line %u, column %u: trailing characters after the JSON value", line,
                            col);
    }
    return 0;
}

int dm_validate_file(const char *path, const char *text, size_t len, struct dm_error *err)
{
    int rc;

    switch (dm_validate_kind_of(path)) {
    case DM_VALIDATE_SQL:
        rc = dm_validate_sql(text, len, err);
        break;
    case DM_VALIDATE_JSON:
        rc = dm_validate_json(text, len, err);
        break;
    default:
        return 0;
    }
    if (rc) {
        dm_error_wrap(err, "%s", path);
    }
    return rc;
}

/* ---- warnings ----------------------------------------------------------------------------- */

enum mask_class { MASK_CODE = 0, MASK_STRING = 1, MASK_COMMENT = 2 };

/* Classifies every byte of text as code, string or comment, for JS/TS (js = 1) or SQL. */
static void classify(const char *t, size_t len, int js, unsigned char *cls)
{
    size_t i = 0;

    while (i < len) {
        char c = t[i];
        if (c == '/' && i + 1 < len && t[i + 1] == '/' && js) {
            while (i < len && t[i] != '\n') {
                cls[i++] = MASK_COMMENT;
            }
        } else if (c == '-' && i + 1 < len && t[i + 1] == '-' && !js) {
            while (i < len && t[i] != '\n') {
                cls[i++] = MASK_COMMENT;
            }
        } else if (c == '/' && i + 1 < len && t[i + 1] == '*') {
            cls[i++] = MASK_COMMENT;
            cls[i++] = MASK_COMMENT;
            while (i < len && !(t[i] == '*' && i + 1 < len && t[i + 1] == '/')) {
                cls[i++] = MASK_COMMENT;
            }
            for (int k = 0; k < 2 && i < len; k++) {
                cls[i++] = MASK_COMMENT;
            }
        } else if (c == '\'' || (js && (c == '"' || c == '`'))) {
            char q = c;
            cls[i++] = MASK_STRING;
            while (i < len && t[i] != q) {
                if (js && t[i] == '\\' && i + 1 < len) {
                    cls[i++] = MASK_STRING;
                } else if (js && q != '`' && t[i] == '\n') {
                    break; /* unterminated: do not swallow the rest of the file */
                }
                cls[i++] = MASK_STRING;
            }
            if (i < len && t[i] == q) {
                cls[i++] = MASK_STRING;
            }
        } else {
            cls[i++] = MASK_CODE;
        }
    }
}

/* A copy of text where bytes not of class keep are spaces (newlines kept, so lines stay). */
static char *masked(const char *t, size_t len, const unsigned char *cls, int keep)
{
    char *m = malloc(len + 1);
    if (!m) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        m[i] = cls[i] == keep || t[i] == '\n' ? t[i] : ' ';
    }
    m[len] = '\0';
    return m;
}

struct warn_ctx {
    struct dm_validate_warnings *w;
    const char *path;
    int added;
    int dropped;
};

static int add_warning(struct warn_ctx *c, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int add_warning(struct warn_ctx *c, unsigned line, const char *fmt, ...)
{
    struct dm_validate_warnings *w = c->w;
    struct dm_validate_warning *it;
    char msg[512];
    va_list ap;

    if (c->added >= WARN_MAX_PER_FILE) {
        c->dropped++;
        return 0;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 8;
        void *p = realloc(w->items, cap * sizeof(*w->items));
        if (!p) {
            return DM_ERR_NOMEM;
        }
        w->items = p;
        w->cap = cap;
    }
    it = &w->items[w->count];
    it->path = strdup(c->path);
    it->message = strdup(msg);
    it->line = line;
    if (!it->path || !it->message) {
        free(it->path);
        free(it->message);
        return DM_ERR_NOMEM;
    }
    w->count++;
    c->added++;
    return 0;
}

/* Runs pattern over subject; returns the number of matches (or a negative dm_err), stores the
 * offsets of the first max matches in offs. */
static int find_all(const char *pattern, uint32_t flags, const char *subject, size_t len,
                    size_t *offs, int max)
{
    pcre2_code *re = NULL;
    pcre2_match_data *md = NULL;
    PCRE2_SIZE start = 0;
    int errcode;
    PCRE2_SIZE erroff;
    int n = 0;

    re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, flags, &errcode, &erroff, NULL);
    if (!re) {
        n = DM_ERR_IO;
        goto out;
    }
    md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) {
        n = DM_ERR_NOMEM;
        goto out;
    }
    while (start <= len) {
        PCRE2_SIZE *ov;
        int m = pcre2_match(re, (PCRE2_SPTR)subject, len, start, 0, md, NULL);
        if (m < 0) {
            break;
        }
        ov = pcre2_get_ovector_pointer(md);
        if (n < max) {
            offs[n] = ov[0];
        }
        n++;
        start = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
out:
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return n;
}

static int only_space(const char *t, size_t len, const char *also)
{
    for (size_t i = 0; i < len; i++) {
        if (!isspace((unsigned char)t[i]) && !(also && t[i] && strchr(also, t[i]))) {
            return 0;
        }
    }
    return 1;
}

/* One warning for the first of the matches (with their count). */
static int warn_first(struct warn_ctx *c, const char *pattern, uint32_t flags, const char *subject,
                      size_t len, const char *what)
{
    size_t off;
    unsigned line;
    unsigned col;
    int n = find_all(pattern, flags, subject, len, &off, 1);

    if (n <= 0) {
        return n;
    }
    dm_text_line_col(subject, off, &line, &col);
    if (n == 1) {
        return add_warning(c, line, "%s", what);
    }
    return add_warning(c, line, "%s (%d times, first here)", what, n);
}

int dm_validate_warn(struct dm_validate_warnings *w, const char *path, const char *text, size_t len)
{
    enum dm_validate_kind kind = dm_validate_kind_of(path);
    int js = kind == DM_VALIDATE_TS || kind == DM_VALIDATE_TSX || kind == DM_VALIDATE_JS ||
             kind == DM_VALIDATE_JSX;
    int ts = kind == DM_VALIDATE_TS || kind == DM_VALIDATE_TSX;
    struct warn_ctx c = {w, path ? path : "", 0, 0};
    size_t before = w->count;
    unsigned char *cls = NULL;
    char *code = NULL;
    char *comments = NULL;
    char *strings = NULL;
    int rc = 0;

    if (only_space(text, len, NULL)) {
        rc = add_warning(&c, 0, "empty file");
        goto out;
    }
    if (!js && kind != DM_VALIDATE_SQL) {
        goto out;
    }
    cls = malloc(len ? len : 1);
    if (!cls) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    classify(text, len, js, cls);
    code = masked(text, len, cls, MASK_CODE);
    comments = masked(text, len, cls, MASK_COMMENT);
    strings = masked(text, len, cls, MASK_STRING);
    if (!code || !comments || !strings) {
        rc = DM_ERR_NOMEM;
        goto out;
    }

    if (kind == DM_VALIDATE_SQL) {
        size_t offs[WARN_MAX_PER_FILE + 1];
        int n;
        if (only_space(code, len, ";")) {
            rc = add_warning(&c, 0, "no SQL statement");
            if (rc) {
                goto out;
            }
        }
        n = find_all("\\bDROP\\s+TABLE\\b(?!\\s+IF\\s+EXISTS\\b)", PCRE2_CASELESS, code, len, offs,
                     WARN_MAX_PER_FILE + 1);
        if (n < 0) {
            rc = n;
            goto out;
        }
        for (int i = 0; i < n; i++) {
            unsigned line;
            unsigned col;
            if (i > WARN_MAX_PER_FILE) {
                c.dropped++;
                continue;
            }
            dm_text_line_col(code, offs[i], &line, &col);
            rc = add_warning(&c, line, "DROP TABLE without IF EXISTS");
            if (rc) {
                goto out;
            }
        }
    } else {
        if (only_space(code, len, NULL)) {
            rc = add_warning(&c, 0, "stub only: no code outside comments");
            if (rc) {
                goto out;
            }
        }
        if (ts) {
            rc = warn_first(&c, "(?:[:<|&,(\\[]|=>|\\bas\\b|\\bkeyof\\b)\\s*any(?![\\w$])", 0, code,
                            len, "`any` type");
            if (rc < 0) {
                goto out;
            }
        }
        rc = warn_first(&c, "(?<![\\w$])eval\\s*\\(", 0, code, len, "`eval(` call");
        if (rc < 0) {
            goto out;
        }
    }
    rc = warn_first(&c, "\\b(?:TODO|FIXME)\\b", 0, comments, len, "TODO placeholder");
    if (rc < 0) {
        goto out;
    }
    rc = warn_first(&c, "not\\s+implemented", PCRE2_CASELESS, strings, len,
                    "\"not implemented\" placeholder");
    if (rc < 0) {
        goto out;
    }
    rc = 0;
out:
    if (!rc && c.dropped) {
        int dropped = c.dropped;
        c.added = 0; /* the summary always fits */
        rc = add_warning(&c, 0, "%d more warnings left out", dropped);
    }
    free(cls);
    free(code);
    free(comments);
    free(strings);
    return rc ? rc : (int)(w->count - before);
}

void dm_validate_warnings_init(struct dm_validate_warnings *w)
{
    w->items = NULL;
    w->count = 0;
    w->cap = 0;
}

void dm_validate_warnings_free(struct dm_validate_warnings *w)
{
    if (!w) {
        return;
    }
    for (size_t i = 0; i < w->count; i++) {
        free(w->items[i].path);
        free(w->items[i].message);
    }
    free(w->items);
    dm_validate_warnings_init(w);
}
