/*
 * stage_pr: the pull request stage. Finds or opens the job's pull request on GitHub (forge),
 * with the body rendered by prbody from the plan (its files, their contract and the spec items
 * they cover, the detected stack), the spec, the scan's validation warnings, the review's verdict
 * and findings, the whole-change checks the review stage recorded (job->verification), and the
 * job's spend. Records `pr_url` and a `pr_open` event.
 * Dry runs and jobs whose pull request is already recorded pass at once.
 * Owns struct pr_state (the GitHub call in flight). Loop thread only.
 */
#include "dream/domain/prbody.h"
#include "dream/io/forge.h"

#include "stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_pr_done(void *arg, int rc, const struct dm_forge_pr *pr, const struct dm_error *err)
{
    struct pjob *pj = arg;
    struct dm_job *job = pj->job;
    char msg[600];

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
    free(job->pr_url);
    job->pr_url = strdup(pr->html_url);
    snprintf(msg, sizeof(msg), "pull request %s %s", pr->created ? "opened" : "found",
             pr->html_url);
    {
        const char *fields[] = {"pr_url", pr->html_url};
        struct dm_event_extra x = {.pr_url = pr->html_url, .branch = job->branch};
        struct dm_job_write w = {
            .status = "pr_open", .message = msg, .extra = &x, .fields = fields, .n_fields = 2};
        stage_record_finish(pj, &w, 0, "could not record the pull request");
    }
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
    body = dm_prbody_render(&parts);
    memset(&r, 0, sizeof(r));
    r.owner = req->repo_owner;
    r.repo = req->repo_name;
    r.head = job->branch ? job->branch : pj->plan->branch;
    r.base = req->base_branch;
    r.title = pj->plan->title;
    r.body = body;
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
