/*
 * prompt: generation, repair and revise messages and prompt sets (defaults + a folder of
 * replacements) (rules in include/dream/domain/prompt.h). Owns the sets and messages it returns.
 * Everything is pure and thread-safe except dm_prompts_load_dir(), which reads files.
 */
#include "dream/domain/prompt.h"
#include "dream/core/buf.h"
#include "dream/core/text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct dm_prompts {
    char *text[DM_PROMPT_PART_COUNT];
};

static const char *const file_names[DM_PROMPT_PART_COUNT] = {
    "system-route.md", "system-component.md", "system-migration.md", "system-file.md", "stack.md",
    "rules.md",        "repair.md",
};

static const char *const defaults[DM_PROMPT_PART_COUNT] = {
    /* DM_PROMPT_SYSTEM_ROUTE */
    "You write one HTTP route module: a Hono 4 route handler for Cloudflare Workers, in strict "
    "TypeScript. Create a Hono app typed with the Workers bindings (for example "
    "`new Hono<{ Bindings: Env }>()`), register the handlers this route needs, validate every "
    "request input, answer with JSON and the right HTTP status codes (400 for bad input, 404 "
    "for missing records), and `export default` the app so it can be mounted with "
    "`app.route()`. Reach the database through the D1 binding `c.env.DB` with prepared "
    "statements and bound parameters, never by building SQL from strings.",
    /* DM_PROMPT_SYSTEM_COMPONENT */
    "You write one UI component: a React 19 function component in TypeScript (TSX). Declare "
    "and export an interface for its props, export the component by name and as the default "
    "export, keep state in hooks, handle loading, empty and error states, and use accessible, "
    "semantic HTML. No class components and no UI libraries the spec does not name.",
    /* DM_PROMPT_SYSTEM_MIGRATION */
    "You write one database migration: SQL for SQLite as run by Cloudflare D1. Use "
    "`CREATE TABLE IF NOT EXISTS` and `CREATE INDEX IF NOT EXISTS`, explicit column types, "
    "primary keys, NOT NULL, defaults and foreign keys where they belong. Never drop or "
    "truncate tables and never delete rows. Only statements SQLite accepts; comments start "
    "with `--`.",
    /* DM_PROMPT_SYSTEM_FILE */
    "You write one source file. Unless its path says otherwise it is strict TypeScript for "
    "Cloudflare Workers, with explicit types and named exports.",
    /* DM_PROMPT_STACK */
    "Target stack: TypeScript (strict) on Cloudflare Workers; HTTP routes with Hono 4; UI "
    "components with React 19; the database is SQLite on Cloudflare D1, changed through SQL "
    "migration files in `migrations/`.",
    /* DM_PROMPT_RULES */
    "Rules:\n"
    "- Output only the content of the file: no explanation before or after it and no "
    "Markdown code fences.\n"
    "- The file must be valid and self-contained: it must compile or run exactly as written.\n"
    "- Put all imports first. Import only packages of the target stack and files of this "
    "change.\n"
    "- No TODO, FIXME or placeholder code: implement everything the spec asks of this file.\n"
    "- Write only the file at the target path below; no secrets, credentials or destructive "
    "operations.",
    /* DM_PROMPT_REPAIR */
    "A validator refused the file you wrote for the path below. Fix every problem it reports "
    "and anything else that is wrong, keep what was right, and do not add features.",
};

static const char *const task_verbs[] = {
    "Implement the API route: ",
    "Implement the UI component: ",
    "Write the database migration: ",
    "Write the file: ",
};

static const char ellipsis[] = DM_TEXT_ELLIPSIS;

const char *dm_prompts_file_name(enum dm_prompt_part part)
{
    if ((unsigned)part >= DM_PROMPT_PART_COUNT) {
        return NULL;
    }
    return file_names[part];
}

const char *dm_prompts_text(const struct dm_prompts *set, enum dm_prompt_part part)
{
    if ((unsigned)part >= DM_PROMPT_PART_COUNT) {
        return "";
    }
    return set ? set->text[part] : defaults[part];
}

void dm_prompts_free(struct dm_prompts *set)
{
    if (!set) {
        return;
    }
    for (int i = 0; i < DM_PROMPT_PART_COUNT; i++) {
        free(set->text[i]);
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
        char *text = NULL;
        dm_buf_reset(&path);
        rc = dm_buf_printf(&path, "%s/%s", dir, file_names[i]);
        if (!rc) {
            rc = read_part(&text, path.data, file_names[i], err);
        }
        if (rc) {
            goto out;
        }
        set->text[i] = text ? text : strdup(defaults[i]);
        if (!set->text[i]) {
            rc = DM_ERR_NOMEM;
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

enum dm_prompt_kind dm_prompt_kind_of(const struct dm_plan_item *item)
{
    switch (item->kind) {
    case DM_PLAN_KIND_ROUTE:
        return DM_PROMPT_KIND_ROUTE;
    case DM_PLAN_KIND_COMPONENT:
        return DM_PROMPT_KIND_COMPONENT;
    case DM_PLAN_KIND_MIGRATION:
        return DM_PROMPT_KIND_MIGRATION;
    default:
        break;
    }
    if (dm_text_starts_with(item->path, "src/routes/") && dm_text_ends_with(item->path, ".ts")) {
        return DM_PROMPT_KIND_ROUTE;
    }
    if (dm_text_starts_with(item->path, "src/components/") &&
        dm_text_ends_with(item->path, ".tsx")) {
        return DM_PROMPT_KIND_COMPONENT;
    }
    if (dm_text_ends_with(item->path, ".sql")) {
        return DM_PROMPT_KIND_MIGRATION;
    }
    return DM_PROMPT_KIND_FILE;
}

/* Appends the first max_chars characters of s, "…" when cut. */
static int put_chars(struct dm_buf *b, const char *s, size_t max_chars)
{
    return dm_text_put_chars(b, s, strlen(s), max_chars);
}

/* Appends s (first max_chars characters) with every line indented by indent spaces. */
static int put_indented(struct dm_buf *b, const char *s, size_t max_chars, int indent)
{
    struct dm_buf tmp;
    int rc;

    dm_buf_init(&tmp, 0);
    rc = put_chars(&tmp, s, max_chars);
    for (const char *p = tmp.data; !rc && p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        rc = dm_buf_printf(b, "%*s", indent, "");
        if (!rc) {
            rc = dm_buf_append(b, p, n);
        }
        if (!rc) {
            rc = dm_buf_puts(b, "\n");
        }
        p = nl ? nl + 1 : p + n;
    }
    dm_buf_free(&tmp);
    return rc;
}

static int put_list(struct dm_buf *b, const char *heading, const struct dm_spec_list *l,
                    size_t max_items)
{
    int rc = 0;

    if (!l->count) {
        return 0;
    }
    rc = dm_buf_printf(b, "\n%s:\n", heading);
    for (size_t i = 0; !rc && i < l->count && i < max_items; i++) {
        rc = dm_buf_puts(b, "- ");
        if (!rc) {
            rc = put_chars(b, l->items[i].text, DM_PROMPT_ITEM_CHARS);
        }
        if (!rc) {
            rc = dm_buf_puts(b, "\n");
        }
        if (!rc && *l->items[i].context) {
            rc = put_indented(b, l->items[i].context, DM_PROMPT_CONTEXT_CHARS, 2);
        }
    }
    return rc;
}

static const struct dm_spec_item *own_item(const struct dm_spec *spec,
                                           const struct dm_plan_item *item)
{
    const struct dm_spec_list *l;

    switch (item->kind) {
    case DM_PLAN_KIND_ROUTE:
        l = &spec->api_routes;
        break;
    case DM_PLAN_KIND_COMPONENT:
        l = &spec->ui_components;
        break;
    case DM_PLAN_KIND_MIGRATION:
        l = &spec->db_changes;
        break;
    default:
        return NULL;
    }
    for (size_t i = 0; i < l->count; i++) {
        if (strcmp(l->items[i].text, item->description) == 0) {
            return &l->items[i];
        }
    }
    return NULL;
}

static int put_part(struct dm_buf *b, const char *text)
{
    int rc = 0;

    if (!*text) {
        return 0;
    }
    if (b->len) {
        rc = dm_buf_puts(b, "\n\n");
    }
    if (!rc) {
        rc = dm_buf_puts(b, text);
    }
    return rc;
}

static int build_system(struct dm_buf *b, const struct dm_prompts *set, enum dm_prompt_kind kind,
                        const char *path)
{
    static const enum dm_prompt_part system_part[] = {
        DM_PROMPT_SYSTEM_ROUTE, DM_PROMPT_SYSTEM_COMPONENT, DM_PROMPT_SYSTEM_MIGRATION,
        DM_PROMPT_SYSTEM_FILE};
    int rc = put_part(b, dm_prompts_text(set, system_part[kind]));

    if (!rc) {
        rc = put_part(b, dm_prompts_text(set, DM_PROMPT_STACK));
    }
    if (!rc) {
        rc = put_part(b, dm_prompts_text(set, DM_PROMPT_RULES));
    }
    if (!rc) {
        rc = dm_buf_printf(b, "%sTarget path: `%s`", b->len ? "\n\n" : "", path);
    }
    return rc;
}

static int build_user(struct dm_buf *b, const struct dm_spec *spec, const struct dm_plan *plan,
                      const struct dm_plan_item *item, enum dm_prompt_kind kind)
{
    const struct dm_spec_item *own = own_item(spec, item);
    int rc;

    rc = dm_buf_printf(b, "Task: %s", task_verbs[kind]);
    if (!rc) {
        /* A reloaded plan's description is not bounded by the spec's item limit. */
        rc = put_chars(b, item->description, DM_PROMPT_TASK_CONTEXT_CHARS);
    }
    if (!rc) {
        rc = dm_buf_printf(b, "\nPath: %s\n", item->path);
    }
    if (!rc && own && *own->context) {
        rc = dm_buf_puts(b, "Details:\n");
        if (!rc) {
            rc = put_indented(b, own->context, DM_PROMPT_TASK_CONTEXT_CHARS, 2);
        }
    }
    if (!rc) {
        rc = dm_buf_printf(b, "\nSpec: %s\n", spec->title);
    }
    if (!rc && *spec->overview) {
        rc = dm_buf_puts(b, "\nOverview:\n");
        if (!rc) {
            rc = put_chars(b, spec->overview, DM_PROMPT_OVERVIEW_CHARS);
        }
        if (!rc) {
            rc = dm_buf_puts(b, "\n");
        }
    }
    if (!rc) {
        rc = put_list(b, "Requirements", &spec->requirements, DM_PROMPT_REQUIREMENTS);
    }
    if (!rc) {
        rc = put_list(b, "API routes", &spec->api_routes, DM_PROMPT_LIST_ITEMS);
    }
    if (!rc) {
        rc = put_list(b, "Database changes", &spec->db_changes, DM_PROMPT_LIST_ITEMS);
    }
    if (!rc) {
        rc = put_list(b, "UI components", &spec->ui_components, DM_PROMPT_LIST_ITEMS);
    }
    if (!rc && plan->count) {
        rc = dm_buf_puts(b, "\nFiles in this change:\n");
        for (size_t i = 0; !rc && i < plan->count && i < DM_PROMPT_FILES; i++) {
            rc = dm_buf_printf(b, "- %s\n", plan->items[i].path);
        }
        if (!rc && plan->count > DM_PROMPT_FILES) {
            rc = dm_buf_printf(b, "- %s and %zu more\n", ellipsis, plan->count - DM_PROMPT_FILES);
        }
    }
    if (!rc) {
        rc = dm_buf_printf(b, "\nWrite the complete content of `%s`.\n", item->path);
    }
    return rc;
}

int dm_prompt_build(struct dm_prompt **out, const struct dm_prompts *set,
                    const struct dm_spec *spec, const struct dm_plan *plan, size_t index,
                    struct dm_error *err)
{
    struct dm_prompt *p = NULL;
    const struct dm_plan_item *item;
    struct dm_buf sys;
    struct dm_buf user;
    int rc = 0;

    *out = NULL;
    dm_buf_init(&sys, 0);
    dm_buf_init(&user, 0);
    if (index >= plan->count) {
        rc = dm_error_set(err, DM_ERR_INVALID, "prompt: plan has no item %zu", index);
        goto out;
    }
    item = &plan->items[index];
    if (item->kind == DM_PLAN_KIND_SPEC) {
        rc = dm_error_set(err, DM_ERR_INVALID, "prompt: %.300s is the spec document, not generated",
                          item->path);
        goto out;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    p->kind = dm_prompt_kind_of(item);
    rc = build_system(&sys, set, p->kind, item->path);
    if (!rc) {
        rc = build_user(&user, spec, plan, item, p->kind);
    }
    if (rc) {
        goto out;
    }
    p->system = dm_buf_detach(&sys);
    p->user = dm_buf_detach(&user);
    if (!p->system || !p->user) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    *out = p;
    p = NULL;
out:
    if (rc == DM_ERR_NOMEM) {
        dm_error_set(err, rc, "prompt: out of memory");
    }
    dm_buf_free(&sys);
    dm_buf_free(&user);
    dm_prompt_free(p);
    return rc;
}

void dm_prompt_free(struct dm_prompt *p)
{
    if (!p) {
        return;
    }
    free(p->system);
    free(p->user);
    free(p);
}

/* Refuses a file's content that cannot go into a message: over max bytes, or holding NUL. what
 * and noun name it in the message ("repair prompt", "previous content"). */
static int content_ok(const char *what, const char *noun, const char *s, size_t len, size_t max,
                      struct dm_error *err)
{
    if (len > max) {
        return dm_error_set(err, DM_ERR_LIMIT, "%s: %s is %zu bytes (limit %zu)", what, noun, len,
                            max);
    }
    if (len && memchr(s, '\0', len)) {
        return dm_error_set(err, DM_ERR_INVALID, "%s: %s holds NUL bytes", what, noun);
    }
    return 0;
}

/* The end that repair and revise messages share: heading, the file's content fenced with its
 * language's info string, the closing instruction; then b's text goes to *out. rc is the
 * result so far (nonzero: only the error is set). */
static int finish_file_message(char **out, struct dm_buf *b, int rc, const char *heading,
                               const char *path, const char *s, size_t len, const char *closing,
                               const char *what, struct dm_error *err)
{
    if (!rc) {
        rc = dm_buf_puts(b, heading);
    }
    if (!rc) {
        rc = dm_text_put_fenced(b, 0, dm_text_lang_of(path).fence_info, s ? s : "", len);
    }
    if (!rc) {
        rc = dm_buf_puts(b, closing);
    }
    if (rc) {
        return dm_error_set(err, rc, "%s: out of memory", what);
    }
    *out = dm_buf_detach(b);
    if (!*out) {
        return dm_error_set(err, DM_ERR_NOMEM, "%s: out of memory", what);
    }
    return 0;
}

int dm_prompt_repair(char **out, const struct dm_prompts *set, const char *path,
                     const char *previous, size_t previous_len, const char *error,
                     struct dm_error *err)
{
    struct dm_buf b;
    struct dm_buf e;
    int rc;

    *out = NULL;
    dm_buf_init(&b, 0);
    dm_buf_init(&e, 0);
    if (!path || !error || (!previous && previous_len)) {
        rc = dm_error_set(err, DM_ERR_INVALID, "repair prompt: path and error are required");
        goto out;
    }
    rc = content_ok("repair prompt", "previous content", previous, previous_len,
                    DM_PROMPT_REPAIR_MAX, err);
    if (rc) {
        goto out;
    }
    rc = put_part(&b, dm_prompts_text(set, DM_PROMPT_REPAIR));
    if (!rc) {
        rc = dm_buf_printf(&b, "%sPath: `%s`\n\nValidator error:\n", b.len ? "\n\n" : "", path);
    }
    if (!rc) {
        rc = put_chars(&e, error, DM_PROMPT_REPAIR_ERROR_CHARS);
    }
    if (!rc) {
        rc = dm_text_put_fenced(&b, 0, "", e.data, e.len);
    }
    rc = finish_file_message(out, &b, rc, "\n\nPrevious content:\n", path, previous, previous_len,
                             "\n\nReply with the complete corrected file only.\n", "repair prompt",
                             err);
out:
    dm_buf_free(&b);
    dm_buf_free(&e);
    return rc;
}

int dm_prompt_revise(char **out, const char *path, const char *const *comments, size_t n_comments,
                     const char *content, size_t len, struct dm_error *err)
{
    struct dm_buf b;
    int rc;

    *out = NULL;
    dm_buf_init(&b, 0);
    if (!path || (!content && len) || (!comments && n_comments)) {
        return dm_error_set(err, DM_ERR_INVALID, "revise prompt: verdict and path are required");
    }
    rc = content_ok("revise prompt", "content", content, len, DM_PROMPT_REVISE_MAX, err);
    if (rc) {
        return rc;
    }
    if (n_comments == 0) {
        return dm_error_set(err, DM_ERR_INVALID, "revise prompt: no reviewer comment on \"%.300s\"",
                            path);
    }
    rc = dm_buf_printf(&b,
                       "A reviewer commented on the file you wrote for the path below. "
                       "Address every comment, keep what was right, and do not add "
                       "features.\n\nPath: `%s`\n\nReviewer comments:\n",
                       path);
    for (size_t i = 0; i < n_comments && !rc; i++) {
        rc = dm_buf_printf(&b, "- %s\n", comments[i]);
    }
    rc = finish_file_message(out, &b, rc, "\nCurrent content:\n", path, content, len,
                             "\n\nReply with the complete revised file only.\n", "revise prompt",
                             err);
    dm_buf_free(&b);
    return rc;
}
