/*
 * ctl_follow: following job events for `watch`, `submit --watch` and `submit --wait` (replay,
 * then blocking XREADs; the progress line; the exit code a job's end means), and `status` (a
 * job's hash, its job and plan, and a parked job's findings). Main thread only.
 */
#include "ctl_int.h"

#include "dream/core/log.h"
#include "dream/domain/jobreq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void progress_clear(struct progress *p)
{
    for (size_t i = 0; i < p->npaths; i++) {
        free(p->paths[i]);
    }
    free(p->paths);
    free(p->done);
    memset(p, 0, sizeof(*p));
}

static void progress_plan(struct progress *p, const cJSON *files)
{
    size_t n = (size_t)cJSON_GetArraySize(files);
    const cJSON *it;
    size_t i = 0;

    progress_clear(p);
    p->paths = calloc(n ? n : 1, sizeof(char *));
    p->done = calloc(n ? n : 1, 1);
    if (!p->paths || !p->done) {
        free(p->paths);
        free(p->done);
        p->paths = NULL;
        p->done = NULL;
        return;
    }
    cJSON_ArrayForEach(it, files)
    {
        const char *s = cJSON_GetStringValue(it);
        /* The spec document (docs/dream-specs/, the plan's first item) is copied, not
         * generated: it never gets a `generated` event, so it is not counted. */
        if (s && i < n && strncmp(s, "docs/dream-specs/", 17) != 0) {
            p->paths[i] = strdup(s);
            if (p->paths[i]) {
                i++;
            }
        }
    }
    p->npaths = i;
}

static void progress_event(struct progress *p, const cJSON *ev)
{
    const char *status = ctl_jstr(ev, "status");
    long long t = dm_time_parse_rfc3339(ctl_jstr(ev, "ts"));

    if (t >= 0) {
        if (p->first_ms == 0) {
            p->first_ms = t;
        }
        p->last_ms = t;
    }
    p->tokens = ctl_jnum(ev, "tokensUsed");
    p->cost = ctl_jnum(ev, "costUsd");
    if (!status) {
        return;
    }
    if (strcmp(status, "planned") == 0 && cJSON_IsArray(cJSON_GetObjectItem(ev, "files"))) {
        long long first = p->first_ms, last = p->last_ms;
        double tokens = p->tokens, cost = p->cost;
        progress_plan(p, cJSON_GetObjectItem(ev, "files"));
        p->first_ms = first;
        p->last_ms = last;
        p->tokens = tokens;
        p->cost = cost;
    } else if (strcmp(status, "generated") == 0) {
        const char *path = ctl_jstr(ev, "path");
        if (!p->npaths) {
            p->generated++;
            return;
        }
        for (size_t i = 0; path && i < p->npaths; i++) {
            if (!p->done[i] && strcmp(p->paths[i], path) == 0) {
                p->done[i] = 1;
                p->generated++;
                break;
            }
        }
    }
}

static void progress_line(const struct progress *p, char *buf, size_t n)
{
    double secs = p->last_ms > p->first_ms ? (double)(p->last_ms - p->first_ms) / 1000.0 : 0;
    char total[24], elapsed[32];

    if (p->npaths) {
        snprintf(total, sizeof(total), "%zu", p->npaths);
    } else {
        snprintf(total, sizeof(total), "?");
    }
    if (secs >= 60) {
        snprintf(elapsed, sizeof(elapsed), "%dm%02ds", (int)(secs / 60), (int)fmod(secs, 60));
    } else {
        snprintf(elapsed, sizeof(elapsed), "%.1fs", secs);
    }
    snprintf(buf, n, "  progress: files %zu/%s, tokens %.0f, $%.4f, elapsed %s", p->generated,
             total, p->tokens, p->cost, elapsed);
}

static void draw_progress(struct follow *f, int final)
{
    char line[256];

    if (!f->print || !f->job_id) {
        return;
    }
    progress_line(&f->prog, line, sizeof(line));
    if (f->tty) {
        printf("\r\033[K%s%s", line, final ? "\n" : "");
        f->drawn = !final;
    } else {
        printf("%s\n", line);
    }
    fflush(stdout);
}

static void print_event(struct follow *f, const cJSON *ev)
{
    const char *ts = ctl_jstr(ev, "ts"), *status = ctl_jstr(ev, "status"),
               *msg = ctl_jstr(ev, "message");
    const char *path = ctl_jstr(ev, "path"), *pr = ctl_jstr(ev, "prUrl"),
               *error = ctl_jstr(ev, "error");
    const char *id = ctl_jstr(ev, "jobId");

    if (f->tty && f->drawn) {
        printf("\r\033[K");
        f->drawn = 0;
    }
    /* The time of day is enough on a terminal; the date is in --json. */
    printf("%s ", ts && strlen(ts) >= 23 ? ts + 11 : (ts ? ts : "-"));
    if (!f->job_id) {
        printf("%s ", id ? id : "?");
    }
    printf("#%-3d %-15s ", (int)ctl_jnum(ev, "seq"), status ? status : "?");
    ctl_put_text(stdout, msg);
    if (path && (!msg || !strstr(msg, path))) {
        printf(" [%s]", path);
    }
    if (pr) {
        printf(" -> %s", pr);
    }
    if (error && (!msg || !strstr(msg, error))) {
        printf(" (error: ");
        ctl_put_text(stdout, error);
        printf(")");
    }
    printf("\n");
    fflush(stdout);
}

/* Handles one event (json, NUL-terminated). Returns an exit code when the follow is over, else
 * -1. live: the event arrived while following, so a terminal or parking event ends it; in a
 * replay only the last deciding event counts (a requeued or approved job goes on after it). */
static int on_event(struct follow *f, const char *json, int live)
{
    cJSON *ev = cJSON_Parse(json);
    const char *status, *msg;
    int code = -1;

    if (!ev) {
        return -1; /* not an event of ours: skip it */
    }
    status = ctl_jstr(ev, "status");
    msg = ctl_jstr(ev, "message");
    if (f->job_id) {
        const char *id = ctl_jstr(ev, "jobId");
        if (!id || strcmp(id, f->job_id) != 0) {
            cJSON_Delete(ev);
            return -1;
        }
    }
    f->nevents++;
    progress_event(&f->prog, ev);
    if (f->print && f->json) {
        printf("%s\n", json);
        fflush(stdout);
    } else if (f->print && !(status && strcmp(status, "progress") == 0 && f->tty)) {
        print_event(f, ev);
        if (status && (strcmp(status, "planned") == 0 || strcmp(status, "generated") == 0 ||
                       (f->tty && strcmp(status, "progress") == 0))) {
            draw_progress(f, 0);
        }
    } else if (f->print && f->tty) {
        draw_progress(f, 0); /* streaming progress only moves the progress line */
    }
    if (status && strcmp(status, "duplicate") == 0) {
        char needle[128];
        snprintf(needle, sizeof(needle), "entry %s ", f->entry ? f->entry : "");
        if (f->entry && msg && strstr(msg, needle)) {
            /* Our entry was refused: the job will not run for it. */
            snprintf(f->status, sizeof(f->status), "duplicate");
            cJSON_Delete(f->last);
            f->last = ev;
            return DM_CTL_EXIT_FAILED;
        }
        cJSON_Delete(ev);
        return -1;
    }
    if (status && strcmp(status, "progress") != 0) {
        snprintf(f->status, sizeof(f->status), "%s", status);
        cJSON_Delete(f->last);
        f->last = ev;
        ev = NULL;
        if (live && f->job_id) {
            code = ctl_status_exit(status);
        }
    }
    cJSON_Delete(ev);
    return code;
}

/* Handles the entries of an XRANGE / XREAD stream reply; updates last. */
static int on_entries(struct follow *f, const redisReply *entries, char *last, size_t lastn,
                      int live)
{
    int code = -1;
    for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        const char *json;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[0]->type != REDIS_REPLY_STRING) {
            continue;
        }
        snprintf(last, lastn, "%s", e->element[0]->str);
        json = ctl_field_of(e->element[1], "event");
        if (json && code < 0) {
            code = on_event(f, json, live);
        }
    }
    return code;
}

/* Submit: the dead letter of our own entry (signed mode refuses an entry without writing
 * under its job) ends the wait as a `dead_lettered` event. Scans dead-stream entries, moving
 * dead_last; returns an exit code or -1. */
static int on_dead_entries(struct follow *f, const redisReply *entries, char *dead_last, size_t n)
{
    int code = -1;
    for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        const char *entry, *reason;
        cJSON *ev;
        char *json;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[0]->type != REDIS_REPLY_STRING) {
            continue;
        }
        snprintf(dead_last, n, "%s", e->element[0]->str);
        entry = ctl_field_of(e->element[1], "entry");
        reason = ctl_field_of(e->element[1], "reason");
        if (code >= 0 || !entry || strcmp(entry, f->entry) != 0) {
            continue;
        }
        ev = cJSON_CreateObject();
        cJSON_AddNumberToObject(ev, "v", 1);
        cJSON_AddStringToObject(ev, "jobId", f->job_id);
        cJSON_AddStringToObject(ev, "status", "dead_lettered");
        cJSON_AddStringToObject(ev, "message", reason ? reason : "entry dead-lettered");
        cJSON_AddStringToObject(ev, "error", reason ? reason : "entry dead-lettered");
        json = cJSON_PrintUnformatted(ev);
        cJSON_Delete(ev);
        if (json) {
            code = on_event(f, json, 1);
            free(json);
        }
    }
    return code;
}

/* Replays (for one job) and follows the stream key after entry id `after` until the job ends or
 * parks, the deadline passes or the connection fails. Returns the exit code. */
static int follow_stream(struct ctl *ctl, struct follow *f, const char *key, const char *after)
{
    char last[64], from[72], dead_last[64];
    int code = -1;
    redisReply *r;

    snprintf(last, sizeof(last), "%s", after);
    /* A dead letter of our entry is added after it (by the same server clock): from the
     * millisecond before the entry's, the dead letter is always in sight. */
    snprintf(dead_last, sizeof(dead_last), "%lld-0", f->entry ? atoll(f->entry) - 1 : 0LL);
    if (f->job_id) {
        for (;;) {
            size_t got;
            snprintf(from, sizeof(from), "(%s", last);
            r = ctl_cmd(ctl, "XRANGE %s %s + COUNT %d", key, from, PAGE);
            if (!r) {
                return DM_CTL_EXIT_UNREACHABLE;
            }
            if (r->type == REDIS_REPLY_ERROR) {
                code = ctl_fail(ctl, DM_CTL_EXIT_FAILED, "XRANGE %s: %s", key, r->str);
                freeReplyObject(r);
                return code;
            }
            got = r->elements;
            code = on_entries(f, r, last, sizeof(last), 0);
            freeReplyObject(r);
            if (code >= 0 || got < PAGE) {
                break;
            }
        }
        if (code < 0) {
            code = ctl_status_exit(f->status[0] ? f->status : NULL);
        }
    }
    while (code < 0) {
        long long block = BLOCK_MS;
        if (f->deadline_ms) {
            long long left = f->deadline_ms - dm_time_now_ms();
            if (left <= 0) {
                code = f->job_id ? DM_CTL_EXIT_TIMEOUT : DM_CTL_EXIT_OK;
                break;
            }
            block = left < block ? left : block;
        }
        r = f->entry && f->job_id
                ? ctl_cmd(ctl, "XREAD COUNT %d BLOCK %lld STREAMS %s %s %s %s", PAGE, block, key,
                          ctl->keys.dead, last, dead_last)
                : ctl_cmd(ctl, "XREAD COUNT %d BLOCK %lld STREAMS %s %s", PAGE, block, key, last);
        if (!r) {
            return DM_CTL_EXIT_UNREACHABLE;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            code = ctl_fail(ctl, DM_CTL_EXIT_FAILED, "XREAD %s: %s", key, r->str);
        } else if (r->type == REDIS_REPLY_ARRAY) {
            for (size_t s = 0; s < r->elements && code < 0; s++) {
                const redisReply *st = r->element[s];
                if (st->type != REDIS_REPLY_ARRAY || st->elements < 2 ||
                    st->element[0]->type != REDIS_REPLY_STRING) {
                    continue;
                }
                if (f->entry && strcmp(st->element[0]->str, ctl->keys.dead) == 0) {
                    code = on_dead_entries(f, st->element[1], dead_last, sizeof(dead_last));
                } else {
                    code = on_entries(f, st->element[1], last, sizeof(last), 1);
                }
            }
        }
        freeReplyObject(r);
    }
    if (f->drawn ||
        (f->print && !f->json && f->job_id && f->nevents && code != DM_CTL_EXIT_UNREACHABLE)) {
        draw_progress(f, 1);
    }
    return code;
}

void ctl_follow_free(struct follow *f)
{
    progress_clear(&f->prog);
    cJSON_Delete(f->last);
    f->last = NULL;
}

int ctl_timeout_option(struct ctl *ctl, long long *deadline)
{
    const char *t = ctl_opt(ctl, "timeout");
    double secs;

    *deadline = 0;
    if (!t) {
        return 0;
    }
    if (ctl_parse_pos_double(t, &secs) || secs > 31536000) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE,
                        "--timeout: must be a number of seconds > 0, got '%s'", t);
    }
    *deadline = dm_time_now_ms() + (long long)(secs * 1000);
    return 0;
}

/* Follows one job: events after `after` (an entry id of its event stream; "0-0" replays all). */
int ctl_follow_job(struct ctl *ctl, const char *job_id, const char *entry, const char *after,
                   int print, long long deadline, struct follow *f)
{
    char key[DM_KEYS_MAX], k_hash[DM_KEYS_MAX];
    int code;

    memset(f, 0, sizeof(*f));
    f->job_id = job_id;
    f->entry = entry;
    f->print = print;
    f->json = ctl->json;
    f->tty = isatty(STDOUT_FILENO);
    f->deadline_ms = deadline;
    ctl_job_key(key, ctl, job_id, DM_JOB_KEY_EVENTS);
    ctl_job_key(k_hash, ctl, job_id, DM_JOB_KEY_HASH);
    if (strcmp(after, "0-0") == 0) {
        /* A job whose events expired but whose hash is still there has ended long ago. */
        redisReply *r = ctl_cmd(ctl, "EXISTS %s", key);
        long long exists;
        if (!r) {
            return DM_CTL_EXIT_UNREACHABLE;
        }
        exists = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
        freeReplyObject(r);
        if (!exists) {
            r = ctl_cmd(ctl, "HGET %s status", k_hash);
            if (!r) {
                return DM_CTL_EXIT_UNREACHABLE;
            }
            if (r->type == REDIS_REPLY_STRING && ctl_status_exit(r->str) >= 0) {
                snprintf(f->status, sizeof(f->status), "%s", r->str);
                code = ctl_status_exit(r->str);
                freeReplyObject(r);
                if (print && ctl->json) {
                    cJSON *o = cJSON_CreateObject();
                    cJSON_AddStringToObject(o, "jobId", job_id);
                    cJSON_AddStringToObject(o, "status", f->status);
                    ctl_print_json(o);
                } else if (print) {
                    printf("job %s is %s (no events kept)\n", job_id, f->status);
                }
                return code;
            }
            freeReplyObject(r);
            if (print && !ctl->json && !entry) {
                fprintf(stderr, "dreamctl: job %s has no events yet; waiting for it\n", job_id);
            }
        }
    }
    return follow_stream(ctl, f, key, after);
}

int ctl_run_watch(struct ctl *ctl)
{
    const char *id = ctl->npos ? ctl->pos[0] : NULL;
    struct follow f;
    long long deadline;
    char last[64];
    int rc;

    memset(&f, 0, sizeof(f));
    if ((rc = ctl_timeout_option(ctl, &deadline))) {
        return rc;
    }
    if (id && !dm_jobreq_id_valid(id)) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "not a job id: '%s'", id);
    }
    if ((rc = ctl_connect(ctl))) {
        return rc;
    }
    if (id) {
        rc = ctl_follow_job(ctl, id, NULL, "0-0", 1, deadline, &f);
        if (rc == DM_CTL_EXIT_TIMEOUT) {
            fprintf(stderr, "dreamctl: --timeout passed; job %s is still %s\n", id,
                    f.status[0] ? f.status : "queued");
        }
        ctl_follow_free(&f);
        return rc;
    }
    /* Every job, from now on. */
    if ((rc = ctl_stream_last_id(ctl, ctl->keys.events, last, sizeof(last)))) {
        return rc;
    }
    f.print = 1;
    f.json = ctl->json;
    f.tty = isatty(STDOUT_FILENO);
    f.deadline_ms = deadline;
    rc = follow_stream(ctl, &f, ctl->keys.events, last);
    ctl_follow_free(&f);
    return rc;
}

static void print_plan(const char *plan_json)
{
    cJSON *plan = cJSON_Parse(plan_json);
    const cJSON *items, *it;

    if (!plan) {
        return;
    }
    items = cJSON_GetObjectItem(plan, "items");
    printf("  %-12s %s (%d items, branch %s)\n", "plan",
           ctl_jstr(plan, "title") ? ctl_jstr(plan, "title") : "?", cJSON_GetArraySize(items),
           ctl_jstr(plan, "branch") ? ctl_jstr(plan, "branch") : "?");
    cJSON_ArrayForEach(it, items)
    {
        printf("  %-12s   %-10s %s\n", "", ctl_jstr(it, "kind") ? ctl_jstr(it, "kind") : "?",
               ctl_jstr(it, "path") ? ctl_jstr(it, "path") : "?");
    }
    cJSON_Delete(plan);
}

static void print_job_summary(const char *job_json)
{
    cJSON *job = cJSON_Parse(job_json);
    const cJSON *budget;

    if (!job) {
        return;
    }
    budget = cJSON_GetObjectItem(job, "budget");
    printf("  %-12s %s/%s (base %s, prefix %s)\n", "repo",
           ctl_jstr(job, "repoOwner") ? ctl_jstr(job, "repoOwner") : "?",
           ctl_jstr(job, "repoName") ? ctl_jstr(job, "repoName") : "?",
           ctl_jstr(job, "baseBranch") ? ctl_jstr(job, "baseBranch")
                                       : DM_JOBREQ_BASE_BRANCH_DEFAULT,
           ctl_jstr(job, "branchPrefix") ? ctl_jstr(job, "branchPrefix")
                                         : DM_JOBREQ_BRANCH_PREFIX_DEFAULT);
    printf("  %-12s %s\n", "user", ctl_jstr(job, "userId") ? ctl_jstr(job, "userId") : "?");
    printf("  %-12s %s\n", "trust",
           ctl_jstr(job, "trustLevel") ? ctl_jstr(job, "trustLevel") : "(token)");
    printf("  %-12s %s\n", "priority",
           ctl_jstr(job, "priority") ? ctl_jstr(job, "priority")
                                     : dm_jobreq_priority_name(DM_PRIORITY_MEDIUM));
    printf("  %-12s %.0f tokens, $%.2f\n", "budget", ctl_jnum(budget, "maxTokens"),
           ctl_jnum(budget, "maxDollars"));
    cJSON_Delete(job);
}

/* The job's latest paused_approval event (the gate's findings), or NULL. Caller frees. */
static cJSON *parked_event(struct ctl *ctl, const char *id)
{
    char key[DM_KEYS_MAX];
    redisReply *r;
    cJSON *found = NULL;

    ctl_job_key(key, ctl, id, DM_JOB_KEY_EVENTS);
    r = ctl_cmd(ctl, "XREVRANGE %s + - COUNT 100", key);

    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements && !found; i++) {
        const redisReply *e = r->element[i];
        const char *json = e->type == REDIS_REPLY_ARRAY && e->elements >= 2
                               ? ctl_field_of(e->element[1], "event")
                               : NULL;
        cJSON *ev = json ? cJSON_Parse(json) : NULL;
        const char *st = ctl_jstr(ev, "status");
        if (st && strcmp(st, "paused_approval") == 0) {
            found = ev;
        } else {
            cJSON_Delete(ev);
        }
    }
    freeReplyObject(r);
    return found;
}

static void print_parked(const cJSON *ev, const char *id)
{
    const cJSON *it;

    printf("  %-12s ", "parked");
    ctl_put_text(stdout, ctl_jstr(ev, "message"));
    printf("\n");
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(ev, "flagged"))
    {
        printf("  %-12s   %s:%d %s (%s, %s)\n", "",
               ctl_jstr(it, "path") ? ctl_jstr(it, "path") : "?", (int)ctl_jnum(it, "line"),
               ctl_jstr(it, "rule") ? ctl_jstr(it, "rule") : "?",
               ctl_jstr(it, "severity") ? ctl_jstr(it, "severity") : "?",
               ctl_jstr(it, "kind") ? ctl_jstr(it, "kind") : "?");
    }
    printf("  %-12s decide: dreamctl approve %s | dreamctl reject %s --reason TEXT\n", "", id, id);
}

int ctl_run_status(struct ctl *ctl)
{
    static const char *const order[] = {
        "status",   "stage",        "attempts",    "epoch",       "owner",
        "entry",    "created",      "updated",     "tokens",      "cost",
        "reserved", "branch",       "commit",      "pr_url",      "error",
        "approved", "approved_by",  "approved_at", "rejected_by", "rejected_at",
        "cancel",   "cancelled_by", "requeued_by", "requeued_at", "seq"};
    const char *id = ctl->pos[0];
    char key[DM_KEYS_MAX];
    redisReply *r = NULL;
    cJSON *parked = NULL;
    const char *st;
    int rc;

    if (!dm_jobreq_id_valid(id)) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "not a job id: '%s'", id);
    }
    if ((rc = ctl_connect(ctl))) {
        return rc;
    }
    ctl_job_key(key, ctl, id, DM_JOB_KEY_HASH);
    r = ctl_cmd(ctl, "HGETALL %s", key);
    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        rc = ctl_fail(ctl, DM_CTL_EXIT_FAILED, "no such job: %s (never started, or expired)", id);
        goto out;
    }
    st = ctl_field_of(r, "status");
    if (st && strcmp(st, "paused_approval") == 0) {
        parked = parked_event(ctl, id);
        if (ctl->broken) {
            rc = DM_CTL_EXIT_UNREACHABLE;
            goto out;
        }
    }
    if (ctl->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "jobId", id);
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            const char *k = r->element[i]->str, *v = r->element[i + 1]->str;
            cJSON *parsed = NULL;
            if (strcmp(k, "job") == 0 || strcmp(k, "plan") == 0) {
                parsed = cJSON_Parse(v);
            }
            if (parsed) {
                cJSON_AddItemToObject(o, k, parsed);
            } else {
                cJSON_AddStringToObject(o, k, v);
            }
        }
        if (parked) {
            cJSON_AddItemToObject(o, "parkedEvent", parked);
            parked = NULL;
        }
        ctl_print_json(o);
        goto out;
    }
    printf("job %s\n", id);
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        const char *v = ctl_field_of(r, order[k]);
        char buf[40];
        if (!v) {
            continue;
        }
        if (strcmp(order[k], "created") == 0 || strcmp(order[k], "updated") == 0) {
            v = ctl_ms_text(v, buf, sizeof(buf));
        }
        printf("  %-12s ", order[k]);
        ctl_put_text(stdout, v);
        printf("\n");
    }
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *k = r->element[i]->str;
        int known = strcmp(k, "job") == 0 || strcmp(k, "plan") == 0 || strcmp(k, "last_op") == 0;
        for (size_t j = 0; !known && j < sizeof(order) / sizeof(order[0]); j++) {
            known = strcmp(k, order[j]) == 0;
        }
        if (!known) {
            printf("  %-12s ", k);
            ctl_put_text(stdout, r->element[i + 1]->str);
            printf("\n");
        }
    }
    if (ctl_field_of(r, "job")) {
        print_job_summary(ctl_field_of(r, "job"));
    }
    if (parked) {
        print_parked(parked, id);
    }
    if (ctl_field_of(r, "plan")) {
        print_plan(ctl_field_of(r, "plan"));
    }
out:
    cJSON_Delete(parked);
    freeReplyObject(r);
    return rc;
}
