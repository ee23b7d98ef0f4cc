/*
 * The review stage end to end (issue 9): the fake OpenRouter plays the reviewer model through
 * structured output; each verdict path (proceed, pause, reject) and a reviewer that answers
 * garbage lead to their outcome, and the review lands in the pull request body.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dme2e.h"

#include <cjson/cJSON.h>

static struct dmt_world world;

static void setup(void)
{
    dmt_world_start(&world, NULL);
}

static void teardown(void)
{
    dmt_world_stop(&world);
}

TestSuite(review, .init = setup, .fini = teardown, .timeout = 180);

static void set_review_reply(const char *reply)
{
    cJSON *o = cJSON_CreateObject();
    char *body;
    cJSON_AddStringToObject(o, "review_reply", reply);
    body = cJSON_PrintUnformatted(o);
    free(dmt_fakeor_http(&world.llm, "POST", "/_fake/config", body));
    free(body);
    cJSON_Delete(o);
}

static void run_job(const char *id, struct dmt_replica *rep)
{
    char *job = dmt_world_job(id, NULL, NULL, 200000, 5.0);
    dmt_world_replica(&world, rep, "rev", NULL);
    free(dmt_submit(world.rc, job));
    free(job);
}

Test(review, proceed_opens_the_pr_with_the_review_in_its_body)
{
    struct dmt_replica rep;
    char *pulls;

    set_review_reply("{\"decision\":\"proceed\",\"risk\":\"low\",\"summary\":\"looks tidy\","
                     "\"comments\":[]}");
    run_job("rv-ok", &rep);
    cr_assert(dmt_world_wait_status(&world, "rv-ok", "complete,failed,paused_approval", 60000));
    {
        char *status = dmt_world_hget(&world, "rv-ok", "status");
        cr_assert_str_eq(status, "complete");
        free(status);
    }
    pulls = dmt_world_gh(&world, "GET", "/_fake/pulls", NULL);
    cr_assert_not_null(strstr(pulls, "looks tidy"), "review summary in the PR body");
    cr_assert_not_null(strstr(pulls, "model and rules"), "%s", pulls);
    free(pulls);
    cr_assert_gt(dmt_fakeor_stat(&world.llm, "chat"), 3, "the reviewer was asked");
}

Test(review, pause_parks_the_job_for_approval)
{
    struct dmt_replica rep;
    char *status;

    set_review_reply("{\"decision\":\"pause\",\"risk\":\"high\",\"summary\":\"touches billing\","
                     "\"comments\":[]}");
    run_job("rv-pause", &rep);
    cr_assert(dmt_world_wait_status(&world, "rv-pause", "complete,failed,paused_approval", 60000));
    status = dmt_world_hget(&world, "rv-pause", "status");
    cr_assert_str_eq(status, "paused_approval");
    free(status);
    cr_assert_eq(dmt_world_pr_count(&world), 0, "nothing opened while parked");
}

Test(review, reject_fails_the_job_and_pushes_nothing)
{
    struct dmt_replica rep;
    char *err, *files;

    set_review_reply("{\"decision\":\"reject\",\"risk\":\"critical\",\"summary\":\"deletes the "
                     "user table\",\"comments\":[]}");
    run_job("rv-no", &rep);
    cr_assert(dmt_world_wait_status(&world, "rv-no", "complete,failed,paused_approval", 60000));
    err = dmt_world_hget(&world, "rv-no", "error");
    cr_assert_not_null(strstr(err, "review rejected"), "%s", err);
    cr_assert_not_null(strstr(err, "deletes the user table"), "%s", err);
    free(err);
    files = dmt_world_branch_files(&world, "dream/todo-api");
    cr_assert_null(files, "no branch pushed");
    cr_assert_eq(dmt_world_pr_count(&world), 0);
}

Test(review, garbage_from_the_reviewer_falls_back_to_the_rules)
{
    struct dmt_replica rep;
    char *status;

    set_review_reply("Sure! Here is my review: it is {probably fine");
    run_job("rv-junk", &rep);
    cr_assert(dmt_world_wait_status(&world, "rv-junk", "complete,failed,paused_approval", 60000));
    status = dmt_world_hget(&world, "rv-junk", "status");
    cr_assert_str_eq(status, "complete", "the rules found nothing: proceed");
    free(status);
    cr_assert_gt(dmt_wait_in_file(rep.log, "answered something unusable", 1, 10000), 0,
                 "the fallback is logged (log %s)", rep.log);
}

Test(review, model_planner_plans_from_the_spec_and_the_tree)
{
    struct dmt_replica rep;
    const char *extra[] = {"--planner=model", NULL};
    char *job = dmt_world_job("pl-1", NULL, NULL, 200000, 5.0);
    char *files;

    /* The fake answers every structured request with this: the planner gets a plan (one path
     * of which breaks the path rules), the reviewer gets something it cannot use. */
    set_review_reply("{\"files\":[{\"path\":\"src/routes/health-check.ts\",\"kind\":\"route\","
                     "\"description\":\"GET /health reports ok\"},{\"path\":\"../outside.ts\","
                     "\"kind\":\"file\",\"description\":\"escape\"},{\"path\":"
                     "\"src/components/todo-list.tsx\",\"kind\":\"component\",\"description\":"
                     "\"TodoList\"}]}");
    dmt_world_replica(&world, &rep, "planner", extra);
    free(dmt_submit(world.rc, job));
    free(job);
    cr_assert(dmt_world_wait_status(&world, "pl-1", "complete,failed,paused_approval", 60000));
    files = dmt_world_branch_files(&world, "dream/todo-api");
    cr_assert_not_null(files);
    cr_assert_not_null(strstr(files, "src/routes/health-check.ts"), "%s", files);
    cr_assert_not_null(strstr(files, "src/components/todo-list.tsx"), "%s", files);
    cr_assert_not_null(strstr(files, "docs/dream-specs/todo-api.md"), "spec doc first: %s", files);
    cr_assert_null(strstr(files, "outside"), "%s", files);
    cr_assert_null(strstr(files, "src/routes/todos.ts"), "not the rule plan: %s", files);
    free(files);
}

Test(review, model_planner_garbage_falls_back_to_the_rules)
{
    struct dmt_replica rep;
    const char *extra[] = {"--planner=model", NULL};
    char *job = dmt_world_job("pl-2", NULL, NULL, 200000, 5.0);
    char *files;

    set_review_reply("I would create some files, probably.");
    dmt_world_replica(&world, &rep, "planner", extra);
    free(dmt_submit(world.rc, job));
    free(job);
    cr_assert(dmt_world_wait_status(&world, "pl-2", "complete,failed,paused_approval", 60000));
    files = dmt_world_branch_files(&world, "dream/todo-api");
    cr_assert_not_null(files);
    cr_assert_not_null(strstr(files, "src/routes/todos.ts"), "%s", files);
    free(files);
    cr_assert_gt(dmt_count_in_file(rep.log, "model planner not used"), 0, "log %s", rep.log);
}

Test(review, revise_round_regenerates_the_files_the_reviewer_commented_on)
{
    struct dmt_replica rep;
    const char *extra[] = {"--review-revise", NULL};
    char *job = dmt_world_job("rv-revise", NULL, NULL, 200000, 5.0);
    const char *route = "src/routes/todos.ts";
    char *statuses;

    set_review_reply("{\"decision\":\"proceed\",\"risk\":\"low\",\"summary\":\"fine with one "
                     "fix\",\"comments\":[{\"path\":\"src/routes/todos.ts\","
                     "\"comment\":\"validate the query string\"}]}");
    dmt_world_replica(&world, &rep, "reviser", extra);
    free(dmt_submit(world.rc, job));
    free(job);
    cr_assert(dmt_world_wait_status(&world, "rv-revise", "complete,failed,paused_approval", 60000));
    statuses = dmt_world_statuses(&world, "rv-revise");
    cr_assert_not_null(strstr(statuses, "testing,writing"), "a revise round after review: %s",
                       statuses);
    cr_assert_not_null(strstr(statuses, "pr_open,complete"), "%s", statuses);
    free(statuses);
    cr_assert_eq(dmt_fakeor_path_count(&world.llm, route), 2, "the commented file twice");
    cr_assert_eq(dmt_fakeor_path_count(&world.llm, "src/components/TodoList.tsx"), 1,
                 "the others once");
    cr_assert_gt(dmt_count_in_file(rep.log, "revise round: 1 file"), 0);
}
