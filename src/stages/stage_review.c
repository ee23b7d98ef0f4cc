/*
 * stage_review: the review stage. The rule scan (rules and secrets, plus the validation
 * warnings for the PR body) runs over every file; secrets block the job outright; the rule
 * verdict decides unless a reviewer model is configured, in which case the model's verdict is
 * combined with it (the stricter wins). Comments from the model may start one revise round:
 * the commented files go through the generator again, then are scanned again and the kept
 * verdict decides. A reject fails the job; a pause is recorded for the gate.
 *
 * Before any verdict, and again after a revise round, the whole change is checked in its
 * repository (stage_check.c: type-check, migration replay, repair rounds); a change that stays
 * broken fails the job naming file:line. The verification summary is recorded with the review
 * (job hash field "verification").
 *
 * Owns struct review_state (the verdicts and the reviewer's metered call) and struct scan_state
 * (the scan's findings and warnings, which the gate and the PR body reuse). Loop thread only.
 */
#include "dream/core/log.h"
#include "dream/domain/editguard.h"
#include "dream/domain/prompt.h"

#include "stage.h"
#include "stage_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_spec_doc(const struct pjob *pj, size_t i)
{
    return pj->plan->items[i].kind == DM_PLAN_KIND_SPEC;
}

int stage_scan(struct pjob *pj, struct dm_error *err)
{
    int rc = 0;

    if (pj->scan.done) {
        return 0;
    }
    dm_findings_free(&pj->scan.findings);
    dm_findings_init(&pj->scan.findings);
    dm_validate_warnings_free(&pj->scan.warnings);
    for (size_t i = 0; i < pj->nfiles && !rc; i++) {
        struct gen_file *f = &pj->files[i];
        if (!f->content) {
            rc = dm_error_set(err, DM_ERR_TRANSIENT, "%s was never generated",
                              pj->plan->items[i].path);
            break;
        }
        /* The spec document is prose the producer wrote: only secrets matter there. */
        rc =
            dm_safety_scan(&pj->scan.findings, pj->plan->items[i].path, f->content, f->len,
                           is_spec_doc(pj, i) ? DM_SAFETY_RULES_SECRETS : DM_SAFETY_RULES_ALL, err);
        if (!rc && !is_spec_doc(pj, i)) {
            int w =
                dm_validate_warn(&pj->scan.warnings, pj->plan->items[i].path, f->content, f->len);
            rc = w < 0 ? w : 0;
        }
        /* An edit that removes what the base had (allowed because the spec asks for it) is a
         * destructive finding: the gate parks it for a human. */
        if (!rc && pj->plan->items[i].kind == DM_PLAN_KIND_EDIT && pj->repo) {
            const struct dm_repo_text *base = dm_repo_find(pj->repo, pj->plan->items[i].path);
            if (base) {
                rc = dm_editguard_flag(&pj->scan.findings, pj->plan->items[i].path, base->content,
                                       base->len, f->content, f->len, 0, err);
            }
        }
    }
    pj->scan.done = rc == 0;
    return rc;
}

/* The review is decided (v is one of the review state's verdicts): record it, then reject
 * (fail), pause (the gate parks) or proceed. */
static void review_decided(struct pjob *pj, const struct dm_review_verdict *v)
{
    const char *verification = stage_check_verification(pj);
    const char *fields[] = {"review", dm_review_decision_name(v->decision), "verification",
                            verification};
    struct dm_job_write w = {.fields = fields, .n_fields = verification ? 4 : 2};
    struct dm_error err;

    pj->review.decided = v;
    dm_info("pipeline", pj->job->id, "review: %s (risk %s, by %s%s)",
            dm_review_decision_name(v->decision), dm_severity_name(v->risk),
            (v->sources & DM_REVIEW_BY_MODEL) ? "model" : "",
            (v->sources & DM_REVIEW_BY_RULES)
                ? ((v->sources & DM_REVIEW_BY_MODEL) ? "+rules" : "rules")
                : "");
    if (v->decision == DM_REVIEW_REJECT) {
        dm_error_set(&err, DM_ERR_UNSAFE, "review rejected the build (risk %s): %s",
                     dm_severity_name(v->risk), v->summary ? v->summary : "");
        stage_check_forget(pj);
        stage_finish(pj, DM_ERR_UNSAFE, &err);
        return;
    }
    /* The write copies the verification, and the job keeps it for the PR body (a resumed job
     * reads it back from the hash): the check's state can go. */
    if (verification) {
        char *copy = strdup(verification);
        if (copy) {
            free(pj->job->verification);
            pj->job->verification = copy;
        }
    }
    stage_record_finish(pj, &w, 0, "could not record the review");
    stage_check_forget(pj);
}

/* The scan of the current files and its secrets gate; 0 when the review may go on (else the
 * stage was ended). */
static int scan_gate(struct pjob *pj)
{
    struct dm_error err;
    char *summary;
    size_t secrets;

    if (stage_scan(pj, &err)) {
        stage_check_forget(pj);
        stage_finish(pj, err.code ? err.code : DM_ERR_INVALID, &err);
        return -1;
    }
    secrets = dm_findings_count(&pj->scan.findings, DM_FINDING_SECRET);
    if (secrets) {
        /* Blocked outright; the message names where, never what. */
        summary = dm_findings_summary(&pj->scan.findings, 5);
        dm_error_set(&err, DM_ERR_UNSAFE,
                     "generated files contain %zu secret(s); nothing is pushed: %s", secrets,
                     summary ? summary : "");
        free(summary);
        stage_check_forget(pj);
        stage_finish(pj, DM_ERR_UNSAFE, &err);
        return -1;
    }
    return 0;
}

/* The check of the revised files came back: the kept verdict decides. */
static void on_revise_checked(struct pjob *pj, int rc, const struct dm_error *err)
{
    if (rc) {
        stage_check_forget(pj);
        stage_finish(pj, rc, err);
        return;
    }
    if (scan_gate(pj)) {
        return;
    }
    review_decided(pj, &pj->review.verdict);
}

/* The revise round is over: scan the new files, check the whole change again, then the kept
 * verdict decides. */
static void revise_done(struct pjob *pj)
{
    pj->scan.done = 0;
    if (scan_gate(pj)) {
        return;
    }
    stage_check_run(pj, on_revise_checked);
}

/* Prepares one file of the revise round (its generation system message, the reviewer's
 * comments as the user message) and announces it. Returns 1 when it was prepared. */
static int revise_file(struct pjob *pj, size_t i, const char *path)
{
    struct gen_file *f = &pj->files[i];
    struct dm_prompt *prompt = NULL;
    struct dm_event_extra x = {.step = path, .path = path};
    struct dm_job_write w = {.status = "writing", .extra = &x};
    struct dm_error err;
    char *user = NULL;
    char msg[300];

    if (dm_prompt_build_repo(&prompt, pj->p->prompts, pj->spec, pj->plan, i, pj->repo, &err) ||
        dm_review_revise_prompt(&user, &pj->review.verdict, path, f->content, f->len, &err)) {
        dm_prompt_free(prompt);
        free(user);
        dm_warn("pipeline", pj->job->id, "cannot revise %s: %s", path, err.msg);
        return 0;
    }
    free(f->system);
    free(f->user);
    f->system = prompt->system;
    f->user = user;
    prompt->system = NULL;
    dm_prompt_free(prompt);
    f->state = F_TODO;
    f->ok = 0;
    f->repairs = 0;
    snprintf(msg, sizeof(msg), "revising %s after review", path);
    w.message = msg;
    stage_emit(pj, &w);
    return 1;
}

/* One revise round: each file the reviewer commented on is generated again from its comments,
 * through the generation machinery (budget, validation, repair, checkpoint). */
static void start_revise(struct pjob *pj)
{
    const char *paths[DM_REVIEW_COMMENTS_MAX];
    size_t n = dm_review_files_to_revise(&pj->review.verdict, paths, DM_REVIEW_COMMENTS_MAX);
    int started = 0;

    if (n > DM_REVIEW_COMMENTS_MAX) {
        n = DM_REVIEW_COMMENTS_MAX;
    }
    for (size_t k = 0; k < n; k++) {
        for (size_t i = 0; i < pj->nfiles; i++) {
            if (!is_spec_doc(pj, i) && strcmp(pj->plan->items[i].path, paths[k]) == 0) {
                started += revise_file(pj, i, paths[k]);
            }
        }
    }
    if (!started) {
        review_decided(pj, &pj->review.verdict);
        return;
    }
    dm_info("pipeline", pj->job->id, "revise round: %d file(s)", started);
    pj->review.revised = 1;
    pj->gen.round_done = revise_done;
    gen_progress(pj);
}

/* The reviewer model answered (or failed): combine with the rules, or fall back to them. */
static void on_review_done(struct metered *mc, int rc, struct dm_llm_result *res,
                           const struct dm_error *err)
{
    struct pjob *pj = mc->pj;
    struct review_state *rs = &pj->review;
    struct dm_review_verdict model = DM_REVIEW_VERDICT_INIT;
    struct dm_review_verdict final = DM_REVIEW_VERDICT_INIT;
    struct dm_review_file *files;
    struct dm_error perr;
    size_t n = 0;

    if (metered_interrupted(pj, rc, "review")) {
        stage_check_forget(pj);
        return;
    }
    files = calloc(pj->nfiles + 1, sizeof(*files));
    for (size_t i = 0; files && i < pj->nfiles; i++) {
        files[n].path = pj->plan->items[i].path;
        files[n].content = pj->files[i].content;
        files[n].len = pj->files[i].len;
        n++;
    }
    if (rc) {
        dm_warn("pipeline", pj->job->id, "reviewer model failed (%s); the rules decide",
                err && err->msg[0] ? err->msg : dm_err_name(rc));
        review_decided(pj, &rs->rules);
    } else if (!files || dm_review_parse(&model, res->content, res->content_len, files, n, &perr)) {
        dm_warn("pipeline", pj->job->id,
                "reviewer model answered something unusable (%s); the "
                "rules decide",
                files ? perr.msg : "out of memory");
        review_decided(pj, &rs->rules);
    } else if (dm_review_combine(&final, &model, &rs->rules, &perr)) {
        review_decided(pj, &rs->rules);
    } else {
        /* Kept: a revise round does not ask the reviewer again, and the PR body shows it. */
        dm_review_verdict_free(&rs->verdict);
        rs->verdict = final;
        dm_review_verdict_init(&final);
        if (rs->verdict.decision != DM_REVIEW_REJECT && rs->verdict.n_comments > 0 &&
            pj->p->cfg->review_revise && !rs->revised) {
            start_revise(pj);
        } else {
            review_decided(pj, &rs->verdict);
        }
    }
    free(files);
    dm_review_verdict_free(&model);
    dm_review_verdict_free(&final);
}

/* Asks the reviewer model; returns 0 when the call started (its completion decides) or the
 * stage already ended (a model without a price in a job with a dollar budget). */
static int ask_reviewer(struct pjob *pj)
{
    struct dm_pipeline *p = pj->p;
    struct dm_review_prompt *prompt = NULL;
    struct dm_review_file *files;
    struct dm_llm_request r;
    enum metered_step step;
    struct dm_error err;
    size_t n = 0;
    int rc;

    if (!p->cfg->review_model || !*p->cfg->review_model) {
        return DM_ERR_UNAVAILABLE;
    }
    if (p->llm_in_flight >= p->cfg->max_requests) {
        dm_warn("pipeline", pj->job->id,
                "reviewer model not asked: %d requests in flight (the cap); the rules decide",
                p->llm_in_flight);
        return DM_ERR_UNAVAILABLE;
    }
    files = calloc(pj->nfiles + 1, sizeof(*files));
    if (!files) {
        return DM_ERR_NOMEM;
    }
    for (size_t i = 0; i < pj->nfiles; i++) {
        if (!is_spec_doc(pj, i)) {
            files[n].path = pj->plan->items[i].path;
            files[n].content = pj->files[i].content;
            files[n].len = pj->files[i].len;
            n++;
        }
    }
    rc = dm_review_prompt_build(&prompt, pj->plan->title, files, n, &pj->scan.findings, &err);
    free(files);
    if (rc) {
        return rc;
    }
    /* The review counts against the budget like any other call. */
    memset(&r, 0, sizeof(r));
    r.model = p->cfg->review_model;
    r.system = prompt->system;
    r.user = prompt->user;
    r.max_tokens = DM_REVIEW_MAX_TOKENS;
    r.temperature = DM_REVIEW_TEMPERATURE;
    r.stream = 0;
    r.response_format = dm_review_response_format();
    r.job_id = pj->job->id;
    rc = metered_start(&pj->review.call, pj, &r, on_review_done, NULL, &step, &err);
    dm_review_prompt_free(prompt);
    if (rc && step == METERED_PRICE) {
        /* A dollar budget and a reviewer model without a price: fail loudly rather than let
         * the rules decide behind the user's back. */
        stage_check_forget(pj);
        stage_finish(pj, DM_ERR_INVALID, &err);
        return 0;
    }
    if (rc && step != METERED_START) {
        dm_warn("pipeline", pj->job->id, "reviewer model not asked (%s); the rules decide",
                err.msg);
    }
    return rc;
}

/* The rule verdict covers the review rules only; destructive operations are the gate's: they
 * park the job for a human instead of rejecting it. */
static int rule_verdict(struct pjob *pj, struct dm_error *err)
{
    const struct dm_findings *all = &pj->scan.findings;
    struct dm_findings review_only;
    int rc;

    /* A borrowing view: the items are shallow copies, only the array is ours to free. */
    memset(&review_only, 0, sizeof(review_only));
    review_only.items = calloc(all->len + 1, sizeof(*review_only.items));
    if (!review_only.items) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    review_only.max_severity = -1;
    for (size_t i = 0; i < all->len; i++) {
        const struct dm_finding *f = &all->items[i];
        if (f->kind == DM_FINDING_REVIEW) {
            review_only.items[review_only.len++] = *f;
            review_only.count[DM_FINDING_REVIEW]++;
            if ((int)f->severity > review_only.max_severity) {
                review_only.max_severity = (int)f->severity;
            }
        }
    }
    review_only.cap = all->len + 1;
    dm_review_verdict_free(&pj->review.rules);
    rc = dm_review_from_findings(&pj->review.rules, &review_only, err);
    free(review_only.items);
    return rc;
}

/* The whole change was checked in its repository (and repaired where it had to be): scan
 * what may have been regenerated, then the rules and the reviewer model decide. */
static void on_checked(struct pjob *pj, int rc, const struct dm_error *err)
{
    struct dm_error rerr;

    if (rc) {
        stage_check_forget(pj);
        stage_finish(pj, rc, err);
        return;
    }
    if (scan_gate(pj)) {
        return;
    }
    if (rule_verdict(pj, &rerr)) {
        stage_check_forget(pj);
        stage_finish(pj, rerr.code ? rerr.code : DM_ERR_INVALID, &rerr);
        return;
    }
    if (ask_reviewer(pj) == 0) {
        return;
    }
    review_decided(pj, &pj->review.rules);
}

static void review_loaded(struct pjob *pj)
{
    if (scan_gate(pj)) {
        return;
    }
    /* Before any verdict: the change must compile and migrate in its repository. */
    stage_check_run(pj, on_checked);
}

int stage_review_run(struct dm_job *job)
{
    /* The repository context (pj->repo) when the base can be read: the check uses its commit
     * and its migrations folder; without it the check reads the base itself. */
    return stage_begin(job, LOAD_FILES | LOAD_REPO, review_loaded);
}
