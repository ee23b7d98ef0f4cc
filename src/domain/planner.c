/*
 * planner: the LLM planner's request, response_format and reply parser (contract in
 * include/dream/domain/planner.h). Owns the prompts, plans and notes it returns; no state of its
 * own; any thread.
 */
#include "dream/domain/planner.h"
#include "dream/core/buf.h"
#include "dream/core/text.h"
#include "dream/domain/reply.h"
#include "dream/domain/repo.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ELLIPSIS DM_TEXT_ELLIPSIS
#define NOTE_PATH_MAX 200

static const char response_format[] =
    "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"plan\",\"strict\":true,\"schema\":{"
    "\"type\":\"object\",\"properties\":{"
    "\"files\":{\"type\":\"array\",\"description\":\"the files of the change, in the order "
    "they should be written\",\"items\":{\"type\":\"object\",\"properties\":{"
    "\"path\":{\"type\":\"string\",\"description\":\"path relative to the repository root\"},"
    "\"kind\":{\"type\":\"string\",\"enum\":[\"route\",\"component\",\"migration\",\"file\","
    "\"test\",\"edit\"],"
    "\"description\":\"route: API route module; component: UI component; migration: database "
    "migration; test: a test of a new module; edit: an existing file of the repository, "
    "rewritten whole; file: anything else\"},"
    "\"description\":{\"type\":\"string\",\"description\":\"what the file must contain, in one "
    "to three sentences\"},"
    "\"exports\":{\"type\":\"string\",\"description\":\"what the file exports, e.g. default: a "
    "Hono app with GET /todos; empty when nothing\"},"
    "\"usage\":{\"type\":\"string\",\"description\":\"how the rest of the change uses it, e.g. "
    "mounted at /todos by src/index.ts; empty when nothing\"},"
    "\"covers\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"description\":\"the "
    "spec items this file implements, copied exactly\"}},"
    "\"required\":[\"path\",\"kind\",\"description\",\"exports\",\"usage\",\"covers\"],"
    "\"additionalProperties\":false}}},"
    "\"required\":[\"files\"],\"additionalProperties\":false}}}";

const char *dm_planner_response_format(void)
{
    return response_format;
}

void dm_planner_prompt_free(struct dm_planner_prompt *p)
{
    if (!p) {
        return;
    }
    free(p->system);
    free(p->user);
    free(p);
}

static size_t max_files_of(const struct dm_planner_opts *o)
{
    size_t n =
        o && o->policy && o->policy->max_files ? o->policy->max_files : DM_SAFETY_DEFAULT_MAX_FILES;
    return n;
}

/* Files the model may propose: the file limit less the spec document, at least one. */
static size_t model_files_max(const struct dm_planner_opts *o)
{
    size_t n = max_files_of(o);
    return n > 1 ? n - 1 : 1;
}

static int put_roots(struct dm_buf *b, const struct dm_planner_opts *o)
{
    int rc = 0;

    if (o && o->policy && o->policy->roots && o->policy->n_roots) {
        for (size_t i = 0; i < o->policy->n_roots && !rc; i++) {
            rc = dm_buf_printf(b, "%s%s", i ? ", " : "", o->policy->roots[i]);
        }
    } else {
        /* The default list, comma-separated, shown with spaces. */
        for (const char *p = DM_SAFETY_DEFAULT_ROOTS; *p && !rc; p++) {
            rc = *p == ',' ? dm_buf_puts(b, ", ") : dm_buf_append(b, p, 1);
        }
    }
    if (!rc && o && o->allow_workflows) {
        rc = dm_buf_puts(b, ", .github/workflows/");
    }
    return rc;
}

static int put_system(struct dm_buf *b, const struct dm_planner_opts *o)
{
    int rc = dm_buf_puts(
        b, "You plan the files of one pull request that implements the feature spec below in an "
           "existing repository. Another model then writes each file from your description.\n"
           "\n"
           "Kinds, and where such files usually go (the repository's own conventions, given "
           "below when known, come first):\n"
           "- route: one API route module per resource (the first path segment after an "
           "optional /api), e.g. src/routes/todos.ts for GET /todos, POST /todos and PATCH "
           "/todos/:id (Hono 4 on Cloudflare Workers by default)\n"
           "- component: a UI component named by the component the spec names, e.g. "
           "src/components/TodoList.tsx (React 19 by default)\n"
           "- migration: a database migration numbered after the highest existing one, e.g. "
           "migrations/0002_create_todos.sql; its path must end in .sql (Knex: .js or .ts)\n"
           "- test: a test of a new module, next to it (when the repository has a test runner)\n"
           "- edit: an existing file of the repository (listed below) rewritten whole, e.g. the "
           "app's entry to mount a new route module, or the components' index to export a new "
           "component; never a file that does not exist\n"
           "- file: any other file the change needs (shared types, helpers)\n"
           "\n"
           "Rules:\n"
           "- Paths are relative to the repository root, '/'-separated, with no '.' or '..' "
           "segments, and only under: ");
    if (!rc) {
        rc = put_roots(b, o);
    }
    if (!rc) {
        rc = dm_buf_printf(
            b,
            "\n- At most %zu files, each path once.\n"
            "- Do not propose the spec document (" DM_PLAN_SPEC_DIR "…): it is added "
            "automatically.\n"
            "- Follow the layout and naming of the repository's existing files where there are "
            "any; an existing file is changed only by an edit. Names are short and derived from "
            "the resource or the component, never from a sentence.\n"
            "- Propose only files the spec needs. Each description says what the file must "
            "contain, in one to three sentences; exports and usage give the contract the other "
            "files rely on; covers lists the spec items (copied exactly) the file implements.\n"
            "\n"
            "Answer with one JSON object and nothing else: "
            "{\"files\":[{\"path\":\"…\",\"kind\":\"route|component|migration|test|edit|file\","
            "\"description\":\"…\",\"exports\":\"…\",\"usage\":\"…\",\"covers\":[\"…\"]}]}.",
            model_files_max(o));
    }
    return rc;
}

static int put_list(struct dm_buf *b, const char *heading, const struct dm_spec_list *l)
{
    size_t shown = l->count < DM_PLANNER_ITEMS ? l->count : DM_PLANNER_ITEMS;
    int rc = 0;

    if (l->count == 0) {
        return 0;
    }
    rc = dm_buf_printf(b, "\n%s:\n", heading);
    for (size_t i = 0; i < shown && !rc; i++) {
        const char *ctx = l->items[i].context ? l->items[i].context : "";
        size_t clen = dm_text_prefix_chars(ctx, strlen(ctx), DM_PLANNER_ITEM_CHARS);

        rc = dm_buf_puts(b, "- ");
        if (!rc) {
            rc = dm_text_put_chars(b, l->items[i].text, strlen(l->items[i].text),
                                   DM_PLANNER_ITEM_CHARS);
        }
        if (!rc) {
            rc = dm_buf_puts(b, "\n");
        }
        /* The item's context as an outline, two spaces deeper, cut by characters. */
        for (size_t p = 0; p < clen && !rc;) {
            const char *nl = memchr(ctx + p, '\n', clen - p);
            size_t n = nl ? (size_t)(nl - (ctx + p)) : clen - p;
            rc = dm_buf_puts(b, "  ");
            if (!rc) {
                rc = dm_buf_append(b, ctx + p, n);
            }
            if (!rc && !nl && clen < strlen(ctx)) {
                rc = dm_buf_puts(b, ELLIPSIS);
            }
            if (!rc) {
                rc = dm_buf_puts(b, "\n");
            }
            p += n + 1;
        }
    }
    if (!rc && l->count > shown) {
        rc = dm_buf_printf(b, "- " ELLIPSIS " and %zu more\n", l->count - shown);
    }
    return rc;
}

/* 1 when a tree path can go into the prompt as one line. */
static int tree_path_ok(const char *p)
{
    size_t len;

    if (!p || !*p) {
        return 0;
    }
    len = strlen(p);
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)p[i] < 0x20) {
            return 0;
        }
    }
    return dm_text_check(p, len, NULL) == 0;
}

/* One convention line when the value is set and fits on a line. */
static int put_convention(struct dm_buf *b, const char *what, const char *value, const char *note)
{
    if (!value || !tree_path_ok(value)) {
        return 0;
    }
    return dm_buf_printf(b, "- %s: %s%s\n", what, value, note);
}

/* The detected stack, the repository's conventions and the rules' plan in them. */
static int put_repo(struct dm_buf *b, const struct dm_spec *spec, const struct dm_planner_opts *o)
{
    const struct dm_repo *r = o->repo;
    const struct dm_stack *st = &r->stack;
    char *desc = dm_stack_describe(st);
    struct dm_plan *plan = NULL;
    struct dm_error e;
    char note[96];
    int rc;

    if (!desc) {
        return DM_ERR_NOMEM;
    }
    rc = dm_buf_printf(b, "\nDetected stack: %s\n\nConventions of this repository:\n", desc);
    free(desc);
    if (!rc) {
        rc = put_convention(b, "routes", st->routes_dir, "");
    }
    if (!rc) {
        rc = put_convention(b, "components", st->components_dir,
                            st->component_case == DM_REPO_CASE_KEBAB ? " (kebab-case file names)"
                                                                     : " (PascalCase file names)");
    }
    if (!rc) {
        if (st->migration_scheme == DM_REPO_MIG_TIMESTAMP) {
            snprintf(note, sizeof(note), " (timestamped; the latest is %llu)", st->last_migration);
        } else {
            snprintf(note, sizeof(note), " (numbered, %u digits; the highest is %llu)",
                     st->migration_width ? st->migration_width : 4, st->last_migration);
        }
        rc = put_convention(b, "migrations", st->migrations_dir, note);
    }
    if (!rc) {
        rc = st->tests_dir ? put_convention(b, "tests", st->tests_dir, "")
             : st->test    ? dm_buf_puts(b, "- tests: next to the module they test\n")
                           : 0;
    }
    if (!rc) {
        rc = put_convention(b, "entry (mounts the route modules)", st->entry, "");
    }
    if (!rc) {
        rc = put_convention(b, "components' index (re-exports them)", st->barrel, "");
    }
    if (rc || dm_plan_build(&plan, spec, o->branch_prefix, r, &e) != 0) {
        return rc; /* no rules plan to show: the model plans on its own */
    }
    rc = dm_buf_puts(b, "\nA plan in these conventions (follow it unless the spec needs "
                        "otherwise):\n");
    for (size_t i = 1; i < plan->count && i <= DM_PLANNER_RULES_ITEMS && !rc; i++) {
        const struct dm_plan_item *it = &plan->items[i];
        rc = dm_buf_printf(b, "- %s %s", dm_plan_kind_name(it->kind), it->path);
        if (!rc && it->exports) {
            rc = dm_buf_puts(b, ": exports ");
            if (!rc) {
                rc = dm_text_put_chars(b, it->exports, strlen(it->exports), DM_PLANNER_ITEM_CHARS);
            }
        }
        if (!rc && it->usage) {
            rc = dm_buf_puts(b, "; ");
            if (!rc) {
                rc = dm_text_put_chars(b, it->usage, strlen(it->usage), DM_PLANNER_ITEM_CHARS);
            }
        }
        if (!rc) {
            rc = dm_buf_puts(b, "\n");
        }
    }
    if (!rc && plan->count > DM_PLANNER_RULES_ITEMS + 1) {
        rc = dm_buf_printf(b, "- " ELLIPSIS " and %zu more\n",
                           plan->count - 1 - DM_PLANNER_RULES_ITEMS);
    }
    dm_plan_free(plan);
    return rc;
}

int dm_planner_prompt_build(struct dm_planner_prompt **out, const struct dm_spec *spec,
                            const char *const *tree, size_t n_tree,
                            const struct dm_planner_opts *opts, struct dm_error *err)
{
    struct dm_planner_prompt *p = NULL;
    const char **repo_tree = NULL;
    struct dm_buf s;
    struct dm_buf u;
    size_t tree_bytes = 0;
    size_t capped = 0;
    int rc = 0;

    *out = NULL;
    dm_buf_init(&s, 0);
    dm_buf_init(&u, 0);
    if (!spec || (!tree && n_tree)) {
        return dm_error_set(err, DM_ERR_INVALID, "planner prompt: spec is required");
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    if (!tree && opts && opts->repo && opts->repo->n_tree) {
        /* The base as read for the job: its tree. */
        repo_tree = calloc(opts->repo->n_tree, sizeof(*repo_tree));
        if (!repo_tree) {
            rc = DM_ERR_NOMEM;
            goto out;
        }
        for (size_t i = 0; i < opts->repo->n_tree; i++) {
            repo_tree[i] = opts->repo->tree[i].path;
        }
        tree = repo_tree;
        n_tree = opts->repo->n_tree;
    }
    rc = put_system(&s, opts);
    if (!rc) {
        rc = dm_buf_printf(&u, "Spec: %s\n", spec->title);
    }
    if (!rc && spec->overview && *spec->overview) {
        rc = dm_buf_puts(&u, "\nOverview:\n");
        if (!rc) {
            rc = dm_text_put_chars(&u, spec->overview, strlen(spec->overview),
                                   DM_PLANNER_OVERVIEW_CHARS);
        }
        if (!rc) {
            rc = dm_buf_puts(&u, "\n");
        }
    }
    if (!rc) {
        rc = put_list(&u, "Requirements", &spec->requirements);
    }
    if (!rc) {
        rc = put_list(&u, "API routes", &spec->api_routes);
    }
    if (!rc) {
        rc = put_list(&u, "Database changes", &spec->db_changes);
    }
    if (!rc) {
        rc = put_list(&u, "UI components", &spec->ui_components);
    }
    if (!rc && n_tree == 0) {
        rc = dm_buf_puts(&u, "\nRepository files on the base branch: none (empty repository).\n");
    } else if (!rc) {
        rc = dm_buf_printf(&u, "\nRepository files on the base branch (%zu):\n", n_tree);
    }
    for (size_t i = 0; i < n_tree && !rc; i++) {
        size_t len;
        if (!tree_path_ok(tree[i])) {
            p->tree_skipped++;
            continue;
        }
        len = strlen(tree[i]) + 1;
        if (p->tree_listed >= DM_PLANNER_TREE_PATHS || tree_bytes + len > DM_PLANNER_TREE_BYTES) {
            p->tree_skipped++;
            capped++;
            continue;
        }
        tree_bytes += len;
        p->tree_listed++;
        rc = dm_buf_printf(&u, "%s\n", tree[i]);
    }
    if (!rc && capped) {
        rc = dm_buf_printf(&u, ELLIPSIS " and %zu more\n", capped);
    }
    if (!rc && opts && opts->repo) {
        rc = put_repo(&u, spec, opts);
    }
    if (!rc) {
        rc = dm_buf_puts(&u, "\nPropose the files of this change as JSON.\n");
    }
    if (!rc) {
        p->system = dm_buf_detach(&s);
        p->user = dm_buf_detach(&u);
        if (!p->system || !p->user) {
            rc = DM_ERR_NOMEM;
        }
    }
out:
    if (rc) {
        dm_error_set(err, rc, "planner prompt: out of memory");
        dm_planner_prompt_free(p);
    } else {
        *out = p;
    }
    free(repo_tree);
    dm_buf_free(&s);
    dm_buf_free(&u);
    return rc;
}

/* ---- the reply ------------------------------------------------------------------------- */

static int kind_parse(enum dm_plan_kind *kind, const char *name)
{
    static const struct {
        const char *name;
        enum dm_plan_kind kind;
    } kinds[] = {
        {"route", DM_PLAN_KIND_ROUTE},         {"component", DM_PLAN_KIND_COMPONENT},
        {"migration", DM_PLAN_KIND_MIGRATION}, {"file", DM_PLAN_KIND_FILE},
        {"test", DM_PLAN_KIND_TEST},           {"edit", DM_PLAN_KIND_EDIT},
    };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcasecmp(name, kinds[i].name) == 0) {
            *kind = kinds[i].kind;
            return 0;
        }
    }
    return DM_ERR_INVALID;
}

struct notes {
    struct dm_buf b;
    size_t count;
    int cut;
};

/* Records why proposed file `index` was dropped: "files[i] \"path\": reason". */
static int note_add(struct notes *n, size_t index, const char *path, const char *reason)
{
    struct dm_buf line;
    int rc;

    n->count++;
    if (n->cut) {
        return 0;
    }
    dm_buf_init(&line, 0);
    rc = dm_buf_printf(&line, "%sfiles[%zu]", n->b.len ? "; " : "", index);
    if (!rc && path) {
        rc = dm_buf_puts(&line, " \"");
        for (const char *p = path; *p && !rc && (size_t)(p - path) < NOTE_PATH_MAX; p++) {
            char c = ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '"') ? '?' : *p;
            rc = dm_buf_append(&line, &c, 1);
        }
        if (!rc) {
            rc = dm_buf_puts(&line, strlen(path) > NOTE_PATH_MAX ? ELLIPSIS "\"" : "\"");
        }
    }
    if (!rc) {
        rc = dm_buf_printf(&line, ": %s", reason);
    }
    if (!rc && n->b.len + line.len > DM_PLANNER_NOTES_MAX - 96) {
        n->cut = 1;
    } else if (!rc) {
        rc = dm_buf_append(&n->b, line.data, line.len);
    }
    dm_buf_free(&line);
    return rc;
}

/* dm_safety_check_path()'s message without its leading `path "…": ` (the note names the
 * path already). */
static const char *without_path_prefix(const char *msg)
{
    const char *end;

    if (strncmp(msg, "path \"", 6) != 0) {
        return msg;
    }
    end = strstr(msg, "\": ");
    return end ? end + 3 : msg;
}

/* 1 when text is the text of an item of the spec (requirements, API, UI, database). */
static int spec_item(const struct dm_spec *spec, const char *text)
{
    const struct dm_spec_list *lists[] = {&spec->requirements, &spec->api_routes,
                                          &spec->ui_components, &spec->db_changes};

    for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
        for (size_t i = 0; i < lists[l]->count; i++) {
            if (strcmp(lists[l]->items[i].text, text) == 0) {
                return 1;
            }
        }
    }
    return 0;
}

/* The optional contract of a proposed file: "exports" and "usage" (strings, cleaned to one line;
 * empty or not a string: none) and "covers" (the strings that are exactly a spec item's text;
 * anything else is ignored). 0 or DM_ERR_NOMEM. */
static int take_contract(struct dm_plan_item *it, const cJSON *c, const struct dm_spec *spec)
{
    const char *names[] = {"exports", "usage"};
    char **dst[] = {&it->exports, &it->usage};
    const cJSON *covers = cJSON_GetObjectItemCaseSensitive(c, "covers");
    const cJSON *v;

    for (size_t i = 0; i < 2; i++) {
        v = cJSON_GetObjectItemCaseSensitive(c, names[i]);
        if (!cJSON_IsString(v)) {
            continue;
        }
        *dst[i] = dm_text_clean_line(v->valuestring, DM_PLANNER_DESC_MAX);
        if (!*dst[i]) {
            return DM_ERR_NOMEM;
        }
        if (!**dst[i]) {
            free(*dst[i]);
            *dst[i] = NULL;
        }
    }
    if (!cJSON_IsArray(covers)) {
        return 0;
    }
    cJSON_ArrayForEach(v, covers)
    {
        int dup = 0;
        char **grown;

        if (!cJSON_IsString(v) || !spec_item(spec, v->valuestring) ||
            it->n_covers >= DM_PLAN_MAX_COVERS) {
            continue;
        }
        for (size_t k = 0; k < it->n_covers && !dup; k++) {
            dup = strcmp(it->covers[k], v->valuestring) == 0;
        }
        if (dup) {
            continue;
        }
        grown = realloc(it->covers, (it->n_covers + 1) * sizeof(*grown));
        if (!grown) {
            return DM_ERR_NOMEM;
        }
        it->covers = grown;
        it->covers[it->n_covers] = strdup(v->valuestring);
        if (!it->covers[it->n_covers]) {
            return DM_ERR_NOMEM;
        }
        it->n_covers++;
    }
    return 0;
}

/* Takes files[index] into plan if it passes; else records why not. *invalid counts files that
 * broke a rule (duplicates and files past the limit are dropped without counting). */
static int take_file(struct dm_plan *plan, const cJSON *c, size_t index,
                     const struct dm_planner_opts *o, const struct dm_spec *spec,
                     struct notes *notes, size_t *invalid)
{
    const struct dm_repo *repo = o ? o->repo : NULL;
    int knex = repo && repo->stack.db == DM_REPO_DB_KNEX;
    int exists;
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(c, "path");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(c, "kind");
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(c, "description");
    struct dm_plan_item *it;
    enum dm_plan_kind k;
    struct dm_error e;
    char *d = NULL;
    int rc;

    if (!cJSON_IsObject(c) || !cJSON_IsString(path) || !cJSON_IsString(kind) ||
        !cJSON_IsString(desc)) {
        (*invalid)++;
        return note_add(notes, index, NULL, "not an object with string path, kind and description");
    }
    if (kind_parse(&k, kind->valuestring) != 0) {
        (*invalid)++;
        return note_add(notes, index, path->valuestring,
                        "kind must be route, component, migration, test, edit or file");
    }
    if (dm_safety_check_path(path->valuestring, o ? o->policy : NULL, o ? o->allow_workflows : 0,
                             &e) != 0) {
        (*invalid)++;
        return note_add(notes, index, path->valuestring, without_path_prefix(e.msg));
    }
    exists = dm_repo_has(repo, path->valuestring);
    if (k == DM_PLAN_KIND_MIGRATION && !dm_text_ends_with(path->valuestring, ".sql") &&
        !(knex && (dm_text_ends_with(path->valuestring, ".js") ||
                   dm_text_ends_with(path->valuestring, ".ts")))) {
        (*invalid)++;
        return note_add(notes, index, path->valuestring,
                        knex ? "a migration's path must end in .sql, .js or .ts"
                             : "a migration's path must end in .sql");
    }
    if (k == DM_PLAN_KIND_EDIT && !exists) {
        (*invalid)++;
        return note_add(notes, index, path->valuestring,
                        o && o->repo ? "an edit of a file the base does not have"
                                     : "an edit, but the base is not known");
    }
    if (exists) {
        k = DM_PLAN_KIND_EDIT; /* an existing file is changed only by an edit */
    }
    d = dm_text_clean_line(desc->valuestring, DM_PLANNER_DESC_MAX);
    if (!d) {
        return DM_ERR_NOMEM;
    }
    if (!*d) {
        free(d);
        (*invalid)++;
        return note_add(notes, index, path->valuestring, "empty description");
    }
    for (size_t i = 0; i < plan->count; i++) {
        if (strcmp(plan->items[i].path, path->valuestring) == 0) {
            free(d);
            return note_add(notes, index, path->valuestring,
                            i == 0 ? "the spec document is added by the planner"
                                   : "duplicate path");
        }
    }
    if (plan->count - 1 >= model_files_max(o)) {
        free(d);
        return note_add(notes, index, path->valuestring, "over the file limit");
    }
    it = &plan->items[plan->count];
    it->path = strdup(path->valuestring);
    it->kind = k;
    it->description = d;
    plan->count++;
    rc = it->path ? 0 : DM_ERR_NOMEM;
    if (!rc) {
        rc = take_contract(it, c, spec);
    }
    return rc;
}

/* Frees the items of a plan (not the array). */
static void free_items(struct dm_plan *p)
{
    for (size_t i = 0; i < p->count; i++) {
        struct dm_plan_item *it = &p->items[i];
        free(it->path);
        free(it->description);
        free(it->exports);
        free(it->usage);
        for (size_t k = 0; k < it->n_covers; k++) {
            free(it->covers[k]);
        }
        free(it->covers);
    }
}

int dm_planner_parse(struct dm_plan **out, char **notes, const char *reply, size_t len,
                     const struct dm_spec *spec, const struct dm_planner_opts *opts,
                     struct dm_error *err)
{
    struct dm_plan *plan = NULL;
    struct dm_plan_item *items = NULL;
    struct notes nt;
    cJSON *root = NULL;
    const cJSON *files;
    const cJSON *c;
    size_t n;
    size_t invalid = 0;
    size_t index = 0;
    size_t slots;
    int rc;

    *out = NULL;
    if (notes) {
        *notes = NULL;
    }
    memset(&nt, 0, sizeof(nt));
    dm_buf_init(&nt.b, 0);
    if (!spec) {
        return dm_error_set(err, DM_ERR_INVALID, "planner reply: spec is required");
    }
    rc = dm_reply_json(&root, reply, len, DM_PLANNER_REPLY_MAX, "planner reply", err);
    if (rc) {
        goto out;
    }
    files = cJSON_GetObjectItemCaseSensitive(root, "files");
    if (!cJSON_IsArray(files)) {
        rc = dm_error_set(err, DM_ERR_INVALID, "planner reply: \"files\" must be an array");
        goto out;
    }
    n = (size_t)cJSON_GetArraySize(files);
    if (n == 0) {
        rc = dm_error_set(err, DM_ERR_INVALID, "planner reply: no file proposed");
        goto out;
    }
    rc = dm_plan_build(&plan, spec, opts ? opts->branch_prefix : NULL, NULL, err);
    if (rc) {
        goto out;
    }
    /* Keep the spec document (items[0]) exactly as the rule planner made it; drop the rest. */
    slots = 1 + (n < model_files_max(opts) ? n : model_files_max(opts));
    items = calloc(slots, sizeof(*items));
    if (!items) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "planner reply: out of memory");
        goto out;
    }
    items[0] = plan->items[0];
    {
        /* The rules' other items go: free them as a plan of their own. */
        struct dm_plan rest = {0};
        rest.items = plan->items + 1;
        rest.count = plan->count - 1;
        free_items(&rest);
    }
    free(plan->items);
    plan->items = items;
    plan->count = 1;
    if (opts && opts->repo) {
        plan->stack = dm_stack_describe(&opts->repo->stack);
        if (!plan->stack) {
            rc = dm_error_set(err, DM_ERR_NOMEM, "planner reply: out of memory");
            goto out;
        }
    }
    cJSON_ArrayForEach(c, files)
    {
        rc = take_file(plan, c, index++, opts, spec, &nt, &invalid);
        if (rc) {
            rc = dm_error_set(err, rc, "planner reply: out of memory");
            goto out;
        }
    }
    if (invalid * 2 > n) {
        rc = dm_error_set(err, DM_ERR_INVALID,
                          "planner reply: %zu of %zu proposed files are invalid: %.300s", invalid,
                          n, nt.b.data ? nt.b.data : "");
        goto out;
    }
    if (plan->count < 2) {
        rc = dm_error_set(err, DM_ERR_INVALID, "planner reply: no usable file: %.300s",
                          nt.b.data ? nt.b.data : "");
        goto out;
    }
    /* Every item of the spec maps to a file (the PR's checklist), whatever the model said. */
    if (dm_plan_cover(plan, spec)) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "planner reply: out of memory");
        goto out;
    }
    if (notes && nt.count) {
        struct dm_buf t;
        dm_buf_init(&t, 0);
        rc = dm_buf_printf(&t, "dropped %zu of %zu proposed files: %s%s", nt.count, n,
                           nt.b.data ? nt.b.data : "", nt.cut ? "; " ELLIPSIS : "");
        *notes = rc ? NULL : dm_buf_detach(&t);
        dm_buf_free(&t);
        if (!*notes) {
            rc = dm_error_set(err, DM_ERR_NOMEM, "planner reply: out of memory");
            goto out;
        }
    }
    *out = plan;
    plan = NULL;
out:
    cJSON_Delete(root);
    dm_plan_free(plan);
    dm_buf_free(&nt.b);
    return rc;
}
