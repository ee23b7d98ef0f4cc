/*
 * tscdiag: what the type-check reads and writes as text — the TypeScript compiler's diagnostics
 * (`tsc --pretty false`: "src/a.ts(3,10): error TS2305: Module ... has no exported member 'x'.",
 * continuation lines indented), and the bare package specifiers a source file imports (the
 * packages that get an untyped-module declaration when the dependencies cannot be had).
 *
 * Compiler output is hostile data (it quotes model output): every message is cut to one clean
 * line, and the number of diagnostics kept is capped.
 *
 * Pure; no shared state; any thread.
 */
#ifndef DREAM_TSCDIAG_H
#define DREAM_TSCDIAG_H

#include <stddef.h>

#include "dream/core/error.h"

#define DM_TSC_MESSAGE_MAX 400 /* bytes kept of one message */

/* One diagnostic. file is NULL for a global one (e.g. "error TS5083: Cannot read file"). */
struct dm_tsc_diag {
    char *file; /* as tsc printed it: relative to its working directory */
    unsigned line, col;
    unsigned code; /* 2305 for TS2305 */
    int warning;   /* 0: error */
    char *message; /* one line, continuation lines joined with " " */
};

struct dm_tsc_diags {
    struct dm_tsc_diag *items;
    size_t n;
    size_t dropped; /* diagnostics past the cap */
};

/* Parses text (len bytes) into out (zeroed first), keeping at most max diagnostics (0 = 200);
 * lines that are not diagnostics are skipped. Returns 0 or DM_ERR_NOMEM (out then freed).
 * Free with dm_tsc_diags_free. */
int dm_tsc_parse(struct dm_tsc_diags *out, const char *text, size_t len, size_t max,
                 struct dm_error *err);

void dm_tsc_diags_free(struct dm_tsc_diags *d);

/* "file:line: TS2305: message" (or "TS5083: message" without a file) into out (n bytes, cut). */
void dm_tsc_diag_format(const struct dm_tsc_diag *d, char *out, size_t n);

/* Calls fn(arg, spec, len) for each bare module specifier text imports or re-exports
 * (`import ... from 'x'`, `import 'x'`, `export ... from 'x'`, `import('x')`, `require('x')`):
 * specifiers that are not relative ('.'), absolute ('/') or a URL. Comments are skipped; the
 * scan is lexical, so an unusual form may be missed (the compiler then reports it). fn returns
 * non-zero to stop; that value is returned, else 0. */
int dm_tsc_bare_imports(const char *text, size_t len,
                        int (*fn)(void *arg, const char *spec, size_t len), void *arg);

#endif
