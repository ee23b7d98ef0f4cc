/*
 * review: the verdict side of the review stage — parsing the reviewer's verdict, the rule
 * verdict, the combination policy, and the revise round's files (contract in
 * include/dream/domain/review.h; the reviewer's request is review_prompt.c). Owns the verdicts and
 * texts it returns; no state of its own; any thread.
 */
#include "dream/domain/review.h"
#include "dream/core/text.h"
#include "dream/domain/prompt.h"
#include "dream/domain/reply.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WITHHELD "(withheld: the reviewer quoted a secret)"
#define NO_SUMMARY "(no summary)"

#define SUMMARY_RULES 12

static const char *const decision_names[] = {"proceed", "pause", "reject"};

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
