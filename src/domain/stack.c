/*
 * stack: the stack and conventions of a repository from its manifest, wrangler.toml and tree
 * (see dm_stack_detect in include/dream/domain/repo.h). The manifest is hostile data: it is
 * parsed only when it was read whole, and only looked at (names of dependencies, a few string
 * fields). Pure; any thread.
 */
#include "dream/domain/repo.h"

#include <cjson/cJSON.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the manifest ---- */

static cJSON *manifest_of(const struct dm_repo *r)
{
    const struct dm_repo_text *t = dm_repo_find(r, "package.json");
    cJSON *j;
    if (!t || t->cut) {
        return NULL;
    }
    j = cJSON_ParseWithLength(t->content, t->len);
    if (j && !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static int has_dep(const cJSON *m, const char *name)
{
    static const char *const groups[] = {"dependencies", "devDependencies", "peerDependencies",
                                         "optionalDependencies"};
    for (size_t i = 0; m && i < sizeof(groups) / sizeof(groups[0]); i++) {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(m, groups[i]);
        if (cJSON_IsObject(g) && cJSON_GetObjectItemCaseSensitive(g, name)) {
            return 1;
        }
    }
    return 0;
}

/* 1 when a script of the manifest mentions word. */
static int script_has(const cJSON *m, const char *word)
{
    const cJSON *scripts = m ? cJSON_GetObjectItemCaseSensitive(m, "scripts") : NULL;
    const cJSON *s;
    if (!cJSON_IsObject(scripts)) {
        return 0;
    }
    cJSON_ArrayForEach(s, scripts)
    {
        if (cJSON_IsString(s) && strstr(s->valuestring, word)) {
            return 1;
        }
    }
    return 0;
}

/* ---- the tree ---- */

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int has_prefix_file(const struct dm_repo *r, const char *dir)
{
    for (size_t i = 0; i < r->n_tree; i++) {
        if (starts_with(r->tree[i].path, dir) && !dm_repo_path_skipped(r->tree[i].path)) {
            return 1;
        }
    }
    return 0;
}

/*
 * The shallowest folder named one of names (then the one with most files) holding a file that
 * accept() takes (NULL: any file not skipped); malloc'd with its trailing '/', NULL when none
 * (*nomem set on NOMEM).
 */
static char *find_dir(const struct dm_repo *r, const char *const *names, size_t nn,
                      int (*accept)(const char *path), int *nomem)
{
    const char *best = NULL;
    size_t best_len = 0, best_depth = 0, best_count = 0;

    for (size_t i = 0; i < r->n_tree; i++) {
        const char *p = r->tree[i].path;
        if (dm_repo_path_skipped(p) || (accept && !accept(p))) {
            continue;
        }
        /* Every folder of p whose name is one of names. */
        for (const char *seg = p; seg;) {
            const char *slash = strchr(seg, '/');
            size_t sl;
            if (!slash) {
                break;
            }
            sl = (size_t)(slash - seg);
            for (size_t k = 0; k < nn; k++) {
                if (strlen(names[k]) == sl && strncmp(seg, names[k], sl) == 0) {
                    size_t len = (size_t)(slash - p) + 1, depth = 0, count = 0;
                    for (size_t c = 0; c < len; c++) {
                        depth += p[c] == '/';
                    }
                    if (best && len == best_len && strncmp(best, p, len) == 0) {
                        break; /* the same folder again */
                    }
                    for (size_t j = 0; j < r->n_tree; j++) {
                        count += strncmp(r->tree[j].path, p, len) == 0;
                    }
                    if (!best || depth < best_depth ||
                        (depth == best_depth && count > best_count)) {
                        best = p;
                        best_len = len;
                        best_depth = depth;
                        best_count = count;
                    }
                }
            }
            seg = slash + 1;
        }
    }
    if (!best) {
        return NULL;
    }
    {
        char *d = malloc(best_len + 1);
        if (!d) {
            *nomem = 1;
            return NULL;
        }
        memcpy(d, best, best_len);
        d[best_len] = '\0';
        return d;
    }
}

static int is_code(const char *p)
{
    static const char *const exts[] = {".ts",  ".tsx", ".js",  ".jsx",   ".mjs",
                                       ".cjs", ".mts", ".vue", ".svelte"};
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        if (ends_with(p, exts[i])) {
            return 1;
        }
    }
    return 0;
}

static int is_migration(const char *p)
{
    return is_code(p) || ends_with(p, ".sql");
}

static int is_sql(const char *p)
{
    return ends_with(p, ".sql");
}

static int is_ts(const char *p)
{
    return (ends_with(p, ".ts") || ends_with(p, ".tsx") || ends_with(p, ".mts")) &&
           !ends_with(p, ".d.ts");
}

static int tree_any(const struct dm_repo *r, int (*pred)(const char *path))
{
    for (size_t i = 0; i < r->n_tree; i++) {
        if (!dm_repo_path_skipped(r->tree[i].path) && pred(r->tree[i].path)) {
            return 1;
        }
    }
    return 0;
}

static int sql_migration(const char *p)
{
    return is_sql(p) && (starts_with(p, "migrations/") || starts_with(p, "db/migrations/"));
}

/* ---- entry ---- */

/* path without "./", mapped to a file of the tree: itself, or its source under src/ when it is
 * a build output (dist/x.js -> src/x.ts, .tsx, .js). malloc'd or NULL. */
static char *tree_path(const struct dm_repo *r, const char *decl)
{
    static const char *const outs[] = {"dist/", "build/", "lib/", "out/"};
    static const char *const exts[] = {".ts", ".tsx", ".js", ".jsx", ".mjs"};
    char buf[512];

    if (!decl) {
        return NULL;
    }
    while (starts_with(decl, "./")) {
        decl += 2;
    }
    if (!*decl || strlen(decl) >= sizeof(buf) - 16) {
        return NULL;
    }
    if (dm_repo_has(r, decl) && !dm_repo_path_skipped(decl)) {
        return strdup(decl);
    }
    for (size_t i = 0; i < sizeof(outs) / sizeof(outs[0]); i++) {
        const char *rest = starts_with(decl, outs[i]) ? decl + strlen(outs[i]) : NULL;
        const char *dot;
        size_t stem;
        if (!rest) {
            continue;
        }
        dot = strrchr(rest, '.');
        stem = dot && !strchr(dot, '/') ? (size_t)(dot - rest) : strlen(rest);
        for (size_t e = 0; e < sizeof(exts) / sizeof(exts[0]); e++) {
            snprintf(buf, sizeof(buf), "src/%.*s%s", (int)stem, rest, exts[e]);
            if (dm_repo_has(r, buf)) {
                return strdup(buf);
            }
        }
    }
    return NULL;
}

/* exports: a string, {".": string | {import|default|...}}, or conditions at the top. */
static const char *exports_entry(const cJSON *exp)
{
    static const char *const conds[] = {"import", "default", "node", "require"};
    const cJSON *dot;

    for (int depth = 0; exp && depth < 4; depth++) {
        if (cJSON_IsString(exp)) {
            return exp->valuestring;
        }
        if (!cJSON_IsObject(exp)) {
            return NULL;
        }
        dot = cJSON_GetObjectItemCaseSensitive(exp, ".");
        if (dot) {
            exp = dot;
            continue;
        }
        {
            const cJSON *next = NULL;
            for (size_t i = 0; i < sizeof(conds) / sizeof(conds[0]) && !next; i++) {
                next = cJSON_GetObjectItemCaseSensitive(exp, conds[i]);
            }
            exp = next;
        }
    }
    return NULL;
}

/* The top-level `main = "..."` of wrangler.toml (before any [table]), copied into out. */
static int wrangler_main(const struct dm_repo *r, char *out, size_t outlen)
{
    const struct dm_repo_text *t = dm_repo_find(r, "wrangler.toml");
    const char *p = t ? t->content : NULL;

    while (p && *p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        const char *q = p;
        while (q < p + len && (*q == ' ' || *q == '\t')) {
            q++;
        }
        if (*q == '[') {
            return 0;
        }
        if ((size_t)(p + len - q) > 4 && strncmp(q, "main", 4) == 0 &&
            (q[4] == ' ' || q[4] == '=' || q[4] == '\t')) {
            const char *v = q + 4, *e;
            while (v < p + len && (*v == ' ' || *v == '\t' || *v == '=')) {
                v++;
            }
            if (v < p + len && (*v == '"' || *v == '\'')) {
                char quote = *v++;
                e = memchr(v, quote, (size_t)(p + len - v));
                if (e && (size_t)(e - v) < outlen) {
                    memcpy(out, v, (size_t)(e - v));
                    out[e - v] = '\0';
                    return 1;
                }
            }
            return 0;
        }
        p = eol ? eol + 1 : NULL;
    }
    return 0;
}

static char *entry_with(const struct dm_repo *r, const cJSON *m)
{
    static const char *const fallback[] = {"src/index.ts",  "src/app.ts",   "src/server.ts",
                                           "src/index.tsx", "src/index.js", "src/app.js",
                                           "src/server.js", "index.ts",     "index.js",
                                           "app.js",        "server.js"};
    char wmain[512];
    char *e = NULL;

    if (m) {
        const cJSON *main = cJSON_GetObjectItemCaseSensitive(m, "main");
        if (cJSON_IsString(main)) {
            e = tree_path(r, main->valuestring);
        }
        if (!e) {
            e = tree_path(r, exports_entry(cJSON_GetObjectItemCaseSensitive(m, "exports")));
        }
        if (!e) {
            const cJSON *mod = cJSON_GetObjectItemCaseSensitive(m, "module");
            if (cJSON_IsString(mod)) {
                e = tree_path(r, mod->valuestring);
            }
        }
    }
    if (!e && wrangler_main(r, wmain, sizeof(wmain))) {
        e = tree_path(r, wmain);
    }
    for (size_t i = 0; !e && i < sizeof(fallback) / sizeof(fallback[0]); i++) {
        if (dm_repo_has(r, fallback[i])) {
            e = strdup(fallback[i]);
        }
    }
    return e;
}

char *dm_repo_detect_entry(const struct dm_repo *r)
{
    cJSON *m = manifest_of(r);
    char *e = entry_with(r, m);
    cJSON_Delete(m);
    return e;
}

/* ---- conventions ---- */

static void component_case(struct dm_stack *s, const struct dm_repo *r)
{
    size_t dl = strlen(s->components_dir);
    int pascal = 0, kebab = 0;

    for (size_t i = 0; i < r->n_tree; i++) {
        const char *p = r->tree[i].path, *name;
        if (strncmp(p, s->components_dir, dl) != 0 || !is_code(p)) {
            continue;
        }
        name = strrchr(p, '/');
        name = name ? name + 1 : p;
        if (strncmp(name, "index.", 6) == 0) {
            continue;
        }
        if (isupper((unsigned char)name[0])) {
            pascal++;
        } else if (strchr(name, '-') || islower((unsigned char)name[0])) {
            kebab++;
        }
    }
    s->component_case = kebab > pascal ? DM_REPO_CASE_KEBAB : DM_REPO_CASE_PASCAL;
}

static void migrations(struct dm_stack *s, const struct dm_repo *r)
{
    size_t dl = strlen(s->migrations_dir);
    unsigned width = 0;
    unsigned long long last = 0;
    int stamped = 0, numbered = 0;

    for (size_t i = 0; i < r->n_tree; i++) {
        const char *p = r->tree[i].path, *name;
        size_t digits = 0;
        unsigned long long v = 0;
        if (strncmp(p, s->migrations_dir, dl) != 0 || !is_migration(p)) {
            continue;
        }
        name = p + dl; /* its first segment: a file, or a folder (Prisma's 2024..._init/) */
        while (isdigit((unsigned char)name[digits])) {
            digits++;
        }
        if (digits == 0 || digits > 19 || (name[digits] != '_' && name[digits] != '-')) {
            continue;
        }
        for (size_t k = 0; k < digits; k++) {
            v = v * 10 + (unsigned)(name[k] - '0');
        }
        if (digits >= 12) {
            stamped++;
        } else {
            numbered++;
            if (digits > width) {
                width = (unsigned)digits;
            }
        }
        if (v > last) {
            last = v;
        }
    }
    if (stamped > numbered ||
        (!stamped && !numbered && s->db != DM_REPO_DB_SQL && s->db != DM_REPO_DB_NONE)) {
        s->migration_scheme = DM_REPO_MIG_TIMESTAMP;
        s->migration_width = 14;
    } else {
        s->migration_scheme = DM_REPO_MIG_NUMBERED;
        s->migration_width = width ? width : 4;
    }
    s->last_migration = last;
}

static char *dup_or(char *found, const char *def, int *nomem)
{
    char *d;
    if (found) {
        return found;
    }
    d = strdup(def);
    if (!d) {
        *nomem = 1;
    }
    return d;
}

int dm_stack_detect(struct dm_stack *out, const struct dm_repo *r)
{
    static const char *const routes[] = {"routes"};
    static const char *const components[] = {"components"};
    static const char *const migs[] = {"migrations"};
    static const char *const tests[] = {"tests", "test", "__tests__"};
    static const char *const barrels[] = {"index.ts", "index.tsx", "index.js", "index.jsx"};
    cJSON *m;
    int nomem = 0;

    memset(out, 0, sizeof(*out));
    m = manifest_of(r);

    if (has_dep(m, "hono")) {
        out->http = DM_REPO_HTTP_HONO;
    } else if (has_dep(m, "express")) {
        out->http = DM_REPO_HTTP_EXPRESS;
    } else if (has_dep(m, "fastify")) {
        out->http = DM_REPO_HTTP_FASTIFY;
    } else if (has_dep(m, "next")) {
        out->http = DM_REPO_HTTP_NEXT;
    }
    if (has_dep(m, "preact")) {
        out->ui = DM_REPO_UI_PREACT;
    } else if (has_dep(m, "vue")) {
        out->ui = DM_REPO_UI_VUE;
    } else if (has_dep(m, "svelte")) {
        out->ui = DM_REPO_UI_SVELTE;
    } else if (has_dep(m, "react") || has_dep(m, "next")) {
        out->ui = DM_REPO_UI_REACT;
    }
    if (has_dep(m, "drizzle-orm")) {
        out->db = DM_REPO_DB_DRIZZLE;
    } else if (has_dep(m, "prisma") || has_dep(m, "@prisma/client")) {
        out->db = DM_REPO_DB_PRISMA;
    } else if (has_dep(m, "knex")) {
        out->db = DM_REPO_DB_KNEX;
    } else if (tree_any(r, sql_migration)) {
        out->db = DM_REPO_DB_SQL;
    }
    if (has_dep(m, "vitest") || script_has(m, "vitest")) {
        out->test = DM_REPO_TEST_VITEST;
    } else if (has_dep(m, "jest") || script_has(m, "jest")) {
        out->test = DM_REPO_TEST_JEST;
    } else if (script_has(m, "node --test") || script_has(m, "tsx --test")) {
        out->test = DM_REPO_TEST_NODE;
    }
    out->typescript =
        dm_repo_has(r, "tsconfig.json") || has_dep(m, "typescript") || tree_any(r, is_ts);

    out->entry = entry_with(r, m);
    cJSON_Delete(m);

    if (out->http == DM_REPO_HTTP_NEXT) {
        out->routes_dir =
            has_prefix_file(r, "src/app/") ? strdup("src/app/api/") : strdup("app/api/");
        nomem |= !out->routes_dir;
    } else {
        out->routes_dir = dup_or(find_dir(r, routes, 1, is_code, &nomem), "src/routes/", &nomem);
    }
    out->components_dir =
        dup_or(find_dir(r, components, 1, is_code, &nomem), "src/components/", &nomem);
    out->migrations_dir = dup_or(find_dir(r, migs, 1, is_migration, &nomem), "migrations/", &nomem);
    out->tests_dir = find_dir(r, tests, 3, is_code, &nomem);
    if (nomem) {
        dm_stack_clear(out);
        return DM_ERR_NOMEM;
    }
    for (size_t i = 0; i < sizeof(barrels) / sizeof(barrels[0]) && !out->barrel; i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s%s", out->components_dir, barrels[i]);
        if (dm_repo_has(r, path)) {
            out->barrel = strdup(path);
            if (!out->barrel) {
                dm_stack_clear(out);
                return DM_ERR_NOMEM;
            }
        }
    }
    component_case(out, r);
    migrations(out, r);
    return 0;
}
