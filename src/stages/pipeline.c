/*
 * pipeline: the real stages of a build job (see include/dream/stages/pipeline.h).
 *
 * Per job, struct pjob (job->stage_data) holds the parsed spec and plan, the files (from the
 * checkpoint or generated), the budget, the review results and every piece of asynchronous
 * work in flight (LLM calls, esbuild checks, the git work item, the GitHub call). A stage ends
 * exactly once, through finish_stage(), after all of its work has come back. When the engine
 * drops a job while work is still in flight (shutdown), release() detaches the pjob: it then
 * only counts its work down and frees itself, never touching the job again.
 * Loop thread only; the git work item runs on the threadpool with copied inputs.
 */
#include "dream/stages/pipeline.h"
#include "dream/domain/auth.h"
#include "dream/domain/budget.h"
#include "dream/io/callback.h"
#include "dream/core/error.h"
#include "dream/io/forge.h"
#include "dream/io/git.h"
#include "dream/io/http.h"
#include "dream/domain/jobreq.h"
#include "dream/io/llm.h"
#include "dream/core/log.h"
#include "dream/io/metrics.h"
#include "dream/domain/plan.h"
#include "dream/domain/planner.h"
#include "dream/domain/price.h"
#include "dream/domain/prompt.h"
#include "dream/domain/review.h"
#include "dream/domain/safety.h"
#include "dream/domain/spec.h"
#include "dream/domain/validate.h"
#include "dream/io/validate_run.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROTECTED 32

struct pjob;

enum fstate { F_TODO = 0, F_RUNNING, F_DONE };

struct pfile {
    struct pjob *pj;
    size_t index; /* in the plan */
    enum fstate state;
    int ok;        /* valid and checkpointed (or the spec document, or read back) */
    char *content; /* final or candidate content (owned) */
    size_t len;
    int repairs;
    char *system; /* messages of the current request (owned) */
    char *user;
    struct dm_budget_hold hold;
    struct dm_llm_call *call;
    struct dm_validate_req *vreq;
    struct pfile *wait_next; /* in the pipeline's queue for a request slot */
    int waiting;
    long long tokens; /* this file's usage */
    double cost;
    char gen_id[128];
};

struct git_work {
    uv_work_t req;
    struct pjob *pj;
    /* inputs (owned copies) */
    struct dm_git_opts opts;
    char *data_dir, *url, *token, *author, *email;
    char *owner, *repo, *base, *branch, *alt_branch, *job_id, *spec_id, *message;
    long long commit_time;
    struct dm_git_file *files;
    size_t nfiles;
    /* outputs */
    struct dm_git_result result;
    char used_branch[300];
    int rc;
    struct dm_error err;
};

struct pjob {
    struct dm_pipeline *p;
    struct dm_job *job; /* NULL once released: work in flight only counts down */
    struct dm_spec *spec;
    struct dm_plan *plan;
    struct pfile *files;
    size_t nfiles;
    int files_loaded;
    struct dm_budget budget;
    int outstanding; /* asynchronous operations in flight */
    int stage_active;
    int failed;
    int cancelling;
    int budget_wait; /* a call did not fit yet: start nothing until one in flight settles */
    int budget_ready;
    struct dm_error err;
    atomic_int cancel_flag;
    struct dm_forge_call *fcall;
    /* review */
    struct dm_findings findings;
    int reviewed;
    char *validation_md;
    char *review_md;
    int review_pause;
    struct dm_review_verdict rules;   /* the rule verdict of this review */
    struct dm_review_verdict verdict; /* the final verdict, kept across a revise round */
    int revising;                     /* the generation machinery runs a revise round */
    int revised;
    struct dm_llm_call *review_call; /* the reviewer model's call in flight */
    struct dm_budget_hold review_hold;
    void (*after_load)(struct pjob *pj);
};

struct dm_pipeline {
    uv_loop_t *loop;
    const struct dm_config *cfg;
    struct dm_metrics *metrics;
    struct dm_http *http;
    struct dm_llm *llm;
    struct dm_forge *forge;
    struct dm_validate_runner *vr;
    struct dm_callbacks *callbacks;
    struct dm_price_table *prices;
    struct dm_prompts *prompts;
    struct dm_safety_policy policy;
    char *protected_buf;
    const char *protected_list[MAX_PROTECTED];
    int llm_in_flight;
    struct pfile *wait_head, *wait_tail;
    int closing;
    int pending_closes;
    void (*closed)(void *arg);
    void *closed_arg;
};

static void pump_files(struct pjob *pj);
static void revise_done(struct pjob *pj);
static void wake_waiting(struct dm_pipeline *p);
static void call_llm(struct pfile *f);
static void pjob_maybe_free(struct pjob *pj);

/* ---- helpers ---- */

static const struct dm_jobreq *req_of(const struct pjob *pj)
{
    return pj->job->req;
}

static char *dup0(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void budget_fields(struct pjob *pj, char *tokens, size_t tn, char *cost, size_t cn)
{
    snprintf(tokens, tn, "%lld", dm_budget_tokens_used(&pj->budget));
    snprintf(cost, cn, "%.6f", dm_budget_cost_usd(&pj->budget));
}

/* The stage ends: exactly once, after every piece of its work came back. */
static void finish_stage(struct pjob *pj, int rc, const struct dm_error *err)
{
    struct dm_job *job = pj->job;
    if (!job || !pj->stage_active) {
        return;
    }
    pj->stage_active = 0;
    pj->failed = 0;
    pj->cancelling = 0;
    if (rc != 0 && rc != DM_JOB_PARKED) {
        /* A retried stage starts from the checkpoint: files that were not checkpointed (cut
         * short, invalid, mid-revision) are dropped and everything is scanned again. */
        for (size_t i = 0; i < pj->nfiles; i++) {
            struct pfile *f = &pj->files[i];
            if (!f->ok) {
                free(f->content);
                f->content = NULL;
                f->len = 0;
                f->state = F_TODO;
            }
        }
        pj->files_loaded = 0;
        pj->reviewed = 0;
        pj->revising = 0;
    }
    dm_job_stage_done(job, rc, err);
}

/* Ends the stage after a zero-delay hop (a stage must never end inside its run call). */
static void finish_ok_later_cb(struct dm_job *job)
{
    struct pjob *pj = job->stage_data;
    finish_stage(pj, 0, NULL);
}

/* The stage has nothing to do (dry run, already approved, already open): it ends successfully
 * on the next loop turn. */
static void finish_ok_later(struct pjob *pj)
{
    struct dm_error err;
    if (pj->job->io->after(pj->job, 0, finish_ok_later_cb)) {
        dm_error_set(&err, DM_ERR_IO, "cannot schedule the end of stage %s",
                     dm_stage_name(pj->job->stage));
        finish_stage(pj, DM_ERR_IO, &err);
    }
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
        finish_stage(pj, rc, &err);
        return;
    }
    finish_stage(pj, 0, NULL);
}

static void on_park_written(struct dm_job *job, int rc, int cancel)
{
    struct pjob *pj = job->stage_data;
    struct dm_error err;
    if (rc) {
        dm_error_set(&err, rc, "could not park the job");
        finish_stage(pj, rc, &err);
        return;
    }
    if (cancel || job->cancel_requested) {
        /* A cancel that raced the park: end it now rather than leave a cancelled job parked. */
        const char *fields[] = {"status", "cancelled", "error", "cancelled while parking"};
        struct dm_event_extra x = {0};
        struct dm_job_write w;
        x.error = "cancelled while parking";
        x.step = "gate";
        memset(&w, 0, sizeof(w));
        w.status = "cancelled";
        w.message = "cancelled while parking";
        w.extra = &x;
        w.flags = DM_JOB_WRITE_UNPARK | DM_JOB_WRITE_TERMINAL;
        w.fields = fields;
        w.n_fields = 4;
        job->io->write(job, &w, NULL);
        job->final_status = "cancelled";
    }
    finish_stage(pj, DM_JOB_PARKED, NULL);
}

/* Records the job's spend (tokens, cost) after every settled call, so the totals in the job
 * hash and in every later event are complete and a resumed job restores all of it. */
static void record_spend(struct pjob *pj)
{
    char tokens[32], cost[48], reserved[32];
    const char *fields[6];
    struct dm_job_write w;

    if (!pj->job || pj->job->fenced) {
        return;
    }
    budget_fields(pj, tokens, sizeof(tokens), cost, sizeof(cost));
    /* Worst case still held by calls in flight (DESIGN's `reserved`). */
    snprintf(reserved, sizeof(reserved), "%lld", pj->budget.reserved_tokens);
    pj->job->tokens = dm_budget_tokens_used(&pj->budget);
    pj->job->cost = dm_budget_cost_usd(&pj->budget);
    fields[0] = "tokens";
    fields[1] = tokens;
    fields[2] = "cost";
    fields[3] = cost;
    fields[4] = "reserved";
    fields[5] = reserved;
    memset(&w, 0, sizeof(w));
    w.fields = fields;
    w.n_fields = 6;
    pj->job->io->write(pj->job, &w, NULL);
}

/* A write with no continuation (events along the way). */
static void emit(struct pjob *pj, const char *status, const char *message,
                 const struct dm_event_extra *x, const char *const *fields, size_t n_fields)
{
    struct dm_job_write w;
    if (!pj->job || pj->job->fenced) {
        return;
    }
    memset(&w, 0, sizeof(w));
    w.status = status;
    w.message = message;
    w.extra = x;
    w.fields = fields;
    w.n_fields = n_fields;
    pj->job->io->write(pj->job, &w, NULL);
}

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
        dm_findings_init(&pj->findings);
        dm_review_verdict_init(&pj->rules);
        dm_review_verdict_init(&pj->verdict);
        job->stage_data = pj;
    }
    return pj;
}

/* Parses the spec and recovers or builds the plan; sizes the file table. */
static int load_plan(struct pjob *pj, struct dm_error *err)
{
    struct dm_job *job = pj->job;
    const struct dm_jobreq *req = req_of(pj);
    int rc;

    if (pj->files) {
        return 0;
    }
    if (!pj->spec) {
        rc = dm_spec_parse(&pj->spec, req->spec_markdown, req->spec_len, NULL, err);
        if (rc) {
            return dm_error_wrap(err, "specMarkdown");
        }
    }
    if (!pj->plan) {
        if (job->plan_json) {
            rc = dm_plan_from_json(&pj->plan, job->plan_json, err);
        } else {
            rc = dm_plan_build(&pj->plan, pj->spec, req->branch_prefix, err);
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
    if (!pj->budget_ready) {
        dm_budget_init(&pj->budget, req->budget_tokens, req->budget_dollars);
        dm_budget_restore(&pj->budget, job->tokens, job->cost);
        pj->budget_ready = 1;
    }
    return 0;
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
        finish_stage(pj, DM_ERR_TRANSIENT, &err);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < pj->nfiles; k++) {
            struct pfile *f = &pj->files[k];
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
    if (pj->after_load) {
        void (*next)(struct pjob *) = pj->after_load;
        pj->after_load = NULL;
        next(pj);
    }
}

static void run_after_load(struct dm_job *job)
{
    struct pjob *pj = job->stage_data;
    void (*next)(struct pjob *) = pj->after_load;
    pj->after_load = NULL;
    if (next) {
        next(pj);
    }
}

/* A cancel that came while the stage was still loading ends it before it starts work. */
static int cancelled_now(struct pjob *pj)
{
    struct dm_error err;
    if (!pj->job->cancel_requested && !pj->cancelling) {
        return 0;
    }
    dm_error_set(&err, DM_ERR_CANCELLED, "cancelled before stage %s began its work",
                 dm_stage_name(pj->job->stage));
    finish_stage(pj, DM_ERR_CANCELLED, &err);
    return 1;
}

/* Starts a stage: plan loaded, files read from the checkpoint, then next(pj). */
static int begin(struct dm_job *job, void (*next)(struct pjob *pj))
{
    struct pjob *pj = pjob_of(job);
    int rc;

    if (!pj) {
        return dm_error_set(&job->error, DM_ERR_NOMEM, "out of memory");
    }
    pj->stage_active = 1;
    pj->failed = 0;
    pj->cancelling = 0;
    atomic_store(&pj->cancel_flag, 0);
    rc = load_plan(pj, &job->error);
    if (rc) {
        pj->stage_active = 0;
        return rc;
    }
    pj->after_load = next;
    if (pj->files_loaded) {
        /* Never end a stage inside its run call: continue on the next loop turn. */
        rc = job->io->after(job, 0, run_after_load);
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

/* ---- plan ---- */

/* Checks and records the plan (whichever planner made it) and announces it. */
static int commit_plan(struct pjob *pj)
{
    struct dm_job *job = pj->job;
    const struct dm_jobreq *req = req_of(pj);
    struct dm_error *err = &job->error;
    enum dm_trust_action action;
    const char **paths;
    size_t *sizes;
    char *json;
    int rc;

    rc = load_plan(pj, err);
    if (rc) {
        return rc;
    }
    rc = dm_safety_check_branch(pj->plan->branch, req->branch_prefix, req->base_branch,
                                &pj->p->policy, err);
    if (rc) {
        return rc;
    }
    action = dm_trust_decide(req->trust, pj->p->cfg->allow_workflows);
    paths = calloc(pj->nfiles + 1, sizeof(char *));
    sizes = calloc(pj->nfiles + 1, sizeof(size_t));
    if (!paths || !sizes) {
        free(paths);
        free(sizes);
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < pj->nfiles && !rc; i++) {
        paths[i] = pj->plan->items[i].path;
        rc = dm_safety_check_path(paths[i], &pj->p->policy,
                                  action == DM_TRUST_ACTION_BUILD_WORKFLOWS, err);
    }
    if (!rc) {
        rc = dm_safety_check_limits(paths, sizes, pj->nfiles, &pj->p->policy, err);
    }
    if (rc) {
        free(sizes);
        free(paths);
        return rc;
    }
    json = dm_plan_to_json(pj->plan);
    if (!json) {
        free(sizes);
        free(paths);
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    {
        char tokens[32], cost[48];
        const char *fields[] = {"plan",   json,   "branch", pj->plan->branch,
                                "tokens", tokens, "cost",   cost};
        struct dm_event_extra x = {0};
        struct dm_job_write w;
        char msg[160];
        snprintf(msg, sizeof(msg), "%zu files planned on branch %s", pj->nfiles, pj->plan->branch);
        x.files = paths;
        x.n_files = pj->nfiles;
        x.branch = pj->plan->branch;
        memset(&w, 0, sizeof(w));
        w.status = "planned";
        w.message = msg;
        w.extra = &x;
        budget_fields(pj, tokens, sizeof(tokens), cost, sizeof(cost));
        w.fields = fields;
        w.n_fields = 8;
        pj->stage_active = 1;
        rc = job->io->write(job, &w, on_stage_written);
        if (rc) {
            pj->stage_active = 0;
            dm_error_set(err, rc, "could not record the plan");
        }
    }
    if (!job->plan_json) {
        job->plan_json = json;
    } else {
        free(json);
    }
    free(sizes);
    free(paths);
    return rc;
}

/* The end of a stage's single model call (planner, reviewer): settle the budget and the metrics,
 * free the request slot, record the spend. Returns 1 when the caller must stop there (the job
 * went away, or the stage was cancelled and has been ended). */
static int single_call_done(struct pjob *pj, int rc, struct dm_llm_result *res, const char *what)
{
    struct dm_error err;

    pj->review_call = NULL;
    pj->p->llm_in_flight--;
    pj->outstanding--;
    if (res && res->billed) {
        dm_budget_settle(&pj->budget, &pj->review_hold, res->prompt_tokens + res->completion_tokens,
                         res->cost_usd);
        dm_metrics_llm_tokens(pj->p->metrics, (uint64_t)res->prompt_tokens,
                              (uint64_t)res->completion_tokens);
        dm_metrics_llm_cost(pj->p->metrics, res->cost_usd);
    } else {
        dm_budget_release(&pj->budget, &pj->review_hold);
    }
    if (res && res->attempts > 0) {
        dm_metrics_llm_request(pj->p->metrics, rc ? DM_METRIC_LLM_FAILED : DM_METRIC_LLM_OK,
                               (double)res->elapsed_ms / 1000.0);
    }
    wake_waiting(pj->p);
    if (!pj->job) {
        pjob_maybe_free(pj);
        return 1;
    }
    if (res && res->billed) {
        record_spend(pj);
    }
    if (rc == DM_ERR_CANCELLED || pj->cancelling) {
        dm_error_set(&err, DM_ERR_CANCELLED, "%s interrupted", what);
        finish_stage(pj, DM_ERR_CANCELLED, &err);
        return 1;
    }
    return 0;
}

/* ---- the model planner (--planner=model) ---- */

struct tree_work {
    uv_work_t req;
    struct pjob *pj;
    char *data_dir, *url, *token, *owner, *repo, *base;
    struct dm_git_opts opts;
    struct dm_git_tree *tree;
    int rc;
    struct dm_error err;
};

static void plan_fallback(struct pjob *pj, const char *why)
{
    int rc;
    dm_warn("pipeline", pj->job->id, "model planner not used (%s); the rules plan the files", why);
    rc = commit_plan(pj);
    if (rc) {
        pj->stage_active = 1;
        finish_stage(pj, rc, &pj->job->error);
    }
}

static void on_planner_done(void *arg, int rc, struct dm_llm_result *res,
                            const struct dm_error *err)
{
    struct pjob *pj = arg;
    struct dm_planner_opts po = DM_PLANNER_OPTS_INIT;
    struct dm_plan *plan = NULL;
    struct dm_error perr;
    char *notes = NULL;

    if (single_call_done(pj, rc, res, "planning")) {
        return;
    }
    if (rc) {
        plan_fallback(pj, err && err->msg[0] ? err->msg : dm_err_name(rc));
        return;
    }
    po.branch_prefix = req_of(pj)->branch_prefix;
    po.policy = &pj->p->policy;
    po.allow_workflows = dm_trust_decide(req_of(pj)->trust, pj->p->cfg->allow_workflows) ==
                         DM_TRUST_ACTION_BUILD_WORKFLOWS;
    if (dm_planner_parse(&plan, &notes, res->content, res->content_len, pj->spec, &po, &perr)) {
        plan_fallback(pj, perr.msg);
        return;
    }
    if (notes && *notes) {
        dm_info("pipeline", pj->job->id, "model plan adjusted: %s", notes);
    }
    free(notes);
    dm_plan_free(pj->plan);
    pj->plan = plan;
    rc = commit_plan(pj);
    if (rc) {
        pj->stage_active = 1;
        finish_stage(pj, rc, &pj->job->error);
    }
}

static void on_tree_work(uv_work_t *req)
{
    struct tree_work *w = req->data;
    w->rc = dm_git_list_tree(&w->tree, &w->opts, w->owner, w->repo, w->base, 1,
                             DM_PLANNER_TREE_PATHS, &w->err);
}

static void tree_work_free(struct tree_work *w)
{
    dm_git_tree_free(w->tree);
    free(w->data_dir);
    free(w->url);
    free(w->token);
    free(w->owner);
    free(w->repo);
    free(w->base);
    free(w);
}

static void on_tree_done(uv_work_t *req, int status)
{
    struct tree_work *w = req->data;
    struct pjob *pj = w->pj;
    struct dm_pipeline *p = pj->p;
    struct dm_planner_opts po = DM_PLANNER_OPTS_INIT;
    struct dm_planner_prompt *prompt = NULL;
    struct dm_llm_request r;
    struct dm_price price;
    struct dm_error err;
    int rc;

    pj->outstanding--;
    if (!pj->job) {
        tree_work_free(w);
        pjob_maybe_free(pj);
        return;
    }
    if (status || w->rc) {
        plan_fallback(pj, status ? "tree listing cancelled" : w->err.msg);
        tree_work_free(w);
        return;
    }
    po.branch_prefix = req_of(pj)->branch_prefix;
    po.policy = &p->policy;
    rc = dm_planner_prompt_build(&prompt, pj->spec, (const char *const *)w->tree->paths,
                                 w->tree->npaths, &po, &err);
    tree_work_free(w);
    if (!rc) {
        rc = dm_price_lookup(p->prices, p->cfg->model, &price, &err);
    }
    if (!rc) {
        rc = dm_budget_reserve(
            &pj->budget, &price,
            dm_budget_estimate_tokens(strlen(prompt->system) + strlen(prompt->user)),
            DM_PLANNER_MAX_TOKENS, &pj->review_hold, &err);
    }
    if (!rc) {
        memset(&r, 0, sizeof(r));
        r.model = p->cfg->model;
        r.system = prompt->system;
        r.user = prompt->user;
        r.max_tokens = DM_PLANNER_MAX_TOKENS;
        r.temperature = DM_PLANNER_TEMPERATURE;
        r.response_format = dm_planner_response_format();
        r.job_id = pj->job->id;
        r.on_done = on_planner_done;
        r.arg = pj;
        rc = dm_llm_start(p->llm, &r, &pj->review_call, &err);
        if (rc) {
            dm_budget_release(&pj->budget, &pj->review_hold);
        }
    }
    dm_planner_prompt_free(prompt);
    if (rc) {
        plan_fallback(pj, err.msg);
        return;
    }
    p->llm_in_flight++;
    pj->outstanding++;
}

static int run_plan(struct dm_job *job)
{
    struct pjob *pj = pjob_of(job);
    const struct dm_jobreq *req;
    const struct dm_config *cfg;
    struct tree_work *w;
    int rc;

    if (!pj) {
        return dm_error_set(&job->error, DM_ERR_NOMEM, "out of memory");
    }
    req = req_of(pj);
    cfg = pj->p->cfg;
    if (job->plan_json || strcmp(cfg->planner, "model") != 0) {
        return commit_plan(pj);
    }
    /* The model plans from the spec and the base branch's tree (read from the mirror, off the
     * loop thread); every failure falls back to the rules. */
    rc = dm_spec_parse(&pj->spec, req->spec_markdown, req->spec_len, NULL, &job->error);
    if (rc) {
        return dm_error_wrap(&job->error, "specMarkdown");
    }
    dm_budget_init(&pj->budget, req->budget_tokens, req->budget_dollars);
    dm_budget_restore(&pj->budget, job->tokens, job->cost);
    pj->budget_ready = 1;
    w = calloc(1, sizeof(*w));
    if (!w) {
        return dm_error_set(&job->error, DM_ERR_NOMEM, "out of memory");
    }
    w->pj = pj;
    w->req.data = w;
    w->data_dir = dup0(cfg->data_dir);
    w->url = dup0(cfg->git_url);
    w->token = dup0(cfg->github_token);
    w->owner = dup0(req->repo_owner);
    w->repo = dup0(req->repo_name);
    w->base = dup0(req->base_branch);
    w->opts.data_dir = w->data_dir;
    w->opts.url_template = w->url;
    w->opts.token = w->token;
    w->opts.cancel = &pj->cancel_flag;
    pj->stage_active = 1;
    if (uv_queue_work(pj->p->loop, &w->req, on_tree_work, on_tree_done)) {
        tree_work_free(w);
        pj->stage_active = 0;
        return commit_plan(pj);
    }
    pj->outstanding++;
    return 0;
}

/* ---- generate ---- */

static void fail_generation(struct pjob *pj, int rc, const struct dm_error *err)
{
    if (!pj->failed) {
        pj->failed = 1;
        pj->err = *err;
        pj->err.code = rc;
        dm_warn("pipeline", pj->job ? pj->job->id : NULL, "generation failed: %s", err->msg);
    }
    /* Stop everything else this job has in flight; their callbacks come back cancelled. */
    for (size_t i = 0; i < pj->nfiles; i++) {
        if (pj->files[i].call) {
            dm_llm_cancel(pj->files[i].call);
        }
        if (pj->files[i].vreq) {
            dm_validate_cancel(pj->files[i].vreq);
        }
    }
}

static void dequeue_waiting(struct dm_pipeline *p, struct pfile *f)
{
    struct pfile **pp = &p->wait_head;
    struct pfile *prev = NULL;
    while (*pp && *pp != f) {
        prev = *pp;
        pp = &(*pp)->wait_next;
    }
    if (*pp) {
        *pp = f->wait_next;
        if (p->wait_tail == f) {
            p->wait_tail = prev;
        }
    }
    f->wait_next = NULL;
    f->waiting = 0;
}

/* A request slot freed up: start the oldest waiting file. */
static void wake_waiting(struct dm_pipeline *p)
{
    while (p->wait_head && p->llm_in_flight < p->cfg->max_requests && !p->closing) {
        struct pfile *f = p->wait_head;
        dequeue_waiting(p, f);
        f->pj->outstanding--;
        call_llm(f);
    }
}

static void generation_progress(struct pjob *pj)
{
    int running = 0;
    for (size_t i = 0; i < pj->nfiles; i++) {
        running += pj->files[i].state == F_RUNNING;
    }
    if (pj->outstanding > 0 || running > 0 || !pj->job) {
        if (!pj->failed && !pj->cancelling && pj->job) {
            pump_files(pj);
        }
        return;
    }
    if (pj->cancelling) {
        struct dm_error err;
        dm_error_set(&err, DM_ERR_CANCELLED, "generation interrupted");
        finish_stage(pj, DM_ERR_CANCELLED, &err);
        return;
    }
    if (pj->failed) {
        finish_stage(pj, pj->err.code, &pj->err);
        return;
    }
    pump_files(pj);
}

static void on_checkpoint_written(struct dm_job *job, int rc, int cancel)
{
    struct pjob *pj = job->stage_data;
    struct dm_error err;
    (void)cancel;
    pj->outstanding--;
    if (rc) {
        dm_error_set(&err, rc == DM_ERR_FENCED ? rc : DM_ERR_TRANSIENT,
                     "could not checkpoint a generated file");
        fail_generation(pj, err.code, &err);
    }
    generation_progress(pj);
}

/* A file passed validation: checkpoint it, then announce it, in one write. */
static void file_valid(struct pfile *f)
{
    struct pjob *pj = f->pj;
    const struct dm_plan_item *it = &pj->plan->items[f->index];
    char tokens[32], cost[48], msg[400];
    const char *fields[4];
    struct dm_event_extra x = {0};
    struct dm_job_write w;

    f->state = F_DONE;
    {
        /* A file holding a secret is never checkpointed (nor pushed): the job fails here and
         * the secret is stored nowhere. The message says where, never what. */
        struct dm_findings found = DM_FINDINGS_INIT;
        struct dm_error serr;
        if (dm_safety_scan(&found, it->path, f->content, f->len, DM_SAFETY_RULES_SECRETS, &serr) ==
                0 &&
            dm_findings_count(&found, DM_FINDING_SECRET) > 0) {
            char *summary = dm_findings_summary(&found, 3);
            dm_error_set(&serr, DM_ERR_UNSAFE,
                         "generated file %s contains a secret; the job is blocked and nothing is "
                         "pushed: %s",
                         it->path, summary ? summary : "");
            free(summary);
            dm_findings_free(&found);
            free(f->content);
            f->content = NULL;
            f->len = 0;
            fail_generation(pj, DM_ERR_UNSAFE, &serr);
            return;
        }
        dm_findings_free(&found);
    }
    f->ok = 1;
    budget_fields(pj, tokens, sizeof(tokens), cost, sizeof(cost));
    fields[0] = "tokens";
    fields[1] = tokens;
    fields[2] = "cost";
    fields[3] = cost;
    snprintf(msg, sizeof(msg), "generated %s (%lld tokens, $%.4f%s)", it->path, f->tokens, f->cost,
             f->repairs ? ", repaired" : "");
    x.step = it->path;
    x.path = it->path;
    x.file_tokens = f->tokens;
    x.file_cost = f->cost;
    x.generation_id = f->gen_id[0] ? f->gen_id : NULL;
    memset(&w, 0, sizeof(w));
    w.status = "generated";
    w.message = msg;
    w.extra = &x;
    w.file_path = it->path;
    w.file_content = f->content;
    w.file_len = f->len;
    w.fields = fields;
    w.n_fields = 4;
    pj->job->tokens = dm_budget_tokens_used(&pj->budget);
    pj->job->cost = dm_budget_cost_usd(&pj->budget);
    if (pj->job->io->write(pj->job, &w, on_checkpoint_written) == 0) {
        pj->outstanding++;
    } else {
        struct dm_error err;
        dm_error_set(&err, DM_ERR_TRANSIENT, "could not checkpoint %s", it->path);
        fail_generation(pj, DM_ERR_TRANSIENT, &err);
    }
}

/* The file is invalid: ask for a repair, or give up on the job. */
static void file_invalid(struct pfile *f, const char *why)
{
    struct pjob *pj = f->pj;
    const struct dm_plan_item *it = &pj->plan->items[f->index];
    struct dm_error err;
    char *user = NULL;

    if (f->repairs >= pj->p->cfg->max_repairs) {
        dm_error_set(&err, DM_ERR_INVALID, "%s is still invalid after %d repairs: %s", it->path,
                     f->repairs, why);
        f->state = F_DONE;
        fail_generation(pj, DM_ERR_INVALID, &err);
        generation_progress(pj);
        return;
    }
    f->repairs++;
    dm_info("pipeline", pj->job->id, "%s is invalid (%s); asking for repair %d of %lld", it->path,
            why, f->repairs, pj->p->cfg->max_repairs);
    if (dm_prompt_repair(&user, pj->p->prompts, it->path, f->content ? f->content : "",
                         f->content ? f->len : 0, why, &err)) {
        f->state = F_DONE;
        fail_generation(pj, err.code, &err);
        generation_progress(pj);
        return;
    }
    free(f->user);
    f->user = user;
    call_llm(f);
}

static void on_validated(void *arg, int status, const char *message)
{
    struct pfile *f = arg;
    struct pjob *pj = f->pj;

    f->vreq = NULL;
    pj->outstanding--;
    if (!pj->job) {
        pjob_maybe_free(pj);
        return;
    }
    if (status == DM_ERR_CANCELLED || pj->failed || pj->cancelling) {
        f->state = F_DONE;
        generation_progress(pj);
        return;
    }
    if (status == 0 || status == DM_ERR_UNAVAILABLE) {
        if (status == DM_ERR_UNAVAILABLE) {
            dm_warn("pipeline", pj->job->id, "esbuild is not available: %s not syntax-checked",
                    pj->plan->items[f->index].path);
        }
        file_valid(f);
        generation_progress(pj);
        return;
    }
    file_invalid(f, message ? message : dm_err_name(status));
}

static void validate_file(struct pfile *f)
{
    struct pjob *pj = f->pj;
    const char *path = pj->plan->items[f->index].path;
    struct dm_error err;
    struct dm_error verr;

    if (dm_validate_file(path, f->content, f->len, &verr)) {
        file_invalid(f, verr.msg);
        return;
    }
    if (dm_validate_esbuild_loader(path) && pj->p->vr) {
        if (dm_validate_run(pj->p->vr, path, f->content, f->len, on_validated, f, &f->vreq) == 0) {
            pj->outstanding++;
            return;
        }
        dm_error_set(&err, DM_ERR_TRANSIENT, "cannot run the validator for %s", path);
        f->state = F_DONE;
        fail_generation(pj, DM_ERR_TRANSIENT, &err);
        generation_progress(pj);
        return;
    }
    file_valid(f);
    generation_progress(pj);
}

static void on_llm_progress(void *arg, size_t bytes, long long tokens)
{
    struct pfile *f = arg;
    struct pjob *pj = f->pj;
    struct dm_event_extra x = {0};
    char msg[300];

    if (!pj->job || bytes == 0) {
        return;
    }
    snprintf(msg, sizeof(msg), "%s: %zu bytes, ~%lld tokens", pj->plan->items[f->index].path, bytes,
             tokens);
    x.step = pj->plan->items[f->index].path;
    x.path = x.step;
    x.bytes = (long long)bytes;
    emit(pj, "progress", msg, &x, NULL, 0);
}

static int on_llm_tokens(void *arg, long long completion_tokens)
{
    struct pfile *f = arg;
    struct dm_error err;
    /* Cut a stream that would cross the budget. */
    if (dm_budget_stream_check(&f->pj->budget, &f->hold, completion_tokens, &err)) {
        return DM_ERR_BUDGET;
    }
    return 0;
}

static void on_llm_done(void *arg, int rc, struct dm_llm_result *res, const struct dm_error *err)
{
    struct pfile *f = arg;
    struct pjob *pj = f->pj;
    struct dm_pipeline *p = pj->p;
    struct dm_error e2;
    char *file = NULL;

    f->call = NULL;
    p->llm_in_flight--;
    pj->outstanding--;
    pj->budget_wait = 0;
    if (res) {
        for (int i = 1; i < res->attempts; i++) {
            dm_metrics_llm_request(p->metrics, DM_METRIC_LLM_RETRIED, -1);
        }
        if (res->attempts > 0) {
            dm_metrics_llm_request(p->metrics, rc ? DM_METRIC_LLM_FAILED : DM_METRIC_LLM_OK,
                                   (double)res->elapsed_ms / 1000.0);
        }
        if (res->billed) {
            dm_metrics_llm_tokens(p->metrics, (uint64_t)res->prompt_tokens,
                                  (uint64_t)res->completion_tokens);
            dm_metrics_llm_cost(p->metrics, res->cost_usd);
        }
    }
    if (res && res->billed) {
        dm_budget_settle(&pj->budget, &f->hold, res->prompt_tokens + res->completion_tokens,
                         res->cost_usd);
        f->tokens += res->prompt_tokens + res->completion_tokens;
        f->cost += res->cost_usd;
        snprintf(f->gen_id, sizeof(f->gen_id), "%s", res->id);
    } else {
        dm_budget_release(&pj->budget, &f->hold);
    }
    wake_waiting(p);
    if (!pj->job) {
        pjob_maybe_free(pj);
        return;
    }
    if (res && res->billed) {
        record_spend(pj);
    }
    if (rc == DM_ERR_CANCELLED || pj->failed || pj->cancelling) {
        f->state = F_DONE;
        generation_progress(pj);
        return;
    }
    if (rc) {
        if (rc == DM_ERR_BUDGET) {
            dm_error_set(&e2, DM_ERR_BUDGET,
                         "budget exhausted while generating %s: spent %lld tokens, $%.4f of "
                         "%lld tokens, $%.4f",
                         pj->plan->items[f->index].path, dm_budget_tokens_used(&pj->budget),
                         dm_budget_cost_usd(&pj->budget), pj->budget.max_tokens,
                         pj->budget.max_usd);
        } else {
            dm_error_set(&e2, rc, "generating %s: %s", pj->plan->items[f->index].path,
                         err && err->msg[0] ? err->msg : dm_err_name(rc));
        }
        f->state = F_DONE;
        fail_generation(pj, rc == DM_ERR_TIMEOUT || rc == DM_ERR_IO ? DM_ERR_TRANSIENT : rc, &e2);
        generation_progress(pj);
        return;
    }
    if (dm_reply_extract_file(&file, res->content, res->content_len, &e2)) {
        free(f->content);
        f->content = res->content;
        f->len = res->content_len;
        res->content = NULL;
        file_invalid(f, e2.msg);
        return;
    }
    free(f->content);
    f->content = file;
    f->len = strlen(file);
    validate_file(f);
}

static void call_llm(struct pfile *f)
{
    struct pjob *pj = f->pj;
    struct dm_pipeline *p = pj->p;
    struct dm_llm_request r;
    struct dm_price price;
    struct dm_error err;
    long long prompt_tokens;
    int rc;

    if (pj->failed || pj->cancelling) {
        f->state = F_DONE;
        generation_progress(pj);
        return;
    }
    if (p->llm_in_flight >= p->cfg->max_requests) {
        /* The replica-wide cap: wait for a slot (counted as outstanding work). */
        f->waiting = 1;
        if (p->wait_tail) {
            p->wait_tail->wait_next = f;
        } else {
            p->wait_head = f;
        }
        p->wait_tail = f;
        pj->outstanding++;
        return;
    }
    if (dm_price_lookup(p->prices, p->cfg->model, &price, &err)) {
        f->state = F_DONE;
        fail_generation(pj, DM_ERR_INVALID, &err);
        generation_progress(pj);
        return;
    }
    prompt_tokens = dm_budget_estimate_tokens(strlen(f->system ? f->system : "") +
                                              strlen(f->user ? f->user : ""));
    rc = dm_budget_reserve(&pj->budget, &price, prompt_tokens, (long long)p->cfg->max_tokens,
                           &f->hold, &err);
    if (rc == DM_ERR_TRANSIENT) {
        /* Fits once the calls in flight settle: try again when one of them ends. */
        pj->budget_wait = 1;
        f->state = F_TODO;
        if (!pj->revising) {
            free(f->system);
            free(f->user);
            f->system = f->user = NULL;
        }
        if (f->repairs) {
            /* A repair that cannot fit now is retried from scratch later. */
            f->repairs = 0;
        }
        generation_progress(pj);
        return;
    }
    if (rc) {
        dm_error_set(&err, DM_ERR_BUDGET,
                     "budget too small for %s: spent %lld tokens, $%.4f; the call needs up to "
                     "%lld tokens, $%.4f; limits %lld tokens, $%.4f",
                     pj->plan->items[f->index].path, dm_budget_tokens_used(&pj->budget),
                     dm_budget_cost_usd(&pj->budget), f->hold.tokens, f->hold.usd,
                     pj->budget.max_tokens, pj->budget.max_usd);
        /* The hold's figures are only valid on success; recompute for the message. */
        dm_error_set(&err, DM_ERR_BUDGET,
                     "budget too small for %s: spent %lld tokens, $%.4f; the call needs up to "
                     "%lld tokens; limits %lld tokens, $%.4f",
                     pj->plan->items[f->index].path, dm_budget_tokens_used(&pj->budget),
                     dm_budget_cost_usd(&pj->budget), prompt_tokens + p->cfg->max_tokens,
                     pj->budget.max_tokens, pj->budget.max_usd);
        f->state = F_DONE;
        fail_generation(pj, DM_ERR_BUDGET, &err);
        generation_progress(pj);
        return;
    }
    memset(&r, 0, sizeof(r));
    r.model = p->cfg->model;
    r.system = f->system;
    r.user = f->user;
    r.max_tokens = (long)p->cfg->max_tokens;
    r.temperature = 0.3;
    r.stream = 1;
    r.job_id = pj->job->id;
    r.progress_interval_ms = 2000;
    r.on_progress = on_llm_progress;
    r.on_tokens = on_llm_tokens;
    r.on_done = on_llm_done;
    r.arg = f;
    rc = dm_llm_start(p->llm, &r, &f->call, &err);
    if (rc) {
        dm_budget_release(&pj->budget, &f->hold);
        f->state = F_DONE;
        fail_generation(pj, rc, &err);
        generation_progress(pj);
        return;
    }
    p->llm_in_flight++;
    pj->outstanding++;
}

static void start_file(struct pfile *f)
{
    struct pjob *pj = f->pj;
    const struct dm_plan_item *it = &pj->plan->items[f->index];
    struct dm_prompt *prompt = NULL;
    struct dm_event_extra x = {0};
    struct dm_error err;
    char msg[300];

    f->state = F_RUNNING;
    if (!f->system) {
        if (dm_prompt_build(&prompt, pj->p->prompts, pj->spec, pj->plan, f->index, &err)) {
            f->state = F_DONE;
            fail_generation(pj, err.code ? err.code : DM_ERR_INVALID, &err);
            generation_progress(pj);
            return;
        }
        f->system = prompt->system;
        f->user = prompt->user;
        prompt->system = prompt->user = NULL;
        dm_prompt_free(prompt);
        snprintf(msg, sizeof(msg), "writing %s", it->path);
        x.step = it->path;
        x.path = it->path;
        emit(pj, "writing", msg, &x, NULL, 0);
    }
    call_llm(f);
}

static void pump_files(struct pjob *pj)
{
    long limit = (long)pj->p->cfg->file_parallelism;
    long running = 0;
    int todo = 0;

    if (!pj->job || pj->failed || pj->cancelling || pj->budget_wait) {
        return;
    }
    for (size_t i = 0; i < pj->nfiles; i++) {
        running += pj->files[i].state == F_RUNNING;
        todo += pj->files[i].state == F_TODO;
    }
    for (size_t i = 0; i < pj->nfiles && running < limit; i++) {
        if (pj->files[i].state == F_TODO) {
            running++;
            todo--;
            start_file(&pj->files[i]);
            if (pj->failed || !pj->stage_active) {
                return;
            }
        }
    }
    if (!todo && !running && !pj->outstanding && pj->stage_active) {
        if (pj->revising) {
            pj->revising = 0;
            revise_done(pj);
            return;
        }
        finish_stage(pj, 0, NULL);
    }
}

static void generate_loaded(struct pjob *pj)
{
    if (cancelled_now(pj)) {
        return;
    }
    /* A retried stage starts again every file that did not make it (failed, cancelled or cut
     * short last time); checkpointed files are kept. */
    for (size_t i = 0; i < pj->nfiles; i++) {
        struct pfile *f = &pj->files[i];
        if (!f->ok && f->state == F_DONE) {
            f->state = F_TODO;
            f->repairs = 0;
            free(f->system);
            free(f->user);
            f->system = f->user = NULL;
        }
    }
    pj->budget_wait = 0;
    generation_progress(pj);
}

static int run_generate(struct dm_job *job)
{
    return begin(job, generate_loaded);
}

/* ---- review ---- */

static int is_spec_doc(const struct pjob *pj, size_t i)
{
    return pj->plan->items[i].kind == DM_PLAN_KIND_SPEC;
}

/* Scans every file (rules, secrets) and collects validation warnings; idempotent. */
static int scan_files(struct pjob *pj, struct dm_error *err)
{
    struct dm_validate_warnings warnings;
    struct dm_buf md;
    int rc = 0;

    if (pj->reviewed) {
        return 0;
    }
    dm_findings_free(&pj->findings);
    dm_findings_init(&pj->findings);
    dm_validate_warnings_init(&warnings);
    for (size_t i = 0; i < pj->nfiles && !rc; i++) {
        struct pfile *f = &pj->files[i];
        if (!f->content) {
            rc = dm_error_set(err, DM_ERR_TRANSIENT, "%s was never generated",
                              pj->plan->items[i].path);
            break;
        }
        /* The spec document is prose the producer wrote: only secrets matter there. */
        rc =
            dm_safety_scan(&pj->findings, pj->plan->items[i].path, f->content, f->len,
                           is_spec_doc(pj, i) ? DM_SAFETY_RULES_SECRETS : DM_SAFETY_RULES_ALL, err);
        if (!rc && !is_spec_doc(pj, i)) {
            int w = dm_validate_warn(&warnings, pj->plan->items[i].path, f->content, f->len);
            rc = w < 0 ? w : 0;
        }
    }
    if (!rc) {
        dm_buf_init(&md, 1 << 20);
        dm_validate_warnings_markdown(&warnings, &md);
        free(pj->validation_md);
        pj->validation_md = dm_buf_detach(&md);
        /* The PR body has its own "### Validation" heading: keep only the section's text. */
        if (pj->validation_md && strncmp(pj->validation_md, "### ", 4) == 0) {
            char *nl = strchr(pj->validation_md, '\n');
            size_t skip = nl ? (size_t)(nl - pj->validation_md) + 1 : strlen(pj->validation_md);
            while (pj->validation_md[skip] == '\n') {
                skip++;
            }
            memmove(pj->validation_md, pj->validation_md + skip,
                    strlen(pj->validation_md + skip) + 1);
        }
        pj->reviewed = 1;
    }
    dm_validate_warnings_free(&warnings);
    return rc;
}

/* The review is decided: record it, then reject (fail), pause (the gate parks) or proceed. */
static void review_decided(struct pjob *pj, const struct dm_review_verdict *v)
{
    struct dm_error err;
    struct dm_buf md;

    dm_buf_init(&md, 1 << 20);
    dm_review_markdown(v, &pj->findings, &md);
    free(pj->review_md);
    pj->review_md = dm_buf_detach(&md);
    pj->review_pause = v->decision == DM_REVIEW_PAUSE;
    dm_info("pipeline", pj->job->id, "review: %s (risk %s, by %s%s)",
            dm_review_decision_name(v->decision), dm_severity_name(v->risk),
            (v->sources & DM_REVIEW_BY_MODEL) ? "model" : "",
            (v->sources & DM_REVIEW_BY_RULES)
                ? ((v->sources & DM_REVIEW_BY_MODEL) ? "+rules" : "rules")
                : "");
    if (v->decision == DM_REVIEW_REJECT) {
        dm_error_set(&err, DM_ERR_UNSAFE, "review rejected the build (risk %s): %s",
                     dm_severity_name(v->risk), v->summary ? v->summary : "");
        finish_stage(pj, DM_ERR_UNSAFE, &err);
        return;
    }
    {
        const char *fields[] = {"review", dm_review_decision_name(v->decision)};
        struct dm_job_write w;
        memset(&w, 0, sizeof(w));
        w.fields = fields;
        w.n_fields = 2;
        if (pj->job->io->write(pj->job, &w, on_stage_written)) {
            dm_error_set(&err, DM_ERR_TRANSIENT, "could not record the review");
            finish_stage(pj, DM_ERR_TRANSIENT, &err);
        }
    }
}

/* One revise round: each file the reviewer commented on is generated again from its comments,
 * through the generation machinery (budget, validation, repair, checkpoint). */
static void start_revise(struct pjob *pj)
{
    const char *paths[DM_REVIEW_COMMENTS_MAX];
    size_t n = dm_review_files_to_revise(&pj->verdict, paths, DM_REVIEW_COMMENTS_MAX);
    int started = 0;

    if (n > DM_REVIEW_COMMENTS_MAX) {
        n = DM_REVIEW_COMMENTS_MAX;
    }
    for (size_t k = 0; k < n; k++) {
        for (size_t i = 0; i < pj->nfiles; i++) {
            struct pfile *f = &pj->files[i];
            struct dm_prompt *prompt = NULL;
            struct dm_event_extra x = {0};
            struct dm_error err;
            char *user = NULL;
            char msg[300];

            if (is_spec_doc(pj, i) || strcmp(pj->plan->items[i].path, paths[k]) != 0) {
                continue;
            }
            if (dm_prompt_build(&prompt, pj->p->prompts, pj->spec, pj->plan, i, &err) ||
                dm_review_revise_prompt(&user, &pj->verdict, paths[k], f->content, f->len, &err)) {
                dm_prompt_free(prompt);
                free(user);
                dm_warn("pipeline", pj->job->id, "cannot revise %s: %s", paths[k], err.msg);
                continue;
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
            snprintf(msg, sizeof(msg), "revising %s after review", paths[k]);
            x.step = paths[k];
            x.path = paths[k];
            emit(pj, "writing", msg, &x, NULL, 0);
            started++;
        }
    }
    if (!started) {
        review_decided(pj, &pj->verdict);
        return;
    }
    dm_info("pipeline", pj->job->id, "revise round: %d file(s)", started);
    pj->revised = 1;
    pj->revising = 1;
    generation_progress(pj);
}

static void revise_done(struct pjob *pj)
{
    struct dm_error err;
    pj->reviewed = 0;
    if (scan_files(pj, &err)) {
        finish_stage(pj, err.code ? err.code : DM_ERR_INVALID, &err);
        return;
    }
    review_decided(pj, &pj->verdict);
}

/* The reviewer model answered (or failed): combine with the rules, or fall back to them. */
static void on_review_done(void *arg, int rc, struct dm_llm_result *res, const struct dm_error *err)
{
    struct pjob *pj = arg;
    struct dm_review_verdict model = DM_REVIEW_VERDICT_INIT;
    struct dm_review_verdict final = DM_REVIEW_VERDICT_INIT;
    struct dm_review_file *files;
    struct dm_error perr;
    size_t n = 0;

    if (single_call_done(pj, rc, res, "review")) {
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
        review_decided(pj, &pj->rules);
    } else if (!files || dm_review_parse(&model, res->content, res->content_len, files, n, &perr)) {
        dm_warn("pipeline", pj->job->id,
                "reviewer model answered something unusable (%s); the "
                "rules decide",
                files ? perr.msg : "out of memory");
        review_decided(pj, &pj->rules);
    } else if (dm_review_combine(&final, &model, &pj->rules, &perr)) {
        review_decided(pj, &pj->rules);
    } else if (final.decision != DM_REVIEW_REJECT && final.n_comments > 0 &&
               pj->p->cfg->review_revise && !pj->revised) {
        /* Keep the verdict (the round does not ask the reviewer again) and revise. */
        dm_review_verdict_free(&pj->verdict);
        pj->verdict = final;
        dm_review_verdict_init(&final);
        start_revise(pj);
    } else {
        review_decided(pj, &final);
    }
    free(files);
    dm_review_verdict_free(&model);
    dm_review_verdict_free(&final);
}

/* Asks the reviewer model; returns 0 when the call started (its completion decides). */
static int ask_reviewer(struct pjob *pj)
{
    struct dm_pipeline *p = pj->p;
    struct dm_review_prompt *prompt = NULL;
    struct dm_review_file *files;
    struct dm_llm_request r;
    struct dm_price price;
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
    rc = dm_review_prompt_build(&prompt, pj->plan->title, files, n, &pj->findings, &err);
    free(files);
    if (rc) {
        return rc;
    }
    /* The review counts against the budget like any other call. */
    rc = dm_price_lookup(p->prices, p->cfg->review_model, &price, &err);
    if (!rc) {
        rc = dm_budget_reserve(
            &pj->budget, &price,
            dm_budget_estimate_tokens(strlen(prompt->system) + strlen(prompt->user)),
            DM_REVIEW_MAX_TOKENS, &pj->review_hold, &err);
    }
    if (rc) {
        dm_warn("pipeline", pj->job->id, "reviewer model not asked (%s); the rules decide",
                err.msg);
        dm_review_prompt_free(prompt);
        return rc;
    }
    memset(&r, 0, sizeof(r));
    r.model = p->cfg->review_model;
    r.system = prompt->system;
    r.user = prompt->user;
    r.max_tokens = DM_REVIEW_MAX_TOKENS;
    r.temperature = DM_REVIEW_TEMPERATURE;
    r.stream = 0;
    r.response_format = dm_review_response_format();
    r.job_id = pj->job->id;
    r.on_done = on_review_done;
    r.arg = pj;
    rc = dm_llm_start(p->llm, &r, &pj->review_call, &err);
    dm_review_prompt_free(prompt);
    if (rc) {
        dm_budget_release(&pj->budget, &pj->review_hold);
        return rc;
    }
    p->llm_in_flight++;
    pj->outstanding++;
    return 0;
}

static void review_loaded(struct pjob *pj)
{
    struct dm_findings review_only;
    struct dm_error err;
    char *summary;
    size_t secrets;
    int rc;
    if (cancelled_now(pj)) {
        return;
    }

    if (scan_files(pj, &err)) {
        finish_stage(pj, err.code ? err.code : DM_ERR_INVALID, &err);
        return;
    }
    secrets = dm_findings_count(&pj->findings, DM_FINDING_SECRET);
    if (secrets) {
        /* Blocked outright; the message names where, never what. */
        summary = dm_findings_summary(&pj->findings, 5);
        dm_error_set(&err, DM_ERR_UNSAFE,
                     "generated files contain %zu secret(s); nothing is pushed: %s", secrets,
                     summary ? summary : "");
        free(summary);
        finish_stage(pj, DM_ERR_UNSAFE, &err);
        return;
    }
    /* The rule verdict covers the review rules; destructive operations are the gate's: they
     * park the job for a human instead of rejecting it. */
    /* A borrowing view: the items are shallow copies, only the array is ours to free. */
    memset(&review_only, 0, sizeof(review_only));
    review_only.items = calloc(pj->findings.len + 1, sizeof(*review_only.items));
    if (!review_only.items) {
        dm_error_set(&err, DM_ERR_NOMEM, "out of memory");
        finish_stage(pj, DM_ERR_NOMEM, &err);
        return;
    }
    review_only.max_severity = -1;
    for (size_t i = 0; i < pj->findings.len; i++) {
        const struct dm_finding *f = &pj->findings.items[i];
        if (f->kind == DM_FINDING_REVIEW) {
            review_only.items[review_only.len++] = *f;
            review_only.count[DM_FINDING_REVIEW]++;
            if ((int)f->severity > review_only.max_severity) {
                review_only.max_severity = (int)f->severity;
            }
        }
    }
    review_only.cap = pj->findings.len + 1;
    dm_review_verdict_free(&pj->rules);
    rc = dm_review_from_findings(&pj->rules, &review_only, &err);
    free(review_only.items);
    if (rc) {
        finish_stage(pj, err.code ? err.code : DM_ERR_INVALID, &err);
        return;
    }
    if (ask_reviewer(pj) == 0) {
        return;
    }
    review_decided(pj, &pj->rules);
}

static int run_review(struct dm_job *job)
{
    return begin(job, review_loaded);
}

/* ---- gate ---- */

static void gate_loaded(struct pjob *pj)
{
    struct dm_job *job = pj->job;
    struct dm_error err;
    size_t destructive;
    if (cancelled_now(pj)) {
        return;
    }

    if (job->dry_run || job->approved) {
        finish_ok_later(pj);
        return;
    }
    if (scan_files(pj, &err)) {
        finish_stage(pj, err.code ? err.code : DM_ERR_INVALID, &err);
        return;
    }
    destructive = dm_findings_count(&pj->findings, DM_FINDING_DESTRUCTIVE);
    if (destructive || pj->review_pause || strcmp(job->review, "pause") == 0) {
        char *flagged = dm_findings_to_json(&pj->findings);
        char *summary = dm_findings_summary(&pj->findings, 10);
        char msg[DM_ERROR_MSG_MAX];
        const char *fields[] = {"status", "paused_approval"};
        struct dm_event_extra x = {0};
        struct dm_job_write w;

        snprintf(msg, sizeof(msg), "waiting for approval: %s", summary ? summary : "review");
        x.flagged_json = flagged ? flagged : "[]";
        x.step = "gate";
        memset(&w, 0, sizeof(w));
        w.status = "paused_approval";
        w.message = msg;
        w.extra = &x;
        w.flags = DM_JOB_WRITE_ACK | DM_JOB_WRITE_PARK;
        w.fields = fields;
        w.n_fields = 2;
        dm_info("pipeline", job->id, "parked: %s", msg);
        if (job->io->write(job, &w, on_park_written)) {
            dm_error_set(&err, DM_ERR_TRANSIENT, "could not park the job");
            finish_stage(pj, DM_ERR_TRANSIENT, &err);
        }
        free(flagged);
        free(summary);
        return;
    }
    finish_ok_later(pj);
}

static int run_gate(struct dm_job *job)
{
    return begin(job, gate_loaded);
}

/* ---- push ---- */

static void git_work_free(struct git_work *w)
{
    free(w->data_dir);
    free(w->url);
    free(w->token);
    free(w->author);
    free(w->email);
    free(w->owner);
    free(w->repo);
    free(w->base);
    free(w->branch);
    free(w->alt_branch);
    free(w->job_id);
    free(w->spec_id);
    free(w->message);
    for (size_t i = 0; i < w->nfiles; i++) {
        free((char *)w->files[i].path);
        free((char *)w->files[i].content);
    }
    free(w->files);
    free(w);
}

/* Threadpool: publish on the branch, or on the alternative name when the branch is foreign. */
static void on_git_work(uv_work_t *req)
{
    struct git_work *w = req->data;
    snprintf(w->used_branch, sizeof(w->used_branch), "%s", w->branch);
    w->rc = dm_git_publish(&w->result, &w->opts, w->owner, w->repo, w->base, w->branch, w->job_id,
                           w->spec_id, w->message, w->commit_time, w->files, w->nfiles, &w->err);
    if (w->rc == DM_ERR_EXISTS && w->alt_branch) {
        struct dm_error first = w->err;
        snprintf(w->used_branch, sizeof(w->used_branch), "%s", w->alt_branch);
        w->rc = dm_git_publish(&w->result, &w->opts, w->owner, w->repo, w->base, w->alt_branch,
                               w->job_id, w->spec_id, w->message, w->commit_time, w->files,
                               w->nfiles, &w->err);
        if (w->rc == DM_ERR_EXISTS) {
            dm_error_set(&w->err, DM_ERR_EXISTS,
                         "branches %s and %s both exist and were not made by this job (%s); "
                         "nothing was pushed",
                         w->branch, w->alt_branch, first.msg);
        }
    }
}

static void on_git_done(uv_work_t *req, int status)
{
    struct git_work *w = req->data;
    struct pjob *pj = w->pj;
    struct dm_job *job = pj->job;

    pj->outstanding--;
    if (!job) {
        git_work_free(w);
        pjob_maybe_free(pj);
        return;
    }
    if (status == UV_ECANCELED) {
        w->rc = DM_ERR_CANCELLED;
        dm_error_set(&w->err, DM_ERR_CANCELLED, "push cancelled");
    }
    if (w->rc) {
        /* A mirror lock held too long or an OS hiccup is worth another try. */
        int rc = w->rc == DM_ERR_TIMEOUT || w->rc == DM_ERR_IO ? DM_ERR_TRANSIENT : w->rc;
        finish_stage(pj, rc, &w->err);
        git_work_free(w);
        return;
    }
    dm_info("pipeline", job->id, "%s %s at %s (%zu files)",
            w->result.pushed ? "pushed" : "already pushed", w->used_branch, w->result.commit,
            w->nfiles);
    free(job->branch);
    free(job->commit);
    job->branch = strdup(w->used_branch);
    job->commit = strdup(w->result.commit);
    {
        const char *fields[] = {"branch", w->used_branch, "commit", w->result.commit};
        struct dm_job_write wr;
        memset(&wr, 0, sizeof(wr));
        wr.fields = fields;
        wr.n_fields = 4;
        if (job->io->write(job, &wr, on_stage_written)) {
            struct dm_error err;
            dm_error_set(&err, DM_ERR_TRANSIENT, "could not record the push");
            finish_stage(pj, DM_ERR_TRANSIENT, &err);
        }
    }
    git_work_free(w);
}

static void push_loaded(struct pjob *pj)
{
    struct dm_job *job = pj->job;
    const struct dm_jobreq *req = req_of(pj);
    const struct dm_config *cfg = pj->p->cfg;
    struct git_work *w;
    struct dm_error err;
    char *alt = NULL;
    char msg[1024];
    if (cancelled_now(pj)) {
        return;
    }

    if (job->dry_run) {
        finish_ok_later(pj);
        return;
    }
    w = calloc(1, sizeof(*w));
    if (!w || !(w->files = calloc(pj->nfiles + 1, sizeof(*w->files)))) {
        free(w);
        dm_error_set(&err, DM_ERR_NOMEM, "out of memory");
        finish_stage(pj, DM_ERR_NOMEM, &err);
        return;
    }
    dm_plan_branch_alt(&alt, pj->plan, job->id, &err);
    snprintf(msg, sizeof(msg), "%s\n\nGenerated by dreamd from spec %s (%zu files).",
             pj->plan->pr_title, req->spec_id, pj->nfiles);
    w->pj = pj;
    w->req.data = w;
    w->data_dir = dup0(cfg->data_dir);
    w->url = dup0(cfg->git_url);
    w->token = dup0(cfg->github_token);
    w->author = dup0(cfg->git_author_name);
    w->email = dup0(cfg->git_author_email);
    w->owner = dup0(req->repo_owner);
    w->repo = dup0(req->repo_name);
    w->base = dup0(req->base_branch);
    /* A recorded branch (an earlier attempt pushed) wins over the plan's. */
    w->branch = dup0(job->branch ? job->branch : pj->plan->branch);
    w->alt_branch = job->branch ? NULL : alt;
    if (job->branch) {
        free(alt);
    }
    w->job_id = dup0(job->id);
    w->spec_id = dup0(req->spec_id);
    w->message = dup0(msg);
    /* Dated by the job, so a retry builds the very same commit. */
    w->commit_time = job->created_ms > 0 ? job->created_ms / 1000 : 0;
    for (size_t i = 0; i < pj->nfiles; i++) {
        if (!pj->files[i].ok || !pj->files[i].content) {
            /* Only validated, checkpointed content is ever pushed. */
            dm_error_set(&err, DM_ERR_TRANSIENT, "%s is not validated yet; not pushing",
                         pj->plan->items[i].path);
            git_work_free(w);
            finish_stage(pj, DM_ERR_TRANSIENT, &err);
            return;
        }
        w->files[w->nfiles].path = dup0(pj->plan->items[i].path);
        w->files[w->nfiles].content = malloc(pj->files[i].len + 1);
        if (w->files[w->nfiles].content) {
            memcpy((char *)w->files[w->nfiles].content, pj->files[i].content, pj->files[i].len);
        }
        w->files[w->nfiles].len = pj->files[i].len;
        w->nfiles++;
    }
    w->opts.data_dir = w->data_dir;
    w->opts.url_template = w->url;
    w->opts.token = w->token;
    w->opts.author_name = w->author;
    w->opts.author_email = w->email;
    w->opts.cancel = &pj->cancel_flag;
    if (uv_queue_work(pj->p->loop, &w->req, on_git_work, on_git_done)) {
        git_work_free(w);
        dm_error_set(&err, DM_ERR_IO, "cannot queue the push");
        finish_stage(pj, DM_ERR_IO, &err);
        return;
    }
    pj->outstanding++;
}

static int run_push(struct dm_job *job)
{
    return begin(job, push_loaded);
}

/* ---- pull request ---- */

static void on_pr_done(void *arg, int rc, const struct dm_forge_pr *pr, const struct dm_error *err)
{
    struct pjob *pj = arg;
    struct dm_job *job = pj->job;

    pj->fcall = NULL;
    pj->outstanding--;
    if (!job) {
        pjob_maybe_free(pj);
        return;
    }
    if (rc) {
        finish_stage(pj, rc, err);
        return;
    }
    free(job->pr_url);
    job->pr_url = strdup(pr->html_url);
    {
        const char *fields[] = {"pr_url", pr->html_url};
        struct dm_event_extra x = {0};
        struct dm_job_write w;
        char msg[600];
        snprintf(msg, sizeof(msg), "pull request %s %s", pr->created ? "opened" : "found",
                 pr->html_url);
        x.pr_url = pr->html_url;
        x.branch = job->branch;
        memset(&w, 0, sizeof(w));
        w.status = "pr_open";
        w.message = msg;
        w.extra = &x;
        w.fields = fields;
        w.n_fields = 2;
        if (job->io->write(job, &w, on_stage_written)) {
            struct dm_error e2;
            dm_error_set(&e2, DM_ERR_TRANSIENT, "could not record the pull request");
            finish_stage(pj, DM_ERR_TRANSIENT, &e2);
        }
    }
}

static void pr_loaded(struct pjob *pj)
{
    struct dm_job *job = pj->job;
    const struct dm_jobreq *req = req_of(pj);
    struct dm_forge_pr_request r;
    struct dm_pr_sections sec;
    struct dm_error err;
    char cost[256];
    char *body;
    if (cancelled_now(pj)) {
        return;
    }

    if (job->dry_run || job->pr_url) {
        finish_ok_later(pj);
        return;
    }
    if (scan_files(pj, &err)) {
        finish_stage(pj, err.code ? err.code : DM_ERR_INVALID, &err);
        return;
    }
    snprintf(cost, sizeof(cost), "%lld tokens, $%.4f (budget %lld tokens, $%.2f)\n",
             dm_budget_tokens_used(&pj->budget), dm_budget_cost_usd(&pj->budget),
             req->budget_tokens, req->budget_dollars);
    memset(&sec, 0, sizeof(sec));
    sec.validation = pj->validation_md;
    sec.review = pj->review_md;
    sec.cost = cost;
    sec.job_id = job->id;
    body = dm_plan_pr_body(pj->plan, pj->spec, &sec);
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
    if (dm_forge_open_pr(pj->p->forge, &r, &pj->fcall, &err)) {
        free(body);
        finish_stage(pj, err.code ? err.code : DM_ERR_INVALID, &err);
        return;
    }
    free(body);
    pj->outstanding++;
}

static int run_pr(struct dm_job *job)
{
    return begin(job, pr_loaded);
}

/* ---- cancel and release ---- */

static void cancel(struct dm_job *job)
{
    struct pjob *pj = job->stage_data;
    if (!pj || !pj->stage_active) {
        return;
    }
    pj->cancelling = 1;
    atomic_store(&pj->cancel_flag, 1);
    for (size_t i = 0; i < pj->nfiles; i++) {
        if (pj->files[i].call) {
            dm_llm_cancel(pj->files[i].call);
        }
        if (pj->files[i].vreq) {
            dm_validate_cancel(pj->files[i].vreq);
        }
        if (pj->files[i].waiting) {
            dequeue_waiting(pj->p, &pj->files[i]);
            pj->outstanding--;
            pj->files[i].state = F_DONE;
        }
    }
    if (pj->fcall) {
        dm_forge_cancel(pj->fcall);
    }
    if (pj->review_call) {
        dm_llm_cancel(pj->review_call);
    }
    if (pj->outstanding == 0 && job->stage == DM_STAGE_GENERATE) {
        generation_progress(pj);
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
    dm_findings_free(&pj->findings);
    dm_review_verdict_free(&pj->rules);
    dm_review_verdict_free(&pj->verdict);
    free(pj->validation_md);
    free(pj->review_md);
    free(pj);
}

static void pjob_maybe_free(struct pjob *pj)
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
        atomic_store(&pj->cancel_flag, 1);
        for (size_t i = 0; i < pj->nfiles; i++) {
            if (pj->files[i].call) {
                dm_llm_cancel(pj->files[i].call);
            }
            if (pj->files[i].vreq) {
                dm_validate_cancel(pj->files[i].vreq);
            }
            if (pj->files[i].waiting) {
                dequeue_waiting(pj->p, &pj->files[i]);
                pj->outstanding--;
            }
        }
        if (pj->fcall) {
            dm_forge_cancel(pj->fcall);
        }
        if (pj->review_call) {
            dm_llm_cancel(pj->review_call);
        }
    }
    pjob_maybe_free(pj);
}

/* ---- the pipeline ---- */

void dm_pipeline_stage_ops(struct dm_pipeline *p, struct dm_stage_ops *ops)
{
    memset(ops, 0, sizeof(*ops));
    ops->run[DM_STAGE_PLAN] = run_plan;
    ops->run[DM_STAGE_GENERATE] = run_generate;
    ops->run[DM_STAGE_REVIEW] = run_review;
    ops->run[DM_STAGE_GATE] = run_gate;
    ops->run[DM_STAGE_PUSH] = run_push;
    ops->run[DM_STAGE_PR] = run_pr;
    ops->cancel = cancel;
    ops->release = release;
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

int dm_pipeline_new(struct dm_pipeline **out, uv_loop_t *loop, const struct dm_config *cfg,
                    struct dm_metrics *metrics, struct dm_error *err)
{
    struct dm_pipeline *p = calloc(1, sizeof(*p));
    struct dm_http_opts ho = DM_HTTP_OPTS_INIT;
    struct dm_llm_opts lo = DM_LLM_OPTS_INIT;
    struct dm_forge_opts fo = DM_FORGE_OPTS_INIT;
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
    if (cfg->protected_branches && *cfg->protected_branches) {
        char *save = NULL;
        p->protected_buf = strdup(cfg->protected_branches);
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
    lo.api_key = cfg->openrouter_api_key;
    lo.timeout_ms = (long)cfg->llm_timeout_ms;
    lo.prices = p->prices;
    if ((rc = dm_llm_new(&p->llm, p->http, loop, &lo, err))) {
        goto fail;
    }
    fo.api_url = cfg->github_api_url;
    fo.token = cfg->github_token;
    fo.write_interval_ms = (long)cfg->forge_write_interval_ms;
    if ((rc = dm_forge_new(&p->forge, p->http, loop, &fo, err))) {
        goto fail;
    }
    {
        struct dm_callback_opts co = DM_CALLBACK_OPTS_INIT;
        co.secret = cfg->callback_secret;
        if ((rc = dm_callbacks_new(&p->callbacks, loop, p->http, &co, err))) {
            goto fail;
        }
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
