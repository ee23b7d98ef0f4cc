/*
 * sse: Server-Sent Events framing and the OpenRouter chat-completion wire format (see
 * include/dream/domain/sse.h). Owns only the buffers inside the structs it is given. Pure; any
 * thread, one owner per parser.
 */
#include "dream/domain/sse.h"
#include "dream/core/error.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SSE_DEFAULT_MAX ((size_t)1 << 20)
#define CHAT_DEFAULT_MAX ((size_t)4 << 20)

void dm_sse_init(struct dm_sse *p, size_t max_event, dm_sse_event_cb cb, void *arg)
{
    memset(p, 0, sizeof(*p));
    if (max_event == 0) {
        max_event = SSE_DEFAULT_MAX;
    }
    dm_buf_init(&p->line, max_event);
    dm_buf_init(&p->data, max_event);
    p->cb = cb;
    p->arg = arg;
}

void dm_sse_free(struct dm_sse *p)
{
    dm_buf_free(&p->line);
    dm_buf_free(&p->data);
}

int dm_sse_pending(const struct dm_sse *p)
{
    return p->line.len > 0 || p->has_data;
}

/* Handles one complete line (without its terminator). */
static int sse_line(struct dm_sse *p, const char *s, size_t n)
{
    const char *colon;
    size_t flen;
    const char *v;
    size_t vlen;
    int rc;
    if (n == 0) {
        if (!p->has_data) {
            return 0;
        }
        p->has_data = 0;
        p->events++;
        /* The joined data has one "\n" too many at its end. */
        if (p->data.len > 0) {
            p->data.len--;
            p->data.data[p->data.len] = 0;
        }
        rc = p->cb ? p->cb(p->arg, p->data.data ? p->data.data : "", p->data.len) : 0;
        dm_buf_reset(&p->data);
        return rc;
    }
    if (s[0] == ':') {
        p->comments++;
        return 0;
    }
    colon = memchr(s, ':', n);
    flen = colon ? (size_t)(colon - s) : n;
    if (flen != 4 || memcmp(s, "data", 4) != 0) {
        return 0; /* event, id, retry and unknown fields do not matter here */
    }
    v = colon ? colon + 1 : s + n;
    vlen = (size_t)(s + n - v);
    if (vlen > 0 && v[0] == ' ') {
        v++;
        vlen--;
    }
    p->has_data = 1;
    if (dm_buf_append(&p->data, v, vlen) != 0 || dm_buf_append(&p->data, "\n", 1) != 0) {
        return DM_ERR_LIMIT;
    }
    return 0;
}

int dm_sse_feed(struct dm_sse *p, const char *bytes, size_t n)
{
    size_t i = 0;
    while (i < n) {
        char ch = bytes[i];
        if (p->last_cr && ch == '\n') {
            p->last_cr = 0;
            i++;
            continue;
        }
        p->last_cr = 0;
        if (ch == '\n' || ch == '\r') {
            int rc;
            p->last_cr = ch == '\r';
            rc = sse_line(p, p->line.data ? p->line.data : "", p->line.len);
            dm_buf_reset(&p->line);
            if (rc != 0) {
                return rc;
            }
            i++;
            continue;
        }
        /* Copy the run up to the next line break in one append. */
        size_t j = i;
        while (j < n && bytes[j] != '\n' && bytes[j] != '\r') {
            j++;
        }
        if (dm_buf_append(&p->line, bytes + i, j - i) != 0) {
            return DM_ERR_LIMIT;
        }
        i = j;
    }
    return 0;
}

/* --- chat ------------------------------------------------------------------------------------ */

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) {
        n = cap - 1;
    }
    memcpy(dst, src, n);
    dst[n] = 0;
}

static void read_error(const cJSON *e, struct dm_sse_api_error *out)
{
    const cJSON *code, *msg, *meta;
    memset(out, 0, sizeof(*out));
    out->present = 1;
    if (cJSON_IsString(e)) {
        copy_str(out->message, sizeof(out->message), e->valuestring);
        return;
    }
    code = cJSON_GetObjectItemCaseSensitive(e, "code");
    msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    meta = cJSON_GetObjectItemCaseSensitive(e, "metadata");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type");
    if (cJSON_IsNumber(code) && isfinite(code->valuedouble) && fabs(code->valuedouble) < 1e9) {
        out->code = (long)code->valuedouble;
    } else if (cJSON_IsString(code)) {
        char *end;
        long v = strtol(code->valuestring, &end, 10);
        if (end != code->valuestring && *end == 0 && v > 0 && v < 1000) {
            out->code = v;
        } else {
            copy_str(out->type, sizeof(out->type), code->valuestring);
        }
    }
    if (cJSON_IsString(type)) {
        copy_str(out->type, sizeof(out->type), type->valuestring);
    }
    if (cJSON_IsString(msg)) {
        copy_str(out->message, sizeof(out->message), msg->valuestring);
    }
    if (cJSON_IsObject(meta)) {
        const cJSON *ls = cJSON_GetObjectItemCaseSensitive(meta, "limit_source");
        const cJSON *rs = cJSON_GetObjectItemCaseSensitive(meta, "reason");
        const cJSON *reasons = cJSON_GetObjectItemCaseSensitive(meta, "reasons");
        const cJSON *r;
        out->flagged = cJSON_HasObjectItem(meta, "flagged_input");
        if (!cJSON_IsArray(reasons)) {
            reasons = NULL;
        }
        cJSON_ArrayForEach(r, reasons)
        {
            size_t used = strlen(out->reasons);
            if (cJSON_IsString(r) && used + 3 < sizeof(out->reasons)) {
                snprintf(out->reasons + used, sizeof(out->reasons) - used, "%s%s", used ? ", " : "",
                         r->valuestring);
            }
        }
        if (cJSON_IsString(ls)) {
            copy_str(out->limit_source, sizeof(out->limit_source), ls->valuestring);
        }
        if (cJSON_IsString(rs)) {
            copy_str(out->reason, sizeof(out->reason), rs->valuestring);
        }
    }
}

/* vLLM's error shape: {"object":"error","message","type","code"} at the top level. */
static int is_vllm_error(const cJSON *root)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, "object");
    return cJSON_IsString(o) && strcmp(o->valuestring, "error") == 0;
}

/* A token count: an integer-valued number from 0 to 2^53 (beyond, a double no longer counts
 * tokens exactly). Anything else sets *bad and counts 0. */
static long long num_ll(const cJSON *o, const char *name, int *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v) {
        return 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
        v->valuedouble > DM_SSE_TOKENS_MAX) {
        *bad = 1;
        return 0;
    }
    return (long long)v->valuedouble;
}

/* Numbers from the API are data, not trust: a count or a cost out of range (1e999 parses as
 * infinity, negative, past 2^53 tokens or DM_SSE_COST_MAX dollars) is refused, never stored,
 * and marked suspect so the caller warns and estimates instead. */
static void read_usage(const cJSON *u, struct dm_sse_usage *out)
{
    const cJSON *cost;
    int bad = 0;

    if (!cJSON_IsObject(u)) {
        return;
    }
    out->known = 1;
    out->prompt_tokens = num_ll(u, "prompt_tokens", &bad);
    out->completion_tokens = num_ll(u, "completion_tokens", &bad);
    out->total_tokens = num_ll(u, "total_tokens", &bad);
    if (bad) {
        out->known = 0; /* the counts cannot be trusted: the caller estimates them */
        out->prompt_tokens = out->completion_tokens = out->total_tokens = 0;
        out->suspect = 1;
    } else if (out->total_tokens == 0) {
        out->total_tokens = out->prompt_tokens + out->completion_tokens;
    }
    {
        const cJSON *cd = cJSON_GetObjectItemCaseSensitive(u, "cost_details");
        const cJSON *up = cJSON_GetObjectItemCaseSensitive(cd, "upstream_inference_cost");
        out->has_upstream_cost = 0;
        out->upstream_cost = 0;
        if (cJSON_IsNumber(up) && isfinite(up->valuedouble) && up->valuedouble >= 0 &&
            up->valuedouble <= DM_SSE_COST_MAX) {
            out->has_upstream_cost = 1;
            out->upstream_cost = up->valuedouble;
        } else if (up && !cJSON_IsNull(up)) {
            out->suspect = 1;
        }
    }
    cost = cJSON_GetObjectItemCaseSensitive(u, "cost");
    out->has_cost = 0;
    out->cost = 0;
    if (cost) {
        if (cJSON_IsNumber(cost) && isfinite(cost->valuedouble) && cost->valuedouble >= 0 &&
            cost->valuedouble <= DM_SSE_COST_MAX) {
            out->has_cost = 1;
            out->cost = cost->valuedouble;
        } else if (!cJSON_IsNull(cost)) {
            out->suspect = 1;
        }
    }
}

static void read_meta(struct dm_sse_chat *c, const cJSON *root)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (cJSON_IsString(id) && c->id[0] == 0) {
        copy_str(c->id, sizeof(c->id), id->valuestring);
    }
    if (cJSON_IsString(model) && c->model[0] == 0) {
        copy_str(c->model, sizeof(c->model), model->valuestring);
    }
}

/* Reads choices[]: content (from delta or message), finish_reason, per-choice errors.
 * Returns DM_ERR_LIMIT if content overflows. */
static int read_choices(struct dm_sse_chat *c, const cJSON *choices, const char *part)
{
    const cJSON *ch;
    int idx = 0;
    cJSON_ArrayForEach(ch, choices)
    {
        const cJSON *fr = cJSON_GetObjectItemCaseSensitive(ch, "finish_reason");
        const cJSON *er = cJSON_GetObjectItemCaseSensitive(ch, "error");
        const cJSON *holder = cJSON_GetObjectItemCaseSensitive(ch, part);
        if (er && !cJSON_IsNull(er) && !c->error.present) {
            read_error(er, &c->error);
        }
        if (cJSON_IsString(fr)) {
            copy_str(c->finish_reason, sizeof(c->finish_reason), fr->valuestring);
        }
        /* Only the first choice carries the answer (n is never set above 1). */
        if (idx == 0 && cJSON_IsObject(holder)) {
            const cJSON *content = cJSON_GetObjectItemCaseSensitive(holder, "content");
            if (cJSON_IsString(content) && dm_buf_puts(&c->content, content->valuestring) != 0) {
                return DM_ERR_LIMIT;
            }
        }
        idx++;
    }
    return 0;
}

void dm_sse_chat_init(struct dm_sse_chat *c, size_t max_content)
{
    memset(c, 0, sizeof(*c));
    dm_buf_init(&c->content, max_content ? max_content : CHAT_DEFAULT_MAX);
}

void dm_sse_chat_free(struct dm_sse_chat *c)
{
    dm_sse_free(&c->sse);
    dm_buf_free(&c->content);
}

struct feed_ctx {
    struct dm_sse_chat *c;
    struct dm_error *err;
};

static int on_chat_event(void *arg, const char *data, size_t len)
{
    struct feed_ctx *fc = arg;
    struct dm_sse_chat *c = fc->c;
    cJSON *root = NULL;
    const cJSON *e;
    int rc = 0;
    if (c->done) {
        return 0;
    }
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        c->done = 1;
        return 0;
    }
    root = cJSON_ParseWithLength(data, len);
    if (!root || !cJSON_IsObject(root)) {
        rc = dm_error_set(fc->err, DM_ERR_INVALID, "stream chunk %zu is not a JSON object",
                          c->chunks + 1);
        goto out;
    }
    c->chunks++;
    read_meta(c, root);
    e = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (e && !cJSON_IsNull(e) && !c->error.present) {
        read_error(e, &c->error);
    } else if (!c->error.present && is_vllm_error(root)) {
        /* vLLM reports an error inside a stream as a top-level error object. */
        read_error(root, &c->error);
    }
    read_usage(cJSON_GetObjectItemCaseSensitive(root, "usage"), &c->usage);
    rc = read_choices(c, cJSON_GetObjectItemCaseSensitive(root, "choices"), "delta");
    if (rc != 0) {
        dm_error_set(fc->err, rc, "reply content exceeds %zu bytes", c->content.limit);
        goto out;
    }
    if (c->error.present || strcmp(c->finish_reason, "error") == 0) {
        rc = dm_error_set(fc->err, DM_ERR_REMOTE, "error inside the stream: %ld %s", c->error.code,
                          c->error.message[0] ? c->error.message : "(no message)");
    }
out:
    cJSON_Delete(root);
    return rc;
}

int dm_sse_chat_feed(struct dm_sse_chat *c, const char *bytes, size_t n, struct dm_error *err)
{
    struct feed_ctx fc = {c, err};
    int rc;
    if (c->sse.cb == NULL) {
        dm_sse_init(&c->sse, 0, on_chat_event, NULL);
    }
    c->sse.arg = &fc;
    rc = dm_sse_feed(&c->sse, bytes, n);
    c->sse.arg = NULL;
    if (rc == DM_ERR_LIMIT && (!err || err->code != DM_ERR_LIMIT)) {
        dm_error_set(err, DM_ERR_LIMIT, "stream event exceeds %zu bytes", c->sse.line.limit);
    }
    return rc;
}

int dm_sse_chat_parse(struct dm_sse_chat *c, const char *body, size_t len, struct dm_error *err)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *e, *choices;
    int rc = 0;
    if (!root || !cJSON_IsObject(root)) {
        rc = dm_error_set(err, DM_ERR_INVALID, "reply is not a JSON object (%zu bytes)", len);
        goto out;
    }
    c->chunks++;
    read_meta(c, root);
    e = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (e && !cJSON_IsNull(e)) {
        read_error(e, &c->error);
    }
    read_usage(cJSON_GetObjectItemCaseSensitive(root, "usage"), &c->usage);
    choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
    rc = read_choices(c, choices, "message");
    if (rc != 0) {
        dm_error_set(err, rc, "reply content exceeds %zu bytes", c->content.limit);
        goto out;
    }
    if (c->error.present || strcmp(c->finish_reason, "error") == 0) {
        rc = dm_error_set(err, DM_ERR_REMOTE, "error inside the reply: %ld %s", c->error.code,
                          c->error.message[0] ? c->error.message : "(no message)");
        goto out;
    }
    if (!cJSON_IsArray(choices) || cJSON_GetArraySize(choices) == 0) {
        rc = dm_error_set(err, DM_ERR_INVALID, "reply has no choices");
    }
out:
    cJSON_Delete(root);
    return rc;
}

int dm_sse_chat_verdict(const struct dm_sse_chat *c, int streamed, struct dm_error *err)
{
    if (c->error.present || strcmp(c->finish_reason, "error") == 0) {
        return dm_error_set(err, DM_ERR_REMOTE, "the model reported an error: %ld %s",
                            c->error.code, c->error.message[0] ? c->error.message : "(no message)");
    }
    if (strcmp(c->finish_reason, "length") == 0) {
        return dm_error_set(err, DM_ERR_LIMIT,
                            "reply truncated at max_tokens (finish_reason length, %zu bytes)",
                            c->content.len);
    }
    if (streamed && !c->done &&
        !(streamed == DM_SSE_VERDICT_ENDED && strcmp(c->finish_reason, "stop") == 0 &&
          !dm_sse_pending(&c->sse))) {
        return dm_error_set(err, DM_ERR_IO, "stream ended before [DONE] after %zu chunks",
                            c->chunks);
    }
    if (c->finish_reason[0] == 0) {
        return dm_error_set(err, DM_ERR_IO, "reply has no finish_reason (cut off)");
    }
    if (c->content.len == 0) {
        return dm_error_set(err, DM_ERR_INVALID, "reply is empty (finish_reason %s)",
                            c->finish_reason);
    }
    return 0;
}

int dm_sse_parse_error(const char *body, size_t len, struct dm_sse_api_error *out)
{
    cJSON *root;
    const cJSON *e;
    int rc = DM_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    if (!body || len == 0) {
        return DM_ERR_INVALID;
    }
    root = cJSON_ParseWithLength(body, len);
    e = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (e && !cJSON_IsNull(e) && (cJSON_IsObject(e) || cJSON_IsString(e))) {
        read_error(e, out);
        rc = 0;
    } else if (cJSON_IsObject(root) && is_vllm_error(root)) {
        /* vLLM: the error's fields at the top level. */
        read_error(root, out);
        rc = 0;
    } else if (cJSON_IsObject(root) && (e = cJSON_GetObjectItemCaseSensitive(root, "detail"))) {
        /* FastAPI: {"detail": "..."} or a list of validation errors. */
        memset(out, 0, sizeof(*out));
        out->present = 1;
        if (cJSON_IsString(e)) {
            copy_str(out->message, sizeof(out->message), e->valuestring);
        } else {
            char *txt = cJSON_PrintUnformatted(e);
            if (txt) {
                copy_str(out->message, sizeof(out->message), txt);
                free(txt);
            }
        }
        rc = 0;
    }
    cJSON_Delete(root);
    return rc;
}

int dm_sse_retry_after_ms(const char *value, long long now_ms, long long *out_ms)
{
    const char *p = value;
    struct tm tm;
    const char *end;
    if (!value) {
        return DM_ERR_INVALID;
    }
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (isdigit((unsigned char)*p)) {
        char *e;
        double secs = strtod(p, &e);
        while (*e == ' ' || *e == '\t') {
            e++;
        }
        if (*e != 0 || secs < 0 || secs > 86400.0 * 365) {
            return DM_ERR_INVALID;
        }
        *out_ms = (long long)(secs * 1000.0);
        return 0;
    }
    memset(&tm, 0, sizeof(tm));
    end = strptime(p, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end) {
        return DM_ERR_INVALID;
    }
    long long when = (long long)timegm(&tm) * 1000LL;
    *out_ms = when > now_ms ? when - now_ms : 0;
    return 0;
}
