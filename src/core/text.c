/*
 * text: UTF-8 rules, the language-of-path table, fences and line cleaning (contract in
 * include/dream/core/text.h). No state; any thread.
 */
#include "dream/core/text.h"
#include "dream/core/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- UTF-8 ------------------------------------------------------------------------------ */

/*
 * The one strict decoder. Walks s[0..len); with text set, also refuses NUL, C0 controls other
 * than TAB LF FF CR, and DEL. Returns the number of code points, or -1 with *bad_off = offset
 * of the first bad byte.
 */
static long utf8_scan(const char *s, size_t len, int text, size_t *bad_off)
{
    const unsigned char *p = (const unsigned char *)s;
    long count = 0;
    size_t i = 0;

    while (i < len) {
        unsigned c = p[i];
        uint32_t cp;
        uint32_t min;
        size_t n;

        if (c < 0x80) {
            if (text &&
                ((c < 0x20 && c != '\t' && c != '\n' && c != '\f' && c != '\r') || c == 0x7f)) {
                goto bad;
            }
            i++;
            count++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
            cp = c & 0x1f;
            min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            cp = c & 0x0f;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            goto bad;
        }
        if (len - i < n) {
            goto bad;
        }
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                goto bad;
            }
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            goto bad;
        }
        i += n;
        count++;
    }
    return count;
bad:
    if (bad_off) {
        *bad_off = i;
    }
    return -1;
}

int dm_text_utf8_check(const char *s, size_t len, size_t *bad_off)
{
    return utf8_scan(s, len, 0, bad_off) < 0 ? DM_ERR_INVALID : 0;
}

long dm_text_utf8_count(const char *s, size_t len)
{
    return utf8_scan(s, len, 0, NULL);
}

int dm_text_check(const char *s, size_t len, size_t *bad_off)
{
    return utf8_scan(s, len, 1, bad_off) < 0 ? DM_ERR_INVALID : 0;
}

/* Length of the sequence at p[i]: its lead byte's length when the continuation bytes are
 * there, else 1 (so cutting never stalls on broken input). */
static size_t seq_len(const unsigned char *p, size_t i, size_t len)
{
    unsigned c = p[i];
    size_t n = 1;

    if (c >= 0xc0 && c < 0xe0) {
        n = 2;
    } else if (c >= 0xe0 && c < 0xf0) {
        n = 3;
    } else if (c >= 0xf0 && c < 0xf8) {
        n = 4;
    }
    if (n > len - i) {
        return 1;
    }
    for (size_t k = 1; k < n; k++) {
        if ((p[i + k] & 0xc0) != 0x80) {
            return 1;
        }
    }
    return n;
}

size_t dm_text_prefix_chars(const char *s, size_t len, size_t max_chars)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    size_t n = 0;

    while (i < len && n < max_chars) {
        i += seq_len(p, i, len);
        n++;
    }
    return i;
}

size_t dm_text_cut(const char *s, size_t len, size_t max)
{
    size_t n;

    if (len <= max) {
        return len;
    }
    n = max;
    /* Back off continuation bytes (at most three) so the cut lands on a sequence start. */
    for (int k = 0; k < 3 && n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80; k++) {
        n--;
    }
    return n;
}

int dm_text_put_chars(struct dm_buf *b, const char *s, size_t len, size_t max_chars)
{
    size_t n = dm_text_prefix_chars(s, len, max_chars);
    int rc = dm_buf_append(b, s, n);

    if (!rc && n < len) {
        rc = dm_buf_puts(b, DM_TEXT_ELLIPSIS);
    }
    return rc;
}

int dm_text_put_cut(struct dm_buf *b, const char *s, size_t len, size_t max)
{
    size_t n;
    int rc;

    if (len <= max) {
        return dm_buf_append(b, s, len);
    }
    n = dm_text_cut(s, len, max >= 3 ? max - 3 : 0);
    rc = dm_buf_append(b, s, n);
    if (!rc) {
        rc = dm_buf_puts(b, DM_TEXT_ELLIPSIS);
    }
    return rc;
}

char *dm_text_clean_line(const char *s, size_t max)
{
    struct dm_buf t;
    struct dm_buf o;
    int space = 0;
    int rc = 0;
    char *res = NULL;

    dm_buf_init(&t, 0);
    dm_buf_init(&o, 0);
    for (const char *p = s; *p && !rc; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f || c == ' ') {
            space = 1;
            continue;
        }
        /* A run becomes one space, and only between printable text: trimmed at both ends. */
        if (space && t.len) {
            rc = dm_buf_append(&t, " ", 1);
        }
        space = 0;
        if (!rc) {
            rc = dm_buf_append(&t, p, 1);
        }
    }
    if (!rc) {
        rc = t.len ? dm_text_put_cut(&o, t.data, t.len, max) : dm_buf_puts(&o, "");
    }
    if (!rc) {
        res = dm_buf_detach(&o);
    }
    dm_buf_free(&t);
    dm_buf_free(&o);
    return res;
}

int dm_text_starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

int dm_text_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* ---- languages ---------------------------------------------------------------------------- */

#define SQL DM_TEXT_COMMENTS_SQL
#define CLIKE DM_TEXT_COMMENTS_CLIKE
#define HASH DM_TEXT_COMMENTS_HASH
#define NONE DM_TEXT_COMMENTS_NONE

/* Fence info strings only where models and renderers know the tag; an empty one keeps the
 * fence plain. */
static const struct {
    const char *ext;
    struct dm_text_lang lang;
} lang_table[] = {
    {"ts", {"ts", CLIKE}},      {"tsx", {"tsx", CLIKE}},    {"js", {"js", CLIKE}},
    {"jsx", {"jsx", CLIKE}},    {"mjs", {"", CLIKE}},       {"cjs", {"", CLIKE}},
    {"mts", {"", CLIKE}},       {"cts", {"", CLIKE}},       {"css", {"css", CLIKE}},
    {"scss", {"", CLIKE}},      {"less", {"", CLIKE}},      {"go", {"", CLIKE}},
    {"java", {"", CLIKE}},      {"c", {"", CLIKE}},         {"h", {"", CLIKE}},
    {"cc", {"", CLIKE}},        {"cpp", {"", CLIKE}},       {"hpp", {"", CLIKE}},
    {"rs", {"", CLIKE}},        {"kt", {"", CLIKE}},        {"swift", {"", CLIKE}},
    {"scala", {"", CLIKE}},     {"cs", {"", CLIKE}},        {"php", {"", CLIKE}},
    {"sql", {"sql", SQL}},      {"sh", {"", HASH}},         {"bash", {"", HASH}},
    {"zsh", {"", HASH}},        {"ksh", {"", HASH}},        {"yml", {"", HASH}},
    {"yaml", {"", HASH}},       {"toml", {"", HASH}},       {"py", {"", HASH}},
    {"rb", {"", HASH}},         {"pl", {"", HASH}},         {"r", {"", HASH}},
    {"mk", {"", HASH}},         {"dockerfile", {"", HASH}}, {"env", {"", HASH}},
    {"ini", {"", HASH}},        {"conf", {"", HASH}},       {"cfg", {"", HASH}},
    {"properties", {"", HASH}}, {"json", {"json", NONE}},   {"md", {"markdown", NONE}},
    {"html", {"html", NONE}},
};

#undef SQL
#undef CLIKE
#undef HASH
#undef NONE

struct dm_text_lang dm_text_lang_of(const char *path)
{
    struct dm_text_lang lang = {"", DM_TEXT_COMMENTS_NONE};
    const char *base;
    const char *dot;

    if (!path) {
        return lang;
    }
    base = strrchr(path, '/');
    base = base ? base + 1 : path;
    dot = strrchr(base, '.');
    if (dot && dot != base) {
        for (size_t i = 0; i < COUNT(lang_table); i++) {
            if (strcasecmp(dot + 1, lang_table[i].ext) == 0) {
                lang = lang_table[i].lang;
                break;
            }
        }
    }
    /* Names that carry their syntax without an extension (and .env.local and the like). */
    if (strcasecmp(base, "Dockerfile") == 0 || strcasecmp(base, "Makefile") == 0 ||
        strcasecmp(base, "GNUmakefile") == 0 || strncasecmp(base, ".env", 4) == 0) {
        lang.comments = DM_TEXT_COMMENTS_HASH;
    }
    return lang;
}

/* ---- fences ------------------------------------------------------------------------------- */

size_t dm_text_fence_len(const char *s, size_t len)
{
    size_t longest = 0;
    size_t run = 0;

    for (size_t i = 0; i < len; i++) {
        run = s[i] == '`' ? run + 1 : 0;
        if (run > longest) {
            longest = run;
        }
    }
    return longest < 3 ? 3 : longest + 1;
}

static int put_fence(struct dm_buf *b, size_t n)
{
    int rc = 0;

    for (size_t i = 0; i < n && !rc; i++) {
        rc = dm_buf_append(b, "`", 1);
    }
    return rc;
}

int dm_text_put_fenced(struct dm_buf *b, size_t fence, const char *info, const char *s, size_t len)
{
    int rc;

    if (fence == 0) {
        fence = dm_text_fence_len(s, len);
    }
    rc = put_fence(b, fence);
    if (!rc) {
        rc = dm_buf_printf(b, "%s\n", info ? info : "");
    }
    if (!rc) {
        rc = dm_buf_append(b, s, len);
    }
    if (!rc && (len == 0 || s[len - 1] != '\n')) {
        rc = dm_buf_puts(b, "\n");
    }
    if (!rc) {
        rc = put_fence(b, fence);
    }
    return rc;
}

void dm_text_line_col(const char *text, size_t off, unsigned *line, unsigned *col)
{
    unsigned l = 1;
    size_t last_nl = 0;
    int seen = 0;

    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            l++;
            last_nl = i;
            seen = 1;
        }
    }
    *line = l;
    *col = (unsigned)(seen ? off - last_nl : off + 1);
}

size_t dm_text_split_list(char *buf, const char **out, size_t max)
{
    size_t n = 0;
    char *p = buf;

    while (p && n < max) {
        char *comma = strchr(p, ',');
        char *e;

        if (comma) {
            *comma = '\0';
        }
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        e = p + strlen(p);
        while (e > p && (e[-1] == ' ' || e[-1] == '\t')) {
            *--e = '\0';
        }
        if (*p) {
            out[n++] = p;
        }
        p = comma ? comma + 1 : NULL;
    }
    return n;
}
