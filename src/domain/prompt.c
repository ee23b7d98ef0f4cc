/*
 * prompt: generation, repair and revise messages (rules in include/dream/domain/prompt.h): the
 * system message from a prompt set (prompt_set.c), the user message from the spec, the plan, the
 * file's contract and the base's existing exports, and the repair and revise messages. Owns the
 * messages it returns. Pure and thread-safe: any thread.
 */
#include "dream/domain/prompt.h"
#include "dream/core/buf.h"
#include "dream/core/text.h"
#include "dream/domain/editguard.h"
#include "dream/domain/exports.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const task_verbs[] = {
    "Implement the API route: ", "Implement the UI component: ", "Write the database migration: ",
    "Write the file: ",          "Edit the existing file: ",     "Write the tests: ",
};

static const char ellipsis[] = DM_TEXT_ELLIPSIS;

enum dm_prompt_kind dm_prompt_kind_of(const struct dm_plan_item *item)
{
    switch (item->kind) {
    case DM_PLAN_KIND_ROUTE:
        return DM_PROMPT_KIND_ROUTE;
    case DM_PLAN_KIND_COMPONENT:
        return DM_PROMPT_KIND_COMPONENT;
    case DM_PLAN_KIND_MIGRATION:
        return DM_PROMPT_KIND_MIGRATION;
    case DM_PLAN_KIND_EDIT:
        return DM_PROMPT_KIND_EDIT;
    case DM_PLAN_KIND_TEST:
        return DM_PROMPT_KIND_TEST;
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

/* The spec item with this text in l, or NULL. */
static const struct dm_spec_item *item_in(const struct dm_spec_list *l, const char *text)
{
    for (size_t i = 0; text && i < l->count; i++) {
        if (strcmp(l->items[i].text, text) == 0) {
            return &l->items[i];
        }
    }
    return NULL;
}

/* The spec item with this text in any list that makes files, or NULL. */
static const struct dm_spec_item *spec_item(const struct dm_spec *spec, const char *text)
{
    const struct dm_spec_item *it = item_in(&spec->api_routes, text);
    if (!it) {
        it = item_in(&spec->ui_components, text);
    }
    if (!it) {
        it = item_in(&spec->db_changes, text);
    }
    return it;
}

/* "Details:" and the nested context of the spec items the file implements: those it covers
 * (the plan's contract), else the one its description names (a plan of an older version). A
 * file that implements several items (a route module's endpoints) names the item above each
 * context, as the lists do: otherwise the model cannot tell which endpoint a detail is about. */
static int put_details(struct dm_buf *b, const struct dm_spec *spec,
                       const struct dm_plan_item *item)
{
    const struct dm_spec_item *its[32];
    size_t n = 0;
    size_t implemented = 0;
    int rc = 0;

    for (size_t i = 0; i < item->n_covers && n < sizeof(its) / sizeof(its[0]); i++) {
        const struct dm_spec_item *it = spec_item(spec, item->covers[i]);
        if (it) {
            implemented++;
        }
        if (it && *it->context) {
            its[n++] = it;
        }
    }
    if (!item->n_covers) {
        const struct dm_spec_item *it = spec_item(spec, item->description);
        if (it && *it->context) {
            its[n++] = it;
        }
    }
    if (n) {
        rc = dm_buf_puts(b, "Details:\n");
    }
    for (size_t i = 0; i < n && !rc; i++) {
        if (implemented > 1) {
            rc = dm_buf_puts(b, "- ");
            if (!rc) {
                rc = put_chars(b, its[i]->text, DM_PROMPT_ITEM_CHARS);
            }
            if (!rc) {
                rc = dm_buf_puts(b, "\n");
            }
        }
        if (!rc) {
            rc = put_indented(b, its[i]->context, DM_PROMPT_TASK_CONTEXT_CHARS / n, 2);
        }
    }
    return rc;
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

/* "This repository: <stack>; entry <x>; routes in <dir>; ..." from what the base showed. */
static int put_detected(struct dm_buf *b, const struct dm_repo *repo)
{
    const struct dm_stack *st = &repo->stack;
    char *desc = dm_stack_describe(st);
    int rc;

    if (!desc) {
        return DM_ERR_NOMEM;
    }
    rc = dm_buf_printf(b, "%sThis repository: %s", b->len ? "\n\n" : "", desc);
    free(desc);
    if (!rc && st->entry) {
        rc = dm_buf_printf(b, "; app entry `%s`", st->entry);
    }
    if (!rc && st->routes_dir) {
        rc = dm_buf_printf(b, "; routes in `%s`", st->routes_dir);
    }
    if (!rc && st->components_dir) {
        rc = dm_buf_printf(b, "; components in `%s`", st->components_dir);
    }
    if (!rc && st->barrel) {
        rc = dm_buf_printf(b, " (re-exported by `%s`)", st->barrel);
    }
    if (!rc && st->migrations_dir) {
        rc = dm_buf_printf(b, "; migrations in `%s`", st->migrations_dir);
    }
    if (!rc && st->tests_dir) {
        rc = dm_buf_printf(b, "; tests in `%s`", st->tests_dir);
    }
    if (!rc) {
        rc = dm_buf_puts(b, ".");
    }
    return rc;
}

static int build_system(struct dm_buf *b, const struct dm_prompts *set, enum dm_prompt_kind kind,
                        const char *path, const struct dm_repo *repo)
{
    static const enum dm_prompt_part system_part[] = {
        DM_PROMPT_SYSTEM_ROUTE, DM_PROMPT_SYSTEM_COMPONENT, DM_PROMPT_SYSTEM_MIGRATION,
        DM_PROMPT_SYSTEM_FILE,  DM_PROMPT_SYSTEM_EDIT,      DM_PROMPT_SYSTEM_TEST};
    enum dm_prompt_stack stack = dm_prompt_stack_of(repo);
    int rc = put_part(b, dm_prompts_stack_text(set, stack, system_part[kind]));

    if (!rc) {
        rc = put_part(b, dm_prompts_stack_text(set, stack, DM_PROMPT_STACK));
    }
    if (!rc && repo) {
        rc = put_detected(b, repo);
    }
    if (!rc) {
        rc = put_part(b, dm_prompts_stack_text(set, stack, DM_PROMPT_RULES));
    }
    if (!rc) {
        rc = dm_buf_printf(b, "%sTarget path: `%s`", b->len ? "\n\n" : "", path);
    }
    return rc;
}

/* The contract: every plan item with exports or usage. */
static int put_contract(struct dm_buf *b, const struct dm_plan *plan,
                        const struct dm_plan_item *self)
{
    size_t listed = 0;
    int rc = 0;

    for (size_t i = 0; !rc && i < plan->count; i++) {
        const struct dm_plan_item *it = &plan->items[i];
        if (!it->exports && !it->usage) {
            continue;
        }
        if (listed == DM_PROMPT_CONTRACT_ITEMS) {
            rc = dm_buf_printf(b, "- %s and more\n", ellipsis);
            break;
        }
        if (!listed) {
            rc = dm_buf_puts(b, "\nContract of this change (names and paths every file must "
                                "agree on):\n");
        }
        listed++;
        if (!rc) {
            rc = dm_buf_printf(b, "- `%s` (%s%s)", it->path, dm_plan_kind_name(it->kind),
                               it == self ? ", this file" : "");
        }
        if (!rc && it->exports) {
            rc = dm_buf_puts(b, ": exports ");
            if (!rc) {
                rc = put_chars(b, it->exports, DM_PROMPT_ITEM_CHARS);
            }
        }
        if (!rc && it->usage) {
            rc = dm_buf_puts(b, it->exports ? "; " : ": ");
            if (!rc) {
                rc = put_chars(b, it->usage, DM_PROMPT_ITEM_CHARS);
            }
        }
        if (!rc) {
            rc = dm_buf_puts(b, "\n");
        }
    }
    return rc;
}

/* 1 when path's folder is dir's folder ("src/a.ts" and "src/routes/x.ts" differ). */
static int same_folder(const char *path, const char *other)
{
    const char *a = strrchr(path, '/');
    const char *b = strrchr(other, '/');
    size_t na = a ? (size_t)(a - path) : 0;
    size_t nb = b ? (size_t)(b - other) : 0;
    return na == nb && memcmp(path, other, na) == 0;
}

static int worth_listing(const struct dm_repo *repo, const struct dm_plan *plan,
                         const struct dm_repo_text *t)
{
    if (repo->stack.entry &&
        (strcmp(t->path, repo->stack.entry) == 0 || same_folder(t->path, repo->stack.entry))) {
        return 1;
    }
    if (repo->stack.barrel && strcmp(t->path, repo->stack.barrel) == 0) {
        return 1;
    }
    for (size_t i = 0; i < plan->count; i++) {
        if (plan->items[i].kind != DM_PLAN_KIND_SPEC && same_folder(t->path, plan->items[i].path)) {
            return 1;
        }
    }
    return 0;
}

/* One existing file's line "- `<path>`: exports a, b; routes GET /x\n" into line ("" when it
 * has neither). */
static int existing_line(struct dm_buf *line, const struct dm_repo_text *t)
{
    struct dm_exports e;
    struct dm_error err;
    int rc = dm_exports_read(&e, t->content, t->len, &err);

    if (rc) {
        return rc;
    }
    if (e.n_names || e.n_routes) {
        int cut = 0;
        rc = dm_buf_printf(line, "- `%s`:", t->path);
        for (size_t i = 0; !rc && !cut && i < e.n_names; i++) {
            rc = dm_buf_printf(line, "%s%s", i ? ", " : " exports ", e.names[i]);
            cut = line->len > DM_PROMPT_EXISTING_LINE && i + 1 < e.n_names;
        }
        for (size_t i = 0; !rc && !cut && i < e.n_routes; i++) {
            rc = dm_buf_printf(line, "%s%s", i ? ", " : (e.n_names ? "; routes " : " routes "),
                               e.routes[i]);
            cut = line->len > DM_PROMPT_EXISTING_LINE && i + 1 < e.n_routes;
        }
        if (!rc && cut) {
            rc = dm_buf_printf(line, ", %s", ellipsis);
        }
        if (!rc) {
            rc = dm_buf_puts(line, "\n");
        }
    }
    dm_exports_clear(&e);
    return rc;
}

/* The existing files' exports: the entry, the barrel, then the read files in the folders the
 * change touches (see prompt.h). */
static int put_existing(struct dm_buf *b, const struct dm_repo *repo, const struct dm_plan *plan,
                        const struct dm_plan_item *self)
{
    const struct dm_repo_text *order[DM_PROMPT_EXISTING_FILES];
    size_t n = 0;
    size_t bytes = 0;
    struct dm_buf line;
    int rc = 0;
    int any = 0;
    int more = 0;
    const char *firsts[2] = {repo->stack.entry, repo->stack.barrel};

    for (int k = 0; k < 2; k++) {
        const struct dm_repo_text *t = firsts[k] ? dm_repo_find(repo, firsts[k]) : NULL;
        if (t && n < DM_PROMPT_EXISTING_FILES && (n == 0 || order[0] != t)) {
            order[n++] = t;
        }
    }
    for (size_t i = 0; i < repo->n_files; i++) {
        const struct dm_repo_text *t = &repo->files[i];
        int dup = 0;
        for (size_t k = 0; k < n; k++) {
            dup |= order[k] == t;
        }
        if (!dup && worth_listing(repo, plan, t) && strcmp(t->path, self->path) != 0 &&
            dm_exports_path_is_script(t->path)) {
            if (n == DM_PROMPT_EXISTING_FILES) {
                more = 1;
                break;
            }
            order[n++] = t;
        }
    }
    dm_buf_init(&line, 0);
    for (size_t i = 0; !rc && i < n; i++) {
        const struct dm_repo_text *t = order[i];
        if (strcmp(t->path, self->path) == 0 || !dm_exports_path_is_script(t->path) ||
            !t->content) {
            continue;
        }
        dm_buf_reset(&line);
        rc = existing_line(&line, t);
        if (rc || !line.len) {
            continue;
        }
        if (bytes + line.len > DM_PROMPT_EXISTING_BYTES) {
            more = 1;
            break;
        }
        if (!any) {
            rc = dm_buf_puts(b, "\nExisting files of the repository (their real exports; import "
                                "only these):\n");
            any = 1;
        }
        if (!rc) {
            rc = dm_buf_append(b, line.data, line.len);
            bytes += line.len;
        }
    }
    if (!rc && any && more) {
        rc = dm_buf_printf(b, "- %s and more\n", ellipsis);
    }
    dm_buf_free(&line);
    return rc;
}

static int build_user(struct dm_buf *b, const struct dm_spec *spec, const struct dm_plan *plan,
                      const struct dm_plan_item *item, enum dm_prompt_kind kind,
                      const struct dm_repo *repo, const struct dm_repo_text *base)
{
    int rc;

    rc = dm_buf_printf(b, "Task: %s", task_verbs[kind]);
    if (!rc) {
        /* A reloaded plan's description is not bounded by the spec's item limit. */
        rc = put_chars(b, item->description, DM_PROMPT_TASK_CONTEXT_CHARS);
    }
    if (!rc) {
        rc = dm_buf_printf(b, "\nPath: %s\n", item->path);
    }
    if (!rc) {
        rc = put_details(b, spec, item);
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
        rc = put_contract(b, plan, item);
    }
    if (!rc && repo) {
        rc = put_existing(b, repo, plan, item);
    }
    if (!rc && base) {
        rc = dm_buf_printf(b, "\nCurrent content of `%s` on the base branch:\n", item->path);
        if (!rc) {
            rc = dm_text_put_fenced(b, 0, dm_text_lang_of(item->path).fence_info, base->content,
                                    base->len);
        }
        if (!rc) {
            rc = dm_buf_printf(b,
                               "\n\nReply with the whole new content of `%s`: keep every "
                               "existing import, export, route registration and line above that "
                               "the task does not ask to change, and add what the task asks.\n",
                               item->path);
        }
    } else if (!rc) {
        rc = dm_buf_printf(b, "\nWrite the complete content of `%s`.\n", item->path);
    }
    return rc;
}

/* The base's version of an edit's file, or an error: an edit is never generated blind. */
static int edit_base(const struct dm_repo_text **out, const struct dm_repo *repo, const char *path,
                     struct dm_error *err)
{
    const struct dm_repo_text *t;

    *out = NULL;
    if (!dm_editguard_path_allowed(path, err)) {
        return DM_ERR_UNSAFE;
    }
    if (!repo) {
        return dm_error_set(err, DM_ERR_INVALID, "cannot edit %.300s: the base was not read", path);
    }
    t = dm_repo_find(repo, path);
    if (!t) {
        return dm_error_set(err, DM_ERR_INVALID,
                            dm_repo_has(repo, path)
                                ? "cannot edit %.300s: it was not read from the base (over the "
                                  "context limits), and an edit is never written blind"
                                : "cannot edit %.300s: it does not exist on the base",
                            path);
    }
    if (t->cut) {
        return dm_error_set(err, DM_ERR_INVALID,
                            "cannot edit %.300s: only the first %zu bytes were read from the "
                            "base (the file is larger than the context limit), and an edit is "
                            "never written blind",
                            path, t->len);
    }
    if (t->len > DM_PROMPT_EDIT_MAX || memchr(t->content, '\0', t->len)) {
        return dm_error_set(err, DM_ERR_LIMIT, "cannot edit %.300s: %zu bytes (limit %d)", path,
                            t->len, DM_PROMPT_EDIT_MAX);
    }
    *out = t;
    return 0;
}

int dm_prompt_build(struct dm_prompt **out, const struct dm_prompts *set,
                    const struct dm_spec *spec, const struct dm_plan *plan, size_t index,
                    struct dm_error *err)
{
    return dm_prompt_build_repo(out, set, spec, plan, index, NULL, err);
}

int dm_prompt_build_repo(struct dm_prompt **out, const struct dm_prompts *set,
                         const struct dm_spec *spec, const struct dm_plan *plan, size_t index,
                         const struct dm_repo *repo, struct dm_error *err)
{
    struct dm_prompt *p = NULL;
    const struct dm_repo_text *base = NULL;
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
    if (item->kind == DM_PLAN_KIND_EDIT) {
        rc = edit_base(&base, repo, item->path, err);
        if (rc) {
            goto out;
        }
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    p->kind = dm_prompt_kind_of(item);
    rc = build_system(&sys, set, p->kind, item->path, repo);
    if (!rc) {
        rc = build_user(&user, spec, plan, item, p->kind, repo, base);
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
    return dm_prompt_repair_edit(out, set, path, previous, previous_len, NULL, 0, error, err);
}

int dm_prompt_repair_edit(char **out, const struct dm_prompts *set, const char *path,
                          const char *previous, size_t previous_len, const char *base,
                          size_t base_len, const char *error, struct dm_error *err)
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
    if (!rc && base) {
        rc = content_ok("repair prompt", "base content", base, base_len, DM_PROMPT_EDIT_MAX, err);
    }
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
    if (!rc && base) {
        rc = dm_buf_puts(&b, "\n\nThe file on the base branch (keep all of it, add what the task "
                             "asks):\n");
        if (!rc) {
            rc = dm_text_put_fenced(&b, 0, dm_text_lang_of(path).fence_info, base, base_len);
        }
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
