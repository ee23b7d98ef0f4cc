/*
 * stage_pr: the pull request stage. Finds or opens the job's pull request on GitHub (forge),
 * with the body rendered by prbody from the plan (its files, their contract and the spec items
 * they cover, the detected stack), the spec and its link (specUrl), the scan's validation
 * warnings, the review's verdict and findings, the whole-change checks the review stage recorded
 * (job->verification), and the job's spend; as a draft when the job's `draft` (else
 * DREAM_PR_DRAFT) says so. Then, one request at a time: the labels (job `labels`, else
 * DREAM_PR_LABELS), the reviewers (`reviewers`/`teamReviewers`, else DREAM_PR_REVIEWERS /
 * DREAM_PR_TEAM_REVIEWERS) and the `dreamd/verify` commit status on the pushed commit. A failure
 * of one of these is a `warning` event, not a failure of the job. Records `pr_url` and a
 * `pr_open` event.
 * Dry runs and jobs whose pull request is already recorded pass at once.
 * Owns struct pr_state (the GitHub call in flight, the pull request). Loop thread only.
 */
#include "dream/core/text.h"
#include "dream/domain/prbody.h"
#include "dream/io/forge.h"

#include "stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATUS_CONTEXT "dreamd/verify"
#define LIST_MAX 20

enum { STEP_LABELS = 0, STEP_REVIEWERS, STEP_STATUS, STEP_DONE };

/* A comma-separated setting as a list (borrowed pieces of buf). */
static size_t split(char *buf, size_t bufsize, const char *setting, const char **out)
{
    if (!setting || !*setting) {
        return 0;
    }
    snprintf(buf, bufsize, "%s", setting);
    return dm_text_split_list(buf, out, LIST_MAX);
}

/* The job's list when it carried one, else the setting's. */
static size_t pick(int set, char **job_list, size_t job_n, char *buf, size_t bufsize,
                   const char *setting, const char **out)
{
    if (set) {
        size_t n = job_n < LIST_MAX ? job_n : LIST_MAX;
        for (size_t i = 0; i < n; i++) {
            out[i] = job_list[i];
        }
        return n;
    }
    return split(buf, bufsize, setting, out);
}

static void pr_next(struct pjob *pj);

static void record_open(struct pjob *pj)
{
    struct dm_job *job = pj->job;
    char msg[600];
    const char *fields[] = {"pr_url", pj->pr.url};
    struct dm_event_extra x = {.pr_url = pj->pr.url, .branch = job->branch};
    struct dm_job_write w = {
        .status = "pr_open", .message = msg, .extra = &x, .fields = fields, .n_fields = 2};

    free(job->pr_url);
    job->pr_url = strdup(pj->pr.url);
    snprintf(msg, sizeof(msg), "pull request %s %s", pj->pr.created ? "opened" : "found",
             pj->pr.url);
    stage_record_finish(pj, &w, 0, "could not record the pull request");
}

static void on_post_done(void *arg, int rc, long http_status, const struct dm_error *err)
{
    struct pjob *pj = arg;
    char msg[700];

    (void)http_status;
    pj->pr.call = NULL;
    pj->outstanding--;
    if (!pj->job) {
        pjob_maybe_free(pj);
        return;
    }
    if (rc == DM_ERR_CANCELLED || rc == DM_ERR_FENCED) {
        stage_finish(pj, rc, err);
        return;
    }
    if (rc) {
        /* Labels, reviewers and the status do not decide the job: say so, go on. */
        struct dm_event_extra x = {.pr_url = pj->pr.url, .branch = pj->job->branch};
        struct dm_job_write w = {.status = "warning", .message = msg, .extra = &x};
        snprintf(msg, sizeof(msg), "%s", err ? err->msg : dm_err_name(rc));
        stage_emit(pj, &w);
    }
    pj->pr.step++;
    pr_next(pj);
}

static int post(struct pjob *pj, enum dm_forge_post_kind kind, const char *sha, char *body)
{
    const struct dm_jobreq *req = pj->job->req;
    struct dm_forge_post_request r;
    struct dm_error err;
    int rc;

    if (!body) {
        return DM_ERR_NOMEM;
    }
    memset(&r, 0, sizeof(r));
    r.kind = kind;
    r.owner = req->repo_owner;
    r.repo = req->repo_name;
    r.number = pj->pr.number;
    r.sha = sha;
    r.body = body;
    r.job_id = pj->job->id;
    r.on_done = on_post_done;
    r.arg = pj;
    rc = dm_forge_post(pj->p->forge, &r, &pj->pr.call, &err);
    free(body);
    if (rc) {
        return rc;
    }
    pj->outstanding++;
    return 0;
}

/* Starts the next request after the pull request opened, or records it when none is left. */
static void pr_next(struct pjob *pj)
{
    const struct dm_jobreq *req = pj->job->req;
    const struct dm_config *cfg = pj->p->cfg;
    const char *a[LIST_MAX], *b[LIST_MAX];
    char abuf[4096], bbuf[4096];
    size_t na, nb;

    for (; pj->pr.step < STEP_DONE; pj->pr.step++) {
        switch (pj->pr.step) {
        case STEP_LABELS:
            na = pick(req->labels_set, req->labels, req->n_labels, abuf, sizeof(abuf),
                      cfg->pr_labels, a);
            if (na && post(pj, DM_FORGE_LABELS, NULL, dm_forge_labels_json(a, na)) == 0) {
                return;
            }
            break;
        case STEP_REVIEWERS:
            na = pick(req->reviewers_set, req->reviewers, req->n_reviewers, abuf, sizeof(abuf),
                      cfg->pr_reviewers, a);
            nb = pick(req->team_reviewers_set, req->team_reviewers, req->n_team_reviewers, bbuf,
                      sizeof(bbuf), cfg->pr_team_reviewers, b);
            if ((na || nb) &&
                post(pj, DM_FORGE_REVIEWERS, NULL, dm_forge_reviewers_json(a, na, b, nb)) == 0) {
                return;
            }
            break;
        case STEP_STATUS: {
            /* The pushed commit: the one the push stage recorded. */
            const char *sha = pj->job->commit;
            char *desc;
            char *body;
            if (!sha || strlen(sha) != 40) {
                break;
            }
            desc = dm_prbody_status(pj->job->verification, pj->scan.warnings.count);
            body = desc ? dm_forge_status_json("success", STATUS_CONTEXT, desc, pj->pr.url) : NULL;
            free(desc);
            if (post(pj, DM_FORGE_STATUS, sha, body) == 0) {
                return;
            }
            break;
        }
        default:
            break;
        }
    }
    record_open(pj);
}

static void on_pr_done(void *arg, int rc, const struct dm_forge_pr *pr, const struct dm_error *err)
{
    struct pjob *pj = arg;
    struct dm_job *job = pj->job;

    pj->pr.call = NULL;
    pj->outstanding--;
    if (!job) {
        pjob_maybe_free(pj);
        return;
    }
    if (rc) {
        stage_finish(pj, rc, err);
        return;
    }
    free(pj->pr.url);
    pj->pr.url = strdup(pr->html_url);
    if (!pj->pr.url) {
        struct dm_error e;
        dm_error_set(&e, DM_ERR_NOMEM, "out of memory");
        stage_finish(pj, DM_ERR_NOMEM, &e);
        return;
    }
    pj->pr.number = pr->number;
    pj->pr.created = pr->created;
    pj->pr.step = STEP_LABELS;
    pr_next(pj);
}

static void pr_loaded(struct pjob *pj)
{
    struct dm_job *job = pj->job;
    const struct dm_jobreq *req = job->req;
    struct dm_forge_pr_request r;
    struct dm_prbody_cost cost;
    struct dm_prbody parts;
    struct dm_error err;
    char *body;
    int rc;

    if (job->dry_run || job->pr_url) {
        stage_finish_later(pj);
        return;
    }
    if (stage_scan(pj, &err)) {
        stage_finish(pj, err.code ? err.code : DM_ERR_INVALID, &err);
        return;
    }
    cost.tokens = dm_budget_tokens_used(&pj->budget);
    cost.usd = dm_budget_cost_usd(&pj->budget);
    cost.budget_tokens = req->budget_tokens;
    cost.budget_usd = req->budget_dollars;
    memset(&parts, 0, sizeof(parts));
    parts.plan = pj->plan;
    parts.spec = pj->spec;
    parts.validation = &pj->scan.warnings;
    /* Only a review decided by this process is shown (a resumed job has just the decision). */
    parts.review = pj->review.decided;
    parts.findings = &pj->scan.findings;
    parts.cost = &cost;
    parts.job_id = job->id;
    parts.verification = job->verification; /* the review stage's whole-change checks */
    parts.spec_url = req->spec_url;
    body = dm_prbody_render(&parts);
    memset(&r, 0, sizeof(r));
    r.owner = req->repo_owner;
    r.repo = req->repo_name;
    r.head = job->branch ? job->branch : pj->plan->branch;
    r.base = req->base_branch;
    r.title = pj->plan->title;
    r.body = body;
    r.draft = req->draft >= 0 ? req->draft : pj->p->cfg->pr_draft;
    r.job_id = job->id;
    r.on_done = on_pr_done;
    r.arg = pj;
    rc = dm_forge_open_pr(pj->p->forge, &r, &pj->pr.call, &err);
    free(body);
    if (rc) {
        stage_finish(pj, err.code ? err.code : DM_ERR_INVALID, &err);
        return;
    }
    pj->outstanding++;
}

int stage_pr_run(struct dm_job *job)
{
    return stage_begin(job, LOAD_FILES, pr_loaded);
}
