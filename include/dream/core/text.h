/*
 * text: the one home of the project's text rules — UTF-8 validity and cutting, the language of
 * a path (the fence info string a prompt shows and the comment syntax the safety scanner
 * strips), Markdown fences that nothing inside can close, and one-line cleaning of untrusted
 * text. Every module that checks, cuts or fences text calls these instead of its own copy, so
 * the rules cannot drift apart again.
 *
 * Pure, no state, no I/O; every function is safe on any thread.
 */
#ifndef DREAM_TEXT_H
#define DREAM_TEXT_H

#include <stddef.h>

#include "dream/core/buf.h"

/* U+2026, appended wherever text is cut. */
#define DM_TEXT_ELLIPSIS "\xe2\x80\xa6"

/* ---- UTF-8 ------------------------------------------------------------------------------ */

/*
 * Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF, no
 * sequence cut at the end. Every byte value below 0x80 is accepted (NUL included).
 * Returns 0, or DM_ERR_INVALID with *bad_off (may be NULL) = offset of the first bad sequence.
 */
int dm_text_utf8_check(const char *s, size_t len, size_t *bad_off);

/* The number of code points in s[0..len), or -1 when it is not strict UTF-8 (as above). */
long dm_text_utf8_count(const char *s, size_t len);

/*
 * Text for people and prompts: strict UTF-8 as above and no NUL, C0 control (TAB LF FF CR are
 * allowed) or DEL. Returns 0, or DM_ERR_INVALID with *bad_off (may be NULL) = offset of the
 * first bad byte.
 */
int dm_text_check(const char *s, size_t len, size_t *bad_off);

/*
 * Byte length of the longest prefix of s[0..len) holding at most max_chars characters; never
 * splits a well-formed multi-byte sequence. Lenient: an invalid byte counts as one character,
 * so any input makes progress.
 */
size_t dm_text_prefix_chars(const char *s, size_t len, size_t max_chars);

/*
 * Byte length of the longest prefix of s[0..len) of at most max bytes that does not end inside
 * a UTF-8 sequence (it backs off at most three continuation bytes, so any input makes
 * progress). len when len <= max.
 */
size_t dm_text_cut(const char *s, size_t len, size_t max);

/* Appends the first max_chars characters of s[0..len) (dm_text_prefix_chars()), then "…" when
 * that cut anything. Returns 0 or dm_buf's error. */
int dm_text_put_chars(struct dm_buf *b, const char *s, size_t len, size_t max_chars);

/* Appends s[0..len) in at most max bytes: as is when it fits, else cut (dm_text_cut()) so that
 * the cut text and "…" together fit. Returns 0 or dm_buf's error. */
int dm_text_put_cut(struct dm_buf *b, const char *s, size_t len, size_t max);

/*
 * One line of untrusted text (a model's summary, comment or description): control bytes and
 * spaces become one space per run, leading and trailing space dropped, cut to max bytes with
 * "…" (dm_text_put_cut()). malloc'd (free()), "" when nothing printable is left; NULL on
 * NOMEM.
 */
char *dm_text_clean_line(const char *s, size_t max);

/* The 1-based line and column (in bytes) of offset off in text. */
void dm_text_line_col(const char *text, size_t off, unsigned *line, unsigned *col);

/* 1 when s starts (ends) with prefix (suffix), byte for byte. */
/* Splits a comma-separated list in place: each item trimmed of spaces and tabs, empty items
 * skipped, at most max items; out[i] point into buf. Returns the count. The one rule for every
 * list setting and list flag (secrets, hosts, labels, reviewers). */
size_t dm_text_split_list(char *buf, const char **out, size_t max);

int dm_text_starts_with(const char *s, const char *prefix);
int dm_text_ends_with(const char *s, const char *suffix);

/* ---- languages ---------------------------------------------------------------------------- */

/* The comment syntax of a file, which decides what the safety scanner blanks before scanning. */
enum dm_text_comments {
    DM_TEXT_COMMENTS_NONE = 0, /* no known syntax: scanned as is */
    DM_TEXT_COMMENTS_SQL,      /* -- and slash-star comments, '…' literals */
    DM_TEXT_COMMENTS_CLIKE,    /* // and slash-star comments; '…', "…", `…` strings */
    DM_TEXT_COMMENTS_HASH,     /* # comments (shell, YAML, Python, Makefile, .env …) */
};

struct dm_text_lang {
    const char *fence_info;         /* Markdown info string ("ts", "sql", …) or ""; static */
    enum dm_text_comments comments; /* the comment syntax */
};

/*
 * The language of a path, from one table: the extension of the last segment (after its last
 * '.', not a leading one; ASCII case-insensitive) gives both the fence info string and the
 * comment syntax; the names Dockerfile, Makefile, GNUmakefile and .env* have '#' comments
 * whatever their extension. Unknown: {"", DM_TEXT_COMMENTS_NONE}. path may be NULL.
 */
struct dm_text_lang dm_text_lang_of(const char *path);

/* ---- fences ------------------------------------------------------------------------------- */

/* The length of a backtick fence no backtick run in s[0..len) can close: 3, or one more than
 * the longest run. */
size_t dm_text_fence_len(const char *s, size_t len);

/*
 * Appends s[0..len) as a fenced code block: fence backticks (0 = dm_text_fence_len(s, len);
 * pass the length computed over a whole text when only a part of it is shown), info, "\n",
 * the text, "\n" unless it already ends in one, and the closing fence without a line end.
 * Returns 0 or dm_buf's error.
 */
int dm_text_put_fenced(struct dm_buf *b, size_t fence, const char *info, const char *s, size_t len);

#endif
