/*
 * price: the model price table (see include/dream/domain/price.h). Owns its entries (a small array;
 * tables hold tens to a few hundred models, looked up a few times per LLM call). Pure.
 */
#include "dream/domain/price.h"
#include "dream/core/error.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRICE_FILE_MAX ((size_t)1 << 20)

struct entry {
    char *model;
    struct dm_price price;
};

struct dm_price_table {
    struct entry *v;
    size_t n, cap;
    int has_default;
    struct dm_price def;
};

static const struct {
    const char *model;
    double prompt, completion;
} builtin[] = {
    {"anthropic/claude-sonnet-4.5", 3.0, 15.0}, {"anthropic/claude-opus-4.5", 5.0, 25.0},
    {"anthropic/claude-haiku-4.5", 1.0, 5.0},   {"openai/gpt-4o", 2.5, 10.0},
    {"openai/gpt-4o-mini", 0.15, 0.6},
};

static int valid_price(const struct dm_price *p)
{
    return isfinite(p->prompt) && isfinite(p->completion) && p->prompt >= 0 && p->completion >= 0 &&
           p->prompt <= DM_PRICE_MAX && p->completion <= DM_PRICE_MAX;
}

/* A model id from a list: a non-empty string of at most DM_PRICE_MODEL_MAX bytes. */
static int valid_id(const cJSON *id)
{
    return cJSON_IsString(id) && id->valuestring[0] &&
           strlen(id->valuestring) <= DM_PRICE_MODEL_MAX;
}

static struct entry *find(const struct dm_price_table *t, const char *model, size_t len)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strlen(t->v[i].model) == len && memcmp(t->v[i].model, model, len) == 0) {
            return &t->v[i];
        }
    }
    return NULL;
}

int dm_price_table_set(struct dm_price_table *t, const char *model, const struct dm_price *p)
{
    struct entry *e;
    if (!model || !*model || strlen(model) > DM_PRICE_MODEL_MAX || !valid_price(p)) {
        return DM_ERR_INVALID;
    }
    e = find(t, model, strlen(model));
    if (e) {
        e->price = *p;
        return 0;
    }
    if (t->n >= DM_PRICE_TABLE_MAX) {
        return DM_ERR_LIMIT;
    }
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 16;
        struct entry *nv = realloc(t->v, ncap * sizeof(*nv));
        if (!nv) {
            return DM_ERR_NOMEM;
        }
        t->v = nv;
        t->cap = ncap;
    }
    t->v[t->n].model = strdup(model);
    if (!t->v[t->n].model) {
        return DM_ERR_NOMEM;
    }
    t->v[t->n].price = *p;
    t->n++;
    return 0;
}

int dm_price_table_new(struct dm_price_table **out)
{
    struct dm_price_table *t = calloc(1, sizeof(*t));
    int rc = 0;
    *out = NULL;
    if (!t) {
        return DM_ERR_NOMEM;
    }
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
        struct dm_price p = {builtin[i].prompt, builtin[i].completion};
        rc = dm_price_table_set(t, builtin[i].model, &p);
        if (rc != 0) {
            goto out;
        }
    }
out:
    if (rc != 0) {
        dm_price_table_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void dm_price_table_free(struct dm_price_table *t)
{
    if (!t) {
        return;
    }
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].model);
    }
    free(t->v);
    free(t);
}

int dm_price_table_set_default(struct dm_price_table *t, const struct dm_price *p)
{
    if (!p) {
        t->has_default = 0;
        return 0;
    }
    if (!valid_price(p)) {
        return DM_ERR_INVALID;
    }
    t->def = *p;
    t->has_default = 1;
    return 0;
}

size_t dm_price_table_count(const struct dm_price_table *t)
{
    return t->n;
}

/* A number, or a decimal string (the models API sends strings). Returns 0 or -1. */
static int read_number(const cJSON *v, double *out)
{
    if (cJSON_IsNumber(v)) {
        *out = v->valuedouble;
        return isfinite(*out) ? 0 : -1;
    }
    if (cJSON_IsString(v) && v->valuestring[0]) {
        char *end;
        errno = 0;
        *out = strtod(v->valuestring, &end);
        if (errno || *end || !isfinite(*out)) {
            return -1;
        }
        return 0;
    }
    return -1;
}

static int read_pair(const cJSON *o, const char *a, const char *b, struct dm_price *out,
                     double scale)
{
    const cJSON *pv = cJSON_GetObjectItemCaseSensitive(o, a);
    const cJSON *cv = cJSON_GetObjectItemCaseSensitive(o, b);
    if (!pv && !cv) {
        pv = cJSON_GetObjectItemCaseSensitive(o, "input");
        cv = cJSON_GetObjectItemCaseSensitive(o, "output");
    }
    if (read_number(pv, &out->prompt) != 0 || read_number(cv, &out->completion) != 0) {
        return -1;
    }
    out->prompt *= scale;
    out->completion *= scale;
    return valid_price(out) ? 0 : -1;
}

/* Applies parsed entries to a copy so a bad file leaves the table unchanged. */
int dm_price_table_load_json(struct dm_price_table *t, const char *json, size_t len,
                             struct dm_error *err)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *item;
    int rc = 0;
    if (!cJSON_IsObject(root)) {
        rc = dm_error_set(err, DM_ERR_INVALID, "price file is not a JSON object");
        goto out;
    }
    /* Validate everything first. */
    cJSON_ArrayForEach(item, root)
    {
        struct dm_price p;
        if (!cJSON_IsObject(item) || read_pair(item, "prompt", "completion", &p, 1.0) != 0) {
            rc = dm_error_set(err, DM_ERR_INVALID,
                              "price file: entry \"%.100s\" needs numeric prompt and completion "
                              "prices from 0 to %g (USD per million tokens)",
                              item->string ? item->string : "?", DM_PRICE_MAX);
            goto out;
        }
    }
    cJSON_ArrayForEach(item, root)
    {
        struct dm_price p;
        read_pair(item, "prompt", "completion", &p, 1.0);
        if (strcmp(item->string, "default") == 0) {
            rc = dm_price_table_set_default(t, &p);
        } else {
            rc = dm_price_table_set(t, item->string, &p);
        }
        if (rc != 0) {
            dm_error_set(err, rc, "price file: cannot store \"%.100s\"", item->string);
            goto out;
        }
    }
out:
    cJSON_Delete(root);
    return rc;
}

int dm_price_table_load_file(struct dm_price_table *t, const char *path, struct dm_error *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0;
    int rc = 0;
    if (!f) {
        return dm_error_set(err, DM_ERR_IO, "price file %s: %s", path, strerror(errno));
    }
    buf = malloc(PRICE_FILE_MAX + 1);
    if (!buf) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
        goto out;
    }
    n = fread(buf, 1, PRICE_FILE_MAX + 1, f);
    if (ferror(f)) {
        rc = dm_error_set(err, DM_ERR_IO, "price file %s: read error", path);
        goto out;
    }
    if (n > PRICE_FILE_MAX) {
        rc = dm_error_set(err, DM_ERR_LIMIT, "price file %s is larger than %zu bytes", path,
                          PRICE_FILE_MAX);
        goto out;
    }
    rc = dm_price_table_load_json(t, buf, n, err);
    if (rc != 0) {
        dm_error_wrap(err, "%s", path);
    }
out:
    free(buf);
    fclose(f);
    return rc;
}

int dm_price_table_load_models(struct dm_price_table *t, const char *json, size_t len,
                               size_t *updated, struct dm_error *err)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *data, *m;
    size_t count = 0, seen = 0;
    int rc = 0;
    data = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (!cJSON_IsArray(data)) {
        rc = dm_error_set(err, DM_ERR_INVALID, "models reply has no data array");
        goto out;
    }
    cJSON_ArrayForEach(m, data)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "id");
        const cJSON *pricing = cJSON_GetObjectItemCaseSensitive(m, "pricing");
        struct dm_price p;
        if (seen++ >= DM_PRICE_LIST_MAX) {
            break;
        }
        if (!valid_id(id) || !cJSON_IsObject(pricing) ||
            read_pair(pricing, "prompt", "completion", &p, 1e6) != 0) {
            continue;
        }
        rc = dm_price_table_set(t, id->valuestring, &p);
        if (rc == DM_ERR_LIMIT) {
            rc = 0; /* a full table: new models are skipped, known ones still update */
            continue;
        }
        if (rc != 0) {
            dm_error_set(err, rc, "out of memory");
            goto out;
        }
        count++;
    }
out:
    if (updated) {
        *updated = count;
    }
    cJSON_Delete(root);
    return rc;
}

int dm_price_models_compact(const char *json, size_t len, char **out, size_t *count,
                            struct dm_error *err)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    cJSON *res = cJSON_CreateObject();
    cJSON *arr = res ? cJSON_AddArrayToObject(res, "data") : NULL;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    const cJSON *m;
    size_t n = 0;
    int rc = 0;
    *out = NULL;
    if (!arr) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (!cJSON_IsArray(data)) {
        rc = dm_error_set(err, DM_ERR_INVALID, "models reply has no data array");
        goto out;
    }
    cJSON_ArrayForEach(m, data)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "id");
        const cJSON *pricing = cJSON_GetObjectItemCaseSensitive(m, "pricing");
        struct dm_price p, per_m;
        cJSON *e, *pr;
        char a[40], b[40];
        if (n >= DM_PRICE_LIST_MAX) {
            break;
        }
        if (!valid_id(id) || !cJSON_IsObject(pricing) ||
            read_pair(pricing, "prompt", "completion", &p, 1.0) != 0) {
            continue;
        }
        per_m.prompt = p.prompt * 1e6;
        per_m.completion = p.completion * 1e6;
        if (!valid_price(&per_m)) {
            continue;
        }
        snprintf(a, sizeof(a), "%.17g", p.prompt);
        snprintf(b, sizeof(b), "%.17g", p.completion);
        e = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, e);
        pr = e ? cJSON_AddObjectToObject(e, "pricing") : NULL;
        if (!pr || !cJSON_AddStringToObject(e, "id", id->valuestring) ||
            !cJSON_AddStringToObject(pr, "prompt", a) ||
            !cJSON_AddStringToObject(pr, "completion", b)) {
            rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
            goto out;
        }
        n++;
    }
    *out = cJSON_PrintUnformatted(res);
    if (!*out) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
out:
    if (count) {
        *count = rc ? 0 : n;
    }
    cJSON_Delete(root);
    cJSON_Delete(res);
    return rc;
}

int dm_price_lookup(const struct dm_price_table *t, const char *model, struct dm_price *out,
                    struct dm_error *err)
{
    const struct entry *e;
    const char *colon;
    if (!model || !*model) {
        return dm_error_set(err, DM_ERR_NOTFOUND, "no model given to price");
    }
    e = find(t, model, strlen(model));
    colon = strchr(model, ':');
    if (!e && colon) {
        e = find(t, model, (size_t)(colon - model));
    }
    if (e) {
        *out = e->price;
        return 0;
    }
    if (t->has_default) {
        *out = t->def;
        return 0;
    }
    return dm_error_set(err, DM_ERR_NOTFOUND,
                        "no price for model %.200s (add it, or a \"default\" entry, to "
                        "DREAM_PRICES_FILE, or let GET {DREAM_LLM_URL}/models load)",
                        model);
}

double dm_price_cost(const struct dm_price *p, long long prompt_tokens, long long completion_tokens)
{
    return ((double)prompt_tokens * p->prompt + (double)completion_tokens * p->completion) / 1e6;
}
