/*
 * plan: kinds, slugs, branch names and plan JSON (rules in include/dream/domain/plan.h; the
 * rules' plan itself is plan_build.c). Owns the plans it returns; no global state, any thread.
 */
#include "dream/domain/plan.h"
#include "dream/core/buf.h"
#include "dream/core/refname.h"
#include "plan_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"spec", "route", "component", "migration",
                                         "file", "test",  "edit"};

const char *dm_plan_kind_name(enum dm_plan_kind kind)
{
    if ((unsigned)kind < sizeof(kind_names) / sizeof(kind_names[0])) {
        return kind_names[kind];
    }
    return "file";
}

int dm_plan_kind_parse(enum dm_plan_kind *kind, const char *name)
{
    for (size_t i = 0; name && i < sizeof(kind_names) / sizeof(kind_names[0]); i++) {
        if (strcmp(name, kind_names[i]) == 0) {
            *kind = (enum dm_plan_kind)i;
            return 0;
        }
    }
    return DM_ERR_INVALID;
}

int dm_slugify(char *out, size_t outlen, const char *s)
{
    size_t n = 0;
    int dash = 0;

    if (!out || outlen < DM_SLUG_MAX + 1) {
        return DM_ERR_INVALID;
    }
    /* Streaming form of: map, trim, cut to DM_SLUG_MAX, trim again. */
    for (; s && *s && n < DM_SLUG_MAX; s++) {
        char c = *s;
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
            dash = 1;
            continue;
        }
        if (dash && n > 0) {
            out[n++] = '-';
            if (n == DM_SLUG_MAX) {
                break;
            }
        }
        dash = 0;
        out[n++] = c;
    }
    while (n > 0 && out[n - 1] == '-') {
        n--;
    }
    out[n] = '\0';
    return (int)n;
}

static size_t path_hash(const char *s)
{
    size_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 16777619u;
    }
    return h;
}

/* The index of an earlier item with this path, or -1. */
long dm_plan_pathset_find(const struct dm_plan_pathset *set, const struct dm_plan *pl,
                          const char *path, size_t *slot)
{
    size_t i = path_hash(path) & (DM_PLAN_PATHSET_SLOTS - 1);

    while (set->slot[i]) {
        size_t idx = (size_t)set->slot[i] - 1;
        if (strcmp(pl->items[idx].path, path) == 0) {
            return (long)idx;
        }
        i = (i + 1) & (DM_PLAN_PATHSET_SLOTS - 1);
    }
    *slot = i;
    return -1;
}

int dm_plan_branch_alt(char **out, const struct dm_plan *plan, const char *job_id,
                       struct dm_error *err)
{
    char slug[DM_SLUG_MAX + 1];
    struct dm_buf b;
    int n;
    int rc;

    *out = NULL;
    dm_buf_init(&b, 0);
    n = dm_slugify(slug, sizeof(slug), job_id ? job_id : "");
    if (n > 8) {
        n = 8;
    }
    while (n > 0 && slug[n - 1] == '-') {
        n--;
    }
    slug[n] = '\0';
    rc = dm_buf_printf(&b, "%s-%s", plan->branch, n ? slug : "job");
    if (rc) {
        rc = dm_error_set(err, rc, "out of memory naming the branch");
        goto out;
    }
    if (!dm_refname_valid(b.data)) {
        rc = dm_error_set(err, DM_ERR_INVALID, "branch \"%.300s\" is not a valid git branch name",
                          b.data);
        goto out;
    }
    *out = dm_buf_detach(&b);
    if (!*out) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory naming the branch");
    }
out:
    dm_buf_free(&b);
    return rc;
}

/* The optional members of an item: exports, usage, covers. 0 or -1 (NOMEM). */
static int item_contract_to_json(cJSON *it, const struct dm_plan_item *pi)
{
    cJSON *covers;

    if (pi->exports && !cJSON_AddStringToObject(it, "exports", pi->exports)) {
        return -1;
    }
    if (pi->usage && !cJSON_AddStringToObject(it, "usage", pi->usage)) {
        return -1;
    }
    if (pi->n_covers == 0) {
        return 0;
    }
    covers = cJSON_AddArrayToObject(it, "covers");
    if (!covers) {
        return -1;
    }
    for (size_t k = 0; k < pi->n_covers; k++) {
        cJSON *c = cJSON_CreateString(pi->covers[k]);
        if (!c) {
            return -1;
        }
        cJSON_AddItemToArray(covers, c);
    }
    return 0;
}

char *dm_plan_to_json(const struct dm_plan *plan)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *items = NULL;
    char *text = NULL;
    char *copy = NULL;

    if (!root || !cJSON_AddStringToObject(root, "title", plan->title) ||
        !cJSON_AddStringToObject(root, "branch", plan->branch) ||
        !cJSON_AddStringToObject(root, "prTitle", plan->pr_title)) {
        goto out;
    }
    items = cJSON_AddArrayToObject(root, "items");
    if (!items) {
        goto out;
    }
    for (size_t i = 0; i < plan->count; i++) {
        cJSON *it = cJSON_CreateObject();
        if (!it) {
            goto out;
        }
        cJSON_AddItemToArray(items, it);
        if (!cJSON_AddStringToObject(it, "path", plan->items[i].path) ||
            !cJSON_AddStringToObject(it, "kind", dm_plan_kind_name(plan->items[i].kind)) ||
            !cJSON_AddStringToObject(it, "description", plan->items[i].description)) {
            goto out;
        }
        if (item_contract_to_json(it, &plan->items[i])) {
            goto out;
        }
    }
    if (plan->stack && !cJSON_AddStringToObject(root, "stack", plan->stack)) {
        goto out;
    }
    text = cJSON_PrintUnformatted(root);
    if (text) {
        copy = strdup(text);
    }
out:
    if (text) {
        cJSON_free(text);
    }
    cJSON_Delete(root);
    return copy;
}

int dm_plan_path_ok(const char *path)
{
    const char *comp = path;
    size_t len = strlen(path);

    if (len == 0 || len > DM_PLAN_MAX_PATH || path[0] == '/') {
        return 0;
    }
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '\\') {
            return 0;
        }
    }
    while (comp) {
        const char *end = strchr(comp, '/');
        size_t clen = end ? (size_t)(end - comp) : strlen(comp);
        if (clen == 0 || (clen == 1 && comp[0] == '.') ||
            (clen == 2 && comp[0] == '.' && comp[1] == '.')) {
            return 0;
        }
        comp = end ? end + 1 : NULL;
    }
    return 1;
}

static int take_string(char **dst, const cJSON *obj, const char *name, const char *where,
                       struct dm_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

    if (!cJSON_IsString(v) || !v->valuestring) {
        return dm_error_set(err, DM_ERR_INVALID, "plan JSON: %s%s must be a string", where, name);
    }
    *dst = strdup(v->valuestring);
    if (!*dst) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory reading the plan");
    }
    return 0;
}

/* An optional string member: absent or null leaves *dst NULL. */
static int take_optional(char **dst, const cJSON *obj, const char *name, const char *where,
                         struct dm_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

    if (!v || cJSON_IsNull(v)) {
        return 0;
    }
    return take_string(dst, obj, name, where, err);
}

/* The optional contract of an item: "exports", "usage" (strings), "covers" (strings). */
static int take_contract(struct dm_plan_item *pi, const cJSON *it, const char *where,
                         struct dm_error *err)
{
    const cJSON *covers = cJSON_GetObjectItemCaseSensitive(it, "covers");
    const cJSON *c;
    size_t n;
    int rc = take_optional(&pi->exports, it, "exports", where, err);

    if (!rc) {
        rc = take_optional(&pi->usage, it, "usage", where, err);
    }
    if (rc || !covers || cJSON_IsNull(covers)) {
        return rc;
    }
    if (!cJSON_IsArray(covers)) {
        return dm_error_set(err, DM_ERR_INVALID, "plan JSON: %scovers must be an array of strings",
                            where);
    }
    n = (size_t)cJSON_GetArraySize(covers);
    if (n > DM_PLAN_MAX_COVERS) {
        return dm_error_set(err, DM_ERR_LIMIT, "plan JSON: %scovers has %zu entries (limit %d)",
                            where, n, DM_PLAN_MAX_COVERS);
    }
    pi->covers = calloc(n ? n : 1, sizeof(*pi->covers));
    if (!pi->covers) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory reading the plan");
    }
    cJSON_ArrayForEach(c, covers)
    {
        if (!cJSON_IsString(c) || !c->valuestring) {
            return dm_error_set(err, DM_ERR_INVALID,
                                "plan JSON: %scovers must be an array of strings", where);
        }
        pi->covers[pi->n_covers] = strdup(c->valuestring);
        if (!pi->covers[pi->n_covers]) {
            return dm_error_set(err, DM_ERR_NOMEM, "out of memory reading the plan");
        }
        pi->n_covers++;
    }
    return 0;
}

int dm_plan_from_json(struct dm_plan **out, const char *json, struct dm_error *err)
{
    struct dm_plan *pl = NULL;
    struct dm_plan_pathset *set = NULL;
    cJSON *root = NULL;
    const cJSON *items;
    size_t len;
    size_t n;
    int rc = 0;

    *out = NULL;
    len = json ? strlen(json) : 0;
    if (len > DM_PLAN_MAX_JSON) {
        rc = dm_error_set(err, DM_ERR_LIMIT, "plan JSON is %zu bytes long (limit %u)", len,
                          DM_PLAN_MAX_JSON);
        goto out;
    }
    root = json ? cJSON_ParseWithLength(json, len) : NULL;
    if (!cJSON_IsObject(root)) {
        rc = dm_error_set(err, DM_ERR_INVALID, "plan JSON is not a JSON object");
        goto out;
    }
    pl = calloc(1, sizeof(*pl));
    if (!pl) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory reading the plan");
        goto out;
    }
    rc = take_string(&pl->title, root, "title", "", err);
    if (!rc) {
        rc = take_string(&pl->branch, root, "branch", "", err);
    }
    if (!rc) {
        rc = take_string(&pl->pr_title, root, "prTitle", "", err);
    }
    if (rc) {
        goto out;
    }
    if (!dm_refname_valid(pl->branch)) {
        rc = dm_error_set(err, DM_ERR_INVALID, "plan JSON: branch is not a valid git branch name");
        goto out;
    }
    rc = take_optional(&pl->stack, root, "stack", "", err);
    if (rc) {
        goto out;
    }
    items = cJSON_GetObjectItemCaseSensitive(root, "items");
    if (!cJSON_IsArray(items) || (n = (size_t)cJSON_GetArraySize(items)) == 0) {
        rc = dm_error_set(err, DM_ERR_INVALID, "plan JSON: items must be a non-empty array");
        goto out;
    }
    if (n > DM_PLAN_MAX_ITEMS) {
        rc = dm_error_set(err, DM_ERR_LIMIT, "plan JSON has %zu items (limit %d)", n,
                          DM_PLAN_MAX_ITEMS);
        goto out;
    }
    pl->items = calloc(n, sizeof(*pl->items));
    set = calloc(1, sizeof(*set));
    if (!pl->items || !set) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory reading the plan");
        goto out;
    }
    for (const cJSON *it = items->child; it; it = it->next) {
        struct dm_plan_item *pi = &pl->items[pl->count];
        char where[48];
        char *kind = NULL;

        snprintf(where, sizeof(where), "items[%zu].", pl->count);
        if (!cJSON_IsObject(it)) {
            rc = dm_error_set(err, DM_ERR_INVALID, "plan JSON: items[%zu] must be an object",
                              pl->count);
            goto out;
        }
        pl->count++;
        rc = take_string(&pi->path, it, "path", where, err);
        if (!rc) {
            rc = take_string(&pi->description, it, "description", where, err);
        }
        if (!rc) {
            rc = take_string(&kind, it, "kind", where, err);
        }
        if (!rc && dm_plan_kind_parse(&pi->kind, kind)) {
            rc = dm_error_set(err, DM_ERR_INVALID, "plan JSON: %skind \"%.40s\" is unknown", where,
                              kind);
        }
        free(kind);
        if (!rc) {
            rc = take_contract(pi, it, where, err);
        }
        if (rc) {
            goto out;
        }
        if (!dm_plan_path_ok(pi->path)) {
            rc = dm_error_set(err, DM_ERR_INVALID, "plan JSON: %spath is not a safe relative path",
                              where);
            goto out;
        }
        {
            size_t slot;
            long j = dm_plan_pathset_find(set, pl, pi->path, &slot);
            if (j >= 0) {
                rc = dm_error_set(err, DM_ERR_INVALID, "plan JSON: %spath repeats items[%ld]",
                                  where, j);
                goto out;
            }
            set->slot[slot] = (unsigned short)pl->count;
        }
    }
    *out = pl;
    pl = NULL;
out:
    free(set);
    cJSON_Delete(root);
    dm_plan_free(pl);
    return rc;
}

void dm_plan_free(struct dm_plan *plan)
{
    if (!plan) {
        return;
    }
    free(plan->title);
    free(plan->branch);
    free(plan->pr_title);
    for (size_t i = 0; i < plan->count; i++) {
        free(plan->items[i].path);
        free(plan->items[i].description);
        free(plan->items[i].exports);
        free(plan->items[i].usage);
        for (size_t k = 0; k < plan->items[i].n_covers; k++) {
            free(plan->items[i].covers[k]);
        }
        free(plan->items[i].covers);
    }
    free(plan->stack);
    free(plan->items);
    free(plan);
}
