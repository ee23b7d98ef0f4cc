/*
 * review: reviewer request and verdict parsing, the rule verdict, the combination policy, the
 * revise round's files and the PR body's review and cost sections (contract in
 * include/dream/domain/review.h). Owns the verdicts and texts it returns; no state of its own; any
 * thread.
 */
#include "dream/domain/review.h"
#include "dream/core/text.h"
#include "dream/domain/prompt.h"
#include "dream/domain/reply.h"
#include "dream/domain/spec.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ELLIPSIS DM_TEXT_ELLIPSIS
#define MIDDOT "\xc2\xb7"
#define WITHHELD "(withheld: the reviewer quoted a secret)"
#define NO_SUMMARY "(no summary)"

#define PROMPT_TITLE_MAX 300
#define PROMPT_LIST_MAX (8 * 1024) /* the file list in the user message */
#define PROMPT_PATH_SHOWN 200      /* bytes of a path in the findings list */
#define PROMPT_FILE_OVERHEAD 100   /* per file block, besides its path and fences */
#define PROMPT_TAIL_RESERVE 160    /* the omitted note and the closing instruction */
#define PROMPT_FILE_MIN 1024       /* least content shown per file before files are left out */

#define MD_COMMENTS 10
#define MD_COMMENT_BYTES 300
#define MD_PATH_BYTES 120
#define MD_FINDINGS 30
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

/* The PR body sections below still cut with this name; text.c holds the rule. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    return dm_text_cut(s, len, max);
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
        rc = dm_text_put_cut(b, t.data, t.len, max);
    }
    dm_buf_free(&t);
    return rc;
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

/* dm_text_clean_line(), withheld when it quotes a secret. */
static char *safe_line(const char *s, size_t max)
{
    char *line = dm_text_clean_line(s, max);

    if (line && holds_secret(line)) {
        free(line);
        line = strdup(WITHHELD);
    }
    return line;
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
        fence[shown] = dm_text_fence_len(files[shown].content, files[shown].len);
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
        size_t n = dm_text_cut(fl->content, fl->len, cap);

        rc = dm_buf_puts(&u, "\n### `");
        if (!rc) {
            rc = put_printable(&u, fl->path, DM_SAFETY_PATH_MAX);
        }
        if (!rc) {
            rc = dm_buf_puts(&u, "`\n");
        }
        if (!rc) {
            rc = dm_text_put_fenced(&u, fence[i], dm_text_lang_of(fl->path).fence_info,
                                    fl->content ? fl->content : "", n);
        }
        if (!rc) {
            rc = dm_buf_puts(&u, "\n");
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

int dm_review_parse(struct dm_review_verdict *out, const char *reply, size_t len,
                    const struct dm_review_file *files, size_t n_files, struct dm_error *err)
{
    struct dm_review_verdict v = DM_REVIEW_VERDICT_INIT;
    cJSON *root = NULL;
    const cJSON *m;
    int rc = dm_reply_json(&root, reply, len, DM_REVIEW_REPLY_MAX, "reviewer reply", err);

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
    const char **comments = NULL;
    size_t n = 0;
    int rc;

    *out = NULL;
    if (!v || !path) {
        return dm_error_set(err, DM_ERR_INVALID, "revise prompt: verdict and path are required");
    }
    /* The message is prompt.c's; the verdict only picks this file's comments. */
    if (v->n_comments && !(comments = calloc(v->n_comments, sizeof(*comments)))) {
        return dm_error_set(err, DM_ERR_NOMEM, "revise prompt: out of memory");
    }
    for (size_t i = 0; i < v->n_comments; i++) {
        if (strcmp(v->comments[i].path, path) == 0) {
            comments[n++] = v->comments[i].comment;
        }
    }
    rc = dm_prompt_revise(out, path, comments, n, content, len, err);
    free(comments);
    return rc;
}

/* ---- PR body sections -------------------------------------------------------------------- */

/* Appends text for Markdown prose / table cells: '<' '>' '&' as entities, '|' escaped, control
 * bytes as spaces, cut to max bytes with "…". */
static int put_md_text(struct dm_buf *out, const char *s, size_t max)
{
    size_t len = strlen(s);
    size_t n = len <= max ? len : utf8_cut(s, len, max >= 3 ? max - 3 : 0);
    int rc = 0;

    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '<') {
            rc = dm_buf_puts(out, "&lt;");
        } else if (c == '>') {
            rc = dm_buf_puts(out, "&gt;");
        } else if (c == '&') {
            rc = dm_buf_puts(out, "&amp;");
        } else if (c == '|') {
            rc = dm_buf_puts(out, "\\|");
        } else if (c < 0x20 || c == 0x7f) {
            rc = dm_buf_puts(out, " ");
        } else {
            rc = dm_buf_append(out, &s[i], 1);
        }
    }
    if (!rc && n < len) {
        rc = dm_buf_puts(out, ELLIPSIS);
    }
    return rc;
}

/* Appends a path for a code span: '`' → '\'', control bytes → '?', '|' escaped (tables). */
static int put_md_path(struct dm_buf *out, const char *s, size_t max)
{
    size_t len = strlen(s);
    size_t n = len <= max ? len : utf8_cut(s, len, max >= 3 ? max - 3 : 0);
    int rc = 0;

    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '`') {
            rc = dm_buf_puts(out, "'");
        } else if (c == '|') {
            rc = dm_buf_puts(out, "\\|");
        } else if (c < 0x20 || c == 0x7f) {
            rc = dm_buf_puts(out, "?");
        } else {
            rc = dm_buf_append(out, &s[i], 1);
        }
    }
    if (!rc && n < len) {
        rc = dm_buf_puts(out, ELLIPSIS);
    }
    return rc;
}

/* "| `path:line` | rule | kind | severity |": static identifiers only, never the excerpt. */
static int md_finding_row(struct dm_buf *out, const struct dm_finding *x)
{
    int rc = dm_buf_puts(out, "| `");

    if (!rc) {
        rc = put_md_path(out, x->path ? x->path : "?", MD_PATH_BYTES);
    }
    if (!rc) {
        rc = dm_buf_printf(out, ":%lu` | %s | %s | %s |\n", x->line, x->rule ? x->rule : "?",
                           dm_finding_kind_name(x->kind), dm_severity_name(x->severity));
    }
    return rc;
}

static const char *reviewed_by(unsigned sources)
{
    if ((sources & DM_REVIEW_BY_MODEL) && (sources & DM_REVIEW_BY_RULES)) {
        return "model and rules";
    }
    return (sources & DM_REVIEW_BY_MODEL) ? "model" : "rules";
}

int dm_review_markdown(const struct dm_review_verdict *v, const struct dm_findings *findings,
                       struct dm_buf *out)
{
    int rc = dm_buf_printf(
        out, "**Decision**: %s " MIDDOT " **Risk**: %s " MIDDOT " **Reviewed by**: %s\n",
        dm_review_decision_name(v->decision), dm_severity_name(v->risk), reviewed_by(v->sources));

    if (!rc && v->model_decision >= 0 && v->rules_decision >= 0 &&
        v->model_decision != v->rules_decision) {
        int rules_stricter = v->rules_decision > v->model_decision;
        rc = dm_buf_printf(
            out, "\nThe %s decision (%s) is stricter than the %s (%s).\n",
            rules_stricter ? "rule scan's" : "reviewer model's",
            dm_review_decision_name(rules_stricter ? v->rules_decision : v->model_decision),
            rules_stricter ? "model's" : "rule scan's",
            dm_review_decision_name(rules_stricter ? v->model_decision : v->rules_decision));
    }
    if (!rc && v->summary && *v->summary) {
        rc = dm_buf_puts(out, "\n");
        if (!rc) {
            rc = put_md_text(out, v->summary, DM_REVIEW_SUMMARY_MAX);
        }
        if (!rc) {
            rc = dm_buf_puts(out, "\n");
        }
    }
    if (!rc && v->rules_summary && *v->rules_summary) {
        rc = dm_buf_puts(out, "\n");
        if (!rc) {
            rc = put_md_text(out, v->rules_summary, DM_REVIEW_SUMMARY_MAX);
        }
        if (!rc) {
            rc = dm_buf_puts(out, "\n");
        }
    }
    if (!rc && v->n_comments) {
        size_t shown = v->n_comments < MD_COMMENTS ? v->n_comments : MD_COMMENTS;
        rc = dm_buf_puts(out, "\n#### Comments\n\n");
        for (size_t i = 0; i < shown && !rc; i++) {
            rc = dm_buf_puts(out, "- `");
            if (!rc) {
                rc = put_md_path(out, v->comments[i].path, MD_PATH_BYTES);
            }
            if (!rc) {
                rc = dm_buf_puts(out, "`: ");
            }
            if (!rc) {
                rc = put_md_text(out, v->comments[i].comment, MD_COMMENT_BYTES);
            }
            if (!rc) {
                rc = dm_buf_puts(out, "\n");
            }
        }
        if (!rc && v->n_comments > shown) {
            rc = dm_buf_printf(out, "- " ELLIPSIS " %zu more\n", v->n_comments - shown);
        }
    }
    if (!rc && findings && findings->len + findings->dropped > 0) {
        size_t shown = 0;
        rc = dm_buf_puts(out, "\n#### Findings\n\n| Location | Rule | Kind | Severity |\n"
                              "| --- | --- | --- | --- |\n");
        /* Highest severity first (so the cap keeps the worst), scan order within one. */
        for (int sev = DM_SEVERITY_CRITICAL; sev >= DM_SEVERITY_LOW && !rc; sev--) {
            for (size_t i = 0; i < findings->len && shown < MD_FINDINGS && !rc; i++) {
                if ((int)findings->items[i].severity == sev) {
                    shown++;
                    rc = md_finding_row(out, &findings->items[i]);
                }
            }
        }
        if (!rc && findings->len + findings->dropped > shown) {
            rc = dm_buf_printf(out, "\n_" ELLIPSIS " and %zu more findings._\n",
                               findings->len + findings->dropped - shown);
        }
    }
    return rc;
}

static int put_cost(struct dm_buf *out, double usd)
{
    if (usd < 0) {
        return dm_buf_puts(out, "?");
    }
    return dm_buf_printf(out, "$%.4f", usd);
}

int dm_review_cost_markdown(struct dm_buf *out, long long total_prompt_tokens,
                            long long total_completion_tokens, double total_cost_usd,
                            const struct dm_review_cost_row *rows, size_t n_rows)
{
    size_t shown = n_rows <= DM_REVIEW_COST_ROWS ? n_rows : DM_REVIEW_COST_ROWS - 1;
    int rc = dm_buf_printf(out, "**Total**: %lld tokens (%lld prompt + %lld completion), ",
                           total_prompt_tokens + total_completion_tokens, total_prompt_tokens,
                           total_completion_tokens);

    if (!rc) {
        rc = put_cost(out, total_cost_usd);
    }
    if (!rc) {
        rc = dm_buf_puts(out, "\n");
    }
    if (!rc && n_rows) {
        rc = dm_buf_puts(out, "\n| Step | Model | Prompt | Completion | Cost |\n"
                              "| --- | --- | ---: | ---: | ---: |\n");
    }
    for (size_t i = 0; i < shown && !rc; i++) {
        rc = dm_buf_puts(out, "| `");
        if (!rc) {
            rc = put_md_path(out, rows[i].label ? rows[i].label : "?", MD_PATH_BYTES);
        }
        if (!rc) {
            rc = dm_buf_puts(out, "` | ");
        }
        if (!rc) {
            rc = rows[i].model && *rows[i].model ? put_md_text(out, rows[i].model, MD_PATH_BYTES)
                                                 : dm_buf_puts(out, "-");
        }
        if (!rc) {
            rc = dm_buf_printf(out, " | %lld | %lld | ", rows[i].prompt_tokens,
                               rows[i].completion_tokens);
        }
        if (!rc) {
            rc = put_cost(out, rows[i].cost_usd);
        }
        if (!rc) {
            rc = dm_buf_puts(out, " |\n");
        }
    }
    if (!rc && shown < n_rows) {
        long long pt = 0;
        long long ct = 0;
        double usd = 0;
        for (size_t i = shown; i < n_rows; i++) {
            pt += rows[i].prompt_tokens;
            ct += rows[i].completion_tokens;
            usd = (usd < 0 || rows[i].cost_usd < 0) ? -1 : usd + rows[i].cost_usd;
        }
        rc = dm_buf_printf(out, "| " ELLIPSIS " %zu more | | %lld | %lld | ", n_rows - shown, pt,
                           ct);
        if (!rc) {
            rc = put_cost(out, usd);
        }
        if (!rc) {
            rc = dm_buf_puts(out, " |\n");
        }
    }
    return rc;
}
