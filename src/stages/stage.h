/*
 * stage.h (private to src/stages): what the pipeline's stages share.
 *
 *   - struct dm_pipeline: the services every job uses (HTTP, LLM, GitHub, esbuild, prices,
 *     prompts, the safety policy) and the replica-wide cap on LLM requests with its queue.
 *   - struct pjob: one job's state, hung off job->stage_data from its first stage until the
 *     engine releases the job. What every stage reads (spec, plan, files, budget, the running
 *     stage's bookkeeping) sits at the top; each stage keeps the rest in its own struct.
 *   - the path every stage takes: stage_begin() loads what the stage needs and continues on a
 *     later loop turn; stage_finish() ends it exactly once, after all its work came back;
 *     stage_record_finish() records the stage's results and then ends it.
 *   - the metered model call (stage_call.c) used by the planner, the generator and the reviewer.
 *
 * A job the engine drops while work is still in flight (shutdown) is detached (pj->job NULL):
 * each piece of work that comes back only counts itself down (pj->outstanding) and the last one
 * frees the pjob through pjob_maybe_free(); none of it touches the job again.
 * Loop thread only.
 */
#ifndef DREAM_STAGES_STAGE_H
#define DREAM_STAGES_STAGE_H

#include <uv.h>

#include "dream/core/config.h"
#include "dream/core/error.h"
#include "dream/domain/budget.h"
#include "dream/domain/job.h"
#include "dream/domain/jobreq.h"
#include "dream/domain/plan.h"
#include "dream/domain/repo.h"
#include "dream/domain/review.h"
#include "dream/domain/safety.h"
#include "dream/domain/spec.h"
#include "dream/domain/validate.h"
#include "dream/io/git.h"
#include "dream/io/llm.h"

#define MAX_PROTECTED 32

/* Commits whose base the pipeline keeps read (struct repo_cached). */
#define REPO_CACHE_COMMITS 8

/* One base read (LOAD_REPO), shared by the pipeline's cache and the jobs using it: freed when
 * the last of them lets it go (repo_cached_unref). */
struct repo_cached {
    struct dm_repo *repo;
    int refs;
};

/* Drops one reference; frees the base with the last one. NULL is fine. */
void repo_cached_unref(struct repo_cached *c);

struct pjob;
struct gen_file;
struct dm_gitjob;
struct dm_forge_call;
struct dm_ghapp;
struct dm_ghapp_wait;
struct dm_validate_req;

/* ---- the shared services (pipeline.c) ---- */

struct dm_pipeline {
    uv_loop_t *loop;
    const struct dm_config *cfg;
    struct dm_metrics *metrics;
    struct dm_http *http;
    struct dm_llm *llm;
    struct dm_forge *forge;
    struct dm_ghapp *gh; /* the GitHub credentials (token, token file or App) */
    struct dm_validate_runner *vr;
    struct dm_callbacks *callbacks;
    struct dm_price_table *prices;
    struct dm_models *models; /* the model price list (io/models.h) */
    struct dm_prompts *prompts;
    struct dm_safety_policy policy;
    char *protected_buf;
    const char *protected_list[MAX_PROTECTED];
    int llm_in_flight;                      /* every job's model calls together */
    struct gen_file *wait_head, *wait_tail; /* files waiting for a request slot, oldest first */
    /* the bases read, per commit (LOAD_REPO), most recently used last; each entry refcounted
       so a job keeps its copy when a newer commit evicts it */
    struct repo_cached *repo_cache[REPO_CACHE_COMMITS];
    size_t n_repo_cache;
    unsigned long long repo_reads, repo_hits; /* bases read / served from the cache */
    int closing;
    int pending_closes;
    void (*closed)(void *arg);
    void *closed_arg;
};

/* ---- the metered model call (stage_call.c) ---- */

struct metered;

/* Completion of a metered call, after it was settled, counted and its spend recorded; only
 * while the job is still attached. res and err are borrowed (res->content may be taken). */
typedef void (*metered_done_fn)(struct metered *mc, int rc, struct dm_llm_result *res,
                                const struct dm_error *err);

/* One model call paid from the job's budget. Embed it in the state of whoever makes the call. */
struct metered {
    struct pjob *pj;
    struct dm_budget_hold hold;
    struct dm_llm_call *call; /* in flight, or NULL */
    long long prompt_tokens;  /* the estimate the last reservation used */
    metered_done_fn done;
    void *arg; /* the caller's; r->arg of the callbacks of metered_start() */
};

/* Which step of metered_start() failed. */
enum metered_step { METERED_PRICE = 1, METERED_RESERVE, METERED_START };

/*
 * Starts r (model, messages, max_tokens and the optional streaming callbacks set by the
 * caller): looks r->model's price up, reserves the worst case (estimated prompt + max_tokens)
 * from the budget, starts the call and counts it in flight (replica and job). r->on_done and
 * r->arg are set here; on_progress and on_tokens, if set, get mc as their arg. done fires once,
 * later. Returns 0, or the failing step's error with *step set (err filled; nothing is held or
 * in flight then): METERED_PRICE (no price), METERED_RESERVE (dm_budget_reserve's
 * DM_ERR_TRANSIENT: it fits once calls in flight settle; DM_ERR_BUDGET or DM_ERR_INVALID),
 * METERED_START (dm_llm_start's error). The replica-wide cap is the caller's to check.
 */
/* The stage ops' admit (intake): with a dollar budget, the generation and review models must
 * have a price (dm_intake_check_prices), once the model list's first read has ended. */
int stage_admit(void *ctx, const struct dm_jobreq *req, char *reason, size_t cap);

int metered_start(struct metered *mc, struct pjob *pj, struct dm_llm_request *r,
                  metered_done_fn done, void *arg, enum metered_step *step, struct dm_error *err);

/* Cancels the call in flight, if any (its completion comes back later, cancelled). */
void metered_cancel(struct metered *mc);

/* For a stage whose one call came back (planner, reviewer): when the call was cancelled or the
 * stage is being cancelled, ends the stage with DM_ERR_CANCELLED ("<what> interrupted") and
 * returns 1. */
int metered_interrupted(struct pjob *pj, int rc, const char *what);

/* ---- per-stage state ---- */

/* The plan stage's model planner (stage_plan.c). */
struct plan_state {
    struct metered call;
};

/* A file of the plan: its content (from the checkpoint, the spec, or the generator) and the
 * generator's work on it (stage_generate.c). */
enum fstate { F_TODO = 0, F_RUNNING, F_DONE };

struct gen_file {
    struct pjob *pj;
    size_t index; /* in the plan */
    enum fstate state;
    int ok;        /* valid and checkpointed (or the spec document, or read back) */
    char *content; /* final or candidate content (owned) */
    size_t len;
    int repairs;
    char *system; /* messages of the current request (owned) */
    char *user;
    struct metered call;
    struct dm_validate_req *vreq;
    struct gen_file *wait_next; /* in the pipeline's queue for a request slot */
    int waiting;
    long long tokens; /* this file's usage */
    double cost;
    char gen_id[128];
};

/* The generator's round (stage_generate.c): the generate stage, or the review's revise round. */
struct gen_state {
    int failed; /* the round failed: start nothing more, end once everything came back */
    struct dm_error err;
    /* A revise round: called when every file is done, instead of ending the stage. */
    void (*round_done)(struct pjob *pj);
};

/* The rule scan of the files, shared by review, gate and pull request (stage_review.c). */
struct scan_state {
    int done; /* findings and warnings are those of the current files */
    struct dm_findings findings;
    struct dm_validate_warnings warnings;
};

/* The review stage (stage_review.c). */
struct review_state {
    struct dm_review_verdict rules;          /* the rule verdict of this review */
    struct dm_review_verdict verdict;        /* the combined verdict, kept across a revise round */
    const struct dm_review_verdict *decided; /* rules or verdict once decided here, else NULL */
    int revised;                             /* the revise round ran (only one per job) */
    struct metered call;                     /* the reviewer model's call */
};

struct push_state {
    struct dm_gitjob *git; /* the publication in flight, or NULL */
};

struct pr_state {
    struct dm_forge_call *call; /* the GitHub call in flight, or NULL */
    long number;                /* the pull request, once found or opened */
    char *url;                  /* its html_url (owned) */
    int created;
    int step; /* after it opened: labels, reviewers, the commit status (stage_pr.c) */
};

/* ---- one job ---- */

struct pjob {
    struct dm_pipeline *p;
    struct dm_job *job; /* NULL once released: work in flight only counts down */
    /* loaded by stage_begin() */
    struct dm_spec *spec;
    struct dm_plan *plan;
    struct gen_file *files; /* nfiles, one per plan item */
    size_t nfiles;
    int files_loaded; /* the checkpointed files were read back */
    struct dm_budget budget;
    int budget_ready;
    const struct dm_repo *repo;   /* LOAD_REPO: the base of the change, or NULL (not read) */
    struct repo_cached *repo_ref; /* the reference pj->repo is held by */
    struct dm_gitjob *repo_read;  /* the base being read, or NULL */
    int repo_wanted;              /* the running stage asked for LOAD_REPO */
    int repo_rereads;             /* reads restarted because the cache evicted a hit */
    int budget_wait; /* a call did not fit yet: start nothing until one in flight settles */
    /* the running stage */
    int stage_active;
    int cancelling;
    int outstanding; /* asynchronous operations in flight */
    void (*next)(struct pjob *pj);
    /* a GitHub App token fetched before the stage begins (stage_begin) */
    struct dm_ghapp_wait *token_wait;
    int token_checked;
    int token_refused; /* the push stage's git was refused a token once (stage_finish) */
    unsigned token_load;
    void (*token_next)(struct pjob *pj);
    /* each stage's own */
    struct plan_state planner;
    struct gen_state gen;
    struct scan_state scan;
    struct review_state review;
    struct push_state push;
    struct pr_state pr;
};

/* ---- the path of every stage (pipeline.c) ---- */

/* What a stage needs before its work starts (flags; LOAD_FILES implies the spec). */
enum stage_load {
    LOAD_SPEC = 1,  /* the parsed spec and the budget (the plan stage makes the plan) */
    LOAD_FILES = 2, /* spec, plan, budget and every checkpointed file */
    LOAD_REPO = 4,  /* pj->repo: the base of the change (dream/domain/repo.h) at the tip of the
                       job's base branch, shared from the pipeline's per-commit cache (read
                       through gitjob when missing, off the loop). A base that cannot be read
                       fails the stage (DM_ERR_TRANSIENT, retried; DM_ERR_AUTH and
                       DM_ERR_INVALID as such); an empty repository or a missing base branch
                       gives an empty dm_repo (no tree, default conventions), never NULL.
                       Kept for the job's life once loaded. */
};

/* Starts a stage (its run op): loads what it needs (load: enum stage_load flags), then calls
 * next(pj) on a later loop turn unless the job was cancelled meanwhile (then the stage ends
 * cancelled). Returns 0 or a negative enum dm_err with job->error set (the stage did not
 * start). */
int stage_begin(struct dm_job *job, unsigned load, void (*next)(struct pjob *pj));

/* Ends the running stage: exactly once (later calls do nothing), after every piece of its work
 * came back. A failed stage drops what was not checkpointed, so a retry starts clean. */
void stage_finish(struct pjob *pj, int rc, const struct dm_error *err);

/* Ends the running stage successfully on the next loop turn (it had nothing to do). */
void stage_finish_later(struct pjob *pj);

/* Records w (hash fields, event, flags), then ends the stage with done_rc (0, or DM_JOB_PARKED
 * for a write that parks the job) once it is written. A write that cannot be queued ends the
 * stage at once with failed_msg (DM_ERR_FENCED as such, anything else DM_ERR_TRANSIENT). */
void stage_record_finish(struct pjob *pj, const struct dm_job_write *w, int done_rc,
                         const char *failed_msg);

/* A write with no continuation (events, spend); nothing once the job is gone or fenced. */
void stage_emit(struct pjob *pj, const struct dm_job_write *w);

/* Records the job's spend (tokens, cost, reserved) in the job hash, with the model that answered
 * the call (`model`; NULL or "": not written), to which the scripts count the spend by model. */
void stage_record_spend(struct pjob *pj, const char *model);

/* The job's spend as the job hash stores it. */
void stage_budget_fields(const struct pjob *pj, char *tokens, size_t tn, char *cost, size_t cn);

/* The replica's git options (mirrors, remote, token, author); borrowed from the config. */
void stage_git_opts(const struct pjob *pj, struct dm_git_opts *opts);

/* Parses the spec and recovers or builds the plan; sizes the file table; sets up the budget. */
int stage_load_plan(struct pjob *pj, struct dm_error *err);

/* Frees a detached pjob once nothing is in flight. */
void pjob_maybe_free(struct pjob *pj);

/* ---- the stages ---- */

/* The run ops, one per file: stage_plan.c ... stage_pr.c. */
int stage_plan_run(struct dm_job *job);
int stage_generate_run(struct dm_job *job);
int stage_review_run(struct dm_job *job);
int stage_gate_run(struct dm_job *job);
int stage_push_run(struct dm_job *job);
int stage_pr_run(struct dm_job *job);

/* stage_generate.c: the generator's round, also driven by the review's revise round. */
void gen_progress(struct pjob *pj);           /* starts what may start; ends the round when done */
void gen_stop(struct pjob *pj);               /* cancels every file's work in flight */
void gen_unqueue(struct pjob *pj);            /* takes the job's files out of the slot queue */
void gen_wake_waiting(struct dm_pipeline *p); /* a request slot freed up */

/* stage_review.c: the rule scan (rules, secrets, validation warnings); idempotent. */
int stage_scan(struct pjob *pj, struct dm_error *err);

#endif
