/* libFuzzer target for sse, the parser that reads what the network sends: framing never crashes
 * and does not depend on how the bytes arrive (the same stream fed at once, in random pieces and
 * byte by byte gives the same events, the same result and the same counters, also when a cap or
 * the callback stops it); every event is NUL-terminated, within the cap and free of CR; the chat
 * decoder reaches the same state however the stream is cut, and its verdict keeps its contract;
 * the non-streamed decoder, error bodies and Retry-After accept anything.
 *
 * Input: byte 0 picks the event cap, byte 1 seeds the split points, byte 2 makes the event
 * callback stop after that many events (0: never); the rest is the stream. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dream/core/buf.h"
#include "dream/core/error.h"
#include "dream/domain/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a parser did with a stream: every event (length, then bytes) and how it ended. */
struct run {
    struct dm_buf events;
    size_t n;
    size_t stop_after; /* 0: never stop */
    size_t cap;
    int rc;
    size_t comments, dispatched;
    int pending;
};

static int on_event(void *arg, const char *d, size_t len)
{
    struct run *r = arg;
    if (d[len] != '\0' || len > r->cap || memchr(d, '\r', len)) {
        abort();
    }
    if (dm_buf_append(&r->events, &len, sizeof(len)) || dm_buf_append(&r->events, d, len)) {
        abort(); /* unlimited buffer: only out of memory */
    }
    r->n++;
    if (r->stop_after && r->n == r->stop_after) {
        return DM_ERR_CANCELLED;
    }
    return 0;
}

static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Feeds the stream in pieces: whole (piece 0), byte by byte (piece 1) or random lengths up to
 * piece (seeded). Stops at the first non-zero return, as a caller must. */
static int feed(const char *s, size_t n, size_t piece, uint32_t seed,
                int (*fn)(void *p, const char *b, size_t len, void *arg), void *p, void *arg)
{
    size_t off = 0;
    int rc = 0;
    if (piece == 0) {
        return fn(p, s, n, arg);
    }
    seed |= 1;
    while (off < n && rc == 0) {
        size_t len = piece == 1 ? 1 : 1 + next_rand(&seed) % piece;
        if (len > n - off) {
            len = n - off;
        }
        rc = fn(p, s + off, len, arg);
        off += len;
    }
    return rc;
}

static int feed_sse(void *p, const char *b, size_t len, void *arg)
{
    (void)arg;
    return dm_sse_feed(p, b, len);
}

static void run_sse(struct run *r, const char *s, size_t n, size_t cap, size_t stop_after,
                    size_t piece, uint32_t seed)
{
    struct dm_sse p;
    memset(r, 0, sizeof(*r));
    dm_buf_init(&r->events, 0);
    r->stop_after = stop_after;
    r->cap = cap ? cap : ((size_t)1 << 20);
    dm_sse_init(&p, cap, on_event, r);
    r->rc = feed(s, n, piece, seed, feed_sse, &p, NULL);
    r->comments = p.comments;
    r->dispatched = p.events;
    r->pending = dm_sse_pending(&p);
    dm_sse_free(&p);
    if (r->rc != 0 && r->rc != DM_ERR_LIMIT && r->rc != DM_ERR_CANCELLED) {
        abort();
    }
    if (r->dispatched != r->n) {
        abort();
    }
}

static void same_run(const struct run *a, const struct run *b)
{
    if (a->rc != b->rc || a->n != b->n || a->events.len != b->events.len ||
        (a->events.len && memcmp(a->events.data, b->events.data, a->events.len) != 0)) {
        abort();
    }
    /* Counters and the unfinished state are only comparable when both read everything. */
    if (a->rc == 0 && (a->comments != b->comments || a->pending != b->pending)) {
        abort();
    }
}

/* ---- chat decoder ---- */

static int feed_chat(void *p, const char *b, size_t len, void *arg)
{
    return dm_sse_chat_feed(p, b, len, arg);
}

static void same_chat(const struct dm_sse_chat *a, const struct dm_sse_chat *b)
{
    if (a->content.len != b->content.len ||
        (a->content.len && memcmp(a->content.data, b->content.data, a->content.len) != 0) ||
        strcmp(a->id, b->id) != 0 || strcmp(a->model, b->model) != 0 ||
        strcmp(a->finish_reason, b->finish_reason) != 0 || a->done != b->done ||
        a->chunks != b->chunks || a->usage.known != b->usage.known ||
        a->usage.prompt_tokens != b->usage.prompt_tokens ||
        a->usage.completion_tokens != b->usage.completion_tokens ||
        a->usage.has_cost != b->usage.has_cost || a->error.present != b->error.present ||
        a->error.code != b->error.code || strcmp(a->error.message, b->error.message) != 0) {
        abort();
    }
}

static void check_verdict(const struct dm_sse_chat *c, int streamed)
{
    struct dm_error err;
    int rc = dm_sse_chat_verdict(c, streamed, &err);
    if (rc == 0) {
        if (c->content.len == 0 || c->finish_reason[0] == 0 || c->error.present ||
            (streamed && !c->done)) {
            abort();
        }
    } else if (rc != DM_ERR_REMOTE && rc != DM_ERR_LIMIT && rc != DM_ERR_IO &&
               rc != DM_ERR_INVALID) {
        abort();
    } else if (err.code != rc || memchr(err.msg, 0, sizeof(err.msg)) == NULL) {
        abort();
    }
}

static void fuzz_chat(const char *s, size_t n, size_t max_content, uint32_t seed)
{
    struct dm_sse_chat a, b;
    struct dm_error ea, eb;
    int ra, rb;

    dm_sse_chat_init(&a, max_content);
    dm_sse_chat_init(&b, max_content);
    dm_error_clear(&ea);
    dm_error_clear(&eb);
    ra = dm_sse_chat_feed(&a, s, n, &ea);
    rb = feed(s, n, 1 + seed % 31, seed, feed_chat, &b, &eb);
    if (ra != rb || a.content.len > a.content.limit) {
        abort();
    }
    if (ra != 0 && (ra != DM_ERR_LIMIT && ra != DM_ERR_INVALID && ra != DM_ERR_REMOTE)) {
        abort();
    }
    if (ra != 0 && (ea.code != ra || eb.code != rb || strcmp(ea.msg, eb.msg) != 0)) {
        abort();
    }
    same_chat(&a, &b);
    check_verdict(&a, 1);
    dm_sse_chat_free(&a);
    dm_sse_chat_free(&b);

    /* The same bytes as a whole, non-streamed reply. */
    dm_sse_chat_init(&a, max_content);
    dm_error_clear(&ea);
    ra = dm_sse_chat_parse(&a, s, n, &ea);
    if (ra != 0 && ra != DM_ERR_INVALID && ra != DM_ERR_LIMIT && ra != DM_ERR_REMOTE) {
        abort();
    }
    check_verdict(&a, 0);
    dm_sse_chat_free(&a);
}

static void fuzz_misc(const char *s, size_t n)
{
    struct dm_sse_api_error e;
    char value[80];
    long long ms = -1;
    size_t k = n < sizeof(value) - 1 ? n : sizeof(value) - 1;

    if (dm_sse_parse_error(s, n, &e) == 0) {
        if (!e.present || !memchr(e.message, 0, sizeof(e.message)) ||
            !memchr(e.limit_source, 0, sizeof(e.limit_source)) ||
            !memchr(e.reason, 0, sizeof(e.reason))) {
            abort();
        }
    } else if (e.present) {
        abort();
    }
    memcpy(value, s, k);
    value[k] = '\0';
    if (dm_sse_retry_after_ms(value, 1700000000000LL, &ms) == 0 && ms < 0) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run whole, pieces, bytes;
    const char *s;
    size_t n, cap, stop_after;
    uint32_t seed;

    if (size < 3) {
        return 0;
    }
    /* Caps from 16 bytes (hit often) to the 1 MiB default (0). */
    cap = (data[0] & 7) == 7 ? 0 : (size_t)16 << (data[0] & 7);
    seed = (uint32_t)data[1] * 2654435761u + (uint32_t)size;
    stop_after = data[2] & 15;
    s = (const char *)data + 3;
    n = size - 3;

    run_sse(&whole, s, n, cap, stop_after, 0, seed);
    run_sse(&pieces, s, n, cap, stop_after, 1 + (data[1] % 64), seed);
    same_run(&whole, &pieces);
    if (n <= 4096) {
        run_sse(&bytes, s, n, cap, stop_after, 1, seed);
        same_run(&whole, &bytes);
        dm_buf_free(&bytes.events);
    }
    dm_buf_free(&whole.events);
    dm_buf_free(&pieces.events);

    fuzz_chat(s, n, cap ? cap * 4 : 0, seed);
    fuzz_misc(s, n);
    return 0;
}
