/*
 * sse: the OpenRouter wire format, without I/O. Three parts:
 *   - dm_sse: a Server-Sent Events framing parser (lines ending in LF, CRLF or CR; `data:`
 *     fields joined with "\n"; `:` comment lines such as ": OPENROUTER PROCESSING" skipped;
 *     a blank line dispatches an event), with a cap on one event's size;
 *   - dm_sse_chat: a decoder of chat-completion replies, streamed (chunks until `[DONE]`) or not,
 *     into content, generation id, finish reason, usage and any error reported under HTTP 200;
 *   - error bodies (OpenRouter's and OpenAI's {"error":{"code","message","type","metadata"}},
 *     vLLM's {"object":"error","message","type","code"} and {"detail"}, Ollama's
 *     {"error":"..."}, LiteLLM's string codes) and Retry-After parsing, for the retry decision.
 * Pure; one owner per parser, no shared state, any thread.
 */
#ifndef DREAM_SSE_H
#define DREAM_SSE_H

#include "dream/core/buf.h"

#include <stddef.h>

struct dm_error;

/* Event callback: data is the event's joined `data:` payload, NUL-terminated, valid only during
 * the call. Return 0 to go on or a negative enum dm_err to stop (dm_sse_feed returns it). */
typedef int (*dm_sse_event_cb)(void *arg, const char *data, size_t len);

struct dm_sse {
    struct dm_buf line; /* the line being read */
    struct dm_buf data; /* `data:` lines of the event being read */
    int has_data;       /* a data field was seen since the last dispatch */
    int last_cr;        /* the previous byte was CR (a following LF belongs to it) */
    size_t comments;    /* comment lines seen (keep-alives) */
    size_t events;      /* events dispatched */
    dm_sse_event_cb cb;
    void *arg;
};

/* Initialises a parser whose lines and events may not exceed max_event bytes (0 = 1 MiB). */
void dm_sse_init(struct dm_sse *p, size_t max_event, dm_sse_event_cb cb, void *arg);

/* Feeds n bytes. Returns 0, DM_ERR_LIMIT (a line or event exceeds the cap) or the callback's
 * non-zero return; after a non-zero return the parser must not be fed again. */
int dm_sse_feed(struct dm_sse *p, const char *bytes, size_t n);

/* At end of input: an event still waiting for its blank line is NOT dispatched (per the SSE
 * specification an unterminated event is dropped). Returns 1 if bytes of an unfinished line or
 * event were pending (a cut stream), else 0. */
int dm_sse_pending(const struct dm_sse *p);

/* Frees the buffers (p may be reused after dm_sse_init). */
void dm_sse_free(struct dm_sse *p);

/* --- chat completions --------------------------------------------------------------------- */

/* Bounds of the numbers a reply may report (see dm_sse_usage.suspect). */
#define DM_SSE_TOKENS_MAX 9007199254740992.0 /* 2^53 tokens */
#define DM_SSE_COST_MAX 1000000.0            /* dollars for one reply */

struct dm_sse_usage {
    int known; /* a usage object with trustworthy token counts was seen */
    long long prompt_tokens;
    long long completion_tokens;
    long long total_tokens;
    int has_cost; /* usage.cost was present and in range (USD) */
    double cost;
    int has_upstream_cost; /* usage.cost_details.upstream_inference_cost (BYOK: what the
                            * provider charged besides OpenRouter's usage.cost), in range */
    double upstream_cost;
    int suspect; /* a count or the cost was out of range (infinite, negative, past the bounds
                    above): it was refused, not stored; the caller warns and estimates */
};

/* An error reported by OpenRouter, in an error body or inside a 200 reply. */
struct dm_sse_api_error {
    int present;
    long code;             /* error.code when numeric (HTTP-like), else 0 */
    char message[256];     /* error.message, truncated */
    char limit_source[64]; /* error.metadata.limit_source ("" when absent) */
    char reason[64];       /* error.metadata.reason ("" when absent) */
    char type[64];         /* error.type (OpenAI, vLLM, LiteLLM), or a string error.code */
    int flagged;           /* error.metadata.flagged_input present (moderation) */
    char reasons[128];     /* error.metadata.reasons joined with ", " (moderation) */
};

struct dm_sse_chat {
    struct dm_sse sse;      /* framing, for streamed replies */
    struct dm_buf content;  /* assistant content so far (capped) */
    char id[128];           /* generation id ("" until seen) */
    char model[128];        /* model that answered */
    char finish_reason[32]; /* last non-null finish_reason ("" until seen) */
    struct dm_sse_usage usage;
    struct dm_sse_api_error error; /* first error seen inside the reply */
    int done;                      /* `data: [DONE]` seen (streamed) */
    size_t chunks;                 /* JSON chunks decoded */
};

/* Initialises a decoder; the content may grow to max_content bytes (0 = 4 MiB). */
void dm_sse_chat_init(struct dm_sse_chat *c, size_t max_content);

/* Feeds streamed bytes (an SSE body). Returns 0; DM_ERR_LIMIT when content or an event exceeds
 * its cap; DM_ERR_INVALID when a data payload is not JSON (err says so). An error object or
 * finish_reason "error" in a chunk is recorded in c->error and makes this return
 * DM_ERR_REMOTE (the caller stops reading). Data after `[DONE]` is ignored. */
int dm_sse_chat_feed(struct dm_sse_chat *c, const char *bytes, size_t n, struct dm_error *err);

/* Decodes a whole non-streamed reply body (choices[0].message.content, id, model, usage,
 * choices[].finish_reason, choices[].error, a top-level error). Returns 0 or DM_ERR_INVALID
 * (not JSON, no choices) / DM_ERR_LIMIT; reported errors are recorded in c->error and return
 * DM_ERR_REMOTE. */
int dm_sse_chat_parse(struct dm_sse_chat *c, const char *body, size_t len, struct dm_error *err);

/* How dm_sse_chat_verdict judges the end of a reply. */
#define DM_SSE_VERDICT_PLAIN 0  /* a whole JSON body */
#define DM_SSE_VERDICT_STREAM 1 /* a stream so far: complete only after [DONE] */
#define DM_SSE_VERDICT_ENDED                                                                       \
    2 /* a stream whose body ended cleanly: [DONE], or finish_reason                               \
       * "stop" with no event left unfinished (servers that omit                                   \
       * [DONE], such as some llama.cpp builds) */

/* Final verdict on a decoded reply, streamed or not: 0 when it is a complete, accepted answer.
 * Else DM_ERR_REMOTE (an error inside the reply, or finish_reason "error"), DM_ERR_LIMIT
 * (finish_reason "length": truncated, never accepted), DM_ERR_IO (streamed and cut: no
 * [DONE] (see DM_SSE_VERDICT_ENDED) or no finish_reason), DM_ERR_INVALID (empty content); err
 * says which. streamed is one of DM_SSE_VERDICT_*. */
int dm_sse_chat_verdict(const struct dm_sse_chat *c, int streamed, struct dm_error *err);

void dm_sse_chat_free(struct dm_sse_chat *c);

/* Parses an error body into out: {"error":{"code","message","type","metadata":{"limit_source",
 * "reason","reasons","flagged_input"}}} (OpenRouter, OpenAI, LiteLLM: a numeric string code
 * counts as the number, another string goes to type), {"error":"message"} (Ollama),
 * {"object":"error","message","type","code"} (vLLM), {"detail":"message"} or {"detail":[...]}
 * (FastAPI servers, vLLM). Returns 0 when one was found, DM_ERR_INVALID otherwise
 * (out->present = 0). */
int dm_sse_parse_error(const char *body, size_t len, struct dm_sse_api_error *out);

/* Parses a Retry-After value: delay-seconds ("120") or an HTTP date ("Wed, 21 Oct 2015 07:28:00
 * GMT"), relative to now_ms (ms since the epoch). Stores the delay in ms (0 for a past date) and
 * returns 0, or returns DM_ERR_INVALID. */
int dm_sse_retry_after_ms(const char *value, long long now_ms, long long *out_ms);

#endif
