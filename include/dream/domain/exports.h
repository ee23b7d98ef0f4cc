/*
 * exports: what a TypeScript/JavaScript file offers the rest of a repository, read without
 * running it: its exports (ES modules and CommonJS) and its HTTP route registrations (Hono,
 * Express, Fastify). The edit guard compares them between a file on the base and the model's
 * new version; the prompts list them for the files a new module imports or is mounted by.
 *
 * A small tokenizer, not a parser: it skips comments, string literals, template literals (with
 * their ${...} code scanned as code) and regular-expression literals, so nothing inside them is
 * taken for code. One pass over the bytes, then one pass over the tokens: linear time and
 * memory on any input (tests/fuzz/fuzz_editguard.c).
 *
 * Exports, one name each (deduplicated, in order of appearance):
 *   export default ...                         "default"
 *   export [declare] [async] function[*] f     "f"      (also class, abstract class, const,
 *   export const|let|var a [= ...]             "a"       let, var, type, interface, enum,
 *   export const { a, b: c } = ...             "a", "c"  const enum, namespace, module)
 *   export { a, b as c, x as default } [from]  "a", "c", "default"  (also export type { ... })
 *   export * from 'm'                          "* from m"
 *   export * as ns from 'm'                    "ns"
 *   export = x                                 "="
 *   module.exports = ...                       "module.exports"
 *   module.exports.a = ... / exports.a = ...   "a"
 * Route registrations, "<METHOD> <what>" (method upper-cased):
 *   <recv>.get|post|put|patch|delete|del|options|head|all|on|route|use|mount|basePath|register(
 *   with a first argument that is a string literal starting with '/' or equal to '*':
 *   "GET /todos", "ROUTE /todos", "USE *"; for use and register, a first argument that is a
 *   dotted name or a call of one: "USE cors", "USE express.json", "REGISTER todosRoutes".
 *   A receiver is any name or a closing ')' (chained calls). c.get('user') is not a route: its
 *   literal does not start with '/'.
 *
 * Pure: no globals; any thread.
 */
#ifndef DREAM_EXPORTS_H
#define DREAM_EXPORTS_H

#include <stddef.h>

#include "dream/core/error.h"

#define DM_EXPORTS_MAX_NAMES 512        /* names kept per list; the rest are counted as dropped */
#define DM_EXPORTS_NAME_MAX 200         /* bytes of one name or registration (cut beyond) */
#define DM_EXPORTS_MAX_INPUT (4u << 20) /* bytes of source read */

struct dm_exports {
    char **names; /* exports, as above */
    size_t n_names;
    char **routes; /* route registrations, as above */
    size_t n_routes;
    int truncated; /* more than DM_EXPORTS_MAX_NAMES in a list, or the input was cut */
};

/*
 * Reads src[0..len) (any bytes; NUL is an ordinary byte) into *out, which the caller clears
 * with dm_exports_clear(). Errors: DM_ERR_NOMEM (*out is cleared). Never fails on bad syntax:
 * what cannot be read is skipped.
 */
int dm_exports_read(struct dm_exports *out, const char *src, size_t len, struct dm_error *err);

/* 1 when name is in the list (exact match). */
int dm_exports_has_name(const struct dm_exports *e, const char *name);
int dm_exports_has_route(const struct dm_exports *e, const char *route);

/* 1 when path looks like TypeScript or JavaScript source (.ts .tsx .mts .cts .js .jsx .mjs
 * .cjs), so dm_exports_read() means something for it. */
int dm_exports_path_is_script(const char *path);

/* Frees what e owns and zeroes it; NULL is fine. */
void dm_exports_clear(struct dm_exports *e);

#endif
