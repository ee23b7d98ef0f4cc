/*
 * review: reviewer request and verdict parsing, the rule verdict, the combination policy, the
 * revise round and the PR body's review and cost sections (contract in
 * include/dream/domain/review.h). Owns the verdicts and texts it returns; no state of its own; any
 * thread.
 */
#include "dream/domain/review.h"
#include "dream/domain/spec.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ELLIPSIS "\xe2\x80\xa6"
#define WITHHELD "(withheld: the reviewer quoted a secret)"
#define NO_SUMMARY "(no summary)"

#define PROMPT_TITLE_MAX 300
#define PROMPT_LIST_MAX (8 * 1024) /* the file list in the user message */
#define PROMPT_PATH_SHOWN 200      /* bytes of a path in the findings list */
#define PROMPT_FILE_OVERHEAD 100   /* per file block, besides its path and fences */
#define PROMPT_TAIL_RESERVE 160    /* the omitted note and the closing instruction */
#define PROMPT_FILE_MIN 1024       /* least content shown per file before files are left out */

#define SUMMARY_RULES 12

static const char *const decision_names[] = {"proceed", "pause", "reject"};

static const char system_prompt[] =
    "You are a senior code reviewer. An automated pipeline generated the files below for a pull "
    "request from a feature spec; nothing has been pushed yet. Review them before they are.\n"
    "\n"
    "Look for: destructive operations (dropping, truncating or deleting data without a "
    "condition, force pushes, hard resets, rm -rf), secrets or credentials in the code, code "
    "run from strings (eval, Function, child_process), security holes (injection, missing "
    "authentication or authorisation, unchecked input), and files that do not do what the plan "
    "says or would not work.\n"
    "\n"
    "Answer with one JSON object and nothing else:\n"
    "- decision: \"proceed\" (safe to open the pull request as it is), \"pause\" (a person must "
    "approve it first: an intended but destructive change, a doubtful security choice) or "
    "\"reject\" (must not be pushed: secrets, clearly harmful or broken code);\n"
    "- risk: \"low\", \"medium\", \"high\" or \"critical\";\n"
    "- summary: at most three sentences;\n"
    "- comments: one entry per concrete problem, with the file's path exactly as listed and "
    "what to change; an empty array when nothing needs fixing.\n"
    "The rule findings come from an automatic scan; take them into account. Never repeat a "
    "secret in your answer.";

static const char response_format[] =
    "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"review\",\"strict\":true,\"schema\":{"
    "\"type\":\"object\",\"properties\":{"
    "\"decision\":{\"type\":\"string\",\"enum\":[\"proceed\",\"pause\",\"reject\"],"
    "\"description\":\"proceed: open the pull request; pause: a person must approve first; "
    "reject: must not be pushed\"},"
    "\"risk\":{\"type\":\"string\",\"enum\":[\"low\",\"medium\",\"high\",\"critical\"],"
    "\"description\":\"overall risk of merging these files\"},"
    "\"summary\":{\"type\":\"string\",\"description\":\"at most three sentences\"},"
    "\"comments\":{\"type\":\"array\",\"description\":\"concrete problems, one per entry\","
    "\"items\":{\"type\":\"object\",\"properties\":{"
    "\"path\":{\"type\":\"string\",\"description\":\"a reviewed file's path, exactly as "
    "listed\"},"
    "\"comment\":{\"type\":\"string\",\"description\":\"what is wrong and what to change\"}},"
    "\"required\":[\"path\",\"comment\"],\"additionalProperties\":false}}},"
    "\"required\":[\"decision\",\"risk\",\"summary\",\"comments\"],"
    "\"additionalProperties\":false}}}";

/* ---- small helpers --------------------------------------------------------------------- */

void dm_review_verdict_init(struct dm_review_verdict *v)
{
    static const struct dm_review_verdict empty = DM_REVIEW_VERDICT_INIT;
    *v = empty;
}

void dm_review_verdict_free(struct dm_review_verdict *v)
{
    if (!v) {
        return;
    }
    for (size_t i = 0; i < v->n_comments; i++) {
        free(v->comments[i].path);
        free(v->comments[i].comment);
    }
    free(v->comments);
    free(v->summary);
    free(v->rules_summary);
    dm_review_verdict_init(v);
}

const char *dm_review_decision_name(enum dm_review_decision d)
{
    if ((unsigned)d < sizeof(decision_names) / sizeof(decision_names[0])) {
        return decision_names[d];
    }
    return "reject";
}

int dm_review_decision_parse(enum dm_review_decision *out, const char *name)
{
    for (size_t i = 0; name && i < sizeof(decision_names) / sizeof(decision_names[0]); i++) {
        if (strcasecmp(name, decision_names[i]) == 0) {
            *out = (enum dm_review_decision)i;
            return 0;
        }
    }
    return DM_ERR_INVALID;
}

static int risk_parse(enum dm_severity *out, const char *name)
{
    for (int s = DM_SEVERITY_LOW; s <= DM_SEVERITY_CRITICAL; s++) {
        if (strcasecmp(name, dm_severity_name((enum dm_severity)s)) == 0) {
            *out = (enum dm_severity)s;
            return 0;
        }
    }
    return DM_ERR_INVALID;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The longest prefix of s[0..len) of at most max bytes that does not split a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
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

/* Appends s[0..len) cut to max bytes in all; a cut ends in "…" (inside the max). */
static int put_cut(struct dm_buf *b, const char *s, size_t len, size_t max)
{
    size_t n;
    int rc;

    if (len <= max) {
        return dm_buf_append(b, s, len);
    }
    n = utf8_cut(s, len, max >= 3 ? max - 3 : 0);
    rc = dm_buf_append(b, s, n);
    if (!rc) {
        rc = dm_buf_puts(b, ELLIPSIS);
    }
    return rc;
}

/* Appends s with control bytes as '?' (for paths and titles inside prompts). */
static int put_printable(struct dm_buf *b, const char *s, size_t max)
{
    struct dm_buf t;
    int rc = 0;

    dm_buf_init(&t, 0);
    for (const char *p = s; *p && !rc; p++) {
        char c = ((unsigned char)*p < 0x20 || *p == 0x7f) ? '?' : *p;
        rc = dm_buf_append(&t, &c, 1);
    }
    if (!rc && t.len) {
        rc = put_cut(b, t.data, t.len, max);
    }
    dm_buf_free(&t);
    return rc;
}

/* One line of text: control bytes become spaces, white space runs collapse, trimmed, cut to
 * max bytes with "…". malloc'd; NULL on NOMEM. */
static char *clean_line(const char *s, size_t max)
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
        if (space && t.len) {
            rc = dm_buf_append(&t, " ", 1);
        }
        space = 0;
        if (!rc) {
            rc = dm_buf_append(&t, p, 1);
        }
    }
    if (!rc) {
        rc = t.len ? put_cut(&o, t.data, t.len, max) : dm_buf_puts(&o, "");
    }
    if (!rc) {
        res = dm_buf_detach(&o);
    }
    dm_buf_free(&t);
    dm_buf_free(&o);
    return res;
}

/* 1 when the secret rules find anything in s (or the scan fails: assume the worst). */
static int holds_secret(const char *s)
{
    struct dm_findings f = DM_FINDINGS_INIT;
    struct dm_error e;
    int rc = dm_safety_scan(&f, "review.txt", s, strlen(s), DM_SAFETY_RULES_SECRETS, &e);
    int found = rc != 0 || f.len > 0 || f.dropped > 0;

    dm_findings_free(&f);
    return found;
}

/* clean_line(), withheld when it quotes a secret. */
static char *safe_line(const char *s, size_t max)
{
    char *line = clean_line(s, max);

    if (line && holds_secret(line)) {
        free(line);
        line = strdup(WITHHELD);
    }
    return line;
}

/* A backtick fence longer than any backtick run in s[0..len) (at least three). */
static size_t fence_len(const char *s, size_t len)
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

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s);
    size_t b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static const char *lang_of(const char *path)
{
    static const char *const map[][2] = {
        {".tsx", "tsx"},   {".ts", "ts"},       {".jsx", "jsx"}, {".js", "js"},     {".sql", "sql"},
        {".json", "json"}, {".md", "markdown"}, {".css", "css"}, {".html", "html"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (ends_with(path, map[i][0])) {
            return map[i][1];
        }
    }
    return "";
}

/* Appends "<fence><info>\n" s[0..n) ["\n"] "<fence>\n", fence of flen backticks. */
static int put_fenced(struct dm_buf *b, size_t flen, const char *info, const char *s, size_t n)
{
    int rc = put_fence(b, flen);

    if (!rc) {
        rc = dm_buf_printf(b, "%s\n", info);
    }
    if (!rc) {
        rc = dm_buf_append(b, s, n);
    }
    if (!rc && (n == 0 || s[n - 1] != '\n')) {
        rc = dm_buf_puts(b, "\n");
    }
    if (!rc) {
        rc = put_fence(b, flen);
    }
    if (!rc) {
        rc = dm_buf_puts(b, "\n");
    }
    return rc;
}

/* ---- the reviewer request ---------------------------------------------------------------- */

void dm_review_prompt_free(struct dm_review_prompt *p)
{
    if (!p) {
        return;
    }
    free(p->system);
    free(p->user);
    free(p);
}

const char *dm_review_response_format(void)
{
    return response_format;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a;
    size_t y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* The largest per-file cap c with sum(min(len_i, c)) <= room (SIZE_MAX when all fit): every
 * file gets what it needs or an equal share of what the smaller ones leave. Sorts lens. */
static size_t fair_cap(size_t *lens, size_t n, size_t room)
{
    size_t left = n;

    qsort(lens, n, sizeof(*lens), cmp_size);
    for (size_t i = 0; i < n; i++, left--) {
        if (lens[i] > room / left) {
            return room / left;
        }
        room -= lens[i];
    }
    return SIZE_MAX;
}

static int prompt_header(struct dm_buf *h, const char *title, const struct dm_review_file *files,
                         size_t n, const struct dm_findings *f)
{
    size_t listed = 0;
    size_t total;
    int rc = dm_buf_puts(h, "Plan: ");

    if (!rc) {
        rc = put_printable(h, title && *title ? title : DM_SPEC_UNTITLED, PROMPT_TITLE_MAX);
    }
    if (!rc) {
        rc = dm_buf_printf(h, "\n\nGenerated files (%zu):\n", n);
    }
    for (size_t i = 0; i < n && !rc; i++) {
        size_t mark = h->len;
        rc = dm_buf_puts(h, "- `");
        if (!rc) {
            rc = put_printable(h, files[i].path, DM_SAFETY_PATH_MAX);
        }
        if (!rc) {
            rc = dm_buf_printf(h, "` (%zu bytes)\n", files[i].len);
        }
        if (!rc && h->len - mark > PROMPT_LIST_MAX - 64) {
            rc = DM_ERR_LIMIT; /* a single absurd line: stop listing */
        }
        if (!rc && h->len > PROMPT_LIST_MAX + PROMPT_TITLE_MAX + 64) {
            rc = DM_ERR_LIMIT;
        }
        if (rc == DM_ERR_LIMIT) {
            h->len = mark;
            h->data[mark] = '\0';
            rc = 0;
            break;
        }
        listed++;
    }
    if (!rc && listed < n) {
        rc = dm_buf_printf(h, "- " ELLIPSIS " and %zu more\n", n - listed);
    }
    total = f ? f->len + f->dropped : 0;
    if (!rc && total == 0) {
        rc = dm_buf_puts(h, "\nRule findings: none.\n");
    } else if (!rc) {
        size_t shown = f->len < DM_REVIEW_PROMPT_FINDINGS ? f->len : DM_REVIEW_PROMPT_FINDINGS;
        rc = dm_buf_printf(h, "\nRule findings (%zu):\n", total);
        for (size_t i = 0; i < shown && !rc; i++) {
            const struct dm_finding *x = &f->items[i];
            rc = dm_buf_puts(h, "- ");
            if (!rc) {
                rc = put_printable(h, x->path ? x->path : "?", PROMPT_PATH_SHOWN);
            }
            if (!rc) {
                rc = dm_buf_printf(h, ":%lu %s (%s, %s): ", x->line, x->rule ? x->rule : "?",
                                   dm_severity_name(x->severity), dm_finding_kind_name(x->kind));
            }
            if (!rc) {
                rc = put_printable(h, x->excerpt, DM_SAFETY_EXCERPT_MAX);
            }
            if (!rc) {
                rc = dm_buf_puts(h, "\n");
            }
        }
        if (!rc && total > shown) {
            rc = dm_buf_printf(h, "- " ELLIPSIS " and %zu more\n", total - shown);
        }
    }
    return rc;
}

static const char prompt_tail[] =
    "\nReview the files above and answer with the JSON object only.\n";

int dm_review_prompt_build(struct dm_review_prompt **out, const char *title,
                           const struct dm_review_file *files, size_t n_files,
                           const struct dm_findings *findings, struct dm_error *err)
{
    struct dm_review_prompt *p = NULL;
    struct dm_buf u;
    size_t *fence = NULL;
    size_t *lens = NULL;
    size_t *over = NULL;
    size_t shown = 0;
    size_t room;
    size_t used = 0;
    size_t cap;
    int rc = 0;

    *out = NULL;
    dm_buf_init(&u, DM_REVIEW_PROMPT_MAX);
    if (!files || n_files == 0) {
        return dm_error_set(err, DM_ERR_INVALID, "review prompt: no files to review");
    }
    for (size_t i = 0; i < n_files; i++) {
        if (!files[i].path || (!files[i].content && files[i].len)) {
            return dm_error_set(err, DM_ERR_INVALID,
                                "review prompt: file %zu: no path, or no content", i);
        }
        if (files[i].len && memchr(files[i].content, '\0', files[i].len)) {
            return dm_error_set(err, DM_ERR_INVALID, "review prompt: file %zu holds NUL bytes", i);
        }
    }
    p = calloc(1, sizeof(*p));
    fence = calloc(n_files, sizeof(*fence));
    lens = calloc(n_files, sizeof(*lens));
    over = calloc(n_files, sizeof(*over));
    if (!p || !fence || !lens || !over) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    p->system = strdup(system_prompt);
    if (!p->system) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    rc = prompt_header(&u, title, files, n_files, findings);
    if (rc) {
        goto out;
    }
    /* The header is bounded far below the cap (title, list and findings caps). */
    room = DM_REVIEW_PROMPT_MAX - u.len - sizeof(prompt_tail) - PROMPT_TAIL_RESERVE;
    for (shown = 0; shown < n_files; shown++) {
        fence[shown] = fence_len(files[shown].content, files[shown].len);
        over[shown] = strlen(files[shown].path) + 2 * fence[shown] + PROMPT_FILE_OVERHEAD;
        if (over[shown] > room - used) {
            break; /* this and every later file: content left out */
        }
        used += over[shown];
    }
    /* Fewer files with a useful share each beat many files with a few bytes each. */
    for (;;) {
        for (size_t i = 0; i < shown; i++) {
            lens[i] = files[i].len;
        }
        cap = fair_cap(lens, shown, room - used);
        if (cap >= PROMPT_FILE_MIN || shown <= 1) {
            break;
        }
        shown--;
        used -= over[shown];
    }
    for (size_t i = 0; i < shown && !rc; i++) {
        const struct dm_review_file *fl = &files[i];
        size_t n = fl->len <= cap ? fl->len : utf8_cut(fl->content, fl->len, cap);

        rc = dm_buf_puts(&u, "\n### `");
        if (!rc) {
            rc = put_printable(&u, fl->path, DM_SAFETY_PATH_MAX);
        }
        if (!rc) {
            rc = dm_buf_puts(&u, "`\n");
        }
        if (!rc) {
            rc = put_fenced(&u, fence[i], lang_of(fl->path), fl->content ? fl->content : "", n);
        }
        if (!rc && n < fl->len) {
            p->files_cut++;
            rc = dm_buf_printf(&u, "[truncated: showing %zu of %zu bytes]\n", n, fl->len);
        }
    }
    p->files_omitted = n_files - shown;
    if (!rc && p->files_omitted) {
        rc = dm_buf_printf(&u,
                           "\n[Content of the last %zu files left out: the prompt size "
                           "limit.]\n",
                           p->files_omitted);
    }
    if (!rc) {
        rc = dm_buf_puts(&u, prompt_tail);
    }
    if (!rc) {
        p->user = dm_buf_detach(&u);
        if (!p->user) {
            rc = DM_ERR_NOMEM;
        }
    }
out:
    if (rc == DM_ERR_LIMIT) {
        /* The accounting above is meant to make this impossible. */
        dm_error_set(err, rc, "review prompt: over %d bytes", DM_REVIEW_PROMPT_MAX);
    } else if (rc) {
        dm_error_set(err, rc, "review prompt: out of memory");
    }
    if (rc) {
        dm_review_prompt_free(p);
    } else {
        *out = p;
    }
    dm_buf_free(&u);
    free(fence);
    free(lens);
    free(over);
    return rc;
}

/* ---- parsing the verdict ----------------------------------------------------------------- */

/* If [*b, *e) is one fenced block (``` or ~~~), narrows it to the block's content. Returns 0
 * (not fenced: unchanged, or narrowed) or DM_ERR_INVALID with err set. */
static int unfence(const char **b, const char **e, const char *what, struct dm_error *err)
{
    const char *s = *b;
    const char *end = *e;
    const char *nl;
    const char *last;
    const char *q;
    char ch = *s;
    size_t open = 0;
    size_t close = 0;

    if (ch != '`' && ch != '~') {
        return 0;
    }
    while (s + open < end && s[open] == ch) {
        open++;
    }
    if (open < 3) {
        return 0; /* not a fence: the JSON check will refuse it */
    }
    nl = memchr(s, '\n', (size_t)(end - s));
    if (!nl) {
        return dm_error_set(err, DM_ERR_INVALID, "%s: unclosed code fence", what);
    }
    /* The closing fence is the last line: up to three spaces, then >= open fence chars. */
    last = end;
    while (last > nl + 1 && last[-1] != '\n') {
        last--;
    }
    q = last;
    while (q < end && *q == ' ' && q - last < 3) {
        q++;
    }
    while (q + close < end && q[close] == ch) {
        close++;
    }
    if (last <= nl || close < open || q + close != end) {
        return dm_error_set(err, DM_ERR_INVALID, "%s: unclosed code fence or text after it", what);
    }
    *b = nl + 1;
    *e = last;
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

static int find_file(const struct dm_review_file *files, size_t n, const char *path)
{
    if (strncmp(path, "./", 2) == 0) {
        path += 2;
    }
    for (size_t i = 0; i < n; i++) {
        if (files[i].path && strcmp(files[i].path, path) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int parse_comments(struct dm_review_verdict *v, const cJSON *arr,
                          const struct dm_review_file *files, size_t n_files, struct dm_error *err)
{
    size_t i = 0;
    const cJSON *c;
    size_t count = (size_t)cJSON_GetArraySize(arr);

    v->comments =
        calloc(count < DM_REVIEW_COMMENTS_MAX ? (count ? count : 1) : DM_REVIEW_COMMENTS_MAX,
               sizeof(*v->comments));
    if (!v->comments) {
        return dm_error_set(err, DM_ERR_NOMEM, "reviewer reply: out of memory");
    }
    cJSON_ArrayForEach(c, arr)
    {
        const cJSON *path = cJSON_GetObjectItemCaseSensitive(c, "path");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(c, "comment");
        struct dm_review_comment *dst;
        char *line;
        int idx;

        if (!cJSON_IsObject(c) || !cJSON_IsString(path) || !cJSON_IsString(text)) {
            return dm_error_set(err, DM_ERR_INVALID,
                                "reviewer reply: comments[%zu] must be an object with string "
                                "\"path\" and \"comment\"",
                                i);
        }
        i++;
        idx = find_file(files, n_files, path->valuestring);
        if (idx < 0 || v->n_comments >= DM_REVIEW_COMMENTS_MAX) {
            v->dropped_comments++;
            continue;
        }
        line = safe_line(text->valuestring, DM_REVIEW_COMMENT_MAX);
        if (!line) {
            return dm_error_set(err, DM_ERR_NOMEM, "reviewer reply: out of memory");
        }
        if (!*line) {
            free(line);
            v->dropped_comments++;
            continue;
        }
        dst = &v->comments[v->n_comments];
        dst->comment = line;
        dst->path = strdup(files[idx].path);
        v->n_comments++;
        if (!dst->path) {
            return dm_error_set(err, DM_ERR_NOMEM, "reviewer reply: out of memory");
        }
    }
    return 0;
}

int dm_review_reply_json(struct cJSON **out, const char *reply, size_t len, size_t max,
                         const char *what, struct dm_error *err)
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
    if (dm_spec_utf8_check(reply, len, &bad) != 0) {
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

int dm_review_parse(struct dm_review_verdict *out, const char *reply, size_t len,
                    const struct dm_review_file *files, size_t n_files, struct dm_error *err)
{
    struct dm_review_verdict v = DM_REVIEW_VERDICT_INIT;
    cJSON *root = NULL;
    const cJSON *m;
    int rc = dm_review_reply_json(&root, reply, len, DM_REVIEW_REPLY_MAX, "reviewer reply", err);

    if (rc) {
        return rc;
    }
    m = cJSON_GetObjectItemCaseSensitive(root, "decision");
    if (!cJSON_IsString(m)) {
        rc = dm_error_set(err, DM_ERR_INVALID, "reviewer reply: \"decision\" must be a string");
        goto out;
    }
    if (dm_review_decision_parse(&v.decision, m->valuestring) != 0) {
        rc = dm_error_set(err, DM_ERR_INVALID,
                          "reviewer reply: unknown decision \"%.40s\" (proceed, pause, reject)",
                          m->valuestring);
        goto out;
    }
    m = cJSON_GetObjectItemCaseSensitive(root, "risk");
    if (!cJSON_IsString(m)) {
        rc = dm_error_set(err, DM_ERR_INVALID, "reviewer reply: \"risk\" must be a string");
        goto out;
    }
    if (risk_parse(&v.risk, m->valuestring) != 0) {
        rc = dm_error_set(err, DM_ERR_INVALID,
                          "reviewer reply: unknown risk \"%.40s\" (low, medium, high, critical)",
                          m->valuestring);
        goto out;
    }
    m = cJSON_GetObjectItemCaseSensitive(root, "summary");
    if (!cJSON_IsString(m)) {
        rc = dm_error_set(err, DM_ERR_INVALID, "reviewer reply: \"summary\" must be a string");
        goto out;
    }
    v.summary = safe_line(m->valuestring, DM_REVIEW_SUMMARY_MAX);
    if (v.summary && !*v.summary) {
        free(v.summary);
        v.summary = strdup(NO_SUMMARY);
    }
    if (!v.summary) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "reviewer reply: out of memory");
        goto out;
    }
    m = cJSON_GetObjectItemCaseSensitive(root, "comments");
    if (m && !cJSON_IsArray(m)) {
        rc = dm_error_set(err, DM_ERR_INVALID, "reviewer reply: \"comments\" must be an array");
        goto out;
    }
    if (m) {
        rc = parse_comments(&v, m, files, n_files, err);
        if (rc) {
            goto out;
        }
    }
    v.sources = DM_REVIEW_BY_MODEL;
    v.model_decision = (int)v.decision;
    *out = v;
    dm_review_verdict_init(&v);
out:
    cJSON_Delete(root);
    dm_review_verdict_free(&v);
    return rc;
}

/* ---- the rule verdict and the combination ------------------------------------------------ */

struct rule_hit {
    const char *rule;
    enum dm_severity severity;
    size_t count;
};

int dm_review_from_findings(struct dm_review_verdict *out, const struct dm_findings *findings,
                            struct dm_error *err)
{
    struct dm_review_verdict v = DM_REVIEW_VERDICT_INIT;
    struct rule_hit *hits = NULL;
    size_t n_hits = 0;
    size_t total = findings ? findings->len + findings->dropped : 0;
    struct dm_buf b;
    int rc = 0;

    dm_buf_init(&b, 0);
    if (total && findings->max_severity >= 0) {
        v.risk = (enum dm_severity)findings->max_severity;
    }
    v.decision = v.risk == DM_SEVERITY_CRITICAL ? DM_REVIEW_REJECT
                 : v.risk == DM_SEVERITY_HIGH   ? DM_REVIEW_PAUSE
                                                : DM_REVIEW_PROCEED;
    if (total == 0) {
        rc = dm_buf_puts(&b, "Rule scan: no findings.");
        goto done;
    }
    hits = calloc(findings->len ? findings->len : 1, sizeof(*hits));
    if (!hits) {
        rc = DM_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < findings->len; i++) {
        const struct dm_finding *x = &findings->items[i];
        const char *rule = x->rule ? x->rule : "?";
        size_t j;
        for (j = 0; j < n_hits; j++) {
            if (strcmp(hits[j].rule, rule) == 0) {
                break;
            }
        }
        if (j == n_hits) {
            hits[n_hits].rule = rule;
            hits[n_hits].severity = x->severity;
            n_hits++;
        }
        if (x->severity > hits[j].severity) {
            hits[j].severity = x->severity;
        }
        hits[j].count++;
    }
    /* Stable insertion sort: highest severity first, then first appearance. */
    for (size_t i = 1; i < n_hits; i++) {
        struct rule_hit h = hits[i];
        size_t j = i;
        while (j > 0 && hits[j - 1].severity < h.severity) {
            hits[j] = hits[j - 1];
            j--;
        }
        hits[j] = h;
    }
    rc = dm_buf_printf(&b, "Rule scan: %zu finding%s, highest %s", total, total == 1 ? "" : "s",
                       dm_severity_name(v.risk));
    for (size_t i = 0; i < n_hits && i < SUMMARY_RULES && !rc; i++) {
        rc = dm_buf_printf(&b, "%s%s (%s) x%zu", i ? ", " : ": ", hits[i].rule,
                           dm_severity_name(hits[i].severity), hits[i].count);
    }
    if (!rc && n_hits > SUMMARY_RULES) {
        rc = dm_buf_printf(&b, ", +%zu more rules", n_hits - SUMMARY_RULES);
    }
    if (!rc && findings->dropped) {
        rc = dm_buf_printf(&b, " (%zu more not itemised)", findings->dropped);
    }
    if (!rc) {
        rc = dm_buf_puts(&b, ".");
    }
done:
    if (!rc) {
        v.summary = dm_buf_detach(&b);
        if (!v.summary) {
            rc = DM_ERR_NOMEM;
        }
    }
    if (rc) {
        dm_error_set(err, rc, "rule verdict: out of memory");
    } else {
        v.sources = DM_REVIEW_BY_RULES;
        v.rules_decision = (int)v.decision;
        *out = v;
        dm_review_verdict_init(&v);
    }
    free(hits);
    dm_buf_free(&b);
    dm_review_verdict_free(&v);
    return rc;
}

static int verdict_copy(struct dm_review_verdict *dst, const struct dm_review_verdict *src)
{
    *dst = *src;
    dst->summary = NULL;
    dst->rules_summary = NULL;
    dst->comments = NULL;
    dst->n_comments = 0;
    if (src->summary && !(dst->summary = strdup(src->summary))) {
        return DM_ERR_NOMEM;
    }
    if (src->rules_summary && !(dst->rules_summary = strdup(src->rules_summary))) {
        return DM_ERR_NOMEM;
    }
    if (src->n_comments) {
        dst->comments = calloc(src->n_comments, sizeof(*dst->comments));
        if (!dst->comments) {
            return DM_ERR_NOMEM;
        }
    }
    for (size_t i = 0; i < src->n_comments; i++) {
        dst->comments[i].path = strdup(src->comments[i].path);
        dst->comments[i].comment = strdup(src->comments[i].comment);
        dst->n_comments++;
        if (!dst->comments[i].path || !dst->comments[i].comment) {
            return DM_ERR_NOMEM;
        }
    }
    return 0;
}

int dm_review_combine(struct dm_review_verdict *out, const struct dm_review_verdict *model,
                      const struct dm_review_verdict *rules, struct dm_error *err)
{
    struct dm_review_verdict v = DM_REVIEW_VERDICT_INIT;
    int rc;

    if (!rules) {
        return dm_error_set(err, DM_ERR_INVALID, "review: the rule verdict is required");
    }
    rc = verdict_copy(&v, model ? model : rules);
    if (!rc && model) {
        if (rules->decision > v.decision) {
            v.decision = rules->decision;
        }
        if (rules->risk > v.risk) {
            v.risk = rules->risk;
        }
        v.model_decision = (int)model->decision;
        v.rules_decision = (int)rules->decision;
        v.sources = model->sources | rules->sources | DM_REVIEW_BY_MODEL | DM_REVIEW_BY_RULES;
        free(v.rules_summary);
        v.rules_summary = NULL;
        if (rules->summary && !(v.rules_summary = strdup(rules->summary))) {
            rc = DM_ERR_NOMEM;
        }
    }
    if (rc) {
        dm_review_verdict_free(&v);
        return dm_error_set(err, rc, "review: out of memory combining verdicts");
    }
    *out = v;
    return 0;
}

/* ---- the revise round -------------------------------------------------------------------- */

size_t dm_review_files_to_revise(const struct dm_review_verdict *v, const char **paths, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; v && i < v->n_comments; i++) {
        size_t j;
        for (j = 0; j < i; j++) {
            if (strcmp(v->comments[j].path, v->comments[i].path) == 0) {
                break;
            }
        }
        if (j < i) {
            continue; /* seen */
        }
        if (n < max && paths) {
            paths[n] = v->comments[i].path;
        }
        n++;
    }
    return n;
}

int dm_review_revise_prompt(char **out, const struct dm_review_verdict *v, const char *path,
                            const char *content, size_t len, struct dm_error *err)
{
    struct dm_buf b;
    size_t found = 0;
    int rc = 0;

    *out = NULL;
    dm_buf_init(&b, 0);
    if (!v || !path || (!content && len)) {
        return dm_error_set(err, DM_ERR_INVALID, "revise prompt: verdict and path are required");
    }
    if (len > DM_REVIEW_REVISE_MAX) {
        return dm_error_set(err, DM_ERR_LIMIT, "revise prompt: content is %zu bytes (limit %d)",
                            len, DM_REVIEW_REVISE_MAX);
    }
    if (len && memchr(content, '\0', len)) {
        return dm_error_set(err, DM_ERR_INVALID, "revise prompt: content holds NUL bytes");
    }
    rc = dm_buf_printf(&b,
                       "A reviewer commented on the file you wrote for the path below. "
                       "Address every comment, keep what was right, and do not add "
                       "features.\n\nPath: `%s`\n\nReviewer comments:\n",
                       path);
    for (size_t i = 0; i < v->n_comments && !rc; i++) {
        if (strcmp(v->comments[i].path, path) == 0) {
            found++;
            rc = dm_buf_printf(&b, "- %s\n", v->comments[i].comment);
        }
    }
    if (!rc && found == 0) {
        rc = dm_error_set(err, DM_ERR_INVALID, "revise prompt: no reviewer comment on \"%.300s\"",
                          path);
        goto out;
    }
    if (!rc) {
        rc = dm_buf_puts(&b, "\nCurrent content:\n");
    }
    if (!rc) {
        rc = put_fenced(&b, fence_len(content, len), lang_of(path), content ? content : "", len);
    }
    if (!rc) {
        rc = dm_buf_puts(&b, "\nReply with the complete revised file only.\n");
    }
    if (rc) {
        rc = dm_error_set(err, rc, "revise prompt: out of memory");
        goto out;
    }
    *out = dm_buf_detach(&b);
    if (!*out) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "revise prompt: out of memory");
    }
out:
    dm_buf_free(&b);
    return rc;
}
