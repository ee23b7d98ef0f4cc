/*
 * dreamd: wiring only. Loads the configuration, sets up logging, the loop and its signals, and
 * runs the engine with the configured stages until an orderly shutdown. Exit status: 0 after a
 * shutdown, 2 for a bad setting, 1 when the engine cannot start.
 */
#include "dream/core/config.h"
#include "dream/engine/engine.h"
#include "dream/core/error.h"
#include "dream/domain/job.h"
#include "dream/core/log.h"
#include "dream/io/callback.h"
#include "dream/io/dashboard.h"
#include "dream/io/loop.h"
#include "dream/io/metrics.h"
#include "dream/stages/pipeline.h"
#include "dream/stages/stages_test.h"

#include <stdio.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct app {
    struct dm_metrics *metrics;
    struct dm_admin *admin;
    struct dm_dashboard *dashboard;
    struct dm_engine *engine;
    struct dm_pipeline *pipeline;
    struct dm_loop sig;
    int stopped;
};

static void on_shutdown(void *arg, int force)
{
    struct app *app = arg;
    if (app->engine && !app->stopped) {
        dm_engine_stop(app->engine, force);
    }
}

static void on_engine_stopped(struct dm_engine *e, void *arg)
{
    struct app *app = arg;
    (void)e;
    app->stopped = 1;
    app->engine = NULL;
    /* The stages' services close after the last job is gone. */
    dm_pipeline_close(app->pipeline, NULL, NULL);
    app->pipeline = NULL;
    dm_admin_unwatch_loop(app->admin);
    dm_loop_close(&app->sig);
}

int main(int argc, char **argv)
{
    struct dm_config *cfg = NULL;
    enum dm_config_action action;
    struct dm_error err;
    struct dm_stage_ops stages;
    struct app app;
    enum dm_log_level level;
    uv_loop_t loop;
    int rc;

    if (dm_config_load(&cfg, &action, argc, argv, NULL, &err)) {
        fprintf(stderr, "dreamd: bad settings:\n%s\n(see dreamd --help)\n", err.msg);
        return 2;
    }
    switch (action) {
    case DM_CONFIG_HELP:
        dm_config_usage(stdout, "dreamd");
        dm_config_free(cfg);
        return 0;
    case DM_CONFIG_VERSION:
        printf("dreamd %s\n", DREAM_VERSION);
        dm_config_free(cfg);
        return 0;
    case DM_CONFIG_PRINT:
        dm_config_print(stdout, cfg);
        dm_config_free(cfg);
        return 0;
    case DM_CONFIG_RUN:
        break;
    }
    dm_log_parse_level(cfg->log_level, &level);
    dm_log_set_level(level);

    /* libuv's threadpool (4 threads by default) is shared by git, the checks' file work and
     * name resolution. Git work is capped at DM_GITJOB_PARALLEL threads (a silent remote holds
     * one until its connection dies); the pool is sized above that so that resolution (Redis
     * reconnects) never waits behind git. Set before the pool starts; an operator's value wins. */
    if (!getenv("UV_THREADPOOL_SIZE")) {
        setenv("UV_THREADPOOL_SIZE", "8", 1);
    }
    /* Secrets live in this process's memory: no core dump, no ptrace by other users' tools,
     * no /proc/<pid>/mem for anyone but root. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        dm_warn("main", NULL, "cannot make the process non-dumpable");
    }
    memset(&app, 0, sizeof(app));
    if (dm_metrics_new(&app.metrics)) {
        fprintf(stderr, "dreamd: out of memory\n");
        dm_config_free(cfg);
        return 1;
    }
    /* The dashboard (DREAM_DASHBOARD) answers on the admin server's connection threads with
     * its own Redis connections; it never touches the loop. */
    if (cfg->dashboard) {
        if (!cfg->admin_addr || !*cfg->admin_addr) {
            fprintf(stderr, "dreamd: --dashboard (DREAM_DASHBOARD) needs --admin-addr "
                            "(DREAM_ADMIN_ADDR)\n");
            dm_metrics_free(app.metrics);
            dm_config_free(cfg);
            return 2;
        }
        if (dm_dashboard_new(&app.dashboard, cfg, &err)) {
            fprintf(stderr, "dreamd: --dashboard (DREAM_DASHBOARD): %s\n", err.msg);
            dm_metrics_free(app.metrics);
            dm_config_free(cfg);
            return 2;
        }
    }
    /* The admin endpoint runs on libmicrohttpd's own thread(s) and reads atomics only. */
    if (dm_admin_start_dashboard(&app.admin, app.metrics, cfg->admin_addr, app.dashboard, &err)) {
        fprintf(stderr, "dreamd: --admin-addr (DREAM_ADMIN_ADDR): %s\n", err.msg);
        dm_dashboard_free(app.dashboard);
        dm_metrics_free(app.metrics);
        dm_config_free(cfg);
        return 2;
    }
    if (app.admin) {
        dm_info("main", NULL, "admin endpoint on port %d (/metrics, /healthz, /readyz)",
                dm_admin_port(app.admin));
    }
    uv_loop_init(&loop);
    memset(&stages, 0, sizeof(stages));
    if (cfg->stage_mode == DM_STAGES_TEST) {
        dm_stages_test_init(&stages, (long)cfg->test_stage_ms);
    } else {
        if (dm_pipeline_new(&app.pipeline, &loop, cfg, app.metrics, &err)) {
            fprintf(stderr, "dreamd: %s\n", err.msg);
            dm_loop_drain_close(&loop);
            dm_admin_stop(app.admin);
            dm_dashboard_free(app.dashboard);
            dm_metrics_free(app.metrics);
            dm_config_free(cfg);
            return 2;
        }
        dm_pipeline_stage_ops(app.pipeline, &stages);
        /* Callback destinations: the operator's own receivers (DREAM_CALLBACK_HOSTS) and test
         * hosts (DREAM_CALLBACK_ALLOW_HTTP) are exempt from the address checks; dropped events
         * are counted. */
        dm_callbacks_set_metrics(dm_pipeline_callbacks(app.pipeline), app.metrics);
        {
            char hosts[4096];
            snprintf(hosts, sizeof(hosts), "%s,%s", cfg->callback_hosts ? cfg->callback_hosts : "",
                     cfg->callback_allow_http ? cfg->callback_allow_http : "");
            if (dm_callbacks_allow_hosts(dm_pipeline_callbacks(app.pipeline), hosts, &err)) {
                fprintf(stderr, "dreamd: %s\n", err.msg);
                return 1;
            }
        }
    }

    if (dm_loop_init(&app.sig, &loop, on_shutdown, &app)) {
        fprintf(stderr, "dreamd: cannot watch signals\n");
        return 1;
    }
    {
        char red[512];
        dm_info("main", NULL, "dreamd %s starting: consumer %s, redis %s, max %lld jobs, stages %s",
                DREAM_VERSION, cfg->consumer,
                dm_redis_url_redacted(cfg->redis_url, red, sizeof(red)), cfg->max_jobs,
                cfg->stages);
    }
    if (dm_admin_watch_loop(app.admin, &loop, DM_ADMIN_STALL_MS)) {
        dm_warn("main", NULL, "cannot start the loop heartbeat: /healthz answers without it");
    }
    rc = dm_engine_start(&app.engine, &loop, cfg, &stages, on_engine_stopped, &app);
    if (!rc) {
        dm_engine_observe(app.engine, app.metrics,
                          app.pipeline ? dm_pipeline_callbacks(app.pipeline) : NULL);
    }
    if (rc) {
        dm_errorf("main", NULL, "cannot start the engine: %s", dm_err_name(rc));
        dm_admin_unwatch_loop(app.admin);
        dm_pipeline_close(app.pipeline, NULL, NULL);
        dm_loop_close(&app.sig);
    } else {
        /* The signal watchers are unref'd; the engine's handles keep the loop alive. */
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    {
        int left = dm_loop_drain_close(&loop);
        if (left > 0) {
            dm_errorf("main", NULL, "loop did not close cleanly: %d handle(s) left open", left);
        } else if (left < 0) {
            dm_errorf("main", NULL, "loop did not close cleanly: %s", uv_strerror(left));
        }
        if (left != 0) {
            rc = rc ? rc : DM_ERR_IO;
        }
    }
    dm_admin_stop(app.admin);
    dm_dashboard_free(app.dashboard); /* after the server's threads are joined */
    dm_metrics_free(app.metrics);
    dm_info("main", NULL, "dreamd exiting");
    dm_config_free(cfg);
    return rc ? 1 : 0;
}
