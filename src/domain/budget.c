/*
 * budget: reservations and accounting of one job's spending (see include/dream/domain/budget.h).
 * Owns nothing but the numbers in the structs it is given. Pure; loop thread.
 */
#include "dream/domain/budget.h"

#include <math.h>
#include "dream/core/error.h"

#include <string.h>

/* Rounding slack for dollar sums (far below a single token's price). */
#define USD_EPS 1e-12

static int over_tokens(const struct dm_budget *b, long long t)
{
    return b->max_tokens > 0 && t > b->max_tokens;
}

static int over_usd(const struct dm_budget *b, double usd)
{
    return b->max_usd > 0 && usd > b->max_usd + USD_EPS;
}

void dm_budget_init(struct dm_budget *b, long long max_tokens, double max_usd)
{
    memset(b, 0, sizeof(*b));
    b->max_tokens = max_tokens;
    b->max_usd = max_usd;
}

void dm_budget_restore(struct dm_budget *b, long long spent_tokens, double spent_usd)
{
    if (spent_tokens > 0) {
        b->spent_tokens += spent_tokens;
    }
    if (spent_usd > 0) {
        b->spent_usd += spent_usd;
    }
}

long long dm_budget_estimate_tokens(size_t len)
{
    return (long long)((len + 2) / 3) + 16;
}

int dm_budget_reserve(struct dm_budget *b, const struct dm_price *price, long long prompt_tokens,
                      long long max_tokens, struct dm_budget_hold *hold, struct dm_error *err)
{
    long long need_t;
    double need_usd;
    memset(hold, 0, sizeof(*hold));
    if (prompt_tokens < 0 || max_tokens <= 0 || price->prompt < 0 || price->completion < 0) {
        return dm_error_set(err, DM_ERR_INVALID, "budget: bad reservation (%lld + %lld tokens)",
                            prompt_tokens, max_tokens);
    }
    need_t = prompt_tokens + max_tokens;
    need_usd = dm_price_cost(price, prompt_tokens, max_tokens);
    if (over_tokens(b, b->spent_tokens + need_t) || over_usd(b, b->spent_usd + need_usd)) {
        return dm_error_set(err, DM_ERR_BUDGET,
                            "budget exceeded: spent %lld tokens / $%.6f of %lld tokens / $%.6f; "
                            "this call needs up to %lld tokens / $%.6f",
                            b->spent_tokens, b->spent_usd, b->max_tokens, b->max_usd, need_t,
                            need_usd);
    }
    if (over_tokens(b, b->spent_tokens + b->reserved_tokens + need_t) ||
        over_usd(b, b->spent_usd + b->reserved_usd + need_usd)) {
        return dm_error_set(err, DM_ERR_TRANSIENT,
                            "budget busy: %d calls in flight hold %lld tokens / $%.6f; this call "
                            "needs up to %lld tokens / $%.6f",
                            b->holds, b->reserved_tokens, b->reserved_usd, need_t, need_usd);
    }
    hold->active = 1;
    hold->prompt_tokens = prompt_tokens;
    hold->max_tokens = max_tokens;
    hold->tokens = need_t;
    hold->usd = need_usd;
    hold->price = *price;
    b->reserved_tokens += need_t;
    b->reserved_usd += need_usd;
    b->holds++;
    return 0;
}

static void drop(struct dm_budget *b, struct dm_budget_hold *hold)
{
    b->reserved_tokens -= hold->tokens;
    b->reserved_usd -= hold->usd;
    b->holds--;
    if (b->holds == 0) {
        /* No float residue once nothing is held. */
        b->reserved_tokens = 0;
        b->reserved_usd = 0;
    }
    hold->active = 0;
}

void dm_budget_settle(struct dm_budget *b, struct dm_budget_hold *hold, long long tokens,
                      double usd)
{
    if (!hold->active) {
        return;
    }
    drop(b, hold);
    if (tokens > 0) {
        b->spent_tokens += tokens;
    }
    if (usd > 0 && isfinite(usd)) {
        b->spent_usd += usd;
    }
}

void dm_budget_release(struct dm_budget *b, struct dm_budget_hold *hold)
{
    if (hold->active) {
        drop(b, hold);
    }
}

int dm_budget_stream_check(const struct dm_budget *b, const struct dm_budget_hold *hold,
                           long long completion_tokens, struct dm_error *err)
{
    long long others_t = b->reserved_tokens - (hold->active ? hold->tokens : 0);
    double others_usd = b->reserved_usd - (hold->active ? hold->usd : 0);
    long long run_t = hold->prompt_tokens + completion_tokens;
    double run_usd = dm_price_cost(&hold->price, hold->prompt_tokens, completion_tokens);
    if (others_usd < 0) {
        others_usd = 0;
    }
    if (over_tokens(b, b->spent_tokens + others_t + run_t) ||
        over_usd(b, b->spent_usd + others_usd + run_usd)) {
        return dm_error_set(err, DM_ERR_BUDGET,
                            "budget would be crossed while streaming: spent %lld tokens / $%.6f "
                            "of %lld tokens / $%.6f; this reply is at ~%lld tokens / $%.6f",
                            b->spent_tokens, b->spent_usd, b->max_tokens, b->max_usd, run_t,
                            run_usd);
    }
    return 0;
}

long long dm_budget_tokens_used(const struct dm_budget *b)
{
    return b->spent_tokens;
}

double dm_budget_cost_usd(const struct dm_budget *b)
{
    return b->spent_usd;
}
