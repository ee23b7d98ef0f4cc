/*
 * buf: a growable byte buffer with a hard cap, for anything network data can grow.
 *
 * The buffer is always NUL-terminated (data[len] == 0) once anything was appended, so text can
 * be read directly. Pure; one owner, no locking.
 */
#ifndef DREAM_BUF_H
#define DREAM_BUF_H

#include <stddef.h>

struct dm_buf {
    char *data; /* NULL until the first append; owned */
    size_t len;
    size_t cap;   /* allocated bytes */
    size_t limit; /* most bytes ever held (0 = no limit) */
};

/* Initialises an empty buffer that will refuse to grow past limit bytes (0 = unlimited). */
void dm_buf_init(struct dm_buf *b, size_t limit);

/* Appends n bytes. Returns 0, DM_ERR_LIMIT (nothing appended) or DM_ERR_NOMEM. */
int dm_buf_append(struct dm_buf *b, const void *p, size_t n);

/* Appends a NUL-terminated string. */
int dm_buf_puts(struct dm_buf *b, const char *s);

/* Appends formatted text. */
int dm_buf_printf(struct dm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Empties the buffer, keeping its memory. */
void dm_buf_reset(struct dm_buf *b);

/* Drops the first n bytes (n <= len). */
void dm_buf_consume(struct dm_buf *b, size_t n);

/* Returns the data (never NULL: "" when empty) and hands ownership to the caller (free()); the
 * buffer is left empty. Returns NULL only on allocation failure. */
char *dm_buf_detach(struct dm_buf *b);

/* Frees the memory; the buffer is empty and usable again. */
void dm_buf_free(struct dm_buf *b);

#endif
