/* Unit tests for budget: reservations, refusals, settling, streaming cuts, and a randomized
 * check that spending never exceeds the limits. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "dream/domain/budget.h"
#include "dream/core/error.h"

static const struct dm_price SONNET = {3.0, 15.0};

Test(budget, reserve_settle_release)
{
    struct dm_budget b;
    struct dm_budget_hold h1, h2;
    struct dm_error err = {0};
    dm_budget_init(&b, 10000, 1.0);
    cr_assert_eq(dm_budget_reserve(&b, &SONNET, 1000, 4096, &h1, &err), 0);
    cr_assert_eq(b.reserved_tokens, 5096);
    cr_assert_float_eq(b.reserved_usd, (1000 * 3.0 + 4096 * 15.0) / 1e6, 1e-12);
    cr_assert_eq(dm_budget_reserve(&b, &SONNET, 1000, 3000, &h2, &err), 0);
    dm_budget_settle(&b, &h1, 1500, 0.01);
    cr_assert_eq(b.spent_tokens, 1500);
    cr_assert_float_eq(dm_budget_cost_usd(&b), 0.01, 1e-12);
    cr_assert_eq(b.reserved_tokens, 4000);
    dm_budget_release(&b, &h2);
    cr_assert_eq(b.reserved_tokens, 0);
    cr_assert_eq(b.holds, 0);
    cr_assert_eq(dm_budget_tokens_used(&b), 1500);
    /* Settling or releasing twice does nothing. */
    dm_budget_settle(&b, &h1, 99999, 9);
    dm_budget_release(&b, &h2);
    cr_assert_eq(b.spent_tokens, 1500);
}

Test(budget, refuses_a_call_that_cannot_fit_and_says_why)
{
    struct dm_budget b;
    struct dm_budget_hold h;
    struct dm_error err = {0};
    dm_budget_init(&b, 100000, 0.05);
    dm_budget_restore(&b, 1000, 0.02);
    /* 1000 + 4096 tokens of sonnet = $0.064 > what is left ($0.03). */
    cr_assert_eq(dm_budget_reserve(&b, &SONNET, 1000, 4096, &h, &err), DM_ERR_BUDGET);
    cr_assert_eq(h.active, 0);
    cr_assert(strstr(err.msg, "spent 1000 tokens / $0.020000"), "%s", err.msg);
    cr_assert(strstr(err.msg, "needs up to 5096 tokens / $0.064440"), "%s", err.msg);
    /* Token limit alike. */
    dm_budget_init(&b, 5000, 100);
    cr_assert_eq(dm_budget_reserve(&b, &SONNET, 1000, 4096, &h, &err), DM_ERR_BUDGET);
    cr_assert_eq(dm_budget_reserve(&b, &SONNET, 904, 4096, &h, &err), 0, "exactly at the limit");
}

Test(budget, busy_when_only_reservations_block)
{
    struct dm_budget b;
    struct dm_budget_hold h1, h2;
    struct dm_error err = {0};
    dm_budget_init(&b, 10000, 100);
    cr_assert_eq(dm_budget_reserve(&b, &SONNET, 1000, 5000, &h1, &err), 0);
    cr_assert_eq(dm_budget_reserve(&b, &SONNET, 1000, 5000, &h2, &err), DM_ERR_TRANSIENT);
    dm_budget_settle(&b, &h1, 2000, 0.01);
    cr_assert_eq(dm_budget_reserve(&b, &SONNET, 1000, 5000, &h2, &err), 0);
}

Test(budget, stream_check_cuts_before_crossing)
{
    struct dm_budget b;
    struct dm_budget_hold h, other;
    struct dm_error err = {0};
    dm_budget_init(&b, 10000, 100);
    cr_assert_eq(dm_budget_reserve(&b, &SONNET, 1000, 4000, &h, &err), 0);
    cr_assert_eq(dm_budget_reserve(&b, &SONNET, 1000, 3000, &other, &err), 0);
    cr_assert_eq(dm_budget_stream_check(&b, &h, 4000, &err), 0);
    /* 1000 (other's prompt) + 3000 + 1000 + 5001 > 10000 */
    cr_assert_eq(dm_budget_stream_check(&b, &h, 5001, &err), DM_ERR_BUDGET);
    cr_assert(strstr(err.msg, "streaming"));
    dm_budget_release(&b, &other);
    cr_assert_eq(dm_budget_stream_check(&b, &h, 5001, &err), 0);
    cr_assert_eq(dm_budget_stream_check(&b, &h, 9001, &err), DM_ERR_BUDGET);
}

Test(budget, estimate_is_conservative)
{
    cr_assert(dm_budget_estimate_tokens(0) > 0);
    cr_assert(dm_budget_estimate_tokens(4000) >= 1000 * 4 / 3);
}

/* Random calls that reserve, then settle with actual usage within the reservation (or fail and
 * release); at every step spent <= limits and spent + reserved <= limits. */
Test(budget, randomized_spend_never_exceeds_limits)
{
    unsigned seed = 12345;
    for (int round = 0; round < 200; round++) {
        struct dm_budget b;
        struct dm_budget_hold holds[8];
        int live[8] = {0};
        long long max_t = 2000 + rand_r(&seed) % 50000;
        double max_usd = 0.001 + (rand_r(&seed) % 1000) / 5000.0;
        struct dm_price price = {(rand_r(&seed) % 500) / 100.0, (rand_r(&seed) % 3000) / 100.0};
        dm_budget_init(&b, max_t, max_usd);
        for (int step = 0; step < 300; step++) {
            int i = rand_r(&seed) % 8;
            struct dm_error err = {0};
            if (!live[i]) {
                long long prompt = rand_r(&seed) % 3000;
                long long maxt = 1 + rand_r(&seed) % 4096;
                int rc = dm_budget_reserve(&b, &price, prompt, maxt, &holds[i], &err);
                cr_assert(rc == 0 || rc == DM_ERR_BUDGET || rc == DM_ERR_TRANSIENT);
                live[i] = rc == 0;
            } else {
                int what = rand_r(&seed) % 4;
                if (what == 0) {
                    dm_budget_release(&b, &holds[i]);
                } else {
                    /* Actual usage: the real prompt and any completion up to max_tokens, cut
                     * early when the stream check says so. */
                    long long comp = rand_r(&seed) % (holds[i].max_tokens + 1);
                    while (comp > 0 && dm_budget_stream_check(&b, &holds[i], comp, &err) != 0) {
                        comp--;
                    }
                    long long used = holds[i].prompt_tokens + comp;
                    double usd = dm_price_cost(&price, holds[i].prompt_tokens, comp);
                    dm_budget_settle(&b, &holds[i], used, usd);
                }
                live[i] = 0;
            }
            cr_assert_leq(b.spent_tokens, max_t);
            cr_assert_leq(b.spent_usd, max_usd + 1e-9);
            cr_assert_leq(b.spent_tokens + b.reserved_tokens, max_t);
            cr_assert_leq(b.spent_usd + b.reserved_usd, max_usd + 1e-9);
        }
    }
}

Test(budget, a_cost_that_is_not_a_number_is_never_added)
{
    struct dm_budget b;
    struct dm_budget_hold h = {0};
    struct dm_error err = {0};

    dm_budget_init(&b, 100000, 1.0);
    cr_assert_eq(dm_budget_reserve(&b, &SONNET, 1000, 1000, &h, &err), 0);
    dm_budget_settle(&b, &h, 2000, 1.0 / 0.0);
    cr_assert_float_eq(dm_budget_cost_usd(&b), 0.0, 1e-12, "infinity left the spend alone");
    cr_assert_eq(dm_budget_reserve(&b, &SONNET, 1000, 1000, &h, &err), 0);
    dm_budget_settle(&b, &h, 2000, 0.0 / 0.0);
    cr_assert_float_eq(dm_budget_cost_usd(&b), 0.0, 1e-12, "NaN left the spend alone");
}
