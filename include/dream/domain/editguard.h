/*
 * editguard: the check every generated edit of an existing file passes before it is accepted.
 * The model rewrites a whole file of the base (the entry that mounts the new routes, the barrel
 * that exports the new components); the guard compares its version with the base and refuses
 * one that loses what the repository relies on:
 *
 *   - every export of the base file must still be there (exports.h: export default, export
 *     const/function/class/type/interface/enum, export { a, b }, export * from, CommonJS);
 *   - every route registration of the base file must still be there (method + path literal:
 *     Hono app.get/route/use/..., Express app./router.get/use/..., Fastify .register/...);
 *   - at most max_removed_pct percent of the base's non-blank lines may be missing from the new
 *     version (lines compared trimmed, as a multiset, so moving a line is not removing it);
 *   - package.json is never edited: dependency changes need a person's approval, so an edit of
 *     a manifest (package.json, package-lock.json, yarn.lock, pnpm-lock.yaml) is refused outright.
 *
 * When the spec asks for a removal (dm_editguard_spec_allows_removal()), a removal beyond the
 * guard is not repaired away: the stage accepts the file and the gate must park the job for
 * approval with the guard's message (dm_editguard_check() run again there is cheap and pure).
 *
 * Pure: no globals; any thread. Linear in the sizes of both versions.
 */
#ifndef DREAM_EDITGUARD_H
#define DREAM_EDITGUARD_H

#include <stddef.h>

#include "dream/core/error.h"
#include "dream/domain/safety.h"
#include "dream/domain/spec.h"

#define DM_EDITGUARD_MAX_REMOVED_PCT 20 /* default share of non-blank base lines that may go */
#define DM_EDITGUARD_NAMES_LISTED 5     /* dropped names/lines named in a message */

/*
 * 1 when path may be edited at all: not a dependency manifest or lockfile (package.json,
 * package-lock.json, npm-shrinkwrap.json, yarn.lock, pnpm-lock.yaml, at any depth). On 0, err
 * says why (DM_ERR_UNSAFE). Call it before asking the model for the edit.
 */
int dm_editguard_path_allowed(const char *path, struct dm_error *err);

/*
 * Compares edited[0..edited_len) with base[0..base_len) (the file of path on the base).
 * max_removed_pct: 0 = DM_EDITGUARD_MAX_REMOVED_PCT; 100 turns the line check off.
 * Returns 0 when the edit keeps what it must, else:
 *   DM_ERR_UNSAFE   path is a manifest (dm_editguard_path_allowed()): never repaired;
 *   DM_ERR_INVALID  something was dropped: err->msg names it, e.g. "edit of src/index.ts drops
 *                   existing exports: default; drops route registrations: ROUTE /users; removes
 *                   9 of 20 existing lines (45%, limit 20%): `import x from './x'`, ..."
 *                   (export and route checks only for TS/JS paths);
 *   DM_ERR_NOMEM.
 * base or edited NULL count as empty.
 */
int dm_editguard_check(const char *path, const char *base, size_t base_len, const char *edited,
                       size_t edited_len, unsigned max_removed_pct, struct dm_error *err);

/*
 * For the gate: runs dm_editguard_check() and, when the edit drops something (DM_ERR_INVALID)
 * or edits a manifest (DM_ERR_UNSAFE), adds one DM_FINDING_DESTRUCTIVE finding to found (rule
 * "edit-removes" or "manifest-edit", severity high, line 1, the start of the guard's message as
 * the excerpt), so that the gate parks the job for approval like any destructive change.
 * Returns 0 (finding added or not needed) or DM_ERR_NOMEM. Pure.
 */
int dm_editguard_flag(struct dm_findings *found, const char *path, const char *base,
                      size_t base_len, const char *edited, size_t edited_len,
                      unsigned max_removed_pct, struct dm_error *err);

/*
 * The rule for "the spec asks for a removal": the spec's title, overview, preamble or any item
 * text or context of its four lists holds one of the words remove, removes, removed, removing,
 * removal, replace, replaces, replaced, replacing, replacement, rename, renames, renamed,
 * renaming (ASCII case-insensitive, whole words). "delete" does not count: DELETE is an HTTP
 * method every CRUD spec names. spec NULL -> 0.
 */
int dm_editguard_spec_allows_removal(const struct dm_spec *spec);

#endif
