/*
 * keys: the Redis key schema (see include/dream/core/keys.h). The one place that spells a key
 * name; the engine and dreamctl build every key through it. Pure; any thread.
 */
#include "dream/core/keys.h"
#include "dream/core/error.h"

#include <stdio.h>
#include <string.h>

/* Writes "<prefix><mid><name><tail>" into out, or "" and an error when it does not fit. */
static int put(char *out, size_t n, const char *prefix, const char *mid, const char *name,
               const char *tail)
{
    int w;

    if (n) {
        out[0] = '\0';
    }
    if (!prefix || !*prefix || !name || !*name) {
        return DM_ERR_INVALID;
    }
    if (strlen(prefix) > DM_KEYS_PREFIX_MAX || !n) {
        return DM_ERR_LIMIT;
    }
    w = snprintf(out, n, "%s%s%s%s", prefix, mid, name, tail);
    if (w < 0 || (size_t)w >= n) {
        out[0] = '\0';
        return DM_ERR_LIMIT;
    }
    return 0;
}

int dm_keys_init(struct dm_keys *k, const char *prefix)
{
    int rc;

    if ((rc = put(k->jobs, sizeof(k->jobs), prefix, ":", "jobs", "")) ||
        (rc = put(k->dead, sizeof(k->dead), prefix, ":", "dead", "")) ||
        (rc = put(k->events, sizeof(k->events), prefix, ":", "events", "")) ||
        (rc = put(k->parked, sizeof(k->parked), prefix, ":", "parked", "")) ||
        (rc = put(k->control, sizeof(k->control), prefix, ":", "control", "")) ||
        (rc = put(k->idx_created, sizeof(k->idx_created), prefix, ":", "idx:created", ""))) {
        memset(k, 0, sizeof(*k));
    }
    return rc;
}

int dm_keys_job(char *out, size_t n, const char *prefix, const char *job_id, enum dm_job_key which)
{
    static const char *const tails[] = {"", ":events", ":files"};

    if ((unsigned)which >= sizeof(tails) / sizeof(tails[0])) {
        if (n) {
            out[0] = '\0';
        }
        return DM_ERR_INVALID;
    }
    return put(out, n, prefix, ":job:", job_id, tails[which]);
}

int dm_keys_worker(char *out, size_t n, const char *prefix, const char *consumer)
{
    return put(out, n, prefix, ":worker:", consumer, "");
}

int dm_keys_idx(char *out, size_t n, const char *prefix, enum dm_idx_key which, const char *name)
{
    static const char *const mids[] = {":idx:status:", ":idx:repo:", ":idx:user:"};

    if ((unsigned)which >= sizeof(mids) / sizeof(mids[0])) {
        if (n) {
            out[0] = '\0';
        }
        return DM_ERR_INVALID;
    }
    return put(out, n, prefix, mids[which], name, "");
}

int dm_keys_stats_hour(char *out, size_t n, const char *prefix, long long hour)
{
    char h[24];

    snprintf(h, sizeof(h), "%lld", hour);
    return put(out, n, prefix, ":stats:", h, "");
}

static const char *family_mid(enum dm_key_family family)
{
    switch (family) {
    case DM_KEY_FAMILY_JOB:
        return ":job:";
    case DM_KEY_FAMILY_WORKER:
        return ":worker:";
    }
    return NULL;
}

int dm_keys_pattern(char *out, size_t n, const char *prefix, enum dm_key_family family)
{
    const char *mid = family_mid(family);

    if (!mid) {
        if (n) {
            out[0] = '\0';
        }
        return DM_ERR_INVALID;
    }
    return put(out, n, prefix, mid, "*", "");
}

const char *dm_keys_name_of(const char *key, const char *prefix, enum dm_key_family family)
{
    const char *mid = family_mid(family);
    size_t pl, ml;
    const char *name;

    if (!key || !prefix || !mid) {
        return NULL;
    }
    pl = strlen(prefix);
    ml = strlen(mid);
    if (strncmp(key, prefix, pl) != 0 || strncmp(key + pl, mid, ml) != 0) {
        return NULL;
    }
    name = key + pl + ml;
    if (!*name) {
        return NULL;
    }
    /* A jobId never holds ':', so one after it marks a sub-key (:events, :files). A consumer
     * name may hold ':' (the `consumer` setting allows it). */
    if (family == DM_KEY_FAMILY_JOB && strchr(name, ':')) {
        return NULL;
    }
    return name;
}
