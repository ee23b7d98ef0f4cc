/*
 * safety: the scanner — builds a file's views, runs the rule table (safety_rules.c) over them
 * and collects findings with redacted excerpts; findings as JSON and as a one-line summary
 * (contract in include/dream/domain/safety.h). Path, branch and size rules are in
 * safety_policy.c.
 *
 * A scan builds its own "view" of the file (comments and, for SQL, string literals blanked to
 * spaces with newlines kept, so offsets and lines stay those of the original), its own match
 * data and match context, so scans run on any thread at once. Pure (PCRE2, cJSON).
 */
#include "safety_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dream/core/buf.h"

#define ELLIPSIS DM_TEXT_ELLIPSIS

/* ---- views ------------------------------------------------------------------------------ */

/* Stripper states (SQ, DQ, BT: inside '…', "…", `…`). */
enum strip_state { CODE, LINE, BLOCK, SQ, DQ, BT };

/* In code at in[*i]: a line comment (line_open, "--" or "//") or a block comment opens, its
 * opener blanked, or a quote opens a string (for SQL "…" and `…` are quoted identifiers).
 * Returns the state after in[*i]. */
static enum strip_state code_step(const char *line_open, char *out, const char *in, size_t n,
                                  size_t *i)
{
    char next = *i + 1 < n ? in[*i + 1] : '\0';

    if (in[*i] == line_open[0] && next == line_open[1]) {
        out[*i] = ' ';
        return LINE;
    }
    if (in[*i] == '/' && next == '*') {
        out[*i] = out[*i + 1] = ' ';
        (*i)++;
        return BLOCK;
    }
    switch (in[*i]) {
    case '\'':
        return SQ;
    case '"':
        return DQ;
    case '`':
        return BT;
    default:
        return CODE;
    }
}

/* Inside a comment at in[*i]: blanks it (newlines stay). Returns the state after it: CODE once
 * a line comment meets its newline or a block comment its closing star-slash. */
static enum strip_state comment_step(enum strip_state st, char *out, const char *in, size_t n,
                                     size_t *i)
{
    char c = in[*i];
    char next = *i + 1 < n ? in[*i + 1] : '\0';

    if (st == LINE) {
        if (c == '\n') {
            return CODE;
        }
        out[*i] = ' ';
        return LINE;
    }
    if (c == '*' && next == '/') {
        out[*i] = out[*i + 1] = ' ';
        (*i)++;
        return CODE;
    }
    if (c != '\n') {
        out[*i] = ' ';
    }
    return BLOCK;
}

/* Copies in[0..n) to out for SQL (sql set) or a C-like language, turning comment bytes (and
 * for SQL the inside of '…' literals) into spaces; newlines are always kept. The two share
 * their comments but for the line opener; their quotes differ. */
static void strip_code(char *out, const char *in, size_t n, int sql)
{
    enum strip_state st = CODE;

    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        char next = i + 1 < n ? in[i + 1] : '\0';
        char quote = st == SQ ? '\'' : st == DQ ? '"' : '`';
        out[i] = c;
        switch (st) {
        case CODE:
            st = code_step(sql ? "--" : "//", out, in, n, &i);
            break;
        case LINE:
        case BLOCK:
            st = comment_step(st, out, in, n, &i);
            break;
        case SQ:
        case DQ:
        case BT:
            if (sql) {
                /* '…' is a literal (blanked, '' escapes a quote); "…" and `…` are identifiers:
                 * kept, but "--" inside them is no comment. */
                if (st == SQ && c == '\'' && next == '\'') {
                    out[i] = out[i + 1] = ' ';
                    i++;
                } else if (c == quote) {
                    st = CODE;
                } else if (st == SQ && c != '\n') {
                    out[i] = ' ';
                }
            } else if (c == '\\' && i + 1 < n) {
                out[i + 1] = next;
                i++;
            } else if (c == quote) {
                st = CODE;
            } else if (c == '\n' && st != BT) {
                /* An unterminated quote (an apostrophe in JSX text, a regex literal) must not
                 * swallow the rest of the file; a template literal (BT) spans lines. */
                st = CODE;
            }
            break;
        }
    }
}

static void strip_hash(char *out, const char *in, size_t n)
{
    enum strip_state st = CODE; /* LINE: a '#' comment */

    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        out[i] = c;
        switch (st) {
        case CODE:
            if (c == '#' && (i == 0 || strchr(" \t\r\n;", in[i - 1]))) {
                st = LINE;
                out[i] = ' ';
            } else if (c == '\'') {
                st = SQ;
            } else if (c == '"') {
                st = DQ;
            }
            break;
        case LINE:
            st = comment_step(st, out, in, n, &i);
            break;
        case SQ:
        case DQ:
            if (st == DQ && c == '\\' && i + 1 < n) {
                out[i + 1] = in[i + 1];
                i++;
            } else if ((st == SQ && c == '\'') || (st == DQ && c == '"') || c == '\n') {
                st = CODE;
            }
            break;
        case BLOCK:
        case BT:
            break; /* not reached: '#' syntax has neither */
        }
    }
}

/* ---- findings --------------------------------------------------------------------------- */

void dm_findings_init(struct dm_findings *f)
{
    memset(f, 0, sizeof(*f));
    f->max_severity = -1;
}

void dm_findings_free(struct dm_findings *f)
{
    if (!f) {
        return;
    }
    for (size_t i = 0; i < f->len; i++) {
        free(f->items[i].path);
    }
    free(f->items);
    dm_findings_init(f);
}

size_t dm_findings_count(const struct dm_findings *f, enum dm_finding_kind kind)
{
    if (!f || (int)kind < 0 || kind >= DM_FINDING_KINDS) {
        return 0;
    }
    return f->count[kind];
}

const char *dm_severity_name(enum dm_severity s)
{
    static const char *const names[] = {"low", "medium", "high", "critical"};
    return (int)s >= 0 && (size_t)s < COUNT(names) ? names[s] : "unknown";
}

const char *dm_finding_kind_name(enum dm_finding_kind k)
{
    static const char *const names[] = {"destructive", "secret", "review"};
    return (int)k >= 0 && (size_t)k < COUNT(names) ? names[k] : "unknown";
}

static int is_tokenish(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '+' || c == '/' || c == '=' || c == '-';
}

void dm_safety_put_printable(char *dst, size_t cap, const char *s, size_t n)
{
    size_t o = strlen(dst);
    int space = 0;

    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            if (!space) {
                dst[o++] = ' ';
            }
            space = 1;
            continue;
        }
        space = 0;
        dst[o++] = c > 0x20 && c < 0x7f ? (char)c : '?';
    }
    dst[o] = '\0';
}

static void make_excerpt(char *dst, const struct rule *r, const char *m, size_t n)
{
    char tmp[64];
    size_t o = 0;

    dst[0] = '\0';
    if (r->kind == DM_FINDING_SECRET) {
        dm_safety_put_printable(dst, 5, m, n < 4 ? n : 4);
        strcat(dst, ELLIPSIS);
        return;
    }
    tmp[0] = '\0';
    dm_safety_put_printable(tmp, 49, m, n);
    /* Mask token-like runs so a credential that happens to sit in a match never travels. */
    for (size_t i = 0; tmp[i];) {
        size_t j = i;
        while (tmp[j] && is_tokenish(tmp[j])) {
            j++;
        }
        if (j - i >= 16) {
            memcpy(dst + o, tmp + i, 4);
            o += 4;
            memcpy(dst + o, ELLIPSIS, 3);
            o += 3;
            i = j;
        } else if (j > i) {
            memcpy(dst + o, tmp + i, j - i);
            o += j - i;
            i = j;
        } else {
            dst[o++] = tmp[i++];
        }
    }
    dst[o] = '\0';
}

static int add_finding(struct dm_findings *f, const struct rule *r, const char *path,
                       unsigned long line, const char *m, size_t n)
{
    struct dm_finding *it;

    f->count[r->kind]++;
    if ((int)r->severity > f->max_severity) {
        f->max_severity = (int)r->severity;
    }
    if (f->len >= DM_SAFETY_FINDINGS_MAX) {
        f->dropped++;
        return 0;
    }
    if (f->len == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct dm_finding *items = realloc(f->items, cap * sizeof(*items));
        if (!items) {
            return DM_ERR_NOMEM;
        }
        f->items = items;
        f->cap = cap;
    }
    it = &f->items[f->len];
    memset(it, 0, sizeof(*it));
    it->path = strdup(path);
    if (!it->path) {
        return DM_ERR_NOMEM;
    }
    it->kind = r->kind;
    it->severity = r->severity;
    it->rule = r->id;
    it->line = line;
    make_excerpt(it->excerpt, r, m, n);
    f->len++;
    return 0;
}

/* ---- scanning --------------------------------------------------------------------------- */

/* Line of byte offset off, from the sorted offsets of the newlines. */
static unsigned long line_of(const size_t *nl, size_t n_nl, size_t off)
{
    size_t lo = 0;
    size_t hi = n_nl;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (nl[mid] < off) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return (unsigned long)lo + 1;
}

#define MATCHES_PER_RULE_MAX 64

int dm_safety_scan(struct dm_findings *out, const char *path, const char *content, size_t len,
                   unsigned rules, struct dm_error *err)
{
    enum dm_text_comments lang = dm_text_lang_of(path).comments;
    char *stripped = NULL;
    size_t *nl = NULL;
    size_t n_nl = 0;
    pcre2_match_data *md = NULL;
    pcre2_match_context *mctx = NULL;
    pcre2_jit_stack *jstack = NULL;
    struct scan_ctx ctx;
    int rc;

    memset(&ctx, 0, sizeof(ctx));
    rc = dm_safety_init(err);
    if (rc) {
        goto out;
    }
    if (!path) {
        path = "";
    }
    if (!content) {
        content = "";
        len = 0;
    }
    stripped = malloc(len + 1);
    md = pcre2_match_data_create(8, NULL);
    mctx = pcre2_match_context_create(NULL);
    jstack = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
    if (!stripped || !md || !mctx || !jstack) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "safety: out of memory");
        goto out;
    }
    pcre2_set_match_limit(mctx, 10 * 1000 * 1000);
    pcre2_set_depth_limit(mctx, 10 * 1000);
    pcre2_jit_stack_assign(mctx, NULL, jstack);
    if (lang == DM_TEXT_COMMENTS_SQL || lang == DM_TEXT_COMMENTS_CLIKE) {
        strip_code(stripped, content, len, lang == DM_TEXT_COMMENTS_SQL);
    } else if (lang == DM_TEXT_COMMENTS_HASH) {
        strip_hash(stripped, content, len);
    } else {
        memcpy(stripped, content, len);
    }
    stripped[len] = '\0';
    ctx.view = stripped;
    ctx.len = len;
    ctx.lang = lang;
    for (size_t i = 0; i < len; i++) {
        n_nl += content[i] == '\n';
    }
    nl = malloc((n_nl + 1) * sizeof(*nl));
    if (!nl) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "safety: out of memory");
        goto out;
    }
    n_nl = 0;
    for (size_t i = 0; i < len; i++) {
        if (content[i] == '\n') {
            nl[n_nl++] = i;
        }
    }

    for (size_t ri = 0; ri < dm_safety_rule_count; ri++) {
        const struct rule *r = &dm_safety_rules[ri];
        const char *subject = r->view == VIEW_RAW ? content : stripped;
        PCRE2_SIZE start = 0;
        int matches = 0;

        if (!(r->rules & rules) || !(r->langs & (1u << lang))) {
            continue;
        }
        ctx.stmt_valid = 0;
        while (start <= len) {
            PCRE2_SIZE *ov;
            int keep;
            int m =
                pcre2_match(dm_safety_rule_code[ri], (PCRE2_SPTR)subject, len, start, 0, md, mctx);
            if (m == PCRE2_ERROR_NOMATCH) {
                break;
            }
            if (m < 0) {
                rc = dm_error_set(err, DM_ERR_LIMIT,
                                  "safety: rule %s could not finish on %s (PCRE2 error %d)", r->id,
                                  path, m);
                goto out;
            }
            ov = pcre2_get_ovector_pointer(md);
            keep = r->accept ? r->accept(&ctx, r, subject, md) : 1;
            if (keep < 0) {
                rc = dm_error_set(err, keep, "safety: out of memory");
                goto out;
            }
            if (keep) {
                if (++matches > MATCHES_PER_RULE_MAX) {
                    /* Enough to judge the file; count the rest as dropped. */
                    out->dropped++;
                    break;
                }
                rc = add_finding(out, r, path, line_of(nl, n_nl, ov[0]), subject + ov[0],
                                 ov[1] - ov[0]);
                if (rc) {
                    dm_error_set(err, rc, "safety: out of memory");
                    goto out;
                }
            }
            start = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
        }
    }
    rc = 0;
out:
    pcre2_jit_stack_free(jstack);
    pcre2_match_context_free(mctx);
    pcre2_match_data_free(md);
    free(stripped);
    free(nl);
    free(ctx.where.pos);
    free(ctx.drop.pos);
    return rc;
}

/* ---- JSON and summary ------------------------------------------------------------------- */

char *dm_findings_to_json(const struct dm_findings *f)
{
    cJSON *arr = cJSON_CreateArray();
    char *s = NULL;

    if (!arr) {
        return NULL;
    }
    for (size_t i = 0; f && i < f->len; i++) {
        const struct dm_finding *it = &f->items[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) {
            goto out;
        }
        cJSON_AddItemToArray(arr, o);
        if (!cJSON_AddStringToObject(o, "kind", dm_finding_kind_name(it->kind)) ||
            !cJSON_AddStringToObject(o, "severity", dm_severity_name(it->severity)) ||
            !cJSON_AddStringToObject(o, "rule", it->rule) ||
            !cJSON_AddStringToObject(o, "path", it->path) ||
            !cJSON_AddNumberToObject(o, "line", (double)it->line) ||
            !cJSON_AddStringToObject(o, "excerpt", it->excerpt)) {
            goto out;
        }
    }
    s = cJSON_PrintUnformatted(arr);
out:
    cJSON_Delete(arr);
    return s;
}

char *dm_findings_summary(const struct dm_findings *f, size_t max_items)
{
    struct dm_buf b;
    size_t shown = 0;
    size_t total = f ? f->len + f->dropped : 0;
    int rc = 0;

    dm_buf_init(&b, 0);
    for (size_t i = 0; f && i < f->len && shown < max_items && rc == 0; i++, shown++) {
        const struct dm_finding *it = &f->items[i];
        rc = dm_buf_printf(&b, "%s%s:%lu %s (%s)", shown ? "; " : "", it->path, it->line, it->rule,
                           dm_severity_name(it->severity));
    }
    if (rc == 0 && total > shown) {
        rc = dm_buf_printf(&b, "%s+%zu more", shown ? "; " : "", total - shown);
    }
    if (rc != 0) {
        dm_buf_free(&b);
        return NULL;
    }
    return dm_buf_detach(&b);
}
