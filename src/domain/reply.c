/*
 * reply: the parser of model output — one file, or one JSON object, bare or in one fence
 * (contract in include/dream/domain/reply.h). Both paths share the CommonMark fence rules
 * below. Owns the text and objects it returns; no state; any thread.
 */
#include "dream/domain/reply.h"
#include "dream/core/buf.h"
#include "dream/core/text.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* ---- fences ------------------------------------------------------------------------------- */

/* One line of the reply: [start, end) without its line ending. */
struct line {
    size_t start;
    size_t end;
};

static int is_blank(const char *s, size_t start, size_t end)
{
    for (size_t i = start; i < end; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\f' && s[i] != '\v') {
            return 0;
        }
    }
    return 1;
}

/* Is the line a fence opener? Sets the fence character, length and indentation. */
static int fence_open(const char *s, const struct line *l, char *ch, size_t *flen, size_t *indent)
{
    size_t i = l->start;
    size_t k;

    while (i < l->end && s[i] == ' ' && i - l->start < 4) {
        i++;
    }
    if (i - l->start > 3 || i >= l->end || (s[i] != '`' && s[i] != '~')) {
        return 0;
    }
    for (k = i; k < l->end && s[k] == s[i]; k++) {
    }
    if (k - i < 3 || (s[i] == '`' && memchr(s + k, '`', l->end - k))) {
        return 0;
    }
    *ch = s[i];
    *flen = k - i;
    *indent = i - l->start;
    return 1;
}

static int fence_close(const char *s, const struct line *l, char ch, size_t flen)
{
    size_t i = l->start;
    size_t k;

    while (i < l->end && s[i] == ' ' && i - l->start < 4) {
        i++;
    }
    if (i - l->start > 3) {
        return 0;
    }
    for (k = i; k < l->end && s[k] == ch; k++) {
    }
    return k - i >= flen && is_blank(s, k, l->end);
}

static int starts_like_prose(const char *s, const struct line *l)
{
    static const char *const openers[] = {"here is", "here's", "sure", "certainly"};
    size_t n = l->end - l->start;

    for (size_t i = 0; i < sizeof(openers) / sizeof(openers[0]); i++) {
        size_t m = strlen(openers[i]);
        if (n < m || strncasecmp(s + l->start, openers[i], m) != 0) {
            continue;
        }
        if (n == m || s[l->start + m] == ' ' || s[l->start + m] == ',' || s[l->start + m] == '!' ||
            s[l->start + m] == '.' || s[l->start + m] == ':') {
            return 1;
        }
    }
    return 0;
}

static int split_lines(struct line **out, size_t *count, const char *s, size_t len)
{
    struct line *lines = NULL;
    size_t n = 0;
    size_t cap = 0;
    size_t pos = 0;

    while (pos < len) {
        const char *nl = memchr(s + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - s) : len;
        if (n == cap) {
            struct line *p;
            cap = cap ? cap * 2 : 64;
            p = realloc(lines, cap * sizeof(*p));
            if (!p) {
                free(lines);
                return DM_ERR_NOMEM;
            }
            lines = p;
        }
        lines[n].start = pos;
        lines[n].end = end > pos && s[end - 1] == '\r' ? end - 1 : end;
        n++;
        pos = nl ? end + 1 : len;
    }
    *out = lines;
    *count = n;
    return 0;
}

/* ---- one file ----------------------------------------------------------------------------- */

int dm_reply_extract_file(char **out, const char *reply, size_t len, struct dm_error *err)
{
    struct line *lines = NULL;
    size_t count = 0;
    size_t first;
    size_t last;
    size_t body_from;
    size_t body_to; /* exclusive */
    size_t strip = 0;
    size_t bad = 0;
    struct dm_buf b;
    int rc;

    *out = NULL;
    dm_buf_init(&b, 0);
    if (len > DM_REPLY_MAX) {
        rc = dm_error_set(err, DM_ERR_LIMIT, "reply is %zu bytes long (limit %d)", len,
                          DM_REPLY_MAX);
        goto out;
    }
    if (len && memchr(reply, '\0', len)) {
        rc = dm_error_set(err, DM_ERR_INVALID, "reply holds NUL bytes: not a text file");
        goto out;
    }
    if (dm_text_utf8_check(reply, len, &bad) != 0) {
        rc = dm_error_set(err, DM_ERR_INVALID, "reply is not UTF-8 (bad byte at offset %zu)", bad);
        goto out;
    }
    rc = split_lines(&lines, &count, reply, len);
    if (rc) {
        goto out;
    }
    for (first = 0; first < count && is_blank(reply, lines[first].start, lines[first].end);
         first++) {
    }
    if (first == count) {
        rc = dm_error_set(err, DM_ERR_INVALID, "reply is empty");
        goto out;
    }
    for (last = count - 1; is_blank(reply, lines[last].start, lines[last].end); last--) {
    }
    {
        char ch;
        size_t flen;
        if (fence_open(reply, &lines[first], &ch, &flen, &strip)) {
            size_t close;
            for (close = first + 1; close < count; close++) {
                if (fence_close(reply, &lines[close], ch, flen)) {
                    break;
                }
            }
            if (close == count) {
                rc = dm_error_set(err, DM_ERR_INVALID,
                                  "reply's code block is never closed (truncated reply?)");
                goto out;
            }
            if (close != last) {
                rc = dm_error_set(err, DM_ERR_INVALID,
                                  "reply has text or another code block after its code block "
                                  "(line %zu): expected exactly one file",
                                  close + 2);
                goto out;
            }
            body_from = first + 1;
            body_to = close;
        } else {
            size_t indent;
            for (size_t i = first + 1; i <= last; i++) {
                if (fence_open(reply, &lines[i], &ch, &flen, &indent)) {
                    rc = dm_error_set(err, DM_ERR_INVALID,
                                      "reply has text around a code block (fence on line %zu): "
                                      "expected only the file",
                                      i + 1);
                    goto out;
                }
            }
            if (starts_like_prose(reply, &lines[first])) {
                rc =
                    dm_error_set(err, DM_ERR_INVALID, "reply starts with prose, not with the file");
                goto out;
            }
            body_from = first;
            body_to = last + 1;
        }
    }
    for (size_t i = body_from; i < body_to; i++) {
        size_t s = lines[i].start;
        for (size_t k = 0; k < strip && s < lines[i].end && reply[s] == ' '; k++) {
            s++;
        }
        rc = dm_buf_append(&b, reply + s, lines[i].end - s);
        if (!rc) {
            rc = dm_buf_puts(&b, "\n");
        }
        if (rc) {
            goto out;
        }
    }
    while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == ' ' ||
                         b.data[b.len - 1] == '\t' || b.data[b.len - 1] == '\r')) {
        b.len--;
    }
    if (b.len == 0) {
        rc = dm_error_set(err, DM_ERR_INVALID, "reply's code block is empty");
        goto out;
    }
    rc = dm_buf_puts(&b, "\n");
    if (rc) {
        goto out;
    }
    *out = dm_buf_detach(&b);
    if (!*out) {
        rc = DM_ERR_NOMEM;
    }
out:
    if (rc == DM_ERR_NOMEM) {
        dm_error_set(err, rc, "reply: out of memory");
    }
    free(lines);
    dm_buf_free(&b);
    return rc;
}

/* ---- one JSON object ---------------------------------------------------------------------- */

/* If [*b, *e) (trimmed of white space) is one fenced block, narrows it to the block's content.
 * The closing fence must be the last line. Returns 0 (not fenced: unchanged, or narrowed) or
 * DM_ERR_INVALID with err set. */
static int unfence(const char **b, const char **e, const char *what, struct dm_error *err)
{
    const char *s = *b;
    size_t len = (size_t)(*e - s);
    const char *nl = memchr(s, '\n', len);
    struct line first = {0, nl ? (size_t)(nl - s) : len};
    struct line last = {len, len};
    char ch;
    size_t flen;
    size_t indent;

    if (first.end > first.start && s[first.end - 1] == '\r') {
        first.end--;
    }
    if (!fence_open(s, &first, &ch, &flen, &indent)) {
        return 0; /* not a fence: the JSON check will refuse it */
    }
    if (!nl) {
        return dm_error_set(err, DM_ERR_INVALID, "%s: unclosed code fence", what);
    }
    while (last.start > (size_t)(nl - s) + 1 && s[last.start - 1] != '\n') {
        last.start--;
    }
    if (last.start <= (size_t)(nl - s) || !fence_close(s, &last, ch, flen)) {
        return dm_error_set(err, DM_ERR_INVALID, "%s: unclosed code fence or text after it", what);
    }
    *b = nl + 1;
    *e = s + last.start;
    return 0;
}

/* 1 when s[0..len) ends inside a string or an unclosed object or array: a cut-off reply. */
static int ends_open(const char *s, size_t len)
{
    long depth = 0;
    int in_string = 0;
    int escaped = 0;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (escaped) {
                escaped = 0;
            } else if (c == '\\') {
                escaped = 1;
            } else if (c == '"') {
                in_string = 0;
            }
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return in_string || depth > 0;
}

int dm_reply_json(struct cJSON **out, const char *reply, size_t len, size_t max, const char *what,
                  struct dm_error *err)
{
    const char *b = reply;
    const char *e = reply ? reply + len : NULL;
    const char *parse_end = NULL;
    cJSON *root = NULL;
    size_t bad = 0;
    int rc = 0;

    *out = NULL;
    if (!reply || len == 0) {
        return dm_error_set(err, DM_ERR_INVALID, "%s is empty", what);
    }
    if (len > max) {
        return dm_error_set(err, DM_ERR_INVALID, "%s is %zu bytes (limit %zu)", what, len, max);
    }
    if (dm_text_check(reply, len, &bad) != 0) {
        return dm_error_set(err, DM_ERR_INVALID, "%s is not UTF-8 text (bad byte at offset %zu)",
                            what, bad);
    }
    while (b < e && is_space(*b)) {
        b++;
    }
    while (e > b && is_space(e[-1])) {
        e--;
    }
    if (b == e) {
        return dm_error_set(err, DM_ERR_INVALID, "%s is empty", what);
    }
    rc = unfence(&b, &e, what, err);
    if (rc) {
        return rc;
    }
    while (b < e && is_space(*b)) {
        b++;
    }
    if (b == e || *b != '{') {
        return dm_error_set(err, DM_ERR_INVALID,
                            "%s is not a JSON object (text before or instead of it)", what);
    }
    root = cJSON_ParseWithLengthOpts(b, (size_t)(e - b), &parse_end, 0);
    if (!root) {
        size_t at = parse_end && parse_end >= b ? (size_t)(parse_end - b) : 0;
        if (ends_open(b, (size_t)(e - b))) {
            return dm_error_set(err, DM_ERR_INVALID,
                                "%s: truncated JSON (it ends inside the object)", what);
        }
        return dm_error_set(err, DM_ERR_INVALID, "%s: malformed JSON at byte %zu", what, at);
    }
    while (parse_end && parse_end < e && is_space(*parse_end)) {
        parse_end++;
    }
    if (!parse_end || parse_end != e) {
        cJSON_Delete(root);
        return dm_error_set(err, DM_ERR_INVALID, "%s: text after the JSON object", what);
    }
    *out = root;
    return 0;
}
