/*
 * stage_call: the metered model call, the one path by which the planner, the generator and the
 * reviewer ask a model (contract in stage.h), and the intake's price check (stage_admit). Start:
 * look the price up (a model without one runs at price 0 when the job has no dollar budget: its
 * tokens still count against maxTokens), reserve the worst case
 * from the job's budget, start the call, count it in flight (replica and job). End: uncount it,
 * count the request, its retries, tokens and cost in the metrics, settle the budget with what
 * the call really cost (or release the hold), hand the freed request slot to a waiting file,
 * record the job's spend, and only then tell the caller. Loop thread only.
 */
#include "dream/core/error.h"
#include "dream/domain/intake.h"
#include "dream/domain/price.h"
#include "dream/io/metrics.h"
#include "dream/io/models.h"

#include "stage.h"

#include <stdint.h>
#include <string.h>

static void on_metered_done(void *arg, int rc, struct dm_llm_result *res,
                            const struct dm_error *err)
{
    struct metered *mc = arg;
    struct pjob *pj = mc->pj;
    struct dm_pipeline *p = pj->p;

    mc->call = NULL;
    p->llm_in_flight--;
    dm_metrics_set_llm_in_flight(p->metrics, p->llm_in_flight);
    pj->outstanding--;
    if (res) {
        for (int i = 1; i < res->attempts; i++) {
            dm_metrics_llm_request(p->metrics, DM_METRIC_LLM_RETRIED, -1);
        }
        if (res->attempts > 0) {
            dm_metrics_llm_request(p->metrics, rc ? DM_METRIC_LLM_FAILED : DM_METRIC_LLM_OK,
                                   (double)res->elapsed_ms / 1000.0);
        }
    }
    if (res && res->billed) {
        dm_metrics_llm_tokens(p->metrics, (uint64_t)res->prompt_tokens,
                              (uint64_t)res->completion_tokens);
        dm_metrics_llm_cost(p->metrics, res->cost_usd);
        dm_budget_settle(&pj->budget, &mc->hold, res->prompt_tokens + res->completion_tokens,
                         res->cost_usd);
    } else {
        dm_budget_release(&pj->budget, &mc->hold);
    }
    /* The budget moved: a file that did not fit may fit now. */
    pj->budget_wait = 0;
    gen_wake_waiting(p);
    if (!pj->job) {
        pjob_maybe_free(pj);
        return;
    }
    if (res && res->billed) {
        stage_record_spend(pj, res->model);
    }
    mc->done(mc, rc, res, err);
}

int metered_start(struct metered *mc, struct pjob *pj, struct dm_llm_request *r,
                  metered_done_fn done, void *arg, enum metered_step *step, struct dm_error *err)
{
    struct dm_pipeline *p = pj->p;
    struct dm_price price;
    int rc;

    mc->pj = pj;
    mc->done = done;
    mc->arg = arg;
    mc->prompt_tokens = dm_budget_estimate_tokens(strlen(r->system ? r->system : "") +
                                                  strlen(r->user ? r->user : ""));
    *step = METERED_PRICE;
    rc = dm_price_lookup(p->prices, r->model, &price, err);
    if (rc && pj->budget.max_usd > 0) {
        dm_error_wrap(err, "the job has a dollar budget (budget.maxDollars)");
        return rc;
    }
    if (rc) {
        /* No dollar budget: the call runs; usage.cost still counts when the server reports
         * it, and the tokens count against maxTokens. */
        price.prompt = 0;
        price.completion = 0;
    }
    *step = METERED_RESERVE;
    rc = dm_budget_reserve(&pj->budget, &price, mc->prompt_tokens, r->max_tokens, &mc->hold, err);
    if (rc) {
        return rc;
    }
    *step = METERED_START;
    r->on_done = on_metered_done;
    r->arg = mc;
    rc = dm_llm_start(p->llm, r, &mc->call, err);
    if (rc) {
        dm_budget_release(&pj->budget, &mc->hold);
        return rc;
    }
    p->llm_in_flight++;
    dm_metrics_set_llm_in_flight(p->metrics, p->llm_in_flight);
    pj->outstanding++;
    return 0;
}

void metered_cancel(struct metered *mc)
{
    if (mc->call) {
        dm_llm_cancel(mc->call);
    }
}

int metered_interrupted(struct pjob *pj, int rc, const char *what)
{
    struct dm_error err;
    if (rc != DM_ERR_CANCELLED && !pj->cancelling) {
        return 0;
    }
    dm_error_set(&err, DM_ERR_CANCELLED, "%s interrupted", what);
    stage_finish(pj, DM_ERR_CANCELLED, &err);
    return 1;
}

int stage_admit(void *ctx, const struct dm_jobreq *req, char *reason, size_t cap)
{
    struct dm_pipeline *p = ctx;
    const char *models[2];
    size_t n = 0;

    if (p->models && !dm_models_settled(p->models)) {
        /* The first read of the model list is still under way: the metered call checks the
         * price again when the job asks a model. */
        return 0;
    }
    models[n++] = p->cfg->model;
    models[n++] = p->cfg->review_model;
    return dm_intake_check_prices(req, p->prices, models, n, reason, cap);
}
