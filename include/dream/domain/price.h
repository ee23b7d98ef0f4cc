/*
 * price: the model price table, in USD per million tokens (prompt and completion).
 *
 * Built-in defaults (ORIGINAL.md's table plus the review model), refreshed from OpenRouter's
 * `GET /api/v1/models` reply (prices in USD per token as decimal strings; io/models.c), and
 * overridden by a JSON file (DREAM_PRICES_FILE). A model without a price cannot be priced: a
 * job with a dollar budget refuses it (intake), unless a default price is configured.
 *
 * Price file format (USD per million tokens; "input"/"output" accepted as synonyms):
 *   {"anthropic/claude-sonnet-4.5": {"prompt": 3, "completion": 15},
 *    "default": {"prompt": 10, "completion": 30}}
 * The optional "default" entry prices unknown models.
 *
 * Pure. A table is owned by one thread while it is changed; lookups on an unchanging table are
 * safe from any thread.
 */
#ifndef DREAM_PRICE_H
#define DREAM_PRICE_H

#include <stddef.h>

struct dm_error;
struct dm_price_table;

struct dm_price {
    double prompt;     /* USD per million prompt tokens */
    double completion; /* USD per million completion tokens */
};

/* Bounds on what a price table accepts (a model list is data from a server, not trust): a price
 * above DM_PRICE_MAX USD per million tokens is refused like a negative one; a model id longer
 * than DM_PRICE_MODEL_MAX bytes is skipped; one model list gives at most DM_PRICE_LIST_MAX
 * entries, and a table holds at most DM_PRICE_TABLE_MAX models (new ones past it are skipped;
 * known ones still update). */
#define DM_PRICE_MAX 1e5
#define DM_PRICE_MODEL_MAX 256
#define DM_PRICE_LIST_MAX 5000
#define DM_PRICE_TABLE_MAX 10000

/* Creates a table holding the built-in defaults:
 *   anthropic/claude-sonnet-4.5 3/15, anthropic/claude-opus-4.5 5/25,
 *   anthropic/claude-haiku-4.5 1/5, openai/gpt-4o 2.5/10, openai/gpt-4o-mini 0.15/0.6;
 *   no default price.
 * Returns 0 or DM_ERR_NOMEM. Free with dm_price_table_free. */
int dm_price_table_new(struct dm_price_table **out);

/* Frees the table (NULL allowed). */
void dm_price_table_free(struct dm_price_table *t);

/* Sets (adds or replaces) one model's price. Prices must be finite, >= 0 and <= DM_PRICE_MAX;
 * the id at most DM_PRICE_MODEL_MAX bytes. Returns 0, DM_ERR_INVALID, DM_ERR_LIMIT (a new model
 * in a full table) or DM_ERR_NOMEM. */
int dm_price_table_set(struct dm_price_table *t, const char *model, const struct dm_price *p);

/* Sets the price used for models not in the table; NULL removes it. Returns 0 or
 * DM_ERR_INVALID. */
int dm_price_table_set_default(struct dm_price_table *t, const struct dm_price *p);

/* Merges a price file's content (format above) into the table. All-or-nothing: on error the
 * table is unchanged. Returns 0, DM_ERR_INVALID (err names the bad entry) or DM_ERR_NOMEM. */
int dm_price_table_load_json(struct dm_price_table *t, const char *json, size_t len,
                             struct dm_error *err);

/* Reads a price file (at most 1 MiB) and merges it as dm_price_table_load_json. Blocking: call
 * at start-up. Returns 0, DM_ERR_IO (cannot read), DM_ERR_LIMIT, DM_ERR_INVALID, DM_ERR_NOMEM. */
int dm_price_table_load_file(struct dm_price_table *t, const char *path, struct dm_error *err);

/* Merges the prices of a `GET /api/v1/models` reply ({"data":[{"id", "pricing":{"prompt",
 * "completion"}}]}, USD per token as strings or numbers). Entries without usable prices (absent,
 * not numbers, negative such as the router's "-1", above DM_PRICE_MAX) or with an id past
 * DM_PRICE_MODEL_MAX are skipped; at most DM_PRICE_LIST_MAX entries are read, and new models past
 * DM_PRICE_TABLE_MAX are skipped. *updated (may be NULL) receives the number of models set. Returns
 * 0, DM_ERR_INVALID (not that shape) or DM_ERR_NOMEM. */
int dm_price_table_load_models(struct dm_price_table *t, const char *json, size_t len,
                               size_t *updated, struct dm_error *err);

/* The priced entries of a `GET /api/v1/models` reply in the same shape, and nothing else
 * ({"data":[{"id","pricing":{"prompt","completion"}}]}: what dreamd caches on disk; the
 * descriptions, context lengths... of the full list are dropped; the bounds of
 * dm_price_table_load_models apply, at most DM_PRICE_LIST_MAX entries). *out is malloc'd (free());
 * *count (may be NULL) gets the number of entries (0 for a list without prices, such as
 * OpenAI's). Returns 0, DM_ERR_INVALID (not that shape) or DM_ERR_NOMEM. */
int dm_price_models_compact(const char *json, size_t len, char **out, size_t *count,
                            struct dm_error *err);

/* Looks a model up (exact id; a ":variant" suffix such as ":floor" is tried without it). Falls
 * back to the default price. Returns 0 or DM_ERR_NOTFOUND ("no price for model X (add it, or
 * a "default" entry, to DREAM_PRICES_FILE, or let GET {DREAM_LLM_URL}/models load)"). */
int dm_price_lookup(const struct dm_price_table *t, const char *model, struct dm_price *out,
                    struct dm_error *err);

/* Number of models with an explicit price. */
size_t dm_price_table_count(const struct dm_price_table *t);

/* USD for the given token counts at price p. */
double dm_price_cost(const struct dm_price *p, long long prompt_tokens,
                     long long completion_tokens);

#endif
