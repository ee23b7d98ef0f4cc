/*
 * llm: chat completions (OpenRouter or OpenAI-compatible) over the shared HTTP client (see
 * include/dream/io/llm.h).
 *
 * Owns, per call: the request body and headers (built once, re-sent on retries), the reply
 * decoder (dream/sse.h), and one uv_timer for retry waits. A call's completion is fired from
 * its timer's close callback, which also frees it, so completions are never synchronous and
 * fire exactly once. Loop thread only.
 */
#include "dream/io/llm.h"
#include "dream/domain/retry.h"
#include "dream/core/secret.h"
#include "dream/domain/budget.h"
#include "dream/core/log.h"
#include "dream/domain/sse.h"
#include "dream/domain/netaddr.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_BASE "https://openrouter.ai/api/v1"
#define DEFAULT_REFERER "https://github.com/dreamd/dreamd"
#define DEFAULT_TITLE "dreamd"

struct dm_llm {
    struct dm_http *http;
    uv_loop_t *loop;
    char *url; /* {base}/chat/completions */
    char *auth_header;
    char *referer_header;  /* NULL: not sent */
    char *title_header;    /* X-Title; NULL: not sent */
    char *or_title_header; /* X-OpenRouter-Title (openrouter mode); NULL: not sent */
    char *max_tokens_field;
    int key_optional;
    char host[256];          /* of the base URL, for messages */
    struct dm_llm_opts opts; /* pointers above replace the borrowed strings */
    size_t in_flight;
    struct dm_llm_call *calls; /* started, completion not yet fired */
};

struct dm_llm_call {
    struct dm_llm *llm;
    struct dm_llm_call *prev, *next; /* llm->calls */
    uv_timer_t timer;                /* retry waits; closing it completes the call */
    struct dm_http_call *http_call;
    char *body;
    size_t body_len;
    char *model;
    char *job_id;
    long long prompt_estimate;
    /* What earlier attempts that failed after their reply began (a retried error inside a
     * stream) cost: the provider may have billed them, so the result carries them too. */
    long long prior_prompt, prior_completion;
    double prior_cost;
    int stream;
    long progress_interval_ms;
    dm_llm_progress_cb on_progress;
    dm_llm_tokens_cb on_tokens;
    dm_llm_done_cb on_done;
    void *arg;
    struct dm_sse_chat chat;
    int aborted_rc; /* our data callback stopped the transfer with this code */
    struct dm_error abort_err;
    uint64_t last_progress;
    uint64_t started;
    int cancelled;
    int finishing;
    int rc;
    struct dm_error err;
    struct dm_llm_result res;
};

int dm_llm_api_parse(const char *name, enum dm_llm_api *out)
{
    if (name && strcmp(name, "openrouter") == 0) {
        *out = DM_LLM_API_OPENROUTER;
        return 0;
    }
    if (name && strcmp(name, "openai") == 0) {
        *out = DM_LLM_API_OPENAI;
        return 0;
    }
    return DM_ERR_INVALID;
}

/* The host of an http(s) URL into out, without userinfo and port (an IPv6 literal keeps its
 * brackets, which dm_netaddr_* accept). */
static void url_host(const char *url, char *out, size_t cap)
{
    const char *h = strstr(url, "://");
    const char *end, *at;
    size_t n;
    h = h ? h + 3 : url;
    end = h + strcspn(h, "/?#");
    at = memchr(h, '@', (size_t)(end - h));
    if (at) {
        h = at + 1;
    }
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        end = rb ? rb + 1 : end;
    } else {
        const char *colon = memchr(h, ':', (size_t)(end - h));
        end = colon ? colon : end;
    }
    n = (size_t)(end - h);
    if (n >= cap) {
        n = cap - 1;
    }
    memcpy(out, h, n);
    out[n] = 0;
}

static char *dup_printf(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 1;
    char *s = malloc(n);
    if (s) {
        snprintf(s, n, "%s%s", a, b);
    }
    return s;
}

int dm_llm_new(struct dm_llm **out, struct dm_http *http, uv_loop_t *loop,
               const struct dm_llm_opts *opts, struct dm_error *err)
{
    struct dm_llm_opts defaults = DM_LLM_OPTS_INIT;
    struct dm_llm *l;
    const char *base;
    size_t blen;
    int rc = 0;
    *out = NULL;
    if (!opts) {
        opts = &defaults;
    }
    base = opts->base_url && *opts->base_url ? opts->base_url : DEFAULT_BASE;
    if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0) {
        return dm_error_set(err, DM_ERR_INVALID, "LLM base URL must be http:// or https://");
    }
    l = calloc(1, sizeof(*l));
    if (!l) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    l->http = http;
    l->loop = loop;
    l->opts = *opts;
    blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/') {
        blen--;
    }
    l->url = malloc(blen + sizeof("/chat/completions"));
    if (l->url) {
        memcpy(l->url, base, blen);
        memcpy(l->url + blen, "/chat/completions", sizeof("/chat/completions"));
    }
    if (opts->api_key && *opts->api_key) {
        l->auth_header = dup_printf("Authorization: Bearer ", opts->api_key);
    }
    {
        int openrouter = opts->api == DM_LLM_API_OPENROUTER;
        const char *ref = opts->referer ? opts->referer : openrouter ? DEFAULT_REFERER : "";
        const char *title = opts->title ? opts->title : openrouter ? DEFAULT_TITLE : "";
        int bad = 0;
        if (strpbrk(ref, "\r\n") || strpbrk(title, "\r\n")) {
            rc = dm_error_set(err, DM_ERR_INVALID,
                              "attribution headers (referer, title) must be one line");
            goto out;
        }
        if (*ref) {
            bad |= !(l->referer_header = dup_printf("HTTP-Referer: ", ref));
        }
        if (*title) {
            bad |= !(l->title_header = dup_printf("X-Title: ", title));
            if (openrouter) {
                bad |= !(l->or_title_header = dup_printf("X-OpenRouter-Title: ", title));
            }
        }
        l->max_tokens_field =
            strdup(!openrouter && opts->max_tokens_field && *opts->max_tokens_field
                       ? opts->max_tokens_field
                   : openrouter ? "max_tokens"
                                : "max_completion_tokens");
        url_host(base, l->host, sizeof(l->host));
        if (!openrouter) {
            l->key_optional =
                dm_netaddr_classify_host(l->host, strlen(l->host)) == DM_NETADDR_LOOPBACK ||
                dm_netaddr_host_listed(opts->keyless_hosts, l->host, strlen(l->host));
        }
        if (bad || !l->max_tokens_field) {
            rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    if (!l->url || (opts->api_key && *opts->api_key && !l->auth_header)) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* Borrowed strings are not kept. */
    l->opts.base_url = NULL;
    l->opts.api_key = NULL;
    l->opts.referer = NULL;
    l->opts.title = NULL;
    l->opts.max_tokens_field = NULL;
    l->opts.keyless_hosts = NULL;
    if (l->opts.timeout_ms <= 0) {
        l->opts.timeout_ms = 300000;
    }
    if (l->opts.low_speed_limit <= 0) {
        l->opts.low_speed_limit = 1;
    }
    if (l->opts.low_speed_time_s <= 0) {
        l->opts.low_speed_time_s = 60;
    }
    if (l->opts.max_response_bytes == 0) {
        l->opts.max_response_bytes = (size_t)4 << 20;
    }
    if (l->opts.max_attempts <= 0) {
        l->opts.max_attempts = 4;
    }
    if (l->opts.backoff_base_ms <= 0) {
        l->opts.backoff_base_ms = 1000;
    }
    if (l->opts.backoff_max_ms <= 0) {
        l->opts.backoff_max_ms = 30000;
    }
    if (l->opts.retry_after_max_ms <= 0) {
        l->opts.retry_after_max_ms = 120000;
    }
out:
    if (rc != 0) {
        dm_llm_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

void dm_llm_free(struct dm_llm *llm)
{
    if (!llm) {
        return;
    }
    free(llm->url);
    dm_secret_free(llm->auth_header);
    free(llm->referer_header);
    free(llm->title_header);
    free(llm->or_title_header);
    free(llm->max_tokens_field);
    free(llm);
}

int dm_llm_key_optional(const struct dm_llm *llm)
{
    return llm->key_optional;
}

size_t dm_llm_in_flight(const struct dm_llm *llm)
{
    return llm->in_flight;
}

/* --- completion ------------------------------------------------------------------------------ */

static void on_call_closed(uv_handle_t *h)
{
    struct dm_llm_call *c = h->data;
    struct dm_llm *l = c->llm;
    l->in_flight--;
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        l->calls = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    c->res.elapsed_ms = (long long)(uv_now(l->loop) - c->started);
    if (c->rc != 0) {
        dm_info("llm", c->job_id, "call failed after %d attempt(s): %s", c->res.attempts,
                c->err.msg);
    }
    c->on_done(c->arg, c->rc, &c->res, &c->err);
    free(c->res.content);
    dm_sse_chat_free(&c->chat);
    free(c->body);
    free(c->model);
    free(c->job_id);
    free(c);
}

/* Ends the call with rc (0 or an error already in c->err): the completion fires from the timer's
 * close callback. */
static void finish(struct dm_llm_call *c, int rc)
{
    if (c->finishing) {
        return;
    }
    c->finishing = 1;
    c->rc = rc;
    if (rc == 0) {
        dm_error_clear(&c->err);
    }
    uv_close((uv_handle_t *)&c->timer, on_call_closed);
}

/* Fills usage and cost into res from the decoder, estimating what the reply did not report. */
static void account_attempt(struct dm_llm_call *c)
{
    struct dm_llm *l = c->llm;
    struct dm_llm_result *r = &c->res;
    const struct dm_sse_usage *u = &c->chat.usage;
    snprintf(r->model, sizeof(r->model), "%s", c->chat.model);
    snprintf(r->finish_reason, sizeof(r->finish_reason), "%s", c->chat.finish_reason);
    if (c->chat.id[0]) {
        snprintf(r->id, sizeof(r->id), "%s", c->chat.id);
    }
    if (u->suspect) {
        dm_warn("llm", c->job_id,
                "reply %s reported usage out of range (token counts or cost refused); "
                "estimating from the reply and the price table",
                r->id[0] ? r->id : "(no id)");
    }
    if (u->known) {
        r->usage_known = 1;
        r->prompt_tokens = u->prompt_tokens;
        r->completion_tokens = u->completion_tokens;
    } else {
        r->usage_known = 0;
        r->prompt_tokens = c->prompt_estimate;
        r->completion_tokens = (long long)((c->chat.content.len + 2) / 3);
    }
    if (u->has_cost || u->has_upstream_cost) {
        /* What OpenRouter charged, plus what the provider charged a bring-your-own-key user. */
        r->cost_usd = u->cost + u->upstream_cost;
        r->cost_source = DM_LLM_COST_API;
        return;
    }
    struct dm_price p;
    if (l->opts.prices && dm_price_lookup(l->opts.prices, c->model, &p, NULL) == 0) {
        r->cost_usd = dm_price_cost(&p, r->prompt_tokens, r->completion_tokens);
        r->cost_source = DM_LLM_COST_TABLE;
    } else {
        r->cost_usd = 0;
        r->cost_source = DM_LLM_COST_NONE;
    }
}

/* The call's usage and cost so far: this attempt's, plus what earlier billed attempts cost. */
static void account(struct dm_llm_call *c)
{
    account_attempt(c);
    c->res.prompt_tokens += c->prior_prompt;
    c->res.completion_tokens += c->prior_completion;
    c->res.cost_usd += c->prior_cost;
}

static void start_attempt(struct dm_llm_call *c);

static void on_retry_timer(uv_timer_t *t)
{
    start_attempt(t->data);
}

static const char *server_name(const struct dm_llm *l)
{
    return l->opts.api == DM_LLM_API_OPENROUTER ? "OpenRouter" : "LLM server";
}

static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        if (strncasecmp(hay, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}

static int status_error(struct dm_llm_call *c, long status, const char *body, size_t len)
{
    const char *srv = server_name(c->llm);
    struct dm_sse_api_error e;
    const char *msg = "";
    int code;
    if (dm_sse_parse_error(body, len, &e) == 0) {
        msg = e.message;
    }
    if (status == 400) {
        code = DM_ERR_INVALID;
    } else if (status == 401) {
        code = DM_ERR_AUTH;
    } else if (status == 403) {
        /* Not always the key: OpenRouter refuses flagged input with a 403 (moderation), and
         * proxies (LiteLLM) and OpenRouter report a key's spending limit with one. */
        if (e.present && (e.flagged || e.reasons[0])) {
            return dm_error_set(&c->err, DM_ERR_REMOTE,
                                "%s HTTP 403: refused by moderation (input flagged%s%s): %s", srv,
                                e.reasons[0] ? "; reasons: " : "", e.reasons,
                                msg[0] ? msg : "(no error message)");
        }
        if (e.present && (contains_ci(msg, "budget") || contains_ci(msg, "limit") ||
                          contains_ci(msg, "quota") || contains_ci(e.type, "budget") ||
                          contains_ci(e.type, "limit") || contains_ci(e.type, "quota"))) {
            return dm_error_set(&c->err, DM_ERR_REMOTE,
                                "%s HTTP 403: the key's spending limit or budget is reached: %s",
                                srv, msg);
        }
        return dm_error_set(&c->err, DM_ERR_AUTH,
                            "%s HTTP 403: the key is not allowed (authorization): %s", srv,
                            msg[0] ? msg : "(no error message)");
    } else {
        code = DM_ERR_REMOTE;
    }
    if (status == 402 && e.present) {
        return dm_error_set(&c->err, code, "%s HTTP 402 (limit_source %s%s%s): %s", srv,
                            e.limit_source[0] ? e.limit_source : "none",
                            e.reason[0] ? ", reason " : "", e.reason, msg);
    }
    return dm_error_set(&c->err, code, "%s HTTP %ld: %s", srv, status,
                        msg[0] ? msg : "(no error message)");
}

static void on_http_done(void *arg, int rc, struct dm_http_response *resp,
                         const struct dm_error *herr)
{
    struct dm_llm_call *c = arg;
    struct dm_llm *l = c->llm;
    char hv[128];
    long long ra = -1;
    int got_bytes = resp->body_bytes > 0;
    c->http_call = NULL;
    c->res.http_status = resp->status;
    if (dm_http_response_header(resp, "x-generation-id", hv, sizeof(hv))) {
        snprintf(c->res.id, sizeof(c->res.id), "%s", hv);
    }
    if (resp->status >= 200 && resp->status < 300) {
        c->res.billed = 1;
    }
    if (c->cancelled) {
        account(c);
        dm_error_set(&c->err, DM_ERR_CANCELLED, "LLM call cancelled");
        finish(c, DM_ERR_CANCELLED);
        return;
    }
    if (rc != 0) {
        if (c->aborted_rc != 0 && rc == c->aborted_rc) {
            c->err = c->abort_err;
            account(c);
            if (rc == DM_ERR_REMOTE && dm_llm_stream_error_retryable(&c->chat.error)) {
                /* A provider error after the stream began, with a code the same HTTP status
                 * would be retried for (429, 502, ...): retried like it; the attempt's spend
                 * is kept. */
                c->prior_prompt = c->res.prompt_tokens;
                c->prior_completion = c->res.completion_tokens;
                c->prior_cost = c->res.cost_usd;
                goto retry;
            }
            finish(c, rc);
            return;
        }
        c->err = *herr;
        if (resp->status >= 200 && resp->status < 300) {
            /* Failed after the reply began (cut, cap, timeout while streaming): never retried. */
            account(c);
            if (rc == DM_ERR_IO) {
                dm_error_wrap(&c->err, "stream cut after %zu bytes", resp->body_bytes);
            }
            finish(c, rc);
            return;
        }
        if (rc == DM_ERR_CANCELLED || rc == DM_ERR_LIMIT || rc == DM_ERR_NOMEM ||
            rc == DM_ERR_INVALID || !dm_llm_should_retry(0, got_bytes, NULL, 0, NULL, 0, &ra)) {
            account(c);
            finish(c, rc);
            return;
        }
    } else if (resp->status >= 200 && resp->status < 300) {
        int vrc;
        if (!c->stream) {
            vrc = dm_sse_chat_parse(&c->chat, resp->body.data ? resp->body.data : "",
                                    resp->body.len, &c->err);
            if (vrc == 0) {
                vrc = dm_sse_chat_verdict(&c->chat, 0, &c->err);
            }
        } else {
            /* The body ended cleanly: finish_reason stop without [DONE] is complete. */
            vrc = dm_sse_chat_verdict(&c->chat, DM_SSE_VERDICT_ENDED, &c->err);
        }
        account(c);
        if (vrc == DM_ERR_REMOTE && dm_llm_stream_error_retryable(&c->chat.error)) {
            /* The same, in a reply that was not streamed. */
            c->prior_prompt = c->res.prompt_tokens;
            c->prior_completion = c->res.completion_tokens;
            c->prior_cost = c->res.cost_usd;
            goto retry;
        }
        if (vrc == 0) {
            c->res.content = dm_buf_detach(&c->chat.content);
            if (!c->res.content) {
                vrc = dm_error_set(&c->err, DM_ERR_NOMEM, "out of memory");
            } else {
                c->res.content_len = strlen(c->res.content);
            }
        }
        dm_info("llm", c->job_id,
                "reply model=%s id=%s status=%ld finish=%s tokens=%lld+%lld cost=%.6f attempt=%d",
                c->model, c->res.id, resp->status, c->res.finish_reason, c->res.prompt_tokens,
                c->res.completion_tokens, c->res.cost_usd, c->res.attempts);
        finish(c, vrc);
        return;
    } else {
        const char *body = resp->body.data ? resp->body.data : "";
        const char *rah = dm_http_response_header(resp, "retry-after", hv, sizeof(hv));
        status_error(c, resp->status, body, resp->body.len);
        if (!dm_llm_should_retry(resp->status, 0, body, resp->body.len, rah, dm_time_now_ms(),
                                 &ra)) {
            account(c);
            c->res.prompt_tokens = 0;
            c->res.completion_tokens = 0;
            c->res.cost_usd = 0;
            finish(c, c->err.code);
            return;
        }
    }
retry:
    /* Retry, if attempts remain. */
    if (c->res.attempts >= l->opts.max_attempts) {
        dm_error_wrap(&c->err, "giving up after %d attempts", c->res.attempts);
        c->err.code = DM_ERR_TRANSIENT;
        finish(c, DM_ERR_TRANSIENT);
        return;
    }
    if (ra > l->opts.retry_after_max_ms) {
        dm_error_wrap(&c->err, "server asks to wait %lld ms (more than %ld)", ra,
                      l->opts.retry_after_max_ms);
        c->err.code = DM_ERR_TRANSIENT;
        finish(c, DM_ERR_TRANSIENT);
        return;
    }
    long long delay = ra >= 0 ? ra
                              : dm_llm_backoff_ms(l->opts.backoff_base_ms, l->opts.backoff_max_ms,
                                                  c->res.attempts);
    dm_warn("llm", c->job_id, "attempt %d failed (%s); retrying in %lld ms%s", c->res.attempts,
            c->err.msg, delay, ra >= 0 ? " (Retry-After)" : "");
    /* A fresh decoder for the next attempt. */
    dm_sse_chat_free(&c->chat);
    dm_sse_chat_init(&c->chat, l->opts.max_response_bytes);
    uv_timer_start(&c->timer, on_retry_timer, (uint64_t)delay, 0);
}

static int on_http_data(void *arg, long status, const char *data, size_t len)
{
    struct dm_llm_call *c = arg;
    long long tokens;
    int rc;
    (void)status;
    if (!c->stream) {
        return 0;
    }
    rc = dm_sse_chat_feed(&c->chat, data, len, &c->abort_err);
    if (rc != 0) {
        c->aborted_rc = rc;
        return rc;
    }
    tokens = c->chat.usage.known ? c->chat.usage.completion_tokens
                                 : (long long)((c->chat.content.len + 2) / 3);
    if (c->on_tokens && c->on_tokens(c->arg, tokens) != 0) {
        c->aborted_rc = DM_ERR_BUDGET;
        dm_error_set(&c->abort_err, DM_ERR_BUDGET,
                     "stream cut: the budget would be crossed at ~%lld completion tokens", tokens);
        return DM_ERR_BUDGET;
    }
    if (c->on_progress) {
        uint64_t now = uv_hrtime() / 1000000u;
        if (c->last_progress == 0 || now - c->last_progress >= (uint64_t)c->progress_interval_ms) {
            c->last_progress = now ? now : 1;
            c->on_progress(c->arg, c->chat.content.len, tokens);
        }
    }
    return 0;
}

static void start_attempt(struct dm_llm_call *c)
{
    struct dm_llm *l = c->llm;
    struct dm_http_request hr;
    struct dm_error herr;
    const char *headers[10];
    int n = 0;
    int rc;
    if (c->cancelled) {
        dm_error_set(&c->err, DM_ERR_CANCELLED, "LLM call cancelled");
        finish(c, DM_ERR_CANCELLED);
        return;
    }
    if (!l->auth_header && !l->key_optional) {
        if (l->opts.api == DM_LLM_API_OPENROUTER) {
            dm_error_set(&c->err, DM_ERR_AUTH,
                         "no OpenRouter API key configured (OPENROUTER_API_KEY)");
        } else {
            dm_error_set(&c->err, DM_ERR_AUTH,
                         "no API key configured for the LLM server at %.200s (DREAM_LLM_API_KEY; "
                         "a server that needs none: a loopback URL or DREAM_LLM_KEYLESS_HOSTS)",
                         l->host);
        }
        finish(c, DM_ERR_AUTH);
        return;
    }
    if (l->auth_header) {
        headers[n++] = l->auth_header;
    }
    if (l->referer_header) {
        headers[n++] = l->referer_header;
    }
    if (l->title_header) {
        headers[n++] = l->title_header;
    }
    if (l->or_title_header) {
        headers[n++] = l->or_title_header;
    }
    headers[n++] = "Content-Type: application/json";
    headers[n++] = c->stream ? "Accept: text/event-stream" : "Accept: application/json";
    headers[n] = NULL;
    memset(&hr, 0, sizeof(hr));
    hr.method = "POST";
    hr.url = l->url;
    hr.headers = headers;
    hr.body = c->body;
    hr.body_len = c->body_len;
    hr.timeout_ms = l->opts.timeout_ms;
    hr.low_speed_limit = l->opts.low_speed_limit;
    hr.low_speed_time_s = l->opts.low_speed_time_s;
    hr.max_response_bytes = l->opts.max_response_bytes;
    hr.on_data = c->stream ? on_http_data : NULL;
    hr.on_done = on_http_done;
    hr.arg = c;
    c->aborted_rc = 0;
    dm_error_clear(&c->abort_err);
    c->res.attempts++;
    dm_debug("llm", c->job_id, "POST chat/completions model=%s attempt=%d stream=%d", c->model,
             c->res.attempts, c->stream);
    rc = dm_http_start(l->http, &hr, &c->http_call, &herr);
    if (rc != 0) {
        c->err = herr;
        finish(c, rc);
    }
}

/* The line a structured call's system prompt gets when response_format is not sent. */
#define JSON_ONLY_LINE                                                                             \
    "\n\nAnswer with one JSON object only, following the schema described above: no prose, no "    \
    "code fence."

/* Builds the request body. Returns 0 or DM_ERR_INVALID / DM_ERR_NOMEM. */
static int build_body(struct dm_llm_call *c, const struct dm_llm_request *req, struct dm_error *err)
{
    const struct dm_llm *l = c->llm;
    int openrouter = l->opts.api == DM_LLM_API_OPENROUTER;
    cJSON *root = cJSON_CreateObject();
    cJSON *msgs, *m, *rf = NULL;
    char *system = NULL;
    int send_rf;
    int rc = 0;
    if (req->response_format) {
        rf = cJSON_Parse(req->response_format);
        if (!cJSON_IsObject(rf)) {
            rc = dm_error_set(err, DM_ERR_INVALID, "response_format is not a JSON object");
            goto out;
        }
    }
    send_rf = rf && (openrouter || l->opts.json_schema);
    if (rf && !send_rf) {
        /* An OpenAI-compatible server may not support structured output: ask in words. */
        system = dup_printf(req->system ? req->system : "", JSON_ONLY_LINE);
        if (!system) {
            rc = DM_ERR_NOMEM;
            goto out;
        }
    }
    if (!root || !cJSON_AddStringToObject(root, "model", req->model) ||
        !(msgs = cJSON_AddArrayToObject(root, "messages"))) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    if (req->system || system) {
        m = cJSON_CreateObject();
        cJSON_AddItemToArray(msgs, m);
        if (!m || !cJSON_AddStringToObject(m, "role", "system") ||
            !cJSON_AddStringToObject(m, "content", system ? system : req->system)) {
            rc = DM_ERR_NOMEM;
            goto out;
        }
    }
    m = cJSON_CreateObject();
    cJSON_AddItemToArray(msgs, m);
    if (!m || !cJSON_AddStringToObject(m, "role", "user") ||
        !cJSON_AddStringToObject(m, "content", req->user) ||
        !cJSON_AddNumberToObject(root, l->max_tokens_field, (double)req->max_tokens) ||
        !cJSON_AddBoolToObject(root, "stream", req->stream ? 1 : 0)) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    if (req->temperature >= 0 && !cJSON_AddNumberToObject(root, "temperature", req->temperature)) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    if (openrouter) {
        cJSON *usage = cJSON_AddObjectToObject(root, "usage");
        if (!usage || !cJSON_AddBoolToObject(usage, "include", 1)) {
            rc = DM_ERR_NOMEM;
            goto out;
        }
    } else if (req->stream) {
        /* OpenAI's way to get usage in a stream: a last chunk with empty choices. */
        cJSON *so = cJSON_AddObjectToObject(root, "stream_options");
        if (!so || !cJSON_AddBoolToObject(so, "include_usage", 1)) {
            rc = DM_ERR_NOMEM;
            goto out;
        }
    }
    if (send_rf) {
        cJSON_AddItemToObject(root, "response_format", rf);
        rf = NULL;
        if (openrouter) {
            cJSON *prov = cJSON_AddObjectToObject(root, "provider");
            if (!prov || !cJSON_AddBoolToObject(prov, "require_parameters", 1)) {
                rc = DM_ERR_NOMEM;
                goto out;
            }
        }
    }
    c->body = cJSON_PrintUnformatted(root);
    if (!c->body) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    c->body_len = strlen(c->body);
out:
    if (rc == DM_ERR_NOMEM) {
        dm_error_set(err, rc, "out of memory");
    }
    free(system);
    cJSON_Delete(rf);
    cJSON_Delete(root);
    return rc;
}

int dm_llm_start(struct dm_llm *llm, const struct dm_llm_request *req, struct dm_llm_call **out,
                 struct dm_error *err)
{
    struct dm_llm_call *c;
    size_t plen;
    int rc = 0;
    if (out) {
        *out = NULL;
    }
    if (!req->model || !*req->model || !req->user || !req->on_done || req->max_tokens <= 0) {
        return dm_error_set(err, DM_ERR_INVALID,
                            "LLM request needs model, user prompt, on_done and max_tokens > 0");
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    c->llm = llm;
    c->stream = req->stream;
    c->on_progress = req->on_progress;
    c->on_tokens = req->on_tokens;
    c->on_done = req->on_done;
    c->arg = req->arg;
    c->progress_interval_ms = req->progress_interval_ms > 0 ? req->progress_interval_ms : 500;
    c->model = strdup(req->model);
    c->job_id = req->job_id ? strdup(req->job_id) : NULL;
    dm_sse_chat_init(&c->chat, llm->opts.max_response_bytes);
    if (!c->model || (req->job_id && !c->job_id)) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = build_body(c, req, err);
    if (rc != 0) {
        goto out;
    }
    plen = strlen(req->user) + (req->system ? strlen(req->system) : 0);
    c->prompt_estimate = dm_budget_estimate_tokens(plen);
    if (uv_timer_init(llm->loop, &c->timer) != 0) {
        rc = dm_error_set(err, DM_ERR_IO, "uv_timer_init failed");
        goto out;
    }
    c->timer.data = c;
    c->started = uv_now(llm->loop);
    llm->in_flight++;
    c->next = llm->calls;
    if (llm->calls) {
        llm->calls->prev = c;
    }
    llm->calls = c;
    /* The first attempt starts from the loop, so every outcome (even "no API key") arrives
     * asynchronously through the same path. */
    uv_timer_start(&c->timer, on_retry_timer, 0, 0);
    if (out) {
        *out = c;
    }
out:
    if (rc != 0) {
        dm_sse_chat_free(&c->chat);
        free(c->body);
        free(c->model);
        free(c->job_id);
        free(c);
    }
    return rc;
}

void dm_llm_cancel(struct dm_llm_call *call)
{
    if (!call || call->finishing || call->cancelled) {
        return;
    }
    call->cancelled = 1;
    if (call->http_call) {
        dm_http_cancel(call->http_call);
    } else {
        uv_timer_stop(&call->timer);
        dm_error_set(&call->err, DM_ERR_CANCELLED, "LLM call cancelled");
        finish(call, DM_ERR_CANCELLED);
    }
}

void dm_llm_cancel_all(struct dm_llm *llm)
{
    for (struct dm_llm_call *c = llm->calls; c; c = c->next) {
        dm_llm_cancel(c);
    }
}
