/*
 * models: the model price list. `GET {DREAM_LLM_URL}/models` (OpenRouter's shape: data[].id,
 * data[].pricing.prompt / .completion in USD per token as decimal strings) at start and every
 * refresh_s seconds, on the shared HTTP client (never blocking the loop), merged into the price
 * table; the price file's content (DREAM_PRICES_FILE) is applied again over it, so the file
 * always wins. Each list read is cached on disk (the priced entries only, written to a temporary
 * file and renamed over cache_path on the threadpool), and the cache is loaded at start, so a
 * restart without network still knows the list. A failed read keeps what the table has and is
 * tried again after min(refresh, 5 minutes).
 *
 * Precedence: built-in table < cache < the list < DREAM_PRICES_FILE. Loop thread only.
 */
#ifndef DREAM_MODELS_H
#define DREAM_MODELS_H

#include "dream/core/error.h"
#include "dream/domain/price.h"
#include "dream/io/http.h"

#include <stddef.h>
#include <uv.h>

struct dm_models;

struct dm_models_opts {
    const char *base_url;      /* DREAM_LLM_URL (the list is {base}/models); required */
    const char *api_key;       /* secret, copied; NULL = no Authorization header */
    const char *cache_path;    /* e.g. {DREAM_DATA_DIR}/prices/models.json; NULL = no cache */
    const char *override_json; /* the price file's content, re-applied after each read; NULL */
    size_t override_len;
    long refresh_s;  /* seconds between reads; 0 = never read the list (the cache still loads) */
    long timeout_ms; /* per read; 0 = 30000 */
};

/* Creates the reader: loads the cache (blocking, small: call at start-up) and schedules the
 * first read on the loop. prices is borrowed and must outlive the reader. Returns 0,
 * DM_ERR_INVALID (no base URL) or DM_ERR_NOMEM. Close with dm_models_close. */
int dm_models_new(struct dm_models **out, struct dm_http *http, uv_loop_t *loop,
                  struct dm_price_table *prices, const struct dm_models_opts *opts,
                  struct dm_error *err);

/* 1 once the first read ended (either way), or when reading is off: from then on a model the
 * table does not know is really unknown. */
int dm_models_settled(const struct dm_models *m);

/* Models priced by the last successful read or the cache (0: none). */
size_t dm_models_count(const struct dm_models *m);

/* Stops reading: cancels a read in flight, waits for a cache write, then calls done(arg) from
 * the loop (done may be NULL). Before the HTTP client is closed. */
void dm_models_close(struct dm_models *m, void (*done)(void *arg), void *arg);

#endif
