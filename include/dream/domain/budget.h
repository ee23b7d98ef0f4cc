/*
 * budget: a job's spending limits (tokens and dollars), reservations and accounting.
 *
 * Before every LLM call (planning, generation, repair, review) the worst case is reserved:
 * prompt estimate + max_tokens, priced at the model's prices. A call that cannot fit is refused
 * before anything is sent. When the call ends, its reservation is replaced by the actual usage
 * (settle) or dropped (release, when nothing was spent). While a reply streams, a check tells
 * whether the running completion would cross a limit so the stream can be cut.
 *
 * Invariant: spent + reserved <= limit after every successful reserve, so as long as each call's
 * actual usage stays within its reservation, spending never exceeds the limits.
 *
 * Pure; a budget belongs to one job and is used from one thread (the loop thread).
 */
#ifndef DREAM_BUDGET_H
#define DREAM_BUDGET_H

#include "dream/domain/price.h"

#include <stddef.h>

struct dm_error;

struct dm_budget {
    long long max_tokens;      /* limit; <= 0 means no token limit */
    double max_usd;            /* limit; <= 0 means no dollar limit */
    long long spent_tokens;    /* settled usage (prompt + completion) */
    double spent_usd;          /* settled cost */
    long long reserved_tokens; /* held by calls in flight */
    double reserved_usd;
    int holds; /* reservations outstanding */
};

/* One call's reservation. Embedded in the caller's call state; settle or release exactly once. */
struct dm_budget_hold {
    int active;
    long long prompt_tokens; /* estimate used */
    long long max_tokens;    /* completion cap reserved */
    long long tokens;        /* prompt_tokens + max_tokens */
    double usd;              /* tokens priced */
    struct dm_price price;
};

/* Starts an empty budget with the job's limits. */
void dm_budget_init(struct dm_budget *b, long long max_tokens, double max_usd);

/* Adds usage already spent before this process took the job (a resumed job's `tokens`/`cost`). */
void dm_budget_restore(struct dm_budget *b, long long spent_tokens, double spent_usd);

/* A conservative token estimate for len bytes of prompt text (about 3 bytes per token plus a
 * margin for message framing: it should not be lower than a real tokenizer's count for code
 * and prose). */
long long dm_budget_estimate_tokens(size_t len);

/* Reserves the worst case of one call: prompt_tokens + max_tokens at price. On success fills
 * *hold (active) and returns 0. Returns DM_ERR_BUDGET when the call cannot fit even once every
 * other reservation is settled (err: "budget exceeded: spent N tokens / $X of M tokens / $Y;
 * this call needs up to T tokens / $C"), DM_ERR_TRANSIENT when it would fit once calls in
 * flight settle (the caller may wait and retry), DM_ERR_INVALID on negative input. */
int dm_budget_reserve(struct dm_budget *b, const struct dm_price *price, long long prompt_tokens,
                      long long max_tokens, struct dm_budget_hold *hold, struct dm_error *err);

/* Replaces the reservation by actual usage: tokens (prompt + completion) and cost in USD (from
 * usage.cost, else dm_price_cost with hold->price). Usage is recorded as reported even when it
 * exceeds the reservation. No-op on an inactive hold. */
void dm_budget_settle(struct dm_budget *b, struct dm_budget_hold *hold, long long tokens,
                      double usd);

/* Drops the reservation without spending (the call failed before anything was billed). No-op on
 * an inactive hold. */
void dm_budget_release(struct dm_budget *b, struct dm_budget_hold *hold);

/* During streaming: would prompt + completion_tokens (the running estimate) cross a limit, given
 * what is spent and what other calls hold? Returns 0 if not, else DM_ERR_BUDGET with a message
 * (cut the stream). */
int dm_budget_stream_check(const struct dm_budget *b, const struct dm_budget_hold *hold,
                           long long completion_tokens, struct dm_error *err);

/* Spent totals for events (tokensUsed, costUsd). */
long long dm_budget_tokens_used(const struct dm_budget *b);
double dm_budget_cost_usd(const struct dm_budget *b);

#endif
