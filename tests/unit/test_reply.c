/*
 * Unit tests for reply: the one parser of model output. File replies (bare, one fence, CRLF,
 * tildes, longer fences) and JSON replies (bare or fenced object), and the hostile ones both
 * must refuse: truncated, several fences, prose around, huge, NUL, invalid UTF-8, nested
 * backticks.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dream/core/error.h"
#include "dream/domain/reply.h"

static char *extract(const char *reply, int want_rc, struct dm_error *err)
{
    char *out = (char *)1;
    dm_error_clear(err);
    cr_assert_eq(dm_reply_extract_file(&out, reply, strlen(reply), err), want_rc, "reply [%s]: %s",
                 reply, err->msg);
    if (want_rc) {
        cr_assert_null(out);
    }
    return out;
}

Test(reply_file, unwraps_and_takes_as_is)
{
    static const struct {
        const char *reply;
        const char *file;
    } cases[] = {
        {"```ts\nconst a = 1;\n```", "const a = 1;\n"},
        {"\n\n  ```typescript title=x\n  A\n\n   B\n  ```  \n\n", "A\n\n B\n"},
        {"~~~\nSELECT 1;\n~~~", "SELECT 1;\n"},
        {"````md\n```js\nx\n```\n````\n", "```js\nx\n```\n"},
        {"````\nx\n```\n````", "x\n```\n"},
        {"```\r\na\r\nb\r\n```\r\n", "a\nb\n"},
        {"import x from 'y';\n\nexport default x;\n\n\n",
         "import x from 'y';\n\nexport default x;\n"},
        {"\n\n  indented first\nsecond   \n", "  indented first\nsecond\n"},
        {"CREATE TABLE IF NOT EXISTS t (id INTEGER);",
         "CREATE TABLE IF NOT EXISTS t (id INTEGER);\n"},
        {"    ```\nindented four is code, not a fence\n",
         "    ```\nindented four is code, not a fence\n"},
    };
    struct dm_error err;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = extract(cases[i].reply, 0, &err);
        cr_assert_str_eq(out, cases[i].file, "case %zu", i);
        free(out);
    }
}

Test(reply_file, rejects_what_is_not_one_file)
{
    static const struct {
        const char *reply;
        const char *msg;
    } cases[] = {
        {"", "reply is empty"},
        {"   \n\t\r\n", "reply is empty"},
        {"Here is the file:\n```ts\nx\n```", "text around a code block (fence on line 2)"},
        {"```ts\nx\n```\nHope this helps!", "after its code block (line 4)"},
        {"```ts\nx\n```\n\n```ts\ny\n```", "after its code block"},
        {"```ts\nx\n", "never closed"},
        {"```ts\nx\n~~~", "never closed"},
        {"```\n\n  \n```", "code block is empty"},
        {"Sure! Here's the code.\nconst x = 1;", "starts with prose"},
        {"Here's a component\n", "starts with prose"},
        {"const a = `\n```\n`;", "text around a code block"},
    };
    struct dm_error err;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        extract(cases[i].reply, DM_ERR_INVALID, &err);
        cr_assert(strstr(err.msg, cases[i].msg), "case %zu: %s", i, err.msg);
    }
    /* Words that only start like prose are fine. */
    free(extract("Surely(); // a call\n", 0, &err));
}

Test(reply_file, nul_and_size)
{
    char *out = NULL;
    struct dm_error err;
    char *big = malloc(DM_REPLY_MAX + 1);

    cr_assert_eq(dm_reply_extract_file(&out, "a\0b", 3, &err), DM_ERR_INVALID);
    cr_assert(strstr(err.msg, "NUL"), "%s", err.msg);
    memset(big, 'a', DM_REPLY_MAX + 1);
    cr_assert_eq(dm_reply_extract_file(&out, big, DM_REPLY_MAX + 1, &err), DM_ERR_LIMIT);
    cr_assert_eq(dm_reply_extract_file(&out, big, DM_REPLY_MAX, &err), 0);
    cr_assert_eq(strlen(out), DM_REPLY_MAX + 1);
    free(out);
    free(big);
}

Test(reply_file, hostile)
{
    static const struct {
        const char *reply;
        const char *msg;
    } cases[] = {
        /* Truncated: the model ran out of tokens inside the block. */
        {"```ts\nexport const a = 1;\nexport const b", "never closed"},
        {"````ts\nx\n```", "never closed"},
        /* Several fences: two files, or an explanation in a second block. */
        {"```ts\na\n```\n```ts\nb\n```", "after its code block"},
        {"```ts\na\n```\nNote:\n```\nb\n```\n", "after its code block (line 4)"},
        /* Nested backticks: an inner ``` closes a ``` block early, leaving text after it. */
        {"```md\n# t\n```js\nx\n```\n```", "after its code block"},
        /* Prose after a bare file that opens a block. */
        {"const a = 1;\n```\nexplanation\n```", "text around a code block (fence on line 2)"},
        /* Invalid UTF-8: an overlong slash, a lone continuation byte, a cut sequence. */
        {"const a = '\xc0\xaf';\n", "not UTF-8 (bad byte at offset 11)"},
        {"```ts\nx\x80\n```", "not UTF-8 (bad byte at offset 7)"},
        {"const e = '\xe2\x82';", "not UTF-8"},
        {"\xed\xa0\x80", "not UTF-8 (bad byte at offset 0)"},
    };
    struct dm_error err;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        extract(cases[i].reply, DM_ERR_INVALID, &err);
        cr_assert(strstr(err.msg, cases[i].msg), "case %zu: %s", i, err.msg);
    }
}

Test(reply_file, nested_backticks_in_a_longer_fence_and_utf8_kept)
{
    struct dm_error err;
    char *out = extract("`````markdown\n````js\n```\nx\n```\n````\n`````", 0, &err);

    cr_assert_str_eq(out, "````js\n```\nx\n```\n````\n");
    free(out);
    out = extract("~~~ts\nconst s = \"```\"; // \xe2\x80\xa6 \xf0\x9f\x98\x80\n~~~\n", 0, &err);
    cr_assert_str_eq(out, "const s = \"```\"; // \xe2\x80\xa6 \xf0\x9f\x98\x80\n");
    free(out);
}

/* ---- JSON replies ------------------------------------------------------------------------ */

static cJSON *json(const char *reply, size_t len, size_t max, int want_rc, struct dm_error *err)
{
    cJSON *root = (cJSON *)1;

    dm_error_clear(err);
    cr_assert_eq(dm_reply_json(&root, reply, len, max, "test reply", err), want_rc,
                 "reply [%.200s]: %s", reply, err->msg);
    if (want_rc) {
        cr_assert_null(root);
        cr_assert(strncmp(err->msg, "test reply", 10) == 0, "%s", err->msg);
    }
    return root;
}

Test(reply_json, bare_and_fenced_objects)
{
    static const char *const good[] = {
        "{\"a\":1}",
        "  \n{\"a\":1}\n\n",
        "```json\n{\"a\":1}\n```",
        "```\r\n{\"a\":1}\r\n```\r\n",
        "\n~~~~ json\n{\"a\":1}\n  ~~~~~\n",
        "````\n{\"a\":\"```\"}\n````",
    };
    struct dm_error err;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cJSON *root = json(good[i], strlen(good[i]), 1024, 0, &err);
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "a");
        cr_assert(cJSON_IsNumber(a) || cJSON_IsString(a), "case %zu", i);
        cJSON_Delete(root);
    }
}

Test(reply_json, hostile)
{
    static const struct {
        const char *reply;
        const char *msg;
    } cases[] = {
        {"", "is empty"},
        {" \n\t ", "is empty"},
        /* Truncated: cut inside a string, inside the object, inside the fence. */
        {"{\"summary\":\"the file dro", "truncated JSON"},
        {"{\"a\":[1,2", "truncated JSON"},
        {"```json\n{\"a\":1}", "unclosed code fence or text after it"},
        {"```json", "unclosed code fence"},
        /* Several fences, or prose around one. */
        {"```json\n{\"a\":1}\n```\n```json\n{\"a\":2}\n```", "text after the JSON object"},
        {"Here is my review:\n```json\n{\"a\":1}\n```", "not a JSON object"},
        {"```json\n{\"a\":1}\n```\nDone.", "unclosed code fence or text after it"},
        /* No fence, but prose. */
        {"Looks good to me.", "not a JSON object"},
        {"{\"a\":1} and that is all", "text after the JSON object"},
        /* Nested backticks: the inner fence is shorter, so it cannot close the outer one, and
         * a fence of the wrong character does not close either. */
        {"````json\n{\"a\":1}\n```", "unclosed code fence or text after it"},
        {"```json\n{\"a\":1}\n~~~", "unclosed code fence or text after it"},
        /* Not an object, or malformed. */
        {"[1,2]", "not a JSON object"},
        {"{\"a\":,}", "malformed JSON"},
        /* Invalid UTF-8 and control bytes. */
        {"{\"a\":\"\xc3\x28\"}", "not UTF-8 text (bad byte at offset 6)"},
        {"{\"a\":\"\xf4\x90\x80\x80\"}", "not UTF-8 text"},
        {"{\"a\":\"\x1b[31m\"}", "not UTF-8 text (bad byte at offset 6)"},
    };
    struct dm_error err;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json(cases[i].reply, strlen(cases[i].reply), 1024, DM_ERR_INVALID, &err);
        cr_assert(strstr(err.msg, cases[i].msg), "case %zu: %s", i, err.msg);
    }
    /* NUL inside the stated length. */
    json("{\"a\":1}\0", 8, 1024, DM_ERR_INVALID, &err);
    cr_assert(strstr(err.msg, "not UTF-8 text (bad byte at offset 7)"), "%s", err.msg);
    json(NULL, 0, 1024, DM_ERR_INVALID, &err);
}

Test(reply_json, huge)
{
    size_t n = 200 * 1024;
    char *big = malloc(n + 1);
    struct dm_error err;
    cJSON *root;

    /* A valid object just over the cap is refused by size, before any parsing. */
    big[0] = '{';
    big[1] = '"';
    big[2] = 'a';
    big[3] = '"';
    big[4] = ':';
    big[5] = '"';
    memset(big + 6, 'x', n - 8);
    big[n - 2] = '"';
    big[n - 1] = '}';
    big[n] = '\0';
    json(big, n, n - 1, DM_ERR_INVALID, &err);
    cr_assert(strstr(err.msg, "bytes (limit"), "%s", err.msg);
    root = json(big, n, n, 0, &err);
    cr_assert_eq(strlen(cJSON_GetObjectItemCaseSensitive(root, "a")->valuestring), n - 8);
    cJSON_Delete(root);
    /* Deep nesting is refused by cJSON's nesting limit, not by the stack. */
    memset(big, '[', n);
    big[0] = '{';
    json(big, n, n, DM_ERR_INVALID, &err);
    free(big);
}
