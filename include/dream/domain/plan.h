/*
 * plan: parsed spec → work plan (files to write, branch name, PR title; the body is prbody.h), and
 * the plan's JSON form stored in the job hash:
 * {"title","branch","prTitle",["stack",]"items":[{"path","kind","description"[,"exports"]
 *  [,"usage"][,"covers":[…]]}]} (the bracketed members are optional: a plan without them, made
 * by an older version, still loads).
 *
 * Rules of dm_plan_build(), in the repository's conventions (repo->stack; with repo NULL, or
 * for what was not detected, the defaults: TypeScript, src/routes/, src/components/ in
 * PascalCase, migrations/ numbered with 4 digits from 0001, no test runner, no entry, no
 * barrel):
 *   - Items in order: the spec document `docs/dream-specs/<title-slug>.md` (kind spec); the
 *     route modules; the components; the migrations; a test per new route module; the edits of
 *     the entry and the barrel. Kind `file` is never produced here but is accepted from JSON.
 *   - Routes, by resource: an API item "METHOD /path …" (GET POST PUT PATCH DELETE HEAD
 *     OPTIONS, any case) belongs to the first segment of its path after an optional /api and
 *     /vN; the items of one resource make one module `<routes_dir><slug>.<ts|js>` (Next.js:
 *     `<routes_dir><slug>/route.<ts|js>`), kind route, description "The <mount> routes: <item
 *     texts, "; "-joined>". An item with no METHOD /path is named from its first three words
 *     (stop words left out), else `item-N`; "METHOD /" is `root`, a resource with no ASCII
 *     letter or digit is `item-N`.
 *   - Components: named by the component the item names (a CamelCase word, else the word(s)
 *     before "component", else the first capitalised word, else its first two words in
 *     PascalCase, else ItemN); items naming one component make one file
 *     `<components_dir><Name|kebab-name><.tsx|.jsx|.vue|.svelte>`, description "The <Name>
 *     component: <texts>".
 *   - Migrations: named `<verb>_<table>` (verb create, or alter/drop when the item starts so;
 *     the table is the word before "table" (past virtual/temporary), or after "table [named]",
 *     or after to/on/into/from/in; else the first two words; else item_N); items with one name
 *     make one migration, numbered after repo->stack.last_migration in the repository's scheme
 *     and width: `<migrations_dir><number>_<name>.sql` (Knex: .ts/.js; Prisma:
 *     `<dir><number>_<name>/migration.sql`), description "Migration <name>: <texts>".
 *   - A file of these whose path the base already has becomes an edit of it (kind edit).
 *   - Tests: with a test runner, `<routes_dir|tests_dir><slug>.test.<ts|js>` per new route
 *     module (Next.js: next to its route.ts), kind test.
 *   - Edits (kind edit), only of files of the base's tree: the entry (stack.entry) when there
 *     are new route modules (not for Next.js), its description says what to import and mount;
 *     the barrel (stack.barrel) when there are new components, its description says what to
 *     re-export.
 *   - The contract: exports and usage of each new module (route: "default: a Hono app with
 *     GET /todos, …" / "mounted at /todos by src/index.ts"; Express: "default: an
 *     express.Router() with …" / "app.use('/todos', ...) in <entry>"; component: "named export
 *     TodoList (React component)" / "re-exported by <barrel>"); covers: the spec items each
 *     module implements; every requirement is added to the covers of the route, component and
 *     migration files whose items share a significant word with it (three letters or more, a
 *     final 's' dropped, common words left out), else of every route module, else of every such
 *     file, else of the spec document.
 *   - plan->stack = dm_stack_describe(&repo->stack) when repo is given, else NULL.
 *   - An item whose path equals an earlier item's adds its covers to the earlier one.
 *   - branch = branch_prefix + title slug, and must pass dm_refname_valid() (core/refname.h);
 *     an empty title slug becomes `spec`.
 *   - PR title "[Dream] <title>".
 *
 * Pure: no I/O, no globals; any thread.
 */
#ifndef DREAM_PLAN_H
#define DREAM_PLAN_H

#include <stddef.h>

#include "dream/core/error.h"
#include "dream/domain/spec.h"

struct dm_repo;

#define DM_SLUG_MAX 50
#define DM_PLAN_DEFAULT_PREFIX "dream/"
#define DM_PLAN_SPEC_DIR "docs/dream-specs/"
#define DM_PLAN_MAX_ITEMS 1024      /* items a plan may hold (also from JSON) */
#define DM_PLAN_MAX_PATH 1024       /* bytes of one path (JSON) */
#define DM_PLAN_MAX_JSON (1u << 22) /* bytes of plan JSON accepted by dm_plan_from_json() */
#define DM_PLAN_MAX_COVERS 1024     /* covers of one item (JSON) */

enum dm_plan_kind {
    DM_PLAN_KIND_SPEC = 0,
    DM_PLAN_KIND_ROUTE,
    DM_PLAN_KIND_COMPONENT,
    DM_PLAN_KIND_MIGRATION,
    DM_PLAN_KIND_FILE,
    DM_PLAN_KIND_TEST, /* a test next to a new module (when the repository has a test runner) */
    DM_PLAN_KIND_EDIT, /* an existing file of the base, rewritten whole (entry, barrel, router) */
};

struct dm_plan_item {
    char *path; /* repository-relative, '/'-separated */
    enum dm_plan_kind kind;
    char *description;
    /* The contract of the whole change (NULL when none): what this file exports, e.g. "default:
     * a Hono app handling GET /todos, POST /todos and PATCH /todos/:id", and how the rest of the
     * change uses it, e.g. "mounted at /todos by src/index.ts". Every file's prompt carries the
     * contract of the others, so that imports and names agree. */
    char *exports;
    char *usage;
    /* The spec items this file implements (their texts), for the PR body's checklist. */
    char **covers;
    size_t n_covers;
};

struct dm_plan {
    char *title;    /* the spec's title */
    char *branch;   /* prefix + title slug */
    char *pr_title; /* "[Dream] <title>" */
    struct dm_plan_item *items;
    size_t count; /* >= 1; items[0] is the spec document when built by dm_plan_build() */
    char *stack;  /* the detected stack, e.g. "Hono + React + SQL migrations (TypeScript,
                     Vitest)", or NULL (a plan of an older version, or no repository read) */
};

/* "spec", "route", "component", "migration", "file", "test", "edit"; "file" for anything unknown.
 */
const char *dm_plan_kind_name(enum dm_plan_kind kind);

/* Parses a kind name; 0 and *kind set, or DM_ERR_INVALID. */
int dm_plan_kind_parse(enum dm_plan_kind *kind, const char *name);

/*
 * Slug of s (NUL-terminated): ASCII lower-case, every run of bytes outside [a-z0-9] becomes one
 * '-', '-' trimmed, cut to DM_SLUG_MAX bytes, '-' trimmed again. Non-ASCII bytes count as
 * outside. out must hold DM_SLUG_MAX + 1 bytes. Returns the slug's length (0 = empty: callers
 * apply their fallback) or DM_ERR_INVALID when outlen is too small. Never fails otherwise.
 */
int dm_slugify(char *out, size_t outlen, const char *s);

/*
 * Builds the plan of spec. branch_prefix NULL = DM_PLAN_DEFAULT_PREFIX ("" allowed). repo is
 * the base of the change (dream/domain/repo.h), or NULL when it is not known.
 * *out is the caller's (dm_plan_free()). Errors: DM_ERR_INVALID when prefix + slug is not a
 * valid branch name (message says so), DM_ERR_NOMEM. *out is NULL on error.
 */
int dm_plan_build(struct dm_plan **out, const struct dm_spec *spec, const char *branch_prefix,
                  const struct dm_repo *repo, struct dm_error *err);

/*
 * Makes every item of spec covered by a file of plan (a plan from elsewhere, e.g. the model
 * planner's): each requirement, API, UI and database item that no item's covers holds is added
 * to the covers of the files that may implement it (any file but the spec document and tests;
 * for API, UI and database items only files of that kind, `file` or `edit`) and share a
 * significant word with it (words of their covers, else of their description), else of the
 * files of its kind (a requirement: the route modules), else of every such file, else of the
 * spec document. Returns 0 or DM_ERR_NOMEM (plan may then hold a part).
 */
int dm_plan_cover(struct dm_plan *plan, const struct dm_spec *spec);

/*
 * The alternative branch when the first one belongs to someone else: plan->branch + '-' + the
 * first 8 bytes of dm_slugify(job_id) with '-' trimmed after the cut ("job" if that is empty).
 * *out is malloc'd (free()). DM_ERR_INVALID if the result is not a valid branch, DM_ERR_NOMEM.
 */
int dm_plan_branch_alt(char **out, const struct dm_plan *plan, const char *job_id,
                       struct dm_error *err);

/* The plan as compact JSON in DESIGN.md's shape; malloc'd (free()), NULL only on NOMEM. */
char *dm_plan_to_json(const struct dm_plan *plan);

/*
 * Parses plan JSON (as stored in the job hash) into *out (dm_plan_free()). Checks the shape:
 * title, branch (valid ref), prTitle strings; items a non-empty array of at most
 * DM_PLAN_MAX_ITEMS objects with a known kind, a string description and a relative path (not
 * empty, no leading '/', no "." or ".." or empty component, no backslash or control bytes, at
 * most DM_PLAN_MAX_PATH bytes), no path twice. Unknown members are ignored.
 * DM_ERR_INVALID with the offending member named, DM_ERR_LIMIT, DM_ERR_NOMEM.
 */
int dm_plan_from_json(struct dm_plan **out, const char *json, struct dm_error *err);

/* Frees a plan; NULL is fine. */
void dm_plan_free(struct dm_plan *plan);

#endif
