/*
 * esbuild_report: the one-line reason read from esbuild's output when a check fails, for the
 * validation runner (dream/io/validate_run.h), which runs esbuild as a child process.
 *
 * Pure; no state; any thread.
 */
#ifndef DREAM_ESBUILD_REPORT_H
#define DREAM_ESBUILD_REPORT_H

#include "dream/core/buf.h"

#include <stddef.h>

/* Finds esbuild's first error in b (read as a C string: it stops at the first NUL):
 * "✘ [ERROR] <message>" and, when the first non-empty line after it is a location
 * "<file>:<line>:<column>:", writes "<file>:<line>:<column>: <message>" into out, else the
 * message alone (trimmed, at most 1023 bytes of it). Returns 1 when an error was found, 0 (out
 * untouched) when not. */
int dm_esbuild_first_error(const struct dm_buf *b, char *out, size_t outlen);

/* The last non-empty line of b, trimmed, into out ("" when b is empty). */
void dm_esbuild_last_line(const struct dm_buf *b, char *out, size_t outlen);

#endif
