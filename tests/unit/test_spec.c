/*
 * Unit tests for spec: the corpus in tests/data/specs (each <name>.md with a hand-written
 * <name>.expected.json holding the exact parse result and plan, or the error), and the limits,
 * input checks and heading rules one by one.
 */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dream/core/buf.h"
#include "dream/domain/plan.h"
#include "dream/domain/spec.h"

static char *corpus_path(const char *name, const char *ext)
{
    const char *src = getenv("DREAM_SOURCE_DIR");
    struct dm_buf b;

    dm_buf_init(&b, 0);
    if (src && *src) {
        dm_buf_printf(&b, "%s/tests/data/specs/%s%s", src, name, ext);
    } else {
        /* Run by hand: find the corpus from this file's own path. */
        const char *slash = strrchr(__FILE__, '/');
        int dir = slash ? (int)(slash - __FILE__) : 1;
        dm_buf_printf(&b, "%.*s/../data/specs/%s%s", dir, slash ? __FILE__ : ".", name, ext);
    }
    return dm_buf_detach(&b);
}

static char *slurp(const char *path, size_t *len)
{
    struct dm_buf b;
    char chunk[8192];
    size_t n;
    FILE *f = fopen(path, "rb");

    cr_assert_not_null(f, "cannot open %s", path);
    dm_buf_init(&b, 0);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        cr_assert_eq(dm_buf_append(&b, chunk, n), 0);
    }
    fclose(f);
    *len = b.len;
    return dm_buf_detach(&b);
}

static void check_list(const char *file, const char *what, const struct dm_spec_list *got,
                       const cJSON *want)
{
    size_t n = want ? (size_t)cJSON_GetArraySize(want) : 0;
    size_t i = 0;

    cr_assert_eq(got->count, n, "%s: %s: %zu items, expected %zu", file, what, got->count, n);
    for (const cJSON *w = want ? want->child : NULL; w; w = w->next, i++) {
        const char *text;
        const char *ctx = "";
        if (cJSON_IsString(w)) {
            text = w->valuestring;
        } else {
            text = cJSON_GetObjectItem(w, "text")->valuestring;
            ctx = cJSON_GetObjectItem(w, "context")->valuestring;
        }
        cr_assert_str_eq(got->items[i].text, text, "%s: %s[%zu] text", file, what, i);
        cr_assert_str_eq(got->items[i].context, ctx, "%s: %s[%zu] context", file, what, i);
    }
}

static void run_corpus(const char *name)
{
    char *md_path = corpus_path(name, ".md");
    char *exp_path = corpus_path(name, ".expected.json");
    size_t md_len;
    size_t exp_len;
    char *md = slurp(md_path, &md_len);
    char *exp_text = slurp(exp_path, &exp_len);
    cJSON *exp = cJSON_Parse(exp_text);
    const cJSON *e_err;
    struct dm_spec *spec = NULL;
    struct dm_plan *plan = NULL;
    struct dm_error err;
    int rc;

    cr_assert_not_null(exp, "%s: expected file is not JSON", exp_path);
    dm_error_clear(&err);
    rc = dm_spec_parse(&spec, md, md_len, NULL, &err);
    e_err = cJSON_GetObjectItem(exp, "error");
    if (e_err) {
        const char *want = cJSON_GetObjectItem(exp, "message")->valuestring;
        cr_assert_str_eq(dm_err_name(rc), e_err->valuestring, "%s: rc %d (%s)", name, rc, err.msg);
        cr_assert_eq(err.code, rc);
        cr_assert_not_null(strstr(err.msg, want), "%s: message \"%s\" lacks \"%s\"", name, err.msg,
                           want);
        cr_assert_null(spec);
        goto out;
    }
    cr_assert_eq(rc, 0, "%s: %s", name, err.msg);
    cr_assert_str_eq(spec->title, cJSON_GetObjectItem(exp, "title")->valuestring, "%s title", name);
    cr_assert_str_eq(spec->overview, cJSON_GetObjectItem(exp, "overview")->valuestring,
                     "%s overview", name);
    if (cJSON_GetObjectItem(exp, "preamble")) {
        cr_assert_str_eq(spec->preamble, cJSON_GetObjectItem(exp, "preamble")->valuestring,
                         "%s preamble", name);
    }
    check_list(name, "requirements", &spec->requirements, cJSON_GetObjectItem(exp, "requirements"));
    check_list(name, "api", &spec->api_routes, cJSON_GetObjectItem(exp, "api"));
    check_list(name, "db", &spec->db_changes, cJSON_GetObjectItem(exp, "db"));
    check_list(name, "ui", &spec->ui_components, cJSON_GetObjectItem(exp, "ui"));
    {
        const cJSON *secs = cJSON_GetObjectItem(exp, "sections");
        size_t i = 0;
        cr_assert_eq(spec->section_count, (size_t)cJSON_GetArraySize(secs), "%s sections", name);
        for (const cJSON *s = secs->child; s; s = s->next, i++) {
            cr_assert_str_eq(spec->sections[i].heading, cJSON_GetArrayItem(s, 0)->valuestring,
                             "%s section %zu", name, i);
            cr_assert_str_eq(dm_spec_cat_name(spec->sections[i].category),
                             cJSON_GetArrayItem(s, 1)->valuestring, "%s section %zu (%s)", name, i,
                             spec->sections[i].heading);
        }
    }
    cr_assert_eq(dm_plan_build(&plan, spec, NULL, NULL, &err), 0, "%s: %s", name, err.msg);
    {
        char *json = dm_plan_to_json(plan);
        cJSON *got = cJSON_Parse(json);
        cr_assert(cJSON_Compare(got, cJSON_GetObjectItem(exp, "plan"), 1), "%s: plan differs: %s",
                  name, json);
        cJSON_Delete(got);
        free(json);
    }
out:
    dm_plan_free(plan);
    dm_spec_free(spec);
    cJSON_Delete(exp);
    free(exp_text);
    free(md);
    free(md_path);
    free(exp_path);
}

#define CORPUS(test, file)                                                                         \
    Test(spec_corpus, test)                                                                        \
    {                                                                                              \
        run_corpus(file);                                                                          \
    }

CORPUS(basic, "01-basic")
CORPUS(crlf, "02-crlf")
CORPUS(out_of_scope, "03-out-of-scope")
CORPUS(prose_lines, "04-prose-lines")
CORPUS(code_fences, "05-code-fences")
CORPUS(nested_lists, "06-nested-lists")
CORPUS(duplicate_headings, "07-duplicate-headings")
CORPUS(no_headings, "08-no-headings")
CORPUS(unicode, "09-unicode")
CORPUS(setext, "10-setext")
CORPUS(huge, "11-huge")
CORPUS(too_many_items, "12-too-many-items")
CORPUS(deeply_nested, "13-deeply-nested")
CORPUS(too_deep, "14-too-deep")
CORPUS(binary_junk, "15-binary-junk")
CORPUS(non_goals, "16-non-goals")
CORPUS(title_rules, "17-title-rules")

static int parse_str(struct dm_spec **s, const char *md, const struct dm_spec_limits *lim,
                     struct dm_error *err)
{
    dm_error_clear(err);
    return dm_spec_parse(s, md, strlen(md), lim, err);
}

/* A spec with n items of `text-<i>` under `## <heading>`. */
static char *items_spec(const char *heading, size_t n)
{
    struct dm_buf b;
    dm_buf_init(&b, 0);
    dm_buf_printf(&b, "# T\n\n## %s\n\n", heading);
    for (size_t i = 0; i < n; i++) {
        dm_buf_printf(&b, "- item %zu\n", i);
    }
    return dm_buf_detach(&b);
}

Test(spec_limits, items_per_category_at_and_over_the_limit)
{
    struct dm_spec *s = NULL;
    struct dm_error err;
    char *md = items_spec("Requirements", 200);

    cr_assert_eq(parse_str(&s, md, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(s->requirements.count, 200);
    dm_spec_free(s);
    free(md);
    md = items_spec("Requirements", 201);
    cr_assert_eq(parse_str(&s, md, NULL, &err), DM_ERR_LIMIT);
    cr_assert_null(s);
    cr_assert(strstr(err.msg, "more than 200 requirements items"), "%s", err.msg);
    free(md);
    /* Uncategorised sections are not limited by count. */
    md = items_spec("Glossary", 500);
    cr_assert_eq(parse_str(&s, md, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(s->sections[0].items.count, 500);
    cr_assert_eq(s->requirements.count, 0);
    dm_spec_free(s);
    free(md);
}

Test(spec_limits, custom_limits_and_zero_means_default)
{
    struct dm_spec_limits lim;
    struct dm_spec *s = NULL;
    struct dm_error err;

    memset(&lim, 0, sizeof(lim));
    lim.max_items = 2;
    cr_assert_eq(parse_str(&s, "# T\n## API\n- a\n- b\n## Routes\n- c\n", &lim, &err),
                 DM_ERR_LIMIT);
    cr_assert(strstr(err.msg, "more than 2 api items"), "%s", err.msg);
    cr_assert_eq(parse_str(&s, "# T\n## API\n- a\n- b\n", &lim, &err), 0);
    dm_spec_free(s);
}

Test(spec_limits, item_text_length)
{
    struct dm_spec *s = NULL;
    struct dm_error err;
    struct dm_buf b;
    char *md;

    dm_buf_init(&b, 0);
    dm_buf_puts(&b, "# T\n## API\n- ");
    for (int i = 0; i < 2000; i++) {
        dm_buf_puts(&b, "x");
    }
    dm_buf_puts(&b, "\n");
    cr_assert_eq(parse_str(&s, b.data, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(strlen(s->api_routes.items[0].text), 2000);
    dm_spec_free(s);
    b.len -= 1;
    dm_buf_puts(&b, "y\n");
    md = dm_buf_detach(&b);
    cr_assert_eq(parse_str(&s, md, NULL, &err), DM_ERR_LIMIT);
    cr_assert(strstr(err.msg, "2001 bytes long (limit 2000)"), "%s", err.msg);
    free(md);
}

Test(spec_limits, spec_bytes_title_sections_depth)
{
    struct dm_spec *s = NULL;
    struct dm_error err;
    struct dm_buf b;
    size_t big = DM_SPEC_DEFAULT_MAX_BYTES + 1;
    char *md = malloc(big);

    memset(md, 'a', big);
    cr_assert_eq(dm_spec_parse(&s, md, big, NULL, &err), DM_ERR_LIMIT);
    cr_assert(strstr(err.msg, "262145 bytes long (limit 262144)"), "%s", err.msg);
    /* exactly at the limit is fine */
    cr_assert_eq(dm_spec_parse(&s, md, big - 1, NULL, &err), 0, "%s", err.msg);
    dm_spec_free(s);
    free(md);

    dm_buf_init(&b, 0);
    dm_buf_puts(&b, "# ");
    for (int i = 0; i < 257; i++) {
        dm_buf_puts(&b, "t");
    }
    cr_assert_eq(parse_str(&s, b.data, NULL, &err), DM_ERR_LIMIT);
    cr_assert(strstr(err.msg, "title is 257 bytes"), "%s", err.msg);
    dm_buf_free(&b);

    dm_buf_init(&b, 0);
    dm_buf_puts(&b, "# T\n");
    for (int i = 0; i < 257; i++) {
        dm_buf_printf(&b, "## S%d\n", i);
    }
    cr_assert_eq(parse_str(&s, b.data, NULL, &err), DM_ERR_LIMIT);
    cr_assert(strstr(err.msg, "more than 256 sections"), "%s", err.msg);
    dm_buf_free(&b);

    /* Block quotes count like lists; 17 levels is too deep, 16 is fine. */
    cr_assert_eq(parse_str(&s, "# T\n\n>>>>>>>>>>>>>>>> deep\n", NULL, &err), 0, "%s", err.msg);
    dm_spec_free(s);
    cr_assert_eq(parse_str(&s, "# T\n\n>>>>>>>>>>>>>>>>> deep\n", NULL, &err), DM_ERR_LIMIT);
    cr_assert(strstr(err.msg, "line 3"), "%s", err.msg);
}

Test(spec_limits, pathological_inputs_do_not_crash)
{
    struct dm_spec *s = NULL;
    struct dm_error err;
    size_t n = 200000;
    char *md = malloc(n + 1);

    /* 200k nested block quotes, 200k emphasis openers, 200k brackets: bounded and clean. */
    memset(md, '>', n);
    md[n] = '\0';
    cr_assert_eq(parse_str(&s, md, NULL, &err), DM_ERR_LIMIT);
    memset(md, '*', n);
    md[0] = 'x';
    cr_assert_eq(parse_str(&s, md, NULL, &err), 0, "%s", err.msg);
    dm_spec_free(s);
    memset(md, '[', n);
    cr_assert_eq(parse_str(&s, md, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(strlen(s->overview), n);
    dm_spec_free(s);
    free(md);
}

Test(spec_input, rejects_binary_and_bad_utf8_with_offsets)
{
    static const struct {
        const char *md;
        size_t len;
        const char *msg;
    } cases[] = {
        {"# Caf\xe9\n", 7, "0xe9 at offset 5"},           /* Latin-1 */
        {"# A\xc0\xaf\n", 6, "0xc0 at offset 3"},         /* overlong '/' */
        {"# A\xed\xa0\x80\n", 7, "0xed at offset 3"},     /* surrogate */
        {"# A\xf4\x90\x80\x80\n", 8, "0xf4 at offset 3"}, /* past U+10FFFF */
        {"# A\xe2\x82", 5, "0xe2 at offset 3"},           /* truncated */
        {"# A\x00 B\n", 7, "0x00 at offset 3"},           /* NUL */
        {"# A\x1b[31m\n", 9, "0x1b at offset 3"},         /* escape */
        {"# A\x7f\n", 5, "0x7f at offset 3"},             /* DEL */
    };
    struct dm_spec *s = NULL;
    struct dm_error err;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        dm_error_clear(&err);
        cr_assert_eq(dm_spec_parse(&s, cases[i].md, cases[i].len, NULL, &err), DM_ERR_INVALID,
                     "case %zu", i);
        cr_assert_null(s);
        cr_assert(strstr(err.msg, cases[i].msg), "case %zu: %s", i, err.msg);
    }
}

Test(spec_input, empty_blank_bom_tabs_and_cr)
{
    struct dm_spec *s = NULL;
    struct dm_error err;

    cr_assert_eq(dm_spec_parse(&s, "", 0, NULL, &err), DM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "spec is empty");
    cr_assert_eq(parse_str(&s, " \r\n\t\n\f ", NULL, &err), DM_ERR_INVALID);
    cr_assert_eq(parse_str(&s, "\xef\xbb\xbf   ", NULL, &err), DM_ERR_INVALID);

    cr_assert_eq(parse_str(&s, "\xef\xbb\xbf# Title\n", NULL, &err), 0, "%s", err.msg);
    cr_assert_str_eq(s->title, "Title");
    dm_spec_free(s);

    /* Old Mac line ends and tabs. */
    cr_assert_eq(parse_str(&s, "# T\r## API\r\r-\tGET /a\r-\tGET /b\r", NULL, &err), 0);
    cr_assert_eq(s->api_routes.count, 2);
    cr_assert_str_eq(s->api_routes.items[1].text, "GET /b");
    dm_spec_free(s);
}

Test(spec_rules, category_order_and_words)
{
    static const struct {
        const char *heading;
        enum dm_spec_cat cat;
    } cases[] = {
        {"API Overview", DM_SPEC_CAT_OVERVIEW}, /* overview is tried first */
        {"API requirements", DM_SPEC_CAT_REQUIREMENTS},
        {"UI and DB", DM_SPEC_CAT_DB},
        {"Scoped things", DM_SPEC_CAT_NONE}, /* word match, not substring */
        {"Descriptions", DM_SPEC_CAT_NONE},
        {"Interface", DM_SPEC_CAT_UI},
        {"**API** `routes`", DM_SPEC_CAT_API}, /* markup dropped */
        {"REST-API (v2)", DM_SPEC_CAT_API},
        {"db2", DM_SPEC_CAT_NONE},
        {"Out of Scope: API", DM_SPEC_CAT_EXCLUDED},
        {"Non Goals", DM_SPEC_CAT_EXCLUDED},
        {"NON-GOALS / requirements", DM_SPEC_CAT_EXCLUDED},
        {"Scope (out of)", DM_SPEC_CAT_REQUIREMENTS}, /* the phrase must be in order */
        {"Future-work", DM_SPEC_CAT_EXCLUDED},
        {"Work for the future", DM_SPEC_CAT_NONE},
    };
    struct dm_error err;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dm_spec *s = NULL;
        char md[256];
        snprintf(md, sizeof(md), "# T\n\n## %s\n\n- x\n", cases[i].heading);
        cr_assert_eq(parse_str(&s, md, NULL, &err), 0, "%s", err.msg);
        cr_assert_eq(s->section_count, 1);
        cr_assert_eq(s->sections[0].category, cases[i].cat, "\"%s\" → %s", cases[i].heading,
                     dm_spec_cat_name(s->sections[0].category));
        dm_spec_free(s);
    }
}

Test(spec_rules, section_find_and_keys)
{
    struct dm_spec *s = NULL;
    struct dm_error err;
    const struct dm_spec_section *sec;

    cr_assert_eq(parse_str(&s,
                           "# T\n\n## Open Questions\n\nWho pays?\n\n- q1\n  - sub\n\n"
                           "```\ncode\n```\n\nMore.\n",
                           NULL, &err),
                 0);
    sec = dm_spec_section_find(s, "OPEN questions");
    cr_assert_not_null(sec);
    cr_assert_str_eq(sec->key, "open questions");
    cr_assert_str_eq(sec->heading, "Open Questions");
    cr_assert_eq(sec->level, 2);
    cr_assert_str_eq(sec->prose, "Who pays?\n\nq1\n\nsub\n\nMore.");
    cr_assert_eq(sec->items.count, 1);
    cr_assert_str_eq(sec->items.items[0].context, "- sub");
    cr_assert_null(dm_spec_section_find(s, "open"));
    cr_assert_null(dm_spec_list_of(s, DM_SPEC_CAT_OVERVIEW));
    cr_assert_eq(dm_spec_list_of(s, DM_SPEC_CAT_UI), &s->ui_components);
    dm_spec_free(s);
}

Test(spec_rules, items_skip_non_paragraph_first_blocks_and_keep_context)
{
    struct dm_spec *s = NULL;
    struct dm_error err;

    cr_assert_eq(parse_str(&s,
                           "# T\n## API\n"
                           "- \n"                   /* empty item */
                           "- ```\n  code\n  ```\n" /* code first: skipped */
                           "- <!-- c -->\n"         /* html only */
                           "- GET /a\n"
                           "  ```\n  body\n  ```\n" /* code in context: left out */
                           "  > quoted note\n"      /* block quote: its paragraph kept */
                           "  - sub *one*\n"
                           "\n"
                           "    sub two para\n"
                           "  - sub two\n",
                           NULL, &err),
                 0, "%s", err.msg);
    cr_assert_eq(s->api_routes.count, 1);
    cr_assert_str_eq(s->api_routes.items[0].text, "GET /a");
    cr_assert_str_eq(s->api_routes.items[0].context,
                     "quoted note\n- sub one\n  sub two para\n- sub two");
    dm_spec_free(s);
}

Test(spec_rules, title_heading_ends_a_section_and_orphans_go_to_preamble)
{
    struct dm_spec *s = NULL;
    struct dm_error err;

    cr_assert_eq(parse_str(&s,
                           "## Requirements\n- r1\n# The Title\norphan text\n- not an item\n"
                           "## API\n- GET /x\n",
                           NULL, &err),
                 0);
    cr_assert_str_eq(s->title, "The Title");
    cr_assert_eq(s->section_count, 2);
    cr_assert_str_eq(s->sections[0].prose, "r1");
    cr_assert_eq(s->requirements.count, 1);
    cr_assert_str_eq(s->preamble, "orphan text\n\nnot an item");
    cr_assert_str_eq(s->overview, s->preamble);
    cr_assert_eq(s->api_routes.count, 1);
    dm_spec_free(s);
}

Test(spec_rules, overview_sections_concatenate_and_fall_back)
{
    struct dm_spec *s = NULL;
    struct dm_error err;

    cr_assert_eq(parse_str(&s,
                           "# T\npre\n## Summary\nA\n## Description\n```\nx\n```\n"
                           "## Overview\nB\n",
                           NULL, &err),
                 0);
    cr_assert_str_eq(s->overview, "A\n\nB");
    cr_assert_str_eq(s->preamble, "pre");
    dm_spec_free(s);
    cr_assert_eq(parse_str(&s, "# T\npre\n## Summary\n```\nx\n```\n", NULL, &err), 0);
    cr_assert_str_eq(s->overview, "pre");
    dm_spec_free(s);
}

Test(spec_rules, plain_text_entities_breaks_and_space)
{
    struct dm_spec *s = NULL;
    struct dm_error err;

    cr_assert_eq(
        parse_str(&s, "#   Fish &amp; Chips\\!  \n## UI\n- a  \n  b\\\n  c\t\td\n", NULL, &err), 0);
    cr_assert_str_eq(s->title, "Fish & Chips!");
    cr_assert_str_eq(s->ui_components.items[0].text, "a b c d");
    dm_spec_free(s);
}

Test(spec_utf8, prefix_never_splits)
{
    const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x8d\xb0z"; /* a é € 🍰 z */
    size_t len = strlen(s);

    cr_assert_eq(dm_spec_utf8_prefix(s, len, 0), 0);
    cr_assert_eq(dm_spec_utf8_prefix(s, len, 1), 1);
    cr_assert_eq(dm_spec_utf8_prefix(s, len, 2), 3);
    cr_assert_eq(dm_spec_utf8_prefix(s, len, 3), 6);
    cr_assert_eq(dm_spec_utf8_prefix(s, len, 4), 10);
    cr_assert_eq(dm_spec_utf8_prefix(s, len, 99), len);
    cr_assert_eq(dm_spec_utf8_check(s, len, NULL), 0);
}
