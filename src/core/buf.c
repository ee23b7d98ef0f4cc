/*
 * buf: capped growable buffer (see include/dream/core/buf.h). Pure.
 */
#include "dream/core/buf.h"
#include "dream/core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dm_buf_init(struct dm_buf *b, size_t limit)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
}

static int reserve(struct dm_buf *b, size_t extra)
{
    size_t need;
    size_t cap;
    char *p;

    if (b->limit && (extra > b->limit || b->len > b->limit - extra)) {
        return DM_ERR_LIMIT;
    }
    need = b->len + extra + 1;
    if (need <= b->cap) {
        return 0;
    }
    cap = b->cap ? b->cap : 64;
    while (cap < need) {
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (!p) {
        return DM_ERR_NOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int dm_buf_append(struct dm_buf *b, const void *p, size_t n)
{
    int rc = reserve(b, n);
    if (rc) {
        return rc;
    }
    if (n) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int dm_buf_puts(struct dm_buf *b, const char *s)
{
    return dm_buf_append(b, s, strlen(s));
}

int dm_buf_printf(struct dm_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    int rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return DM_ERR_INVALID;
    }
    rc = reserve(b, (size_t)n);
    if (rc) {
        return rc;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void dm_buf_reset(struct dm_buf *b)
{
    b->len = 0;
    if (b->data) {
        b->data[0] = '\0';
    }
}

void dm_buf_consume(struct dm_buf *b, size_t n)
{
    if (n >= b->len) {
        dm_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *dm_buf_detach(struct dm_buf *b)
{
    char *p = b->data;
    if (!p) {
        p = calloc(1, 1);
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

void dm_buf_free(struct dm_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
