/*
 * stage_plan: the plan stage. The base of the change is loaded first (LOAD_REPO: its tree, the
 * files that matter and the stack, from the pipeline's per-commit cache or read off the loop).
 * The rules plan the files in the repository's conventions (plan.c, given pj->repo), or, with
 * --planner=model, a model plans them from the spec and the base's tree; every failure of the
 * model path falls back to the rules. The plan is checked against the safety policy and
 * recorded (`plan`, `branch`, a `planned` event). Owns struct plan_state (the planner's metered
 * call). Loop thread only.
 */
#include "dream/core/log.h"
#include "dream/domain/planner.h"

#include "stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Checks and records the plan (whichever planner made it) and announces it; the stage ends once
 * it is written. Returns 0 or a negative enum dm_err with job->error set (the stage goes on). */
static int commit_plan(struct pjob *pj)
{
    struct dm_job *job = pj->job;
    const struct dm_jobreq *req = job->req;
    struct dm_error *err = &job->error;
    enum dm_trust_action action;
    const char **paths;
    size_t *sizes;
    char *json;
    int rc;

    rc = stage_load_plan(pj, err);
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
    if (!rc && pj->repo && pj->repo->n_tree) {
        /* A new file that differs only by case from a file of the base is that file on a
         * case-insensitive checkout. */
        const char **base = calloc(pj->repo->n_tree, sizeof(*base));
        if (!base) {
            rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
        }
        for (size_t i = 0; base && i < pj->repo->n_tree; i++) {
            base[i] = pj->repo->tree[i].path;
        }
        if (base) {
            rc = dm_safety_check_twins(paths, pj->nfiles, base, pj->repo->n_tree, err);
        }
        free(base);
    }
    json = rc ? NULL : dm_plan_to_json(pj->plan);
    if (!rc && !json) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    if (!rc) {
        char tokens[32], cost[48], msg[160];
        const char *fields[] = {"plan",   json,   "branch", pj->plan->branch,
                                "tokens", tokens, "cost",   cost};
        struct dm_event_extra x = {
            .files = paths, .n_files = pj->nfiles, .branch = pj->plan->branch};
        struct dm_job_write w = {
            .status = "planned", .message = msg, .extra = &x, .fields = fields, .n_fields = 8};

        snprintf(msg, sizeof(msg), "%zu files planned on branch %s", pj->nfiles, pj->plan->branch);
        stage_budget_fields(pj, tokens, sizeof(tokens), cost, sizeof(cost));
        if (!job->plan_json) {
            /* The job keeps the plan it recorded (a retried stage records the same again). */
            job->plan_json = json;
            json = NULL;
        }
        stage_record_finish(pj, &w, 0, "could not record the plan");
    }
    free(json);
    free(sizes);
    free(paths);
    return rc;
}

/* Records the rules' plan, or ends the stage when even that fails. */
static void commit_or_fail(struct pjob *pj)
{
    int rc = commit_plan(pj);
    if (rc) {
        stage_finish(pj, rc, &pj->job->error);
    }
}

static void plan_fallback(struct pjob *pj, const char *why)
{
    dm_warn("pipeline", pj->job->id, "model planner not used (%s); the rules plan the files", why);
    commit_or_fail(pj);
}

static void on_planner_done(struct metered *mc, int rc, struct dm_llm_result *res,
                            const struct dm_error *err)
{
    struct pjob *pj = mc->pj;
    const struct dm_jobreq *req = pj->job->req;
    struct dm_planner_opts po = DM_PLANNER_OPTS_INIT;
    struct dm_plan *plan = NULL;
    struct dm_error perr;
    char *notes = NULL;

    if (metered_interrupted(pj, rc, "planning")) {
        return;
    }
    if (rc) {
        plan_fallback(pj, err && err->msg[0] ? err->msg : dm_err_name(rc));
        return;
    }
    po.branch_prefix = req->branch_prefix;
    po.policy = &pj->p->policy;
    po.repo = pj->repo;
    po.allow_workflows =
        dm_trust_decide(req->trust, pj->p->cfg->allow_workflows) == DM_TRUST_ACTION_BUILD_WORKFLOWS;
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
    commit_or_fail(pj);
}

/* Asks the model for a plan from the spec and the base's tree (pj->repo, read by LOAD_REPO);
 * every failure falls back to the rules. */
static void plan_loaded(struct pjob *pj)
{
    struct dm_pipeline *p = pj->p;
    const struct dm_repo *repo = pj->repo;
    struct dm_planner_opts po = DM_PLANNER_OPTS_INIT;
    struct dm_planner_prompt *prompt = NULL;
    struct dm_llm_request r;
    enum metered_step step = METERED_START;
    struct dm_error perr;
    const char **paths;
    size_t n = 0;
    int rc;

    if (pj->job->plan_json || strcmp(p->cfg->planner, "model") != 0) {
        commit_or_fail(pj);
        return;
    }
    paths = calloc((repo ? repo->n_tree : 0) + 1, sizeof(*paths));
    if (!paths) {
        plan_fallback(pj, "out of memory");
        return;
    }
    for (size_t i = 0; repo && i < repo->n_tree && n < DM_PLANNER_TREE_PATHS; i++) {
        paths[n++] = repo->tree[i].path;
    }
    po.branch_prefix = pj->job->req->branch_prefix;
    po.policy = &p->policy;
    po.repo = repo;
    rc = dm_planner_prompt_build(&prompt, pj->spec, paths, n, &po, &perr);
    free(paths);
    if (!rc) {
        memset(&r, 0, sizeof(r));
        r.model = p->cfg->model;
        r.system = prompt->system;
        r.user = prompt->user;
        r.max_tokens = DM_PLANNER_MAX_TOKENS;
        r.temperature = DM_PLANNER_TEMPERATURE;
        r.response_format = dm_planner_response_format();
        r.job_id = pj->job->id;
        rc = metered_start(&pj->planner.call, pj, &r, on_planner_done, NULL, &step, &perr);
    }
    dm_planner_prompt_free(prompt);
    if (rc && step == METERED_PRICE) {
        /* A job with a dollar budget and a model without a price: not a reason to plan with
         * the rules behind the user's back (the generator could not run either). */
        stage_finish(pj, DM_ERR_INVALID, &perr);
        return;
    }
    if (rc) {
        plan_fallback(pj, perr.msg);
    }
}

int stage_plan_run(struct dm_job *job)
{
    return stage_begin(job, LOAD_SPEC | LOAD_REPO, plan_loaded);
}
