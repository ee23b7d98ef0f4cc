/*
 * stage_generate: the generate stage, many files at once through the model. Each file is asked
 * for (a metered call, streamed), extracted from the reply, checked (in process, then esbuild
 * for TypeScript), repaired by the model while invalid (at most max_repairs times), scanned for
 * secrets, and checkpointed in the same write that announces it; the budget is never exceeded.
 * The same round regenerates the files of the review's revise round (gen_state.round_done).
 *
 * Edits of existing files (plan kind edit) need the base (LOAD_REPO): the prompt carries the
 * file's current content, and every version the model returns passes the edit guard
 * (domain/editguard.h) before the usual validation; a removal beyond the guard goes to repair
 * with the guard's message and the base's content, unless the spec asks for a removal: then
 * the file is accepted and the gate parks the job (its scan flags the edit again).
 *
 * Owns the files' generation state (struct gen_file, struct gen_state) and the pipeline's queue
 * of files waiting for a request slot under the replica-wide cap (wait_head/wait_tail).
 * Loop thread only.
 */
#include "dream/core/log.h"
#include "dream/domain/editguard.h"
#include "dream/domain/prompt.h"
#include "dream/io/validate_run.h"

#include "stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void call_llm(struct gen_file *f);

/* Fails the round (the first error is kept) and stops the rest of its work; the round ends once
 * everything came back cancelled. */
static void fail_generation(struct pjob *pj, int rc, const struct dm_error *err)
{
    if (!pj->gen.failed) {
        pj->gen.failed = 1;
        pj->gen.err = *err;
        pj->gen.err.code = rc;
        dm_warn("pipeline", pj->job ? pj->job->id : NULL, "generation failed: %s", err->msg);
    }
    gen_stop(pj);
}

/* A file is over (done, failed or cut short): the round goes on or ends. */
static void file_over(struct gen_file *f)
{
    f->state = F_DONE;
    gen_progress(f->pj);
}

static void file_failed(struct gen_file *f, int rc, const struct dm_error *err)
{
    f->state = F_DONE;
    fail_generation(f->pj, rc, err);
    gen_progress(f->pj);
}

void gen_stop(struct pjob *pj)
{
    for (size_t i = 0; i < pj->nfiles; i++) {
        metered_cancel(&pj->files[i].call);
        if (pj->files[i].vreq) {
            dm_validate_cancel(pj->files[i].vreq);
        }
    }
}

static void dequeue_waiting(struct dm_pipeline *p, struct gen_file *f)
{
    struct gen_file **pp = &p->wait_head;
    struct gen_file *prev = NULL;
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

void gen_unqueue(struct pjob *pj)
{
    for (size_t i = 0; i < pj->nfiles; i++) {
        if (pj->files[i].waiting) {
            dequeue_waiting(pj->p, &pj->files[i]);
            pj->outstanding--;
            pj->files[i].state = F_DONE;
        }
    }
}

void gen_wake_waiting(struct dm_pipeline *p)
{
    while (p->wait_head && p->llm_in_flight < p->cfg->max_requests && !p->closing) {
        struct gen_file *f = p->wait_head;
        dequeue_waiting(p, f);
        f->pj->outstanding--;
        call_llm(f);
    }
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
    gen_progress(pj);
}

/* A file holding a secret is never checkpointed (nor pushed): the job fails here and the secret
 * is stored nowhere. The message says where, never what. Returns 1 when f was refused. */
static int refuse_secret(struct gen_file *f)
{
    const char *path = f->pj->plan->items[f->index].path;
    struct dm_findings found = DM_FINDINGS_INIT;
    struct dm_error serr;
    char *summary;

    if (dm_safety_scan(&found, path, f->content, f->len, DM_SAFETY_RULES_SECRETS, &serr) != 0 ||
        dm_findings_count(&found, DM_FINDING_SECRET) == 0) {
        dm_findings_free(&found);
        return 0;
    }
    summary = dm_findings_summary(&found, 3);
    dm_error_set(&serr, DM_ERR_UNSAFE,
                 "generated file %s contains a secret; the job is blocked and nothing is "
                 "pushed: %s",
                 path, summary ? summary : "");
    free(summary);
    dm_findings_free(&found);
    free(f->content);
    f->content = NULL;
    f->len = 0;
    fail_generation(f->pj, DM_ERR_UNSAFE, &serr);
    return 1;
}

/* A file passed validation: checkpoint it, then announce it, in one write. */
static void file_valid(struct gen_file *f)
{
    struct pjob *pj = f->pj;
    const struct dm_plan_item *it = &pj->plan->items[f->index];
    char tokens[32], cost[48], msg[400];
    const char *fields[] = {"tokens", tokens, "cost", cost};
    struct dm_event_extra x = {.step = it->path,
                               .path = it->path,
                               .file_tokens = f->tokens,
                               .file_cost = f->cost,
                               .generation_id = f->gen_id[0] ? f->gen_id : NULL};
    struct dm_job_write w = {.status = "generated",
                             .message = msg,
                             .extra = &x,
                             .file_path = it->path,
                             .file_content = f->content,
                             .file_len = f->len,
                             .fields = fields,
                             .n_fields = 4};

    f->state = F_DONE;
    if (refuse_secret(f)) {
        return;
    }
    f->ok = 1;
    stage_budget_fields(pj, tokens, sizeof(tokens), cost, sizeof(cost));
    snprintf(msg, sizeof(msg), "generated %s (%lld tokens, $%.4f%s)", it->path, f->tokens, f->cost,
             f->repairs ? ", repaired" : "");
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
static void file_invalid(struct gen_file *f, const char *why)
{
    struct pjob *pj = f->pj;
    const struct dm_plan_item *it = &pj->plan->items[f->index];
    /* An edit's repair carries the base's version, so what was dropped can come back. */
    const struct dm_repo_text *base =
        it->kind == DM_PLAN_KIND_EDIT && pj->repo ? dm_repo_find(pj->repo, it->path) : NULL;
    struct dm_error err;
    char *user = NULL;

    if (f->repairs >= pj->p->cfg->max_repairs) {
        dm_error_set(&err, DM_ERR_INVALID, "%s is still invalid after %d repairs: %s", it->path,
                     f->repairs, why);
        file_failed(f, DM_ERR_INVALID, &err);
        return;
    }
    f->repairs++;
    dm_info("pipeline", pj->job->id, "%s is invalid (%s); asking for repair %d of %lld", it->path,
            why, f->repairs, pj->p->cfg->max_repairs);
    if (dm_prompt_repair_edit(&user, pj->p->prompts, it->path, f->content ? f->content : "",
                              f->content ? f->len : 0, base ? base->content : NULL,
                              base ? base->len : 0, why, &err)) {
        file_failed(f, err.code, &err);
        return;
    }
    free(f->user);
    f->user = user;
    call_llm(f);
}

static void on_validated(void *arg, int status, const char *message)
{
    struct gen_file *f = arg;
    struct pjob *pj = f->pj;

    f->vreq = NULL;
    pj->outstanding--;
    if (!pj->job) {
        pjob_maybe_free(pj);
        return;
    }
    if (status == DM_ERR_CANCELLED || pj->gen.failed || pj->cancelling) {
        file_over(f);
        return;
    }
    if (status == 0 || status == DM_ERR_UNAVAILABLE) {
        if (status == DM_ERR_UNAVAILABLE) {
            dm_warn("pipeline", pj->job->id, "esbuild is not available: %s not syntax-checked",
                    pj->plan->items[f->index].path);
        }
        file_valid(f);
        gen_progress(pj);
        return;
    }
    file_invalid(f, message ? message : dm_err_name(status));
}

/* The edit guard on an edit of an existing file. Returns 1 when f was refused (failed or sent
 * to repair), 0 when it may go on to validation. */
static int guard_edit(struct gen_file *f)
{
    struct pjob *pj = f->pj;
    const char *path = pj->plan->items[f->index].path;
    const struct dm_repo_text *base = pj->repo ? dm_repo_find(pj->repo, path) : NULL;
    struct dm_error err;
    int rc;

    if (!base) {
        dm_error_set(&err, DM_ERR_INVALID, "cannot check the edit of %s: the base was not read",
                     path);
        file_failed(f, DM_ERR_INVALID, &err);
        return 1;
    }
    rc = dm_editguard_check(path, base->content, base->len, f->content, f->len,
                            DM_EDITGUARD_MAX_REMOVED_PCT, &err);
    if (rc == 0) {
        return 0;
    }
    if (rc == DM_ERR_INVALID && dm_editguard_spec_allows_removal(pj->spec)) {
        /* The spec asks for a removal: a person decides, at the gate. */
        dm_info("pipeline", pj->job->id, "%s (the spec asks for a removal: approval needed)",
                err.msg);
        return 0;
    }
    if (rc == DM_ERR_INVALID) {
        file_invalid(f, err.msg);
    } else {
        file_failed(f, rc, &err);
    }
    return 1;
}

/* The change's limits on what was generated (per file, in all), checked on the content: 0, or
 * DM_ERR_LIMIT with err naming the limit. A file past them fails the job, it is not repaired:
 * the model was told the limits and wrote past them anyway. */
static int check_sizes(struct gen_file *f, struct dm_error *err)
{
    struct pjob *pj = f->pj;
    const char **paths = calloc(pj->nfiles + 1, sizeof(*paths));
    size_t *sizes = calloc(pj->nfiles + 1, sizeof(*sizes));
    size_t n = 0;
    int rc;

    if (!paths || !sizes) {
        free(paths);
        free(sizes);
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < pj->nfiles; i++) {
        const struct gen_file *g = &pj->files[i];
        if (g == f || (g->ok && g->content)) {
            paths[n] = pj->plan->items[i].path;
            sizes[n++] = g->len;
        }
    }
    rc = dm_safety_check_limits(paths, sizes, n, &pj->p->policy, err);
    free(paths);
    free(sizes);
    return rc;
}

static void validate_file(struct gen_file *f)
{
    struct pjob *pj = f->pj;
    const char *path = pj->plan->items[f->index].path;
    struct dm_error err;
    int sql;

    if (pj->plan->items[f->index].kind == DM_PLAN_KIND_EDIT && guard_edit(f)) {
        return;
    }
    /* SQL runs SQLite (up to its 2 s cap): on the threadpool through the runner, never here. */
    sql = dm_validate_kind_of(path) == DM_VALIDATE_SQL && pj->p->vr;
    if (!sql && dm_validate_file(path, f->content, f->len, &err)) {
        file_invalid(f, err.msg);
        return;
    }
    if ((sql || dm_validate_esbuild_loader(path)) && pj->p->vr) {
        if (dm_validate_run(pj->p->vr, path, f->content, f->len, on_validated, f, &f->vreq) == 0) {
            pj->outstanding++;
            return;
        }
        dm_error_set(&err, DM_ERR_TRANSIENT, "cannot run the validator for %s", path);
        file_failed(f, DM_ERR_TRANSIENT, &err);
        return;
    }
    file_valid(f);
    gen_progress(pj);
}

static void on_llm_progress(void *arg, size_t bytes, long long tokens)
{
    struct gen_file *f = ((struct metered *)arg)->arg;
    struct pjob *pj = f->pj;
    const char *path;
    char msg[300];

    if (!pj->job || bytes == 0) {
        return;
    }
    path = pj->plan->items[f->index].path;
    snprintf(msg, sizeof(msg), "%s: %zu bytes, ~%lld tokens", path, bytes, tokens);
    {
        struct dm_event_extra x = {.step = path, .path = path, .bytes = (long long)bytes};
        struct dm_job_write w = {.status = "progress", .message = msg, .extra = &x};
        stage_emit(pj, &w);
    }
}

static int on_llm_tokens(void *arg, long long completion_tokens)
{
    struct metered *mc = arg;
    struct dm_error err;
    /* Cut a stream that would cross the budget. */
    if (dm_budget_stream_check(&mc->pj->budget, &mc->hold, completion_tokens, &err)) {
        return DM_ERR_BUDGET;
    }
    return 0;
}

static void on_file_done(struct metered *mc, int rc, struct dm_llm_result *res,
                         const struct dm_error *err)
{
    struct gen_file *f = mc->arg;
    struct pjob *pj = f->pj;
    const char *path = pj->plan->items[f->index].path;
    struct dm_error e2;
    char *file = NULL;

    if (res && res->billed) {
        f->tokens += res->prompt_tokens + res->completion_tokens;
        f->cost += res->cost_usd;
        snprintf(f->gen_id, sizeof(f->gen_id), "%s", res->id);
    }
    if (rc == DM_ERR_CANCELLED || pj->gen.failed || pj->cancelling) {
        file_over(f);
        return;
    }
    if (rc) {
        if (rc == DM_ERR_BUDGET) {
            dm_error_set(&e2, DM_ERR_BUDGET,
                         "budget exhausted while generating %s: spent %lld tokens, $%.4f of "
                         "%lld tokens, $%.4f",
                         path, dm_budget_tokens_used(&pj->budget), dm_budget_cost_usd(&pj->budget),
                         pj->budget.max_tokens, pj->budget.max_usd);
        } else {
            dm_error_set(&e2, rc, "generating %s: %s", path,
                         err && err->msg[0] ? err->msg : dm_err_name(rc));
        }
        file_failed(f, rc == DM_ERR_TIMEOUT || rc == DM_ERR_IO ? DM_ERR_TRANSIENT : rc, &e2);
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
    if (check_sizes(f, &e2)) {
        file_failed(f, DM_ERR_LIMIT, &e2);
        return;
    }
    validate_file(f);
}

/* The reservation did not fit yet: the file starts again once a call in flight settles. */
static void wait_for_budget(struct gen_file *f)
{
    struct pjob *pj = f->pj;

    pj->budget_wait = 1;
    f->state = F_TODO;
    if (!pj->gen.round_done) {
        /* A revise round keeps its messages; a plain file builds them again. */
        free(f->system);
        free(f->user);
        f->system = f->user = NULL;
    }
    if (f->repairs) {
        /* A repair that cannot fit now is retried from scratch later. */
        f->repairs = 0;
    }
    gen_progress(pj);
}

static void call_llm(struct gen_file *f)
{
    struct pjob *pj = f->pj;
    struct dm_pipeline *p = pj->p;
    struct dm_llm_request r;
    enum metered_step step;
    struct dm_error err;
    int rc;

    if (pj->gen.failed || pj->cancelling) {
        file_over(f);
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
    rc = metered_start(&f->call, pj, &r, on_file_done, f, &step, &err);
    if (rc == 0) {
        return;
    }
    if (step == METERED_RESERVE && rc == DM_ERR_TRANSIENT) {
        wait_for_budget(f);
        return;
    }
    if (step == METERED_RESERVE) {
        dm_error_set(&err, DM_ERR_BUDGET,
                     "budget too small for %s: spent %lld tokens, $%.4f; the call needs up to "
                     "%lld tokens; limits %lld tokens, $%.4f",
                     pj->plan->items[f->index].path, dm_budget_tokens_used(&pj->budget),
                     dm_budget_cost_usd(&pj->budget), f->call.prompt_tokens + p->cfg->max_tokens,
                     pj->budget.max_tokens, pj->budget.max_usd);
        rc = DM_ERR_BUDGET;
    } else if (step == METERED_PRICE) {
        rc = DM_ERR_INVALID;
    }
    file_failed(f, rc, &err);
}

static void start_file(struct gen_file *f)
{
    struct pjob *pj = f->pj;
    const struct dm_plan_item *it = &pj->plan->items[f->index];
    struct dm_prompt *prompt = NULL;
    struct dm_error err;
    char msg[300];

    f->state = F_RUNNING;
    if (!f->system) {
        struct dm_event_extra x = {.step = it->path, .path = it->path};
        struct dm_job_write w = {.status = "writing", .message = msg, .extra = &x};
        if (dm_prompt_build_repo(&prompt, pj->p->prompts, pj->spec, pj->plan, f->index, pj->repo,
                                 &err)) {
            file_failed(f, err.code ? err.code : DM_ERR_INVALID, &err);
            return;
        }
        f->system = prompt->system;
        f->user = prompt->user;
        prompt->system = prompt->user = NULL;
        dm_prompt_free(prompt);
        snprintf(msg, sizeof(msg), "writing %s", it->path);
        stage_emit(pj, &w);
    }
    call_llm(f);
}

/* Starts files up to the parallelism; ends the round when every file is done. */
static void pump_files(struct pjob *pj)
{
    long limit = (long)pj->p->cfg->file_parallelism;
    long running = 0;
    int todo = 0;

    if (!pj->job || pj->gen.failed || pj->cancelling || pj->budget_wait) {
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
            if (pj->gen.failed || !pj->stage_active) {
                return;
            }
        }
    }
    if (!todo && !running && !pj->outstanding && pj->stage_active) {
        void (*round_done)(struct pjob *) = pj->gen.round_done;
        if (round_done) {
            pj->gen.round_done = NULL;
            round_done(pj);
            return;
        }
        stage_finish(pj, 0, NULL);
    }
}

void gen_progress(struct pjob *pj)
{
    int running = 0;
    for (size_t i = 0; i < pj->nfiles; i++) {
        running += pj->files[i].state == F_RUNNING;
    }
    if (pj->outstanding > 0 || running > 0 || !pj->job) {
        if (!pj->gen.failed && !pj->cancelling && pj->job) {
            pump_files(pj);
        }
        return;
    }
    if (pj->cancelling) {
        struct dm_error err;
        dm_error_set(&err, DM_ERR_CANCELLED, "generation interrupted");
        stage_finish(pj, DM_ERR_CANCELLED, &err);
        return;
    }
    if (pj->gen.failed) {
        stage_finish(pj, pj->gen.err.code, &pj->gen.err);
        return;
    }
    pump_files(pj);
}

static void generate_loaded(struct pjob *pj)
{
    /* A retried stage starts again every file that did not make it (failed, cancelled or cut
     * short last time); checkpointed files are kept. */
    for (size_t i = 0; i < pj->nfiles; i++) {
        struct gen_file *f = &pj->files[i];
        if (!f->ok && f->state == F_DONE) {
            f->state = F_TODO;
            f->repairs = 0;
            free(f->system);
            free(f->user);
            f->system = f->user = NULL;
        }
    }
    pj->budget_wait = 0;
    gen_progress(pj);
}

int stage_generate_run(struct dm_job *job)
{
    return stage_begin(job, LOAD_FILES | LOAD_REPO, generate_loaded);
}
