/*
 * prompt_set: the prompt sets (rules in include/dream/domain/prompt.h): the built-in texts per
 * stack (hono, express, generic), the stack a repository's prompts follow, and the prompts
 * folder that replaces them (top-level files for every stack, a stack's folder for that stack).
 * Owns the sets it returns. Pure and thread-safe except dm_prompts_load_dir(), which reads files
 * (any thread that may block).
 */
#include "dream/core/buf.h"
#include "dream/core/text.h"
#include "dream/domain/prompt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct dm_prompts {
    char *text[DM_PROMPT_STACK_COUNT][DM_PROMPT_PART_COUNT];
};

static const char *const file_names[DM_PROMPT_PART_COUNT] = {
    "system-route.md", "system-component.md", "system-migration.md", "system-file.md", "stack.md",
    "rules.md",        "repair.md",           "system-edit.md",      "system-test.md",
};

static const char *const stack_names[DM_PROMPT_STACK_COUNT] = {"hono", "express", "generic"};

/* The parts every stack shares. */
#define RULES_TEXT                                                                                 \
    "Rules:\n"                                                                                     \
    "- Output only the content of the file: no explanation before or after it and no "             \
    "Markdown code fences.\n"                                                                      \
    "- The file must be valid and self-contained: it must compile or run exactly as written.\n"    \
    "- Put all imports first. Import only packages of the target stack and files of this "         \
    "change.\n"                                                                                    \
    "- No TODO, FIXME or placeholder code: implement everything the spec asks of this file.\n"     \
    "- Write only the file at the target path below; no secrets, credentials or destructive "      \
    "operations."
#define REPAIR_TEXT                                                                                \
    "A validator refused the file you wrote for the path below. Fix every problem it reports "     \
    "and anything else that is wrong, keep what was right, and do not add features."
#define EDIT_TEXT_END                                                                              \
    " You are given the file's current content and reply with the whole new file. Keep every "     \
    "existing import, export, route registration and line the task does not ask to change, in "    \
    "the same order and style; add only what the task asks. Never remove, rename or reorder "      \
    "existing code unless the task says so, and import only names the contract or the existing "   \
    "files below export."

static const char *const defaults[DM_PROMPT_STACK_COUNT][DM_PROMPT_PART_COUNT] = {
    [DM_PROMPT_STACK_HONO] =
        {
            /* DM_PROMPT_SYSTEM_ROUTE */
            "You write one HTTP route module: a Hono 4 route handler for Cloudflare Workers, in "
            "strict TypeScript. Create a Hono app typed with the Workers bindings (for example "
            "`new Hono<{ Bindings: Env }>()`), register the handlers this route needs, validate "
            "every request input, answer with JSON and the right HTTP status codes (400 for bad "
            "input, 404 for missing records), and `export default` the app so it can be mounted "
            "with `app.route()`. Reach the database through the D1 binding `c.env.DB` with "
            "prepared statements and bound parameters, never by building SQL from strings.",
            /* DM_PROMPT_SYSTEM_COMPONENT */
            "You write one UI component: a React 19 function component in TypeScript (TSX). "
            "Declare and export an interface for its props, export the component by name and as "
            "the default export, keep state in hooks, handle loading, empty and error states, "
            "and use accessible, semantic HTML. No class components and no UI libraries the spec "
            "does not name.",
            /* DM_PROMPT_SYSTEM_MIGRATION */
            "You write one database migration: SQL for SQLite as run by Cloudflare D1. Use "
            "`CREATE TABLE IF NOT EXISTS` and `CREATE INDEX IF NOT EXISTS`, explicit column "
            "types, primary keys, NOT NULL, defaults and foreign keys where they belong. Never "
            "drop or truncate tables and never delete rows. Only statements SQLite accepts; "
            "comments start with `--`.",
            /* DM_PROMPT_SYSTEM_FILE */
            "You write one source file. Unless its path says otherwise it is strict TypeScript "
            "for Cloudflare Workers, with explicit types and named exports.",
            /* DM_PROMPT_STACK */
            "Target stack: TypeScript (strict) on Cloudflare Workers; HTTP routes with Hono 4; UI "
            "components with React 19; the database is SQLite on Cloudflare D1, changed through "
            "SQL migration files in `migrations/`.",
            /* DM_PROMPT_RULES */
            RULES_TEXT,
            /* DM_PROMPT_REPAIR */
            REPAIR_TEXT,
            /* DM_PROMPT_SYSTEM_EDIT */
            "You edit one existing file of a Hono application: typically its entry, which mounts "
            "each route module with `app.route('/todos', todos)` after importing its default "
            "export, or a barrel that re-exports components (`export { TodoList } from "
            "'./TodoList'`)." EDIT_TEXT_END,
            /* DM_PROMPT_SYSTEM_TEST */
            "You write one test file for a module of this change, with the repository's test "
            "runner (Vitest unless the stack below says otherwise). Exercise the Hono app "
            "through `app.request()` and check status codes and JSON bodies, including bad "
            "input; no network, no real database: stub the D1 binding.",
        },
    [DM_PROMPT_STACK_EXPRESS] =
        {
            /* DM_PROMPT_SYSTEM_ROUTE */
            "You write one HTTP route module: an Express router. Create it with "
            "`express.Router()` (TypeScript: `import { Router } from 'express'`), register the "
            "handlers this resource needs with paths relative to where it is mounted, validate "
            "every request input, answer with `res.status(...).json(...)` and the right HTTP "
            "status codes (400 for bad input, 404 for missing records), pass errors to `next`, "
            "and export the router (the module system the repository uses: `export default "
            "router` or `module.exports = router`) so the app mounts it with "
            "`app.use('/todos', router)`. Reach the database through the repository's Knex "
            "instance with the query builder and bound values, never by building SQL from "
            "strings.",
            /* DM_PROMPT_SYSTEM_COMPONENT */
            "You write one UI component: a React function component (TSX in a TypeScript "
            "repository, JSX otherwise). Export the component by name and as the default "
            "export, type its props when the repository uses TypeScript, keep state in hooks, "
            "handle loading, empty and error states, and use accessible, semantic HTML. No class "
            "components and no UI libraries the spec does not name.",
            /* DM_PROMPT_SYSTEM_MIGRATION */
            "You write one Knex migration: a module exporting `up(knex)` and `down(knex)` "
            "(async functions returning the schema builder's promise). `up` uses "
            "`knex.schema.createTable`/`alterTable` with explicit column types, primary keys, "
            "`notNullable()`, defaults and foreign keys where they belong; `down` undoes exactly "
            "what `up` did and nothing else. Never touch tables or rows this migration did not "
            "create.",
            /* DM_PROMPT_SYSTEM_FILE */
            "You write one source file of a Node.js application built on Express and Knex, in "
            "the repository's language (TypeScript or JavaScript) and module system.",
            /* DM_PROMPT_STACK */
            "Target stack: Node.js; HTTP routes with Express (one `express.Router` per resource, "
            "mounted by the app with `app.use`); UI components with React; the database through "
            "Knex: queries with the query builder, schema changes as Knex migrations in the "
            "repository's migrations folder.",
            /* DM_PROMPT_RULES */
            RULES_TEXT,
            /* DM_PROMPT_REPAIR */
            REPAIR_TEXT,
            /* DM_PROMPT_SYSTEM_EDIT */
            "You edit one existing file of an Express application: typically the app's entry, "
            "which mounts each router with `app.use('/todos', todosRouter)` after importing or "
            "requiring it, or a barrel that re-exports components." EDIT_TEXT_END,
            /* DM_PROMPT_SYSTEM_TEST */
            "You write one test file for a module of this change, with the repository's test "
            "runner (Jest unless the stack below says otherwise). Exercise the Express router "
            "through a small app (supertest when the repository has it) and check status codes "
            "and JSON bodies, including bad input; no network, no real database.",
        },
    [DM_PROMPT_STACK_GENERIC] =
        {
            /* DM_PROMPT_SYSTEM_ROUTE */
            "You write one HTTP route module in the web framework this repository already uses "
            "(named below). Follow the conventions of its existing route modules: how handlers "
            "are registered, exported and mounted. Validate every request input, answer with "
            "JSON and the right HTTP status codes (400 for bad input, 404 for missing records), "
            "and reach the database through the repository's own data layer with bound "
            "parameters, never by building SQL from strings.",
            /* DM_PROMPT_SYSTEM_COMPONENT */
            "You write one UI component in the UI library this repository already uses (named "
            "below), in its language and style. Export it the way the existing components are "
            "exported, handle loading, empty and error states, and use accessible, semantic "
            "HTML. No UI libraries the repository and the spec do not name.",
            /* DM_PROMPT_SYSTEM_MIGRATION */
            "You write one database migration in the form this repository uses (named below). "
            "Only add: create tables and indexes if they do not exist, add columns; explicit "
            "types, primary keys, not-null constraints, defaults and foreign keys where they "
            "belong. Never drop or truncate tables and never delete rows.",
            /* DM_PROMPT_SYSTEM_FILE */
            "You write one source file in the repository's language and module system, "
            "following the conventions of its existing files.",
            /* DM_PROMPT_STACK */
            "Target stack: the one this repository already uses (detected below). Use only its "
            "framework, UI library, database layer and packages.",
            /* DM_PROMPT_RULES */
            RULES_TEXT,
            /* DM_PROMPT_REPAIR */
            REPAIR_TEXT,
            /* DM_PROMPT_SYSTEM_EDIT */
            "You edit one existing file of this application: typically its entry, which "
            "registers each route module the way it registers the existing ones, or a barrel "
            "that re-exports components." EDIT_TEXT_END,
            /* DM_PROMPT_SYSTEM_TEST */
            "You write one test file for a module of this change, with the repository's test "
            "runner (named below). Check status codes and JSON bodies, including bad input; no "
            "network, no real database.",
        },
};

const char *dm_prompts_file_name(enum dm_prompt_part part)
{
    if ((unsigned)part >= DM_PROMPT_PART_COUNT) {
        return NULL;
    }
    return file_names[part];
}

const char *dm_prompt_stack_name(enum dm_prompt_stack stack)
{
    if ((unsigned)stack >= DM_PROMPT_STACK_COUNT) {
        return NULL;
    }
    return stack_names[stack];
}

enum dm_prompt_stack dm_prompt_stack_of(const struct dm_repo *repo)
{
    const struct dm_stack *st;

    if (!repo) {
        return DM_PROMPT_STACK_HONO;
    }
    st = &repo->stack;
    switch (st->http) {
    case DM_REPO_HTTP_HONO:
        return DM_PROMPT_STACK_HONO;
    case DM_REPO_HTTP_EXPRESS:
        return DM_PROMPT_STACK_EXPRESS;
    case DM_REPO_HTTP_NONE:
        break;
    default:
        return DM_PROMPT_STACK_GENERIC;
    }
    if (st->db == DM_REPO_DB_KNEX) {
        return DM_PROMPT_STACK_EXPRESS;
    }
    if ((st->ui != DM_REPO_UI_NONE && st->ui != DM_REPO_UI_REACT) ||
        (st->db != DM_REPO_DB_NONE && st->db != DM_REPO_DB_SQL)) {
        return DM_PROMPT_STACK_GENERIC;
    }
    return DM_PROMPT_STACK_HONO;
}

const char *dm_prompts_stack_text(const struct dm_prompts *set, enum dm_prompt_stack stack,
                                  enum dm_prompt_part part)
{
    if ((unsigned)part >= DM_PROMPT_PART_COUNT || (unsigned)stack >= DM_PROMPT_STACK_COUNT) {
        return "";
    }
    return set ? set->text[stack][part] : defaults[stack][part];
}

const char *dm_prompts_text(const struct dm_prompts *set, enum dm_prompt_part part)
{
    return dm_prompts_stack_text(set, DM_PROMPT_STACK_HONO, part);
}

void dm_prompts_free(struct dm_prompts *set)
{
    if (!set) {
        return;
    }
    for (int s = 0; s < DM_PROMPT_STACK_COUNT; s++) {
        for (int i = 0; i < DM_PROMPT_PART_COUNT; i++) {
            free(set->text[s][i]);
        }
    }
    free(set);
}

static void rtrim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r' ||
                     s[n - 1] == '\f')) {
        n--;
    }
    s[n] = '\0';
}

static int read_part(char **out, const char *path, const char *name, struct dm_error *err)
{
    struct dm_buf b;
    char chunk[4096];
    FILE *f;
    size_t n;
    size_t off;
    int rc = 0;

    *out = NULL;
    dm_buf_init(&b, DM_PROMPT_FILE_MAX);
    f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) {
            return 0;
        }
        return dm_error_set(err, DM_ERR_IO, "prompts: cannot open %s: %s", name, strerror(errno));
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rc = dm_buf_append(&b, chunk, n);
        if (rc == DM_ERR_LIMIT) {
            rc = dm_error_set(err, rc, "prompts: %s is larger than %d bytes", name,
                              DM_PROMPT_FILE_MAX);
        }
        if (rc) {
            goto out;
        }
    }
    if (ferror(f)) {
        rc = dm_error_set(err, DM_ERR_IO, "prompts: cannot read %s", name);
        goto out;
    }
    if (dm_text_check(b.data ? b.data : "", b.len, &off)) {
        rc = dm_error_set(err, DM_ERR_INVALID, "prompts: %s is not UTF-8 text (offset %zu)", name,
                          off);
        goto out;
    }
    *out = dm_buf_detach(&b);
    if (!*out) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    rtrim(*out);
out:
    fclose(f);
    dm_buf_free(&b);
    return rc;
}

int dm_prompts_load_dir(struct dm_prompts **out, const char *dir, struct dm_error *err)
{
    struct dm_prompts *set;
    struct stat st;
    struct dm_buf path;
    int rc = 0;

    *out = NULL;
    dm_buf_init(&path, 0);
    if (!dir || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return dm_error_set(err, DM_ERR_NOTFOUND, "prompts: %.400s is not a directory",
                            dir ? dir : "(null)");
    }
    set = calloc(1, sizeof(*set));
    if (!set) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    for (int i = 0; i < DM_PROMPT_PART_COUNT; i++) {
        char *common = NULL;
        dm_buf_reset(&path);
        rc = dm_buf_printf(&path, "%s/%s", dir, file_names[i]);
        if (!rc) {
            rc = read_part(&common, path.data, file_names[i], err);
        }
        for (int s = 0; !rc && s < DM_PROMPT_STACK_COUNT; s++) {
            char *text = NULL;
            char name[64];
            snprintf(name, sizeof(name), "%s/%s", stack_names[s], file_names[i]);
            dm_buf_reset(&path);
            rc = dm_buf_printf(&path, "%s/%s", dir, name);
            if (!rc) {
                rc = read_part(&text, path.data, name, err);
            }
            if (rc) {
                break;
            }
            set->text[s][i] = text ? text : strdup(common ? common : defaults[s][i]);
            if (!set->text[s][i]) {
                rc = DM_ERR_NOMEM;
            }
        }
        free(common);
        if (rc) {
            goto out;
        }
    }
    *out = set;
    set = NULL;
out:
    if (rc == DM_ERR_NOMEM) {
        dm_error_set(err, rc, "prompts: out of memory");
    }
    dm_buf_free(&path);
    dm_prompts_free(set);
    return rc;
}
