/*
 * repo: the base of a change as dreamd knows it (see include/dream/domain/repo.h): look-ups and
 * freeing. Pure; any thread.
 */
#include "dream/domain/repo.h"

#include "dream/core/buf.h"

#include <stdlib.h>
#include <string.h>

const struct dm_repo_text *dm_repo_find(const struct dm_repo *r, const char *path)
{
    for (size_t i = 0; r && path && i < r->n_files; i++) {
        if (strcmp(r->files[i].path, path) == 0) {
            return &r->files[i];
        }
    }
    return NULL;
}

int dm_repo_has(const struct dm_repo *r, const char *path)
{
    for (size_t i = 0; r && path && i < r->n_tree; i++) {
        if (strcmp(r->tree[i].path, path) == 0) {
            return 1;
        }
    }
    return 0;
}

static const char *name_of(const char *const *names, size_t n, unsigned v)
{
    return v < n ? names[v] : "";
}

#define NAME_OF(names, v) name_of(names, sizeof(names) / sizeof(names[0]), (unsigned)(v))

const char *dm_repo_http_name(enum dm_repo_http v)
{
    static const char *const names[] = {"", "Hono", "Express", "Fastify", "Next.js"};
    return NAME_OF(names, v);
}

const char *dm_repo_ui_name(enum dm_repo_ui v)
{
    static const char *const names[] = {"", "React", "Preact", "Vue", "Svelte"};
    return NAME_OF(names, v);
}

const char *dm_repo_db_name(enum dm_repo_db v)
{
    static const char *const names[] = {"", "SQL migrations", "Knex", "Prisma", "Drizzle"};
    return NAME_OF(names, v);
}

const char *dm_repo_test_name(enum dm_repo_test v)
{
    static const char *const names[] = {"", "Vitest", "Jest", "node:test"};
    return NAME_OF(names, v);
}

char *dm_stack_describe(const struct dm_stack *s)
{
    const char *parts[] = {dm_repo_http_name(s->http), dm_repo_ui_name(s->ui),
                           dm_repo_db_name(s->db)};
    const char *test = dm_repo_test_name(s->test);
    const char *lang = s->typescript ? "TypeScript" : "JavaScript";
    struct dm_buf b;
    int rc = 0, any = 0;

    dm_buf_init(&b, 0);
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && !rc; i++) {
        if (parts[i][0]) {
            rc = dm_buf_printf(&b, "%s%s", any ? " + " : "", parts[i]);
            any = 1;
        }
    }
    if (!rc) {
        rc = any ? dm_buf_printf(&b, " (%s%s%s)", lang, test[0] ? ", " : "", test)
                 : dm_buf_printf(&b, "%s%s%s", lang, test[0] ? ", " : "", test);
    }
    if (rc) {
        dm_buf_free(&b);
        return NULL;
    }
    return dm_buf_detach(&b);
}

void dm_stack_clear(struct dm_stack *s)
{
    if (!s) {
        return;
    }
    free(s->entry);
    free(s->barrel);
    free(s->routes_dir);
    free(s->components_dir);
    free(s->migrations_dir);
    free(s->tests_dir);
    memset(s, 0, sizeof(*s));
}

void dm_repo_free(struct dm_repo *r)
{
    if (!r) {
        return;
    }
    for (size_t i = 0; i < r->n_tree; i++) {
        free(r->tree[i].path);
    }
    free(r->tree);
    for (size_t i = 0; i < r->n_files; i++) {
        free(r->files[i].path);
        free(r->files[i].content);
    }
    free(r->files);
    dm_stack_clear(&r->stack);
    free(r);
}
