/* Unit tests for price: defaults, overrides, the models API, unknown models. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dream/core/error.h"
#include "dream/domain/price.h"

Test(price, builtin_defaults)
{
    struct dm_price_table *t;
    struct dm_price p;
    cr_assert_eq(dm_price_table_new(&t), 0);
    cr_assert_eq(dm_price_lookup(t, "anthropic/claude-sonnet-4.5", &p, NULL), 0);
    cr_assert_float_eq(p.prompt, 3.0, 1e-12);
    cr_assert_float_eq(p.completion, 15.0, 1e-12);
    cr_assert_eq(dm_price_lookup(t, "anthropic/claude-opus-4.5", &p, NULL), 0);
    cr_assert_float_eq(p.completion, 25.0, 1e-12);
    cr_assert_eq(dm_price_lookup(t, "anthropic/claude-haiku-4.5", &p, NULL), 0);
    cr_assert_float_eq(p.prompt, 1.0, 1e-12);
    cr_assert_eq(dm_price_lookup(t, "openai/gpt-4o-mini", &p, NULL), 0);
    cr_assert_float_eq(p.prompt, 0.15, 1e-12);
    cr_assert_float_eq(p.completion, 0.6, 1e-12);
    cr_assert_eq(dm_price_lookup(t, "google/gemini-2.5-pro-preview", &p, NULL), DM_ERR_NOTFOUND,
                 "the stale preview id is gone from the built-in table");
    cr_assert_eq(dm_price_table_count(t), 5);
    cr_assert_eq(dm_price_lookup(t, "openai/gpt-4o:floor", &p, NULL), 0, "variant suffix");
    cr_assert_float_eq(p.prompt, 2.5, 1e-12);
    /* 1000 prompt + 2000 completion tokens of sonnet: 0.003 + 0.03 */
    cr_assert_float_eq(dm_price_cost(&(struct dm_price){3, 15}, 1000, 2000), 0.033, 1e-12);
    dm_price_table_free(t);
}

Test(price, unknown_model_is_an_error_unless_a_default_exists)
{
    struct dm_price_table *t;
    struct dm_price p;
    struct dm_error err = {0};
    cr_assert_eq(dm_price_table_new(&t), 0);
    cr_assert_eq(dm_price_lookup(t, "acme/unknown", &p, &err), DM_ERR_NOTFOUND);
    cr_assert(strstr(err.msg, "acme/unknown"), "%s", err.msg);
    cr_assert(strstr(err.msg, "DREAM_PRICES_FILE") && strstr(err.msg, "\"default\"") &&
                  strstr(err.msg, "/models"),
              "the remedy: %s", err.msg);
    cr_assert_eq(dm_price_table_set_default(t, &(struct dm_price){7, 8}), 0);
    cr_assert_eq(dm_price_lookup(t, "acme/unknown", &p, &err), 0);
    cr_assert_float_eq(p.completion, 8.0, 1e-12);
    cr_assert_eq(dm_price_table_set_default(t, &(struct dm_price){-1, 8}), DM_ERR_INVALID);
    dm_price_table_free(t);
}

Test(price, file_overrides_all_or_nothing)
{
    struct dm_price_table *t;
    struct dm_price p;
    struct dm_error err = {0};
    const char *good = "{\"anthropic/claude-sonnet-4.5\":{\"prompt\":4,\"completion\":20},"
                       "\"acme/new\":{\"input\":1.5,\"output\":2.5},"
                       "\"default\":{\"prompt\":9,\"completion\":9}}";
    const char *bad = "{\"openai/gpt-4o\":{\"prompt\":1,\"completion\":1},"
                      "\"acme/bad\":{\"prompt\":\"lots\",\"completion\":1}}";
    cr_assert_eq(dm_price_table_new(&t), 0);
    cr_assert_eq(dm_price_table_load_json(t, good, strlen(good), &err), 0, "%s", err.msg);
    cr_assert_eq(dm_price_lookup(t, "anthropic/claude-sonnet-4.5", &p, NULL), 0);
    cr_assert_float_eq(p.completion, 20.0, 1e-12);
    cr_assert_eq(dm_price_lookup(t, "acme/new", &p, NULL), 0);
    cr_assert_float_eq(p.prompt, 1.5, 1e-12);
    cr_assert_eq(dm_price_lookup(t, "whatever", &p, NULL), 0);
    cr_assert_float_eq(p.prompt, 9.0, 1e-12);

    cr_assert_eq(dm_price_table_load_json(t, bad, strlen(bad), &err), DM_ERR_INVALID);
    cr_assert(strstr(err.msg, "acme/bad"), "%s", err.msg);
    cr_assert_eq(dm_price_lookup(t, "openai/gpt-4o", &p, NULL), 0);
    cr_assert_float_eq(p.prompt, 2.5, 1e-12, "a bad file changes nothing");
    cr_assert_eq(dm_price_table_load_json(t, "[1]", 3, &err), DM_ERR_INVALID);
    cr_assert_eq(dm_price_table_load_json(t, "{\"m\":{\"prompt\":-1,\"completion\":1}}", 34, &err),
                 DM_ERR_INVALID);
    dm_price_table_free(t);
}

Test(price, load_file)
{
    struct dm_price_table *t;
    struct dm_price p;
    struct dm_error err = {0};
    char path[] = "/tmp/dm_prices_XXXXXX";
    int fd = mkstemp(path);
    const char *txt = "{\"acme/file\":{\"prompt\":0.5,\"completion\":1}}";
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, txt, strlen(txt)), (ssize_t)strlen(txt));
    close(fd);
    cr_assert_eq(dm_price_table_new(&t), 0);
    cr_assert_eq(dm_price_table_load_file(t, path, &err), 0, "%s", err.msg);
    cr_assert_eq(dm_price_lookup(t, "acme/file", &p, NULL), 0);
    cr_assert_float_eq(p.prompt, 0.5, 1e-12);
    unlink(path);
    cr_assert_eq(dm_price_table_load_file(t, path, &err), DM_ERR_IO);
    dm_price_table_free(t);
}

Test(price, models_api_prices_are_per_token_strings)
{
    struct dm_price_table *t;
    struct dm_price p;
    struct dm_error err = {0};
    size_t n = 99;
    const char *models = "{\"data\":["
                         "{\"id\":\"openai/gpt-4o\",\"pricing\":{\"prompt\":\"0.000003\","
                         "\"completion\":\"0.000012\",\"request\":\"0\"}},"
                         "{\"id\":\"acme/cheap\",\"pricing\":{\"prompt\":\"0.0000001\","
                         "\"completion\":\"0.0000002\"}},"
                         "{\"id\":\"openrouter/auto\",\"pricing\":{\"prompt\":\"-1\","
                         "\"completion\":\"-1\"}},"
                         "{\"id\":\"acme/noprice\"}]}";
    cr_assert_eq(dm_price_table_new(&t), 0);
    cr_assert_eq(dm_price_table_load_models(t, models, strlen(models), &n, &err), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(dm_price_lookup(t, "openai/gpt-4o", &p, NULL), 0);
    cr_assert_float_eq(p.prompt, 3.0, 1e-9);
    cr_assert_float_eq(p.completion, 12.0, 1e-9);
    cr_assert_eq(dm_price_lookup(t, "acme/cheap", &p, NULL), 0);
    cr_assert_float_eq(p.completion, 0.2, 1e-9);
    cr_assert_eq(dm_price_lookup(t, "openrouter/auto", &p, NULL), DM_ERR_NOTFOUND);
    cr_assert_eq(dm_price_lookup(t, "acme/noprice", &p, NULL), DM_ERR_NOTFOUND);
    cr_assert_eq(dm_price_table_load_models(t, "{}", 2, &n, &err), DM_ERR_INVALID);
    dm_price_table_free(t);
}

Test(price, the_models_list_is_cached_in_compact_form)
{
    struct dm_price_table *t;
    struct dm_price p;
    struct dm_error err = {0};
    char *out = NULL;
    size_t n = 99;
    const char *list =
        "{\"data\":[{\"id\":\"acme/a\",\"name\":\"A\",\"description\":\"long text\","
        "\"context_length\":1000,\"pricing\":{\"prompt\":\"0.000002\","
        "\"completion\":\"0.000008\",\"image\":\"0\"}},"
        "{\"id\":\"openrouter/auto\",\"pricing\":{\"prompt\":\"-1\","
        "\"completion\":\"-1\"}},{\"id\":\"acme/free\",\"pricing\":{\"prompt\":\"0\","
        "\"completion\":\"0\"}},{\"id\":42}]}";

    cr_assert_eq(dm_price_models_compact(list, strlen(list), &out, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2, "the router's -1 and the id-less entry are dropped");
    cr_assert_null(strstr(out, "description"), "%s", out);
    cr_assert_null(strstr(out, "openrouter/auto"), "%s", out);
    cr_assert_eq(dm_price_table_new(&t), 0);
    cr_assert_eq(dm_price_table_load_models(t, out, strlen(out), &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert_eq(dm_price_lookup(t, "acme/a", &p, NULL), 0);
    cr_assert_float_eq(p.prompt, 2.0, 1e-9);
    cr_assert_float_eq(p.completion, 8.0, 1e-9);
    free(out);

    /* OpenAI's list has no prices: nothing to cache, not an error. */
    const char *openai =
        "{\"object\":\"list\",\"data\":[{\"id\":\"gpt-4o\",\"object\":\"model\"}]}";
    cr_assert_eq(dm_price_models_compact(openai, strlen(openai), &out, &n, &err), 0);
    cr_assert_eq(n, 0);
    free(out);
    cr_assert_eq(dm_price_models_compact("[]", 2, &out, &n, &err), DM_ERR_INVALID);
    cr_assert_null(out);
    dm_price_table_free(t);
}

/* A model list is data from a server: a hostile or broken one (a huge list, absurd prices, huge
 * ids) cannot grow the table without bound, slow the loop with it, or store an absurd price. */
Test(price, a_hostile_model_list_is_bounded)
{
    struct dm_price_table *t;
    struct dm_price p;
    struct dm_error err = {0};
    size_t n = 0, cap = 128 * (size_t)(DM_PRICE_LIST_MAX + 100) + 4096, used = 0;
    char *list = malloc(cap), *out = NULL, longid[DM_PRICE_MODEL_MAX + 2];

    cr_assert_not_null(list);
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    used += (size_t)snprintf(list + used, cap - used,
                             "{\"data\":[{\"id\":\"acme/dear\",\"pricing\":{\"prompt\":\"1e300\","
                             "\"completion\":\"1\"}},{\"id\":\"%s\",\"pricing\":{\"prompt\":"
                             "\"0.000001\",\"completion\":\"0.000001\"}}",
                             longid);
    for (int i = 0; i < DM_PRICE_LIST_MAX + 100; i++) {
        used += (size_t)snprintf(list + used, cap - used,
                                 ",{\"id\":\"m/%d\",\"pricing\":{\"prompt\":\"0.000001\","
                                 "\"completion\":\"0.000002\"}}",
                                 i);
    }
    used += (size_t)snprintf(list + used, cap - used, "]}");
    cr_assert_lt(used, cap);

    cr_assert_eq(dm_price_models_compact(list, used, &out, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, DM_PRICE_LIST_MAX, "at most %d entries kept, got %zu", DM_PRICE_LIST_MAX, n);
    cr_assert_null(strstr(out, "acme/dear"), "a price past the maximum is dropped");
    cr_assert_null(strstr(out, longid), "an id past its maximum length is dropped");
    free(out);

    cr_assert_eq(dm_price_table_new(&t), 0);
    cr_assert_eq(dm_price_table_load_models(t, list, used, &n, &err), 0, "%s", err.msg);
    cr_assert_leq(n, DM_PRICE_LIST_MAX);
    cr_assert_neq(dm_price_lookup(t, "acme/dear", &p, NULL), 0, "1e300 per token is no price");
    cr_assert_neq(dm_price_lookup(t, longid, &p, NULL), 0);
    cr_assert_leq(dm_price_table_count(t), DM_PRICE_TABLE_MAX);
    p.prompt = DM_PRICE_MAX * 2;
    p.completion = 1;
    cr_assert_eq(dm_price_table_set(t, "acme/dear", &p), DM_ERR_INVALID);

    /* Filling the table: new models past its maximum are skipped, known ones still update. */
    p.prompt = p.completion = 1;
    for (int i = 0; dm_price_table_count(t) < DM_PRICE_TABLE_MAX; i++) {
        char id[32];
        snprintf(id, sizeof(id), "fill/%d", i);
        cr_assert_eq(dm_price_table_set(t, id, &p), 0);
    }
    cr_assert_eq(dm_price_table_set(t, "one/more", &p), DM_ERR_LIMIT);
    p.prompt = 7;
    cr_assert_eq(dm_price_table_set(t, "fill/0", &p), 0);
    cr_assert_eq(dm_price_lookup(t, "fill/0", &p, NULL), 0);
    cr_assert_float_eq(p.prompt, 7.0, 1e-9);
    cr_assert_eq(dm_price_table_load_models(t, list, used, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(dm_price_table_count(t), DM_PRICE_TABLE_MAX);
    dm_price_table_free(t);
    free(list);
}
