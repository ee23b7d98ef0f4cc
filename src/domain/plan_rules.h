/*
 * plan_rules: what the files of the rules planner share (the rules are in
 * include/dream/domain/plan.h). Not for use outside src/domain/plan_*.c.
 *
 *   plan_build.c  the plan's assembly: routes, components, migrations, tests and edits, each
 *                 file's contract; dm_plan_build.
 *   plan_names.c  the conventions of the base and the names: words, endpoints and resources,
 *                 identifiers and imports, component and migration names and cases.
 *   plan_cover.c  the spec items each file covers; dm_plan_cover.
 *
 * Pure, no state: any thread.
 */
#ifndef DREAM_DOMAIN_PLAN_RULES_H
#define DREAM_DOMAIN_PLAN_RULES_H

#include "dream/core/buf.h"
#include "dream/domain/plan.h"
#include "dream/domain/repo.h"
#include "dream/domain/spec.h"

#include <stddef.h>

/* ---- the conventions a plan follows ------------------------------------------------------ */

#define NAME_MAX_BYTES 48  /* a component's or a migration's name */
#define MOUNT_MAX_BYTES 96 /* a resource's mount path */

struct conv {
    const struct dm_repo *repo;
    const char *routes_dir; /* every directory ends in '/' */
    const char *components_dir;
    const char *migrations_dir;
    const char *tests_dir; /* NULL: next to the module */
    const char *entry;     /* an existing entry file of the base, or NULL */
    const char *barrel;    /* an existing components' index of the base, or NULL */
    int ts;
    enum dm_repo_http http;
    enum dm_repo_ui ui;
    enum dm_repo_db db;
    enum dm_repo_test test;
    enum dm_repo_case ccase;
    enum dm_repo_migrations scheme;
    unsigned width;
    unsigned long long last;
};

struct endpoint {
    const char *method; /* the item's bytes */
    size_t mlen;
    const char *path;
    size_t plen;
};

struct impl {
    size_t item;
    int route; /* a route module (new, or an existing one the change adds routes to) */
};

/* ---- plan_names.c ---- */

void plan_conv_init(struct conv *c, const struct dm_repo *repo);

const char *plan_script_ext(const struct conv *c);

int plan_is_alnum(char ch);

char plan_lower(char ch);

/* The next run of ASCII letters and digits at or after *p: its start and length (0 at the end). */
size_t plan_next_word(const char **p, const char **start);

int plan_word_in(const char *w, size_t n, const char *const *list);

/* Appends up to max_words words of text that are not stop words, lower-case, joined by sep; at
 * most max bytes. Returns the length. */
size_t plan_words_name(char *out, size_t max, const char *text, int max_words, char sep);

/* "METHOD /path …" at the start of text: 1 and ep set, else 0. */
int plan_endpoint_parse(const char *text, struct endpoint *ep);

/* The resource of an endpoint: the first path segment after an optional /api (and a version
 * such as /v1). slug: the file name; mount: the path the module is mounted at ("/todos",
 * "/api/todos"). 0 when the path names no resource (e.g. "/" or "/:id"). */
int plan_endpoint_resource(const struct endpoint *ep, char *slug, char *mount, size_t mount_max);

/* An identifier from a slug: "user-profiles" → "userProfiles" + suffix. */
int plan_put_ident(struct dm_buf *b, const char *slug, const char *suffix);

/* The import path of `to` from the file `from`: "./routes/todos" (extension dropped unless
 * keep_ext). */
int plan_put_import(struct dm_buf *b, const char *from, const char *to, int keep_ext);

/* The component an item names, in PascalCase: a CamelCase word ("TodoList shows …"), else the
 * word before "component", else the first capitalised word that is not a stop word, else its
 * first two words. 0 when there is none. */
size_t plan_component_name(char *out, size_t max, const char *text);

/* "TodoList" → "todo-list"; "HTMLView" → "html-view". */
void plan_kebab(char *out, size_t max, const char *pascal);

const char *plan_component_ext(const struct conv *c);

/* The migration's name from its item: "create_todos" for "todos table with id, …". */
void plan_migration_name(char *out, size_t max, const char *text, size_t pos);

/* ---- plan_cover.c ---- */

/* Maps every requirement to the files that implement it (cover_one). */
int plan_cover_requirements(struct dm_plan *pl, const struct dm_spec *spec, const struct impl *impl,
                            size_t n_impl);

/* Adds text to the item's covers (once). */
int plan_add_cover(struct dm_plan_item *it, const char *text);

#endif
