/*
 * pipeline: the real stages of a build job (see include/dream/stages/pipeline.h). This file owns
 * the shared services (creation and close), the stage ops table, and the path every stage
 * takes: stage_begin() (load what the stage needs, continue on a later loop turn),
 * stage_finish() (exactly once, after all of the stage's work came back), the writes that record
 * a stage's results, cancel and release. Each stage's own work is in stage_<name>.c; the state
 * they share is described in stage.h.
 * Loop thread only; git runs on the threadpool through gitjob with copied inputs.
 */
#include "dream/stages/pipeline.h"
#include "dream/core/log.h"
#include "dream/domain/price.h"
#include "dream/io/models.h"
#include "dream/io/fsutil.h"
#include "dream/domain/prompt.h"
#include "dream/io/callback.h"
#include "dream/io/forge.h"
#include "dream/io/ghapp.h"
#include "dream/io/gitjob.h"
#include "dream/io/http.h"
#include "dream/io/validate_run.h"

#include "stage.h"
#include "stage_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- ending a stage ---- */

void stage_finish(struct pjob *pj, int rc, const struct dm_error *err)
{
    struct dm_job *job = pj->job;
    struct dm_error retry;
    if (!job || !pj->stage_active) {
        return;
    }
    if (rc == DM_ERR_AUTH && job->stage == DM_STAGE_PUSH && dm_ghapp_is_app(pj->p->gh) &&
        !pj->token_refused) {
        /* The remote refused a GitHub App token that had not expired (revoked): forget it; the
         * retry fetches another. Once per job: a refusal with a new token is final. */
        pj->token_refused = 1;
        dm_ghapp_invalidate(pj->p->gh,
                            dm_ghapp_peek(pj->p->gh, job->req->repo_owner, job->req->repo_name));
        dm_error_set(&retry, DM_ERR_TRANSIENT, "%s (retrying with a new installation token)",
                     err ? err->msg : "authentication failed");
        rc = DM_ERR_TRANSIENT;
        err = &retry;
    }
    pj->stage_active = 0;
    pj->gen.failed = 0;
    pj->cancelling = 0;
    if (rc != 0 && rc != DM_JOB_PARKED) {
        /* A retried stage starts from the checkpoint: files that were not checkpointed (cut
         * short, invalid, mid-revision) are dropped and everything is scanned again. */
        for (size_t i = 0; i < pj->nfiles; i++) {
            struct gen_file *f = &pj->files[i];
            if (!f->ok) {
                free(f->content);
                f->content = NULL;
                f->len = 0;
                f->state = F_TODO;
            }
        }
        pj->files_loaded = 0;
        pj->scan.done = 0;
        pj->gen.round_done = NULL;
    }
    dm_job_stage_done(job, rc, err);
}

static void on_finish_turn(struct dm_job *job)
{
    stage_finish(job->stage_data, 0, NULL);
}

void stage_finish_later(struct pjob *pj)
{
    struct dm_error err;
    if (pj->job->io->after(pj->job, 0, on_finish_turn)) {
        dm_error_set(&err, DM_ERR_IO, "cannot schedule the end of stage %s",
                     dm_stage_name(pj->job->stage));
        stage_finish(pj, DM_ERR_IO, &err);
    }
}

/* ---- writes ---- */

void stage_budget_fields(const struct pjob *pj, char *tokens, size_t tn, char *cost, size_t cn)
{
    snprintf(tokens, tn, "%lld", dm_budget_tokens_used(&pj->budget));
    snprintf(cost, cn, "%.6f", dm_budget_cost_usd(&pj->budget));
}

void stage_emit(struct pjob *pj, const struct dm_job_write *w)
{
    if (!pj->job || pj->job->fenced) {
        return;
    }
    pj->job->io->write(pj->job, w, NULL);
}

void stage_record_spend(struct pjob *pj, const char *model)
{
    char tokens[32], cost[48], reserved[32];
    const char *fields[] = {"tokens", tokens, "cost", cost, "reserved", reserved, "model", model};
    struct dm_job_write w = {.fields = fields, .n_fields = model && *model ? 8 : 6};

    if (!pj->job || pj->job->fenced) {
        return;
    }
    stage_budget_fields(pj, tokens, sizeof(tokens), cost, sizeof(cost));
    /* Worst case still held by calls in flight (DESIGN's `reserved`). */
    snprintf(reserved, sizeof(reserved), "%lld", pj->budget.reserved_tokens);
    pj->job->tokens = dm_budget_tokens_used(&pj->budget);
    pj->job->cost = dm_budget_cost_usd(&pj->budget);
    stage_emit(pj, &w);
}

static void on_stage_written(struct dm_job *job, int rc, int cancel)
{
    struct pjob *pj = job->stage_data;
    struct dm_error err;
    if (cancel) {
        job->cancel_requested = 1;
    }
    if (rc) {
        dm_error_set(&err, rc, "could not record the stage's result");
        stage_finish(pj, rc, &err);
        return;
    }
    stage_finish(pj, 0, NULL);
}

static void on_park_written(struct dm_job *job, int rc, int cancel)
{
    struct pjob *pj = job->stage_data;
    struct dm_error err;
    if (rc) {
        dm_error_set(&err, rc, "could not park the job");
        stage_finish(pj, rc, &err);
        return;
    }
    if (cancel || job->cancel_requested) {
        /* A cancel that raced the park: end it now rather than leave a cancelled job parked. */
        const char *fields[] = {"status", "cancelled", "error", "cancelled while parking"};
        struct dm_event_extra x = {.error = "cancelled while parking", .step = "gate"};
        struct dm_job_write w = {.status = "cancelled",
                                 .message = "cancelled while parking",
                                 .extra = &x,
                                 .fields = fields,
                                 .n_fields = 4};
        w.flags = DM_JOB_WRITE_UNPARK | DM_JOB_WRITE_TERMINAL;
        stage_emit(pj, &w);
        job->final_status = "cancelled";
    }
    stage_finish(pj, DM_JOB_PARKED, NULL);
}

void stage_record_finish(struct pjob *pj, const struct dm_job_write *w, int done_rc,
                         const char *failed_msg)
{
    struct dm_job *job = pj->job;
    struct dm_error err;
    int rc = job->io->write(job, w, done_rc == DM_JOB_PARKED ? on_park_written : on_stage_written);
    if (rc) {
        /* Lost the job: nothing more to write. Anything else may go through on a retry. */
        rc = rc == DM_ERR_FENCED ? rc : DM_ERR_TRANSIENT;
        dm_error_set(&err, rc, "%s", failed_msg);
        stage_finish(pj, rc, &err);
    }
}

void stage_git_opts(const struct pjob *pj, struct dm_git_opts *opts)
{
    const struct dm_config *cfg = pj->p->cfg;
    struct dm_git_opts init = DM_GIT_OPTS_INIT;

    *opts = init;
    opts->data_dir = cfg->data_dir;
    opts->url_template = cfg->git_url;
    /* The token of this repository: fresh, as stage_begin made sure (ghapp.h). */
    opts->token = dm_ghapp_peek(pj->p->gh, pj->job->req->repo_owner, pj->job->req->repo_name);
    opts->author_name = cfg->git_author_name;
    opts->author_email = cfg->git_author_email;
}

/* ---- starting a stage ---- */

static struct pjob *pjob_of(struct dm_job *job)
{
    struct pjob *pj = job->stage_data;
    if (!pj) {
        pj = calloc(1, sizeof(*pj));
        if (!pj) {
            return NULL;
        }
        pj->p = job->stages->ctx;
        pj->job = job;
        dm_findings_init(&pj->scan.findings);
        dm_validate_warnings_init(&pj->scan.warnings);
        dm_review_verdict_init(&pj->review.rules);
        dm_review_verdict_init(&pj->review.verdict);
        job->stage_data = pj;
    }
    return pj;
}

/* The spec and the budget: what every stage needs, the plan stage included. */
static int load_spec(struct pjob *pj, struct dm_error *err)
{
    const struct dm_jobreq *req = pj->job->req;

    if (!pj->spec && dm_spec_parse(&pj->spec, req->spec_markdown, req->spec_len, NULL, err)) {
        return dm_error_wrap(err, "specMarkdown");
    }
    if (!pj->budget_ready) {
        dm_budget_init(&pj->budget, req->budget_tokens, req->budget_dollars);
        dm_budget_restore(&pj->budget, pj->job->tokens, pj->job->cost);
        pj->budget_ready = 1;
    }
    return 0;
}

int stage_load_plan(struct pjob *pj, struct dm_error *err)
{
    struct dm_job *job = pj->job;
    const struct dm_jobreq *req = job->req;
    int rc;

    if (pj->files) {
        return 0;
    }
    rc = load_spec(pj, err);
    if (rc) {
        return rc;
    }
    if (!pj->plan) {
        if (job->plan_json) {
            rc = dm_plan_from_json(&pj->plan, job->plan_json, err);
        } else {
            rc = dm_plan_build(&pj->plan, pj->spec, req->branch_prefix, pj->repo, err);
        }
        if (rc) {
            return dm_error_wrap(err, "plan");
        }
    }
    pj->nfiles = pj->plan->count;
    pj->files = calloc(pj->nfiles ? pj->nfiles : 1, sizeof(*pj->files));
    if (!pj->files) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < pj->nfiles; i++) {
        pj->files[i].pj = pj;
        pj->files[i].index = i;
        if (pj->plan->items[i].kind == DM_PLAN_KIND_SPEC) {
            /* The spec document is the spec itself: no model, nothing to pay. */
            pj->files[i].content = strdup(req->spec_markdown);
            pj->files[i].len = req->spec_len;
            pj->files[i].state = F_DONE;
            pj->files[i].ok = 1;
        }
    }
    return 0;
}

/* The stage's loading is over: its work starts, unless a cancel came meanwhile. */
static void stage_continue(struct pjob *pj)
{
    void (*next)(struct pjob *) = pj->next;
    struct dm_error err;

    pj->next = NULL;
    if (pj->job->cancel_requested || pj->cancelling) {
        dm_error_set(&err, DM_ERR_CANCELLED, "cancelled before stage %s began its work",
                     dm_stage_name(pj->job->stage));
        stage_finish(pj, DM_ERR_CANCELLED, &err);
        return;
    }
    if (next) {
        next(pj);
    }
}

static void on_next_turn(struct dm_job *job)
{
    stage_continue(job->stage_data);
}

/* ---- the base of the change (LOAD_REPO): read once per commit, shared ---- */

void repo_cached_unref(struct repo_cached *c)
{
    if (c && --c->refs == 0) {
        dm_repo_free(c->repo);
        free(c);
    }
}

/* The cached base of commit, moved to the most recently used end; NULL when not cached. */
static struct repo_cached *cache_find(struct dm_pipeline *p, const char *commit)
{
    for (size_t i = 0; i < p->n_repo_cache; i++) {
        struct repo_cached *c = p->repo_cache[i];
        if (strcmp(c->repo->commit, commit) == 0) {
            memmove(&p->repo_cache[i], &p->repo_cache[i + 1],
                    (p->n_repo_cache - i - 1) * sizeof(p->repo_cache[0]));
            p->repo_cache[p->n_repo_cache - 1] = c;
            return c;
        }
    }
    return NULL;
}

/* Keeps c (one more reference) as the most recently used, evicting the least recently used
 * when full (the jobs holding it keep their copy). */
static void cache_put(struct dm_pipeline *p, struct repo_cached *c)
{
    if (p->n_repo_cache == REPO_CACHE_COMMITS) {
        repo_cached_unref(p->repo_cache[0]);
        memmove(&p->repo_cache[0], &p->repo_cache[1],
                (REPO_CACHE_COMMITS - 1) * sizeof(p->repo_cache[0]));
        p->n_repo_cache--;
    }
    c->refs++;
    p->repo_cache[p->n_repo_cache++] = c;
}

static void repo_hold(struct pjob *pj, struct repo_cached *c)
{
    c->refs++;
    pj->repo_ref = c;
    pj->repo = c->repo;
}

static int start_repo_read(struct pjob *pj, int use_cache, struct dm_error *err);

static void on_repo_read(void *arg, int rc, struct dm_gitjob_repo *res, const struct dm_error *gerr)
{
    struct pjob *pj = arg;
    struct dm_pipeline *p = pj->p;
    struct repo_cached *c;
    struct dm_error err;
    char *stack;

    err.msg[0] = '\0';
    pj->repo_read = NULL;
    pj->outstanding--;
    if (!pj->job) {
        pjob_maybe_free(pj);
        return;
    }
    const struct dm_jobreq *req = pj->job->req;
    if (rc) {
        if (rc == DM_ERR_CANCELLED || pj->cancelling) {
            dm_error_set(&err, DM_ERR_CANCELLED, "reading the base cancelled");
            stage_finish(pj, DM_ERR_CANCELLED, &err);
            return;
        }
        if (rc != DM_ERR_AUTH && rc != DM_ERR_INVALID && rc != DM_ERR_NOMEM) {
            rc = DM_ERR_TRANSIENT;
        }
        dm_error_set(&err, rc, "cannot read the base %s/%s@%s: %s", req->repo_owner, req->repo_name,
                     req->base_branch, gerr->msg);
        stage_finish(pj, rc, &err);
        return;
    }
    if (res->cached) {
        c = cache_find(p, res->commit);
        if (!c) {
            /* Evicted while the commit was being resolved: read it after all. */
            if (pj->repo_rereads++ < 1 && !start_repo_read(pj, 0, &err)) {
                return;
            }
            if (!err.msg[0]) {
                dm_error_set(&err, DM_ERR_TRANSIENT, "the base's cache changed under the read");
            }
            stage_finish(pj, DM_ERR_TRANSIENT, &err);
            return;
        }
        p->repo_hits++;
        dm_info("pipeline", pj->job->id, "base %s/%s@%.8s from the cache (hit %llu, %llu read)",
                req->repo_owner, req->repo_name, res->commit, p->repo_hits, p->repo_reads);
        repo_hold(pj, c);
        stage_continue(pj);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        dm_error_set(&err, DM_ERR_NOMEM, "out of memory");
        stage_finish(pj, DM_ERR_NOMEM, &err);
        return;
    }
    c->refs = 1; /* this function's own, dropped below */
    c->repo = res->repo;
    res->repo = NULL;
    stack = dm_stack_describe(&c->repo->stack);
    if (res->empty) {
        dm_info("pipeline", pj->job->id,
                "base %s/%s@%s is empty or has no such branch: default conventions (%s)",
                req->repo_owner, req->repo_name, req->base_branch, stack ? stack : "?");
    } else {
        p->repo_reads++;
        dm_info("pipeline", pj->job->id,
                "base %s/%s@%.8s read: %zu files in tree%s, %zu read, %zu bytes, %zu skipped, "
                "stack %s, entry %s, in %.0f ms",
                req->repo_owner, req->repo_name, c->repo->commit, c->repo->n_tree,
                c->repo->tree_truncated ? " (truncated)" : "", c->repo->n_files,
                dm_repo_bytes(c->repo), res->skipped, stack ? stack : "?",
                c->repo->stack.entry ? c->repo->stack.entry : "none", res->ms);
        cache_put(p, c);
    }
    free(stack);
    repo_hold(pj, c);
    repo_cached_unref(c); /* the creation's own reference: the cache and the job hold it now */
    stage_continue(pj);
}

/* Reads the base through gitjob (its completion comes later, never inside this call); with
 * use_cache, the commits already cached are not read again. */
static int start_repo_read(struct pjob *pj, int use_cache, struct dm_error *err)
{
    struct dm_pipeline *p = pj->p;
    const struct dm_jobreq *req = pj->job->req;
    const char *known[REPO_CACHE_COMMITS];
    struct dm_gitjob_repo_req rr;
    struct dm_git_opts opts;
    int rc;

    memset(&rr, 0, sizeof(rr));
    for (size_t i = 0; use_cache && i < p->n_repo_cache; i++) {
        known[rr.n_known++] = p->repo_cache[i]->repo->commit;
    }
    stage_git_opts(pj, &opts);
    rr.opts = &opts;
    rr.owner = req->repo_owner;
    rr.repo = req->repo_name;
    rr.base = req->base_branch;
    rr.refresh = 1;
    rr.limits.file_bytes = (size_t)p->cfg->context_file_bytes;
    rr.limits.total_bytes = (size_t)p->cfg->context_total_bytes;
    rr.limits.files = (size_t)p->cfg->context_files;
    rr.known = known;
    rr.on_done = on_repo_read;
    rr.arg = pj;
    err->msg[0] = '\0';
    rc = dm_gitjob_read_repo(&pj->repo_read, p->loop, &rr, err);
    if (rc) {
        return rc;
    }
    pj->outstanding++;
    return 0;
}

/* The stage's other loads are done: read the base when the stage wants it and the job does not
 * hold it yet, else continue. */
static void load_repo_or_continue(struct pjob *pj)
{
    struct dm_error err;

    if (!pj->repo_wanted || pj->repo) {
        stage_continue(pj);
        return;
    }
    if (pj->job->cancel_requested || pj->cancelling) {
        stage_continue(pj); /* ends it cancelled */
        return;
    }
    if (start_repo_read(pj, 1, &err)) {
        stage_finish(pj, DM_ERR_TRANSIENT, &err);
    }
}

static void on_files_read(struct dm_job *job, int rc, size_t n, const char *const *paths,
                          const char *const *contents, const size_t *lens)
{
    struct pjob *pj = job->stage_data;
    struct dm_error err;

    pj->outstanding--;
    if (rc) {
        dm_error_set(&err, DM_ERR_TRANSIENT, "cannot read the checkpointed files (%s)",
                     dm_err_name(rc));
        stage_finish(pj, DM_ERR_TRANSIENT, &err);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < pj->nfiles; k++) {
            struct gen_file *f = &pj->files[k];
            if (f->state != F_DONE && strcmp(pj->plan->items[k].path, paths[i]) == 0) {
                f->content = malloc(lens[i] + 1);
                if (f->content) {
                    memcpy(f->content, contents[i], lens[i]);
                    f->content[lens[i]] = '\0';
                    f->len = lens[i];
                    f->state = F_DONE;
                    f->ok = 1;
                }
            }
        }
    }
    pj->files_loaded = 1;
    load_repo_or_continue(pj);
}

/* A GitHub App's installation token, fetched before the stage (git takes the token as it is). */
static void on_stage_token(void *arg, int rc, const struct dm_error *err)
{
    struct pjob *pj = arg;

    pj->token_wait = NULL;
    pj->outstanding--;
    if (!pj->job) {
        pjob_maybe_free(pj);
        return;
    }
    if (!rc && pj->cancelling) {
        struct dm_error cerr;
        rc = dm_error_set(&cerr, DM_ERR_CANCELLED, "cancelled while getting a GitHub token");
        stage_finish(pj, rc, &cerr);
        return;
    }
    if (!rc) {
        pj->token_checked = 1;
        rc = stage_begin(pj->job, pj->token_load, pj->token_next);
        err = &pj->job->error;
    }
    if (rc) {
        pj->stage_active = 1;
        stage_finish(pj, rc, err);
    }
}

int stage_begin(struct dm_job *job, unsigned load, void (*next)(struct pjob *pj))
{
    struct pjob *pj = pjob_of(job);
    int rc;

    if (!pj) {
        return dm_error_set(&job->error, DM_ERR_NOMEM, "out of memory");
    }
    if (!pj->token_checked && dm_ghapp_is_app(pj->p->gh) &&
        !dm_ghapp_peek(pj->p->gh, job->req->repo_owner, job->req->repo_name)) {
        pj->token_load = load;
        pj->token_next = next;
        if (dm_ghapp_fetch(pj->p->gh, job->req->repo_owner, job->req->repo_name, on_stage_token, pj,
                           &pj->token_wait) == 0) {
            pj->outstanding++;
            pj->stage_active = 1;
            return 0;
        }
    }
    pj->token_checked = 0;
    pj->stage_active = 1;
    pj->gen.failed = 0;
    pj->cancelling = 0;
    rc = (load & LOAD_FILES) ? stage_load_plan(pj, &job->error) : load_spec(pj, &job->error);
    if (rc) {
        pj->stage_active = 0;
        return rc;
    }
    pj->next = next;
    pj->repo_wanted = (load & LOAD_REPO) != 0;
    pj->repo_rereads = 0;
    if (pj->repo_wanted && !pj->repo && (!(load & LOAD_FILES) || pj->files_loaded)) {
        /* Only the base to read: its completion comes on a later loop turn. */
        struct dm_error rerr;
        rc = start_repo_read(pj, 1, &rerr);
        if (rc) {
            pj->stage_active = 0;
            return dm_error_set(&job->error, rc == DM_ERR_NOMEM ? rc : DM_ERR_TRANSIENT,
                                "cannot read the base: %s", rerr.msg);
        }
        return 0;
    }
    if (!(load & LOAD_FILES) || pj->files_loaded) {
        /* Never end a stage inside its run call: continue on the next loop turn. */
        rc = job->io->after(job, 0, on_next_turn);
        if (rc) {
            pj->stage_active = 0;
            return dm_error_set(&job->error, rc, "cannot schedule the stage");
        }
        return 0;
    }
    rc = job->io->read_files(job, on_files_read);
    if (rc) {
        pj->stage_active = 0;
        return dm_error_set(&job->error, DM_ERR_TRANSIENT, "cannot read checkpointed files");
    }
    pj->outstanding++;
    return 0;
}

/* ---- cancel and release ---- */

/* Asks every piece of the job's work in flight to stop; each comes back later, cancelled. Files
 * waiting for a request slot are taken out of the queue at once. */
static void stop_work(struct pjob *pj)
{
    gen_stop(pj);
    gen_unqueue(pj);
    metered_cancel(&pj->planner.call);
    metered_cancel(&pj->review.call);
    dm_gitjob_cancel(pj->repo_read);
    dm_gitjob_cancel(pj->push.git);
    stage_check_cancel(pj);
    if (pj->pr.call) {
        dm_forge_cancel(pj->pr.call);
    }
    dm_ghapp_cancel(pj->token_wait);
}

static void cancel(struct dm_job *job)
{
    struct pjob *pj = job->stage_data;
    if (!pj || !pj->stage_active) {
        return;
    }
    pj->cancelling = 1;
    stop_work(pj);
    if (pj->outstanding == 0 && (job->stage == DM_STAGE_GENERATE || pj->gen.round_done)) {
        /* Only queued files were left: nothing will come back to end the round. */
        gen_progress(pj);
    }
}

static void pjob_free(struct pjob *pj)
{
    for (size_t i = 0; i < pj->nfiles; i++) {
        free(pj->files[i].content);
        free(pj->files[i].system);
        free(pj->files[i].user);
    }
    free(pj->files);
    dm_spec_free(pj->spec);
    dm_plan_free(pj->plan);
    dm_findings_free(&pj->scan.findings);
    dm_validate_warnings_free(&pj->scan.warnings);
    dm_review_verdict_free(&pj->review.rules);
    dm_review_verdict_free(&pj->review.verdict);
    repo_cached_unref(pj->repo_ref);
    stage_check_forget(pj);
    free(pj->pr.url);
    free(pj);
}

void pjob_maybe_free(struct pjob *pj)
{
    if (!pj->job && pj->outstanding == 0) {
        pjob_free(pj);
    }
}

static void release(struct dm_job *job)
{
    struct pjob *pj = job->stage_data;
    if (!pj) {
        return;
    }
    job->stage_data = NULL;
    pj->job = NULL;
    if (pj->outstanding) {
        /* Work still in flight comes back to a detached pjob and frees it at the end. */
        stop_work(pj);
    }
    pjob_maybe_free(pj);
}

/* ---- the pipeline ---- */

void dm_pipeline_stage_ops(struct dm_pipeline *p, struct dm_stage_ops *ops)
{
    memset(ops, 0, sizeof(*ops));
    ops->run[DM_STAGE_PLAN] = stage_plan_run;
    ops->run[DM_STAGE_GENERATE] = stage_generate_run;
    ops->run[DM_STAGE_REVIEW] = stage_review_run;
    ops->run[DM_STAGE_GATE] = stage_gate_run;
    ops->run[DM_STAGE_PUSH] = stage_push_run;
    ops->run[DM_STAGE_PR] = stage_pr_run;
    ops->cancel = cancel;
    ops->release = release;
    ops->admit = stage_admit;
    ops->ctx = p;
}

struct dm_callbacks *dm_pipeline_callbacks(const struct dm_pipeline *p)
{
    return p->callbacks;
}

int dm_pipeline_llm_in_flight(const struct dm_pipeline *p)
{
    return p->llm_in_flight;
}

/* The protected branches, from the comma-separated setting, into the safety policy. */
static void protect_branches(struct dm_pipeline *p, const char *list)
{
    char *save = NULL;

    if (!list || !*list) {
        return;
    }
    p->protected_buf = strdup(list);
    for (char *t = p->protected_buf ? strtok_r(p->protected_buf, ",", &save) : NULL;
         t && p->policy.n_protected < MAX_PROTECTED; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') {
            t++;
        }
        if (*t) {
            p->protected_list[p->policy.n_protected++] = t;
        }
    }
    p->policy.protected_branches = p->protected_list;
}

/* The model price list (io/models.c): read from {llm-url}/models, cached in the data dir, the
 * price file re-applied over it. */
static int pipeline_models_new(struct dm_pipeline *p, const char *key, struct dm_error *err)
{
    const struct dm_config *cfg = p->cfg;
    struct dm_models_opts mo = {0};
    char *cache = NULL, *override = NULL;
    size_t cap, olen = 0;
    int rc;

    if (cfg->data_dir && *cfg->data_dir) {
        cap = strlen(cfg->data_dir) + sizeof("/prices/models.json");
        cache = malloc(cap);
        if (!cache) {
            return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
        }
        snprintf(cache, cap, "%s/prices/models.json", cfg->data_dir);
    }
    if (cfg->prices_file) {
        override = dm_fs_read(cfg->prices_file, (size_t)1 << 20, &olen);
    }
    mo.base_url = cfg->llm_url;
    mo.api_key = key;
    mo.cache_path = cache;
    mo.override_json = override;
    mo.override_len = olen;
    mo.refresh_s = (long)cfg->prices_refresh_s;
    rc = dm_models_new(&p->models, p->http, p->loop, p->prices, &mo, err);
    free(cache);
    free(override);
    return rc;
}

int dm_pipeline_new(struct dm_pipeline **out, uv_loop_t *loop, const struct dm_config *cfg,
                    struct dm_metrics *metrics, struct dm_error *err)
{
    struct dm_pipeline *p = calloc(1, sizeof(*p));
    struct dm_http_opts ho = DM_HTTP_OPTS_INIT;
    struct dm_llm_opts lo = DM_LLM_OPTS_INIT;
    struct dm_forge_opts fo = DM_FORGE_OPTS_INIT;
    struct dm_callback_opts co = DM_CALLBACK_OPTS_INIT;
    struct dm_validate_runner_opts vo = DM_VALIDATE_RUNNER_OPTS_INIT;
    struct dm_safety_policy pol = DM_SAFETY_POLICY_INIT;
    int rc;

    *out = NULL;
    if (!p) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    p->loop = loop;
    p->cfg = cfg;
    p->metrics = metrics;
    p->policy = pol;
    protect_branches(p, cfg->protected_branches);
    if ((rc = dm_safety_init(err)) || (rc = dm_price_table_new(&p->prices))) {
        goto fail;
    }
    if (cfg->prices_file && (rc = dm_price_table_load_file(p->prices, cfg->prices_file, err))) {
        dm_error_wrap(err, "--prices-file");
        goto fail;
    }
    if (cfg->prompts_dir && (rc = dm_prompts_load_dir(&p->prompts, cfg->prompts_dir, err))) {
        dm_error_wrap(err, "--prompts-dir");
        goto fail;
    }
    if ((rc = dm_http_new(&p->http, loop, &ho, err))) {
        goto fail;
    }
    lo.base_url = cfg->llm_url;
    lo.timeout_ms = (long)cfg->llm_timeout_ms;
    lo.prices = p->prices;
    lo.referer = cfg->llm_referer;
    lo.title = cfg->llm_title;
    lo.max_tokens_field = cfg->llm_max_tokens_field;
    lo.json_schema = cfg->llm_json_schema;
    lo.keyless_hosts = cfg->llm_keyless_hosts;
    if (dm_llm_api_parse(cfg->llm_api ? cfg->llm_api : "openrouter", &lo.api) != 0) {
        rc = dm_error_set(err, DM_ERR_INVALID, "--llm-api: must be openrouter or openai");
        goto fail;
    }
    /* OPENROUTER_API_KEY is OpenRouter's: never sent to another kind of server (a self-hosted
     * one, OpenAI, a proxy), which gets DREAM_LLM_API_KEY or nothing. */
    lo.api_key = cfg->llm_api_key && *cfg->llm_api_key ? cfg->llm_api_key
                 : lo.api == DM_LLM_API_OPENROUTER     ? cfg->openrouter_api_key
                                                       : NULL;
    if ((rc = dm_llm_new(&p->llm, p->http, loop, &lo, err))) {
        goto fail;
    }
    {
        struct dm_ghapp_opts go = {.api_url = cfg->github_api_url,
                                   .token = cfg->github_token,
                                   .token_file = cfg->github_token_file,
                                   .app_id = cfg->github_app_id,
                                   .private_key = cfg->github_app_private_key,
                                   .installation_id = cfg->github_app_installation_id};
        if ((rc = dm_ghapp_new(&p->gh, p->http, loop, &go, err))) {
            goto fail;
        }
    }
    if ((rc = pipeline_models_new(p, lo.api_key, err))) {
        goto fail;
    }
    fo.api_url = cfg->github_api_url;
    fo.auth = p->gh;
    fo.write_interval_ms = (long)cfg->forge_write_interval_ms;
    if ((rc = dm_forge_new(&p->forge, p->http, loop, &fo, err))) {
        goto fail;
    }
    co.secret = cfg->callback_secret;
    if ((rc = dm_callbacks_new(&p->callbacks, loop, p->http, &co, err))) {
        goto fail;
    }
    vo.esbuild = cfg->esbuild;
    if ((rc = dm_validate_runner_new(&p->vr, loop, &vo, err))) {
        goto fail;
    }
    if (!dm_validate_runner_esbuild(p->vr)) {
        dm_warn("pipeline", NULL, "esbuild not found: TypeScript files are not syntax-checked");
    }
    *out = p;
    return 0;
fail:
    dm_pipeline_close(p, NULL, NULL);
    return rc ? rc : DM_ERR_NOMEM;
}

static void on_service_closed(void *arg)
{
    struct dm_pipeline *p = arg;
    if (--p->pending_closes > 0) {
        return;
    }
    if (p->gh) {
        /* The credentials after the forge that borrows them, before the HTTP client. */
        struct dm_ghapp *gh = p->gh;
        p->gh = NULL;
        p->pending_closes = 1;
        dm_ghapp_close(gh, on_service_closed, p);
        return;
    }
    if (p->http) {
        /* The HTTP client goes last: the others ride on it. */
        struct dm_http *h = p->http;
        p->http = NULL;
        p->pending_closes = 1;
        dm_http_close(h, on_service_closed, p);
        return;
    }
    if (p->llm) {
        dm_llm_free(p->llm);
    }
    for (size_t i = 0; i < p->n_repo_cache; i++) {
        repo_cached_unref(p->repo_cache[i]);
    }
    dm_price_table_free(p->prices);
    dm_prompts_free(p->prompts);
    dm_safety_shutdown();
    free(p->protected_buf);
    if (p->closed) {
        p->closed(p->closed_arg);
    }
    free(p);
}

void dm_pipeline_close(struct dm_pipeline *p, void (*done)(void *arg), void *arg)
{
    if (!p) {
        return;
    }
    p->closing = 1;
    p->closed = done;
    p->closed_arg = arg;
    if (p->llm) {
        dm_llm_cancel_all(p->llm);
    }
    p->pending_closes = 1; /* this function's own reference */
    if (p->models) {
        p->pending_closes++;
        dm_models_close(p->models, on_service_closed, p);
        p->models = NULL;
    }
    if (p->callbacks) {
        p->pending_closes++;
        dm_callbacks_close(p->callbacks, on_service_closed, p);
        p->callbacks = NULL;
    }
    if (p->forge) {
        p->pending_closes++;
        dm_forge_close(p->forge, on_service_closed, p);
        p->forge = NULL;
    }
    if (p->vr) {
        p->pending_closes++;
        dm_validate_runner_close(p->vr, on_service_closed, p);
        p->vr = NULL;
    }
    on_service_closed(p);
}
