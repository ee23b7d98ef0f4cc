/* Unit tests for forge_proto: owner/repo names, the pull request title and the body cap, and
 * the decoding of GitHub's pull request and error answers. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "dream/core/error.h"
#include "dream/domain/forge_proto.h"

/* Characters as GitHub counts them: a 4-byte character counts twice (UTF-16 units). */
static size_t gh_chars(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p & 0xC0) != 0x80) {
            n += *p >= 0xF0 ? 2 : 1;
        }
    }
    return n;
}

Test(forge_proto, names)
{
    const char *good[] = {"acme", "todo-api", "a.b_c-D9", "..a", ".github"};
    const char *bad[] = {"", ".", "..", "a/b", "a b", "ä", "a:b", "x\n"};
    char longest[DM_FORGE_NAME_MAX + 2];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cr_assert(dm_forge_name_valid(good[i]), "%s", good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_not(dm_forge_name_valid(bad[i]), "%s", bad[i]);
    }
    cr_assert_not(dm_forge_name_valid(NULL));
    memset(longest, 'a', DM_FORGE_NAME_MAX);
    longest[DM_FORGE_NAME_MAX] = '\0';
    cr_assert(dm_forge_name_valid(longest));
    longest[DM_FORGE_NAME_MAX] = 'a';
    longest[DM_FORGE_NAME_MAX + 1] = '\0';
    cr_assert_not(dm_forge_name_valid(longest));
    cr_assert_str_eq(dm_forge_name_problem(longest), "must be at most 100 characters");
    cr_assert_str_eq(dm_forge_name_problem(".."), "must not be \".\" or \"..\"");
    cr_assert_str_eq(dm_forge_name_problem("a b"), "must match ^[a-zA-Z0-9._-]+$");
    cr_assert_str_eq(dm_forge_name_problem(""), "must match ^[a-zA-Z0-9._-]+$");
    cr_assert_null(dm_forge_name_problem("todo-api"));
}

Test(forge_proto, cap_body_cuts_at_character_boundaries)
{
    /* "é" is 2 bytes, one character; "😀" is 4 bytes, two UTF-16 units. */
    char in[4000] = "";
    char *s = dm_forge_cap_body("abc", 10);
    cr_assert_str_eq(s, "abc");
    free(s);
    s = dm_forge_cap_body("0123456789", 10);
    cr_assert_str_eq(s, "0123456789", "exactly the cap is not cut");
    free(s);
    for (int i = 0; i < 300; i++) {
        strcat(in, i % 2 ? "\xc3\xa9" : "\xf0\x9f\x98\x80");
    }
    s = dm_forge_cap_body(in, 200);
    cr_assert_leq(gh_chars(s), 200);
    cr_assert_geq(gh_chars(s), 199, "it keeps as much as fits");
    const char *note = strstr(s, "\n\n_(truncated by dreamd");
    cr_assert_not_null(note);
    cr_assert_neq(((unsigned char)note[-1] & 0xC0), 0xC0, "no dangling lead byte");
    cr_assert_eq(strncmp(s, in, (size_t)(note - s)), 0, "the kept part is the start of the body");
    free(s);
    s = dm_forge_cap_body(NULL, 10);
    cr_assert_str_eq(s, "");
    free(s);
}

Test(forge_proto, long_ascii_body_fits_github)
{
    size_t n = 70000;
    char *big = malloc(n + 1);
    char *s;
    memset(big, 'x', n);
    big[n] = '\0';
    s = dm_forge_cap_body(big, DM_FORGE_BODY_MAX);
    cr_assert_eq(strlen(s), DM_FORGE_BODY_MAX, "cut to exactly the cap, note included");
    cr_assert(strstr(s, "truncated") != NULL);
    free(s);
    free(big);
}

Test(forge_proto, title_prefix_controls_and_cap)
{
    char *t = dm_forge_title("Add a todo API");
    char long_title[600];
    cr_assert_str_eq(t, "[Dream] Add a todo API");
    free(t);
    t = dm_forge_title("[Dream] Already prefixed");
    cr_assert_str_eq(t, "[Dream] Already prefixed", "the prefix is not doubled");
    free(t);
    t = dm_forge_title("two\nlines\tand\x7f");
    cr_assert_str_eq(t, "[Dream] two lines and ");
    free(t);
    memset(long_title, 'y', sizeof(long_title) - 1);
    long_title[sizeof(long_title) - 1] = '\0';
    t = dm_forge_title(long_title);
    cr_assert_eq(strlen(t), DM_FORGE_TITLE_MAX);
    cr_assert_eq(strncmp(t, "[Dream] yyy", 11), 0);
    cr_assert_null(strstr(t, "truncated"), "titles are cut without a note");
    free(t);
}

#define PULL(num, state, head, base, draft)                                                        \
    "{\"number\":" #num ",\"state\":\"" state                                                      \
    "\",\"html_url\":\"https://github.com/acme/api/pull/" #num "\",\"draft\":" draft               \
    ",\"head\":{\"ref\":\"" head "\",\"sha\":\"abc" #num "\"},"                                    \
    "\"base\":{\"ref\":\"" base "\"}}"

Test(forge_proto, pull_find_takes_the_first_open_match)
{
    const char *list = "[" PULL(1, "closed", "dream/x", "main", "false") "," PULL(
        2, "open", "dream/x", "develop",
        "false") "," PULL(3, "open", "dream/y", "main",
                          "false") "," PULL(4, "open", "dream/x", "main",
                                            "true") "," PULL(5, "open", "dream/x", "main",
                                                             "false") "]";
    struct dm_forge_pr pr = {0};
    pr.requests = 7;
    cr_assert_eq(dm_forge_pull_find(&pr, list, strlen(list), "dream/x", "main"), 1);
    cr_assert_eq(pr.number, 4);
    cr_assert_str_eq(pr.html_url, "https://github.com/acme/api/pull/4");
    cr_assert_str_eq(pr.head_sha, "abc4");
    cr_assert_eq(pr.draft, 1);
    cr_assert_eq(pr.requests, 7, "other fields are left alone");
    cr_assert_eq(dm_forge_pull_find(&pr, list, strlen(list), "dream/z", "main"), 0);
    cr_assert_eq(dm_forge_pull_find(&pr, "[]", 2, "dream/x", "main"), 0);
    cr_assert_eq(dm_forge_pull_find(&pr, "{}", 2, "dream/x", "main"), DM_ERR_INVALID);
    cr_assert_eq(dm_forge_pull_find(&pr, NULL, 0, "dream/x", "main"), DM_ERR_INVALID);
}

Test(forge_proto, pull_find_skips_entries_without_number_or_url)
{
    const char *list =
        "[{\"state\":\"open\",\"head\":{\"ref\":\"b\"},\"base\":{\"ref\":\"main\"}},"
        "{\"number\":0,\"html_url\":\"u\",\"state\":\"open\",\"head\":{\"ref\":\"b\"},"
        "\"base\":{\"ref\":\"main\"}},"
        "{\"number\":9,\"html_url\":\"u9\",\"state\":\"open\",\"head\":{\"ref\":\"b\"},"
        "\"base\":{\"ref\":\"main\"}}]";
    struct dm_forge_pr pr = {0};
    cr_assert_eq(dm_forge_pull_find(&pr, list, strlen(list), "b", "main"), 1);
    cr_assert_eq(pr.number, 9);
    cr_assert_str_eq(pr.head_sha, "", "no head.sha");
    cr_assert_eq(pr.draft, 0);
}

Test(forge_proto, pull_read)
{
    const char *one = PULL(12, "open", "dream/x", "main", "false");
    struct dm_forge_pr pr = {0};
    cr_assert_eq(dm_forge_pull_read(&pr, one, strlen(one)), 0);
    cr_assert_eq(pr.number, 12);
    cr_assert_str_eq(pr.head_sha, "abc12");
    memset(&pr, 0, sizeof(pr));
    cr_assert_eq(dm_forge_pull_read(&pr, "{\"number\":3}", 12), DM_ERR_INVALID);
    cr_assert_eq(pr.number, 0, "untouched");
    cr_assert_eq(dm_forge_pull_read(&pr, "not json", 8), DM_ERR_INVALID);
    cr_assert_eq(dm_forge_pull_read(&pr, NULL, 0), DM_ERR_INVALID);
}

Test(forge_proto, error_text)
{
    char out[400];
    const char *e1 =
        "{\"message\":\"Validation Failed\",\"errors\":[{\"message\":\"A pull request "
        "already exists for acme:dream/x.\"},{\"field\":\"base\",\"code\":\"invalid\"}]}";
    dm_forge_error_text(e1, strlen(e1), out, sizeof(out));
    cr_assert_str_eq(out, "Validation Failed: A pull request already exists for acme:dream/x.: "
                          "base invalid");
    dm_forge_error_text("{\"message\":\"Bad\\ncredentials\"}", 30, out, sizeof(out));
    cr_assert_str_eq(out, "Bad credentials", "control characters become spaces");
    dm_forge_error_text("<html>oops</html>", 17, out, sizeof(out));
    cr_assert_str_eq(out, "<html>oops</html>", "a body that is not GitHub's JSON is quoted");
    dm_forge_error_text(NULL, 0, out, sizeof(out));
    cr_assert_str_eq(out, "");
    dm_forge_error_text(e1, strlen(e1), out, 12);
    cr_assert_str_eq(out, "Validation ", "cut to the buffer");
}

Test(forge_proto, installation_token_and_installation_answers)
{
    const char *ok = "{\"token\":\"ghs_16C7e42F292c6912E7710c838347Ae178B4a\",\"expires_at\":"
                     "\"2016-07-11T22:14:10Z\",\"permissions\":{\"contents\":\"write\"},"
                     "\"repository_selection\":\"selected\"}";
    char *tok = NULL;
    long long exp = 0, id = 0;

    cr_assert_eq(dm_forge_token_read(&tok, &exp, ok, strlen(ok)), 0);
    cr_assert_str_eq(tok, "ghs_16C7e42F292c6912E7710c838347Ae178B4a");
    cr_assert_eq(exp, 1468275250LL);
    free(tok);
    cr_assert_eq(dm_forge_token_read(&tok, &exp, "{\"token\":\"x\"}", 13), DM_ERR_INVALID);
    cr_assert_null(tok);
    cr_assert_eq(dm_forge_token_read(&tok, &exp, "{\"token\":\"x\",\"expires_at\":\"soon\"}", 34),
                 DM_ERR_INVALID);
    cr_assert_eq(dm_forge_token_read(&tok, &exp, "[]", 2), DM_ERR_INVALID);
    cr_assert_eq(dm_forge_time_parse("2016-07-11T22:14:10.123Z"), 1468275250LL);
    cr_assert_eq(dm_forge_time_parse("2016-07-11T22:14:10+02:00"), -1);
    cr_assert_eq(dm_forge_time_parse("2016-13-11T22:14:10Z"), -1);
    cr_assert_eq(dm_forge_installation_read(&id, "{\"id\":1234,\"app_id\":1}", 22), 0);
    cr_assert_eq(id, 1234);
    cr_assert_eq(dm_forge_installation_read(&id, "{\"id\":\"1\"}", 10), DM_ERR_INVALID);
}

Test(forge_proto, labels_reviewers_and_status_bodies)
{
    const char *labels[] = {"dreamd", "a \"quoted\" label"};
    const char *users[] = {"octocat"};
    const char *teams[] = {"platform"};
    char *s = dm_forge_labels_json(labels, 2);
    char long_desc[300];

    cr_assert_str_eq(s, "{\"labels\":[\"dreamd\",\"a \\\"quoted\\\" label\"]}");
    free(s);
    s = dm_forge_reviewers_json(users, 1, teams, 1);
    cr_assert_str_eq(s, "{\"reviewers\":[\"octocat\"],\"team_reviewers\":[\"platform\"]}");
    free(s);
    s = dm_forge_reviewers_json(NULL, 0, teams, 1);
    cr_assert_str_eq(s, "{\"team_reviewers\":[\"platform\"]}");
    free(s);
    s = dm_forge_status_json("failure", "dreamd/verify", "Type-check:\nfailed", "https://x/1");
    cr_assert_str_eq(s, "{\"state\":\"failure\",\"context\":\"dreamd/verify\",\"description\":"
                        "\"Type-check: failed\",\"target_url\":\"https://x/1\"}");
    free(s);
    memset(long_desc, 'd', sizeof(long_desc) - 1);
    long_desc[sizeof(long_desc) - 1] = '\0';
    s = dm_forge_status_json("success", "dreamd/verify", long_desc, NULL);
    {
        cJSON *j = cJSON_Parse(s);
        cr_assert_leq(strlen(cJSON_GetObjectItem(j, "description")->valuestring),
                      DM_FORGE_STATUS_DESC_MAX);
        cr_assert_null(cJSON_GetObjectItem(j, "target_url"));
        cJSON_Delete(j);
    }
    free(s);
}
