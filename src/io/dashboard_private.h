/*
 * dashboard_private: what dashboard.c (HTTP: auth, routes, static page, SSE) and
 * dashboard_data.c (Redis: the views and the actions) share. Connection threads only.
 */
#ifndef DREAM_DASHBOARD_PRIVATE_H
#define DREAM_DASHBOARD_PRIVATE_H

#include "dream/core/config.h"
#include "dream/core/keys.h"
#include "dream/io/dashboard.h"

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <stdatomic.h>

struct dm_dashboard {
    char *host;      /* NULL for a unix socket */
    char *unix_path; /* NULL for TCP */
    char *username;
    char *password; /* secret */
    int port;
    int db;
    long long timeout_ms;
    char prefix[DM_KEYS_PREFIX_MAX + 1];
    struct dm_keys keys;
    char *token; /* secret: DREAM_ADMIN_TOKEN */
    size_t token_len;
    char gmax[24]; /* DREAM_EVENTS_MAXLEN */
    char ttl[24];  /* DREAM_JOB_TTL_S */
    atomic_int stopping;
    atomic_int sse_clients;
};

/* One HTTP connection (one thread): its own Redis connection, opened on first use. */
struct dconn {
    redisContext *rc;
};

/* The connection's Redis, (re)connected as needed; NULL when Redis cannot be reached. */
redisContext *dash_redis(struct dm_dashboard *d, struct dconn *dc);
/* One command on it; NULL (and the connection dropped) when the connection failed. */
redisReply *dash_cmd(struct dm_dashboard *d, struct dconn *dc, const char *fmt, ...);
redisReply *dash_cmdv(struct dm_dashboard *d, struct dconn *dc, int argc, const char **argv,
                      const size_t *lens);

/* What the job list is filtered by (NULL / 0 = any). */
struct dash_filter {
    const char *status; /* comma-separated */
    const char *repo;   /* owner/name */
    const char *user;
    long long since_ms;
    long long limit;
};

/* The views: each sets *out (caller frees) and returns an HTTP status; on an error *out is
 * {"error":…}. */
int dash_list_jobs(struct dm_dashboard *d, struct dconn *dc, const struct dash_filter *f,
                   cJSON **out);
int dash_job(struct dm_dashboard *d, struct dconn *dc, const char *id, cJSON **out);
int dash_parked(struct dm_dashboard *d, struct dconn *dc, cJSON **out);
int dash_workers(struct dm_dashboard *d, struct dconn *dc, cJSON **out);
int dash_dead(struct dm_dashboard *d, struct dconn *dc, cJSON **out);

/* The actions, through the scripts of src/domain/scripts.c as dreamctl runs them. action:
 * approve, reject, cancel, retry (id = jobId), requeue (id = dead-letter id). who: the actor. */
int dash_action(struct dm_dashboard *d, struct dconn *dc, const char *action, const char *id,
                const char *reason, const char *who, cJSON **out);

/* The last id of the events stream ("0-0" when empty) into out. 0 or -1. */
int dash_events_last_id(struct dm_dashboard *d, struct dconn *dc, char *out, size_t n);

#endif
