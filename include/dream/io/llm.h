/*
 * llm: the chat-completions client (`POST {base}/chat/completions`) of OpenRouter or of any
 * OpenAI-compatible server (OpenAI, vLLM, Ollama's /v1, llama.cpp's server, LiteLLM), on the
 * shared HTTP client.
 *
 * DM_LLM_API_OPENROUTER (the default) sends `Authorization: Bearer <key>`, `HTTP-Referer`,
 * `X-Title` and `X-OpenRouter-Title` (attribution; configurable) and a JSON body with model,
 * messages (system + user), max_tokens (always), temperature, stream, usage.include, and
 * optionally response_format with provider.require_parameters.
 * DM_LLM_API_OPENAI sends only OpenAI's fields: model, messages, max_completion_tokens (or
 * max_tokens, opts.max_tokens_field), temperature, stream, stream_options.include_usage (streamed),
 * and response_format only when opts.json_schema is set; otherwise a structured call's system
 * prompt gets a line asking for one JSON object, and the caller parses the reply as it does
 * anyway (dream/reply.h). Attribution headers only when configured; the key is optional for a
 * loopback host or a host of opts.keyless_hosts (no Authorization header is then sent).
 * Replies are decoded streamed (SSE) or not (see dream/sse.h); an error inside a 200,
 * finish_reason "error", finish_reason "length" (truncated), a cut stream and an empty reply are
 * failures. A stream whose body ends cleanly after finish_reason "stop" is complete even without
 * `data: [DONE]` (llama.cpp builds that omit it). Error bodies of OpenRouter and OpenAI
 * ({error:{message,type,code}}), vLLM ({object:"error",...}, {detail}), Ollama ({error:"..."})
 * and LiteLLM are read for the message. A 403 is mapped to its cause: moderation
 * (error.metadata.reasons / flagged_input: DM_ERR_REMOTE), a key limit or budget (the message
 * or type says budget/limit/quota: DM_ERR_REMOTE), else DM_ERR_AUTH.
 *
 * Retries (each attempt is a new request; up to max_attempts in all):
 *   - HTTP 408, 429, 500, 502, 503, 504;
 *   - HTTP 402 only when error.metadata.limit_source is "openrouter_in_flight_budget"
 *     (reason "in_flight_budget_exhausted": running requests fill the account's in-flight
 *     budget; transient). Other 402s (limit_source "openrouter_credits" incl. reason
 *     "weight_exceeds_budget", "openrouter_key_limit", or none) are final;
 *   - transport failures (connect/reset/timeout) before any reply byte arrived;
 *   - an error inside a 200 (an error chunk, or finish_reason "error" with an error object),
 *     which is how OpenRouter reports a provider error after the stream began, when its code is
 *     one of the statuses above (dm_llm_stream_error_retryable); the failed attempt's usage and
 *     cost stay in the result (the provider may bill it).
 * The delay is the Retry-After header (seconds or HTTP date) when present, else capped
 * exponential backoff with jitter: d = min(max, base * 2^(n-1)), wait d/2 + random(d/2).
 * A Retry-After longer than retry_after_max_ms ends the call (DM_ERR_TRANSIENT).
 * Never retried: 400 (DM_ERR_INVALID), 401/403 (DM_ERR_AUTH), other 402s and 4xx
 * (DM_ERR_REMOTE), an error inside a 200 with any other code (DM_ERR_REMOTE), cut streams and
 * finish_reason length (the stage decides).
 *
 * The API key is only ever put in the Authorization header: never in a log line or error
 * message. Loop thread only.
 */
#ifndef DREAM_LLM_H
#define DREAM_LLM_H

#include "dream/core/error.h"
#include "dream/io/http.h"
#include "dream/domain/price.h"
#include "dream/domain/retry.h" /* dm_llm_should_retry, dm_llm_backoff_ms */

#include <stddef.h>
#include <uv.h>

struct dm_llm;      /* client */
struct dm_llm_call; /* one call (all its attempts) */

enum dm_llm_api {
    DM_LLM_API_OPENROUTER = 0, /* DREAM_LLM_API=openrouter */
    DM_LLM_API_OPENAI = 1,     /* DREAM_LLM_API=openai: any OpenAI-compatible server */
};

struct dm_llm_opts {
    const char *base_url; /* DREAM_LLM_URL; NULL = "https://openrouter.ai/api/v1" */
    const char *api_key;  /* secret, copied; NULL/"" = every call fails with DM_ERR_AUTH, unless
                           * the key is optional (openai mode, loopback or keyless host) */
    const char *referer;  /* HTTP-Referer; NULL = "https://github.com/dreamd/dreamd" in
                           * openrouter mode, not sent in openai mode; "" = not sent */
    const char *title;    /* X-Title and X-OpenRouter-Title; NULL = "dreamd" in openrouter
                           * mode, not sent in openai mode; "" = not sent */
    enum dm_llm_api api;
    const char *max_tokens_field; /* openai mode: "max_completion_tokens" (NULL) or "max_tokens" */
    int json_schema;              /* openai mode: send response_format (json_schema) */
    const char *keyless_hosts;    /* openai mode: comma-separated hosts that need no key */
    long timeout_ms;              /* total deadline per attempt; 0 = 300000 */
    long low_speed_limit;         /* bytes/s, with low_speed_time_s; 0 = 1 */
    long low_speed_time_s;        /* 0 = 60 (":" keep-alives count as bytes) */
    size_t max_response_bytes;    /* per attempt; 0 = 4 MiB */
    int max_attempts;             /* 0 = 4 */
    long backoff_base_ms;         /* 0 = 1000 */
    long backoff_max_ms;          /* 0 = 30000 */
    long retry_after_max_ms;      /* 0 = 120000 */
    const struct dm_price_table *prices; /* borrowed, may be NULL: prices usage without cost */
};

#define DM_LLM_OPTS_INIT                                                                           \
    {                                                                                              \
        .base_url = NULL                                                                           \
    }

/* "openrouter" or "openai" into *out. Returns 0 or DM_ERR_INVALID. */
int dm_llm_api_parse(const char *name, enum dm_llm_api *out);

/* Where dm_llm_result.cost_usd came from. */
enum dm_llm_cost_source {
    DM_LLM_COST_NONE = 0,  /* unknown: no usage.cost and no price for the model */
    DM_LLM_COST_API = 1,   /* usage.cost (+ usage.cost_details.upstream_inference_cost, BYOK) */
    DM_LLM_COST_TABLE = 2, /* tokens priced with the price table */
};

struct dm_llm_result {
    char *content; /* the reply (NUL-terminated), NULL on failure; owned by the call:
                    * take it by copying the pointer and setting this to NULL */
    size_t content_len;
    char id[128];    /* generation id (body `id`, else the X-Generation-Id header) */
    char model[128]; /* model that answered */
    char finish_reason[32];
    long long prompt_tokens;     /* usage.prompt_tokens, else an estimate */
    long long completion_tokens; /* usage.completion_tokens, else an estimate */
    int usage_known;             /* 1 when the reply carried usage */
    double cost_usd;
    enum dm_llm_cost_source cost_source;
    int billed;       /* 1 when a 200 reply began: the provider may charge even on failure, so
                       * settle the budget with these numbers; 0: release the reservation */
    long http_status; /* of the last attempt, 0 if none */
    int attempts;     /* requests sent */
    long long elapsed_ms;
};

/* Throttled progress while a reply streams: bytes of content and estimated completion tokens
 * so far. Runs inside the HTTP transfer: it must not start or close HTTP/LLM calls. */
typedef void (*dm_llm_progress_cb)(void *arg, size_t bytes, long long tokens);

/* Budget hook, called after every streamed chunk with the running completion-token estimate
 * (content bytes / 3, rounded up; usage.completion_tokens once known). Return non-zero to cut
 * the stream: the call then fails with DM_ERR_BUDGET. Same restrictions as progress. */
typedef int (*dm_llm_tokens_cb)(void *arg, long long completion_tokens);

/* Completion, fired exactly once per started call, from the loop, never inside dm_llm_start.
 * rc == 0: res->content holds an accepted reply. rc < 0: err says why (never the key):
 * DM_ERR_INVALID (400, garbage reply, empty reply), DM_ERR_AUTH (401, a 403 that is about
 * the key, or no key), DM_ERR_REMOTE (other 4xx incl. 402 credits, a 403 for moderation or a
 * key's limit, an error inside a 200 with a permanent code),
 * DM_ERR_LIMIT
 * (finish_reason length, or the response exceeded max_response_bytes), DM_ERR_IO (cut stream,
 * connection failure), DM_ERR_TIMEOUT, DM_ERR_TRANSIENT (retries exhausted), DM_ERR_BUDGET
 * (cut by the tokens hook), DM_ERR_CANCELLED. res is never NULL and keeps usage, cost, id and
 * billed on failure too; it is valid only during the callback. */
typedef void (*dm_llm_done_cb)(void *arg, int rc, struct dm_llm_result *res,
                               const struct dm_error *err);

struct dm_llm_request {
    const char *model;              /* required, e.g. "anthropic/claude-sonnet-4.5" */
    const char *system;             /* system prompt, may be NULL */
    const char *user;               /* user prompt, required */
    long max_tokens;                /* required, > 0 */
    double temperature;             /* < 0: not sent */
    int stream;                     /* 1: SSE streaming */
    const char *response_format;    /* JSON text of response_format (e.g. {"type":"json_object"}),
                                     * NULL = none; openrouter mode also sends
                                     * provider.require_parameters = true; openai mode sends it
                                     * only with opts.json_schema (see above) */
    const char *job_id;             /* for log lines, may be NULL */
    long progress_interval_ms;      /* least time between progress callbacks; 0 = 500 */
    dm_llm_progress_cb on_progress; /* optional (streaming only) */
    dm_llm_tokens_cb on_tokens;     /* optional (streaming only) */
    dm_llm_done_cb on_done;         /* required */
    void *arg;
};

/* Creates a client using http (borrowed; must outlive the client) on loop. Options are copied.
 * Returns 0, DM_ERR_INVALID (bad base URL) or DM_ERR_NOMEM. Free with dm_llm_free. */
int dm_llm_new(struct dm_llm **out, struct dm_http *http, uv_loop_t *loop,
               const struct dm_llm_opts *opts, struct dm_error *err);

/* Frees the client (NULL allowed). Only when dm_llm_in_flight() is 0: cancel calls and wait
 * for their completions first. */
void dm_llm_free(struct dm_llm *llm);

/* Starts a call; everything in req is copied. Returns 0 and a borrowed handle in *out (may be
 * NULL; valid until the completion fires), after which req->on_done fires exactly once, from
 * the loop. Returns DM_ERR_INVALID (missing model/user/on_done, max_tokens <= 0, bad
 * response_format JSON) or DM_ERR_NOMEM, and then no callback fires. A missing API key is
 * reported through the callback (DM_ERR_AUTH), like any other failure; its message names
 * OPENROUTER_API_KEY in openrouter mode, DREAM_LLM_API_KEY and DREAM_LLM_KEYLESS_HOSTS in
 * openai mode. */
int dm_llm_start(struct dm_llm *llm, const struct dm_llm_request *req, struct dm_llm_call **out,
                 struct dm_error *err);

/* Cancels a call whose completion has not fired: the request in flight is aborted or the
 * retry wait is ended, and the completion fires later with DM_ERR_CANCELLED. */
void dm_llm_cancel(struct dm_llm_call *call);

/* Cancels every call of the client whose completion has not fired (for shutdown): each
 * completes later with DM_ERR_CANCELLED. */
void dm_llm_cancel_all(struct dm_llm *llm);

/* 1 when calls need no API key (openai mode and a loopback or keyless host). */
int dm_llm_key_optional(const struct dm_llm *llm);

/* Calls started and not yet completed. */
size_t dm_llm_in_flight(const struct dm_llm *llm);

#endif
