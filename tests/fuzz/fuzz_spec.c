/*
 * libFuzzer target: spec → plan (without a base, and in a Hono + React + SQL repository's
 * conventions: every spec item covered, edits only of the base's files) → prompts → PR body →
 * plan JSON round trip, plus the reply
 * unwrapper and the repair prompt on the same bytes. Each input is run twice: as is (binary is
 * refused early) and sanitised to UTF-8 text, so the Markdown walk sees every mutation. Checks
 * the invariants the engine relies on and frees everything (ASan reports leaks).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dream/core/refname.h"
#include "dream/domain/plan.h"
#include "dream/domain/prbody.h"
#include "dream/domain/prompt.h"
#include "dream/domain/repo.h"
#include "dream/domain/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Invalid UTF-8 → '?', control bytes → ' ', so that dm_spec_parse() accepts the text. */
static char *sanitise(const uint8_t *d, size_t n)
{
    char *s = malloc(n + 1);
    size_t i = 0;

    if (!s) {
        return NULL;
    }
    while (i < n) {
        unsigned c = d[i];
        size_t len = 0;
        if (c < 0x80) {
            int ok = c >= 0x20 || c == '\t' || c == '\n' || c == '\r' || c == '\f';
            s[i++] = ok && c != 0x7f ? (char)c : ' ';
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
        }
        if (len && len <= n - i && dm_spec_utf8_check((const char *)d + i, len, NULL) == 0) {
            memcpy(s + i, d + i, len);
            i += len;
        } else {
            s[i++] = '?';
        }
    }
    s[n] = '\0';
    return s;
}

static void check_plan(const struct dm_plan *p)
{
    CHECK(p->count >= 1 && p->items[0].kind == DM_PLAN_KIND_SPEC);
    CHECK(dm_refname_valid(p->branch));
    for (size_t i = 0; i < p->count; i++) {
        const char *path = p->items[i].path;
        size_t n = strlen(path);
        CHECK(n > 0 && path[n - 1] != '-');
        for (size_t j = 0; j < i; j++) {
            CHECK(strcmp(path, p->items[j].path) != 0);
        }
    }
}

/* The base of every repository-aware plan: made once, never freed (the fuzzer's lifetime). */
static const struct dm_repo *fixture_repo(void)
{
    static const char *const tree[] = {"package.json", "src/index.ts", "src/routes/users.ts",
                                       "src/components/index.ts", "migrations/0001_init.sql"};
    static struct dm_repo *r;

    if (r) {
        return r;
    }
    r = calloc(1, sizeof(*r));
    CHECK(r);
    r->n_tree = sizeof(tree) / sizeof(tree[0]);
    r->tree = calloc(r->n_tree, sizeof(*r->tree));
    CHECK(r->tree);
    for (size_t i = 0; i < r->n_tree; i++) {
        r->tree[i].path = strdup(tree[i]);
        CHECK(r->tree[i].path);
    }
    r->stack.http = DM_REPO_HTTP_HONO;
    r->stack.ui = DM_REPO_UI_REACT;
    r->stack.db = DM_REPO_DB_SQL;
    r->stack.test = DM_REPO_TEST_VITEST;
    r->stack.typescript = 1;
    r->stack.entry = strdup("src/index.ts");
    r->stack.barrel = strdup("src/components/index.ts");
    r->stack.migration_width = 4;
    r->stack.last_migration = 1;
    CHECK(r->stack.entry && r->stack.barrel);
    return r;
}

/* Every item of the spec is covered by a file; edits name files of the base. */
static void check_repo_plan(const struct dm_plan *p, const struct dm_spec *spec,
                            const struct dm_repo *r)
{
    const struct dm_spec_list *lists[] = {&spec->requirements, &spec->api_routes,
                                          &spec->ui_components, &spec->db_changes};

    check_plan(p);
    CHECK(p->stack != NULL);
    for (size_t i = 0; i < p->count; i++) {
        CHECK(p->items[i].kind != DM_PLAN_KIND_EDIT || dm_repo_has(r, p->items[i].path));
    }
    for (size_t l = 0; l < 4; l++) {
        for (size_t i = 0; i < lists[l]->count; i++) {
            int found = 0;
            for (size_t k = 0; k < p->count && !found; k++) {
                for (size_t c = 0; c < p->items[k].n_covers && !found; c++) {
                    found = strcmp(p->items[k].covers[c], lists[l]->items[i].text) == 0;
                }
            }
            CHECK(found);
        }
    }
}

/* md[0..len) is the spec; cstr is NUL-terminated text used for the optional sections. */
static void run(const char *md, size_t len, const char *cstr, const struct dm_spec_limits *lim)
{
    struct dm_spec *spec = NULL;
    struct dm_plan *plan = NULL;
    struct dm_plan *back = NULL;
    struct dm_error err;
    char *json = NULL;
    char *json2 = NULL;
    char *body = NULL;
    char *alt = NULL;

    if (dm_spec_parse(&spec, md, len, lim, &err) != 0) {
        CHECK(spec == NULL && err.code < 0 && err.msg[0]);
        return;
    }
    CHECK(spec->title[0] != '\0');
    if (dm_plan_build(&plan, spec, NULL, NULL, &err) != 0) {
        CHECK(plan == NULL);
        goto out;
    }
    check_plan(plan);
    for (size_t i = 1; i < plan->count; i++) {
        struct dm_prompt *p = NULL;
        /* Every item takes the same path: the first few and the last are enough. */
        if (i > 8 && i + 1 < plan->count) {
            continue;
        }
        CHECK(dm_prompt_build(&p, NULL, spec, plan, i, &err) == 0);
        CHECK(p->system[0] && p->user[0]);
        dm_prompt_free(p);
    }
    {
        body = dm_prbody_render(&(struct dm_prbody){.plan = plan, .spec = spec, .job_id = cstr});
        CHECK(body && strlen(body) < DM_PR_BODY_MAX);
    }
    json = dm_plan_to_json(plan);
    CHECK(json);
    CHECK(dm_plan_from_json(&back, json, &err) == 0);
    json2 = dm_plan_to_json(back);
    CHECK(json2 && strcmp(json, json2) == 0);
    if (dm_plan_branch_alt(&alt, plan, cstr, &err) == 0) {
        CHECK(dm_refname_valid(alt));
    }
    {
        /* The same spec in a repository's conventions. */
        const struct dm_repo *r = fixture_repo();
        struct dm_plan *rp = NULL;
        char *rb;
        CHECK(dm_plan_build(&rp, spec, NULL, r, &err) == 0);
        check_repo_plan(rp, spec, r);
        rb = dm_prbody_render(
            &(struct dm_prbody){.plan = rp, .spec = spec, .job_id = cstr, .verification = cstr});
        CHECK(rb && strlen(rb) < DM_PR_BODY_MAX);
        free(rb);
        dm_plan_free(rp);
    }
out:
    free(alt);
    free(json);
    free(json2);
    free(body);
    dm_plan_free(back);
    dm_plan_free(plan);
    dm_spec_free(spec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dm_spec_limits small;
    struct dm_plan *p = NULL;
    struct dm_error err;
    char *text = sanitise(data, size);
    char *out = NULL;

    if (!text) {
        return 0;
    }
    run((const char *)data, size, text, NULL);
    run(text, size, text, NULL);
    dm_spec_limits_init(&small);
    small.max_items = 3;
    small.max_item_bytes = 40;
    small.max_sections = 4;
    small.max_depth = 3;
    run(text, size, text, &small);

    if (dm_reply_extract_file(&out, (const char *)data, size, &err) == 0) {
        size_t n = strlen(out);
        CHECK(n > 0 && out[n - 1] == '\n');
        free(out);
    } else {
        CHECK(out == NULL && err.msg[0]);
    }
    if (dm_prompt_repair(&out, NULL, "src/x.ts", text, size, text, &err) == 0) {
        free(out);
    }
    /* The bytes as plan JSON: must be refused or accepted cleanly. */
    if (dm_plan_from_json(&p, text, &err) == 0) {
        char *j = dm_plan_to_json(p);
        CHECK(p->count >= 1 && dm_refname_valid(p->branch) && j);
        free(j);
        dm_plan_free(p);
    }
    free(text);
    return 0;
}
