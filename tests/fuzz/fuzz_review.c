/* libFuzzer target for review and planner: any model reply is either refused with
 * DM_ERR_INVALID or gives a verdict / plan that keeps the contracts: a decision and risk in
 * range, comments only on reviewed files, capped one-line texts, Markdown that renders; a plan
 * whose first item is the spec document and whose other paths all pass the safety path check,
 * within the file limit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dream/core/buf.h"
#include "dream/domain/planner.h"
#include "dream/domain/review.h"
#include "dream/domain/safety.h"
#include "dream/domain/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char spec_md[] = "# Todo API\n\n## API\n- GET /todos\n";

static void check_line(const char *s, size_t max)
{
    if (!s || strlen(s) > max) {
        abort();
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            abort();
        }
    }
}

static void fuzz_review(const char *reply, size_t size)
{
    static const struct dm_review_file files[] = {
        {"src/routes/todos.ts", "export const x = 1;\n", 20},
        {"migrations/todos.sql", "CREATE TABLE t (id INTEGER);\n", 29},
    };
    struct dm_review_verdict v = DM_REVIEW_VERDICT_INIT;
    struct dm_review_verdict r = DM_REVIEW_VERDICT_INIT;
    struct dm_review_verdict fin = DM_REVIEW_VERDICT_INIT;
    struct dm_buf md;
    struct dm_error err;
    int rc = dm_review_parse(&v, reply, size, files, 2, &err);

    if (rc != 0) {
        if (rc != DM_ERR_INVALID && rc != DM_ERR_NOMEM) {
            abort();
        }
        if (v.summary || v.comments) {
            abort();
        }
        return;
    }
    if ((unsigned)v.decision > DM_REVIEW_REJECT || (unsigned)v.risk > DM_SEVERITY_CRITICAL ||
        v.n_comments > DM_REVIEW_COMMENTS_MAX) {
        abort();
    }
    check_line(v.summary, DM_REVIEW_SUMMARY_MAX);
    for (size_t i = 0; i < v.n_comments; i++) {
        if (strcmp(v.comments[i].path, files[0].path) != 0 &&
            strcmp(v.comments[i].path, files[1].path) != 0) {
            abort();
        }
        check_line(v.comments[i].comment, DM_REVIEW_COMMENT_MAX);
        if (!*v.comments[i].comment) {
            abort();
        }
    }
    if (dm_review_from_findings(&r, NULL, &err) != 0 || dm_review_combine(&fin, &v, &r, &err)) {
        abort();
    }
    if (fin.decision < v.decision) {
        abort();
    }
    dm_buf_init(&md, 0);
    if (dm_review_markdown(&fin, NULL, &md) != 0) {
        abort();
    }
    dm_buf_free(&md);
    dm_review_verdict_free(&fin);
    dm_review_verdict_free(&r);
    dm_review_verdict_free(&v);
}

static void fuzz_planner(const char *reply, size_t size)
{
    static struct dm_spec *spec;
    struct dm_plan *p = NULL;
    char *notes = NULL;
    struct dm_error err;
    int rc;

    if (!spec && dm_spec_parse(&spec, spec_md, strlen(spec_md), NULL, &err) != 0) {
        abort();
    }
    rc = dm_planner_parse(&p, &notes, reply, size, spec, NULL, &err);
    if (rc != 0) {
        if ((rc != DM_ERR_INVALID && rc != DM_ERR_NOMEM) || p || notes) {
            abort();
        }
        return;
    }
    if (p->count < 2 || p->count > DM_SAFETY_DEFAULT_MAX_FILES ||
        p->items[0].kind != DM_PLAN_KIND_SPEC) {
        abort();
    }
    for (size_t i = 1; i < p->count; i++) {
        if (p->items[i].kind == DM_PLAN_KIND_SPEC ||
            dm_safety_check_path(p->items[i].path, NULL, 0, &err) != 0) {
            abort();
        }
        check_line(p->items[i].description, DM_PLANNER_DESC_MAX);
    }
    free(notes);
    dm_plan_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_review((const char *)data, size);
    fuzz_planner((const char *)data, size);
    return 0;
}
