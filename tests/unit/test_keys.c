/* Unit tests for keys: the exact spelling of every Redis key, and refusal of names that do not
 * fit. The spellings are the contract with producers, dashboards and ACLs (README "Redis"). */
#include <criterion/criterion.h>
#include <string.h>

#include "dream/core/error.h"
#include "dream/core/keys.h"

Test(keys, replica_wide_keys)
{
    struct dm_keys k;
    cr_assert_eq(dm_keys_init(&k, "dream"), 0);
    cr_assert_str_eq(k.jobs, "dream:jobs");
    cr_assert_str_eq(k.dead, "dream:dead");
    cr_assert_str_eq(k.events, "dream:events");
    cr_assert_str_eq(k.parked, "dream:parked");
    cr_assert_str_eq(k.control, "dream:control");
    cr_assert_str_eq(DM_KEYS_GROUP, "workers");
}

Test(keys, other_prefix)
{
    struct dm_keys k;
    cr_assert_eq(dm_keys_init(&k, "t:1.a"), 0);
    cr_assert_str_eq(k.jobs, "t:1.a:jobs");
    cr_assert_str_eq(k.control, "t:1.a:control");
}

Test(keys, job_keys)
{
    char b[DM_KEYS_MAX];
    cr_assert_eq(dm_keys_job(b, sizeof(b), "dream", "j-1", DM_JOB_KEY_HASH), 0);
    cr_assert_str_eq(b, "dream:job:j-1");
    cr_assert_eq(dm_keys_job(b, sizeof(b), "dream", "j-1", DM_JOB_KEY_EVENTS), 0);
    cr_assert_str_eq(b, "dream:job:j-1:events");
    cr_assert_eq(dm_keys_job(b, sizeof(b), "dream", "j-1", DM_JOB_KEY_FILES), 0);
    cr_assert_str_eq(b, "dream:job:j-1:files");
    cr_assert_eq(dm_keys_job(b, sizeof(b), "dream", "j-1", (enum dm_job_key)7), DM_ERR_INVALID);
    cr_assert_str_eq(b, "");
}

Test(keys, worker_and_patterns)
{
    char b[DM_KEYS_MAX];
    cr_assert_eq(dm_keys_worker(b, sizeof(b), "dream", "host-1:42"), 0);
    cr_assert_str_eq(b, "dream:worker:host-1:42");
    cr_assert_eq(dm_keys_pattern(b, sizeof(b), "dream", DM_KEY_FAMILY_JOB), 0);
    cr_assert_str_eq(b, "dream:job:*");
    cr_assert_eq(dm_keys_pattern(b, sizeof(b), "dream", DM_KEY_FAMILY_WORKER), 0);
    cr_assert_str_eq(b, "dream:worker:*");
}

Test(keys, name_of)
{
    cr_assert_str_eq(dm_keys_name_of("dream:job:j-1", "dream", DM_KEY_FAMILY_JOB), "j-1");
    cr_assert_null(dm_keys_name_of("dream:job:j-1:events", "dream", DM_KEY_FAMILY_JOB));
    cr_assert_null(dm_keys_name_of("dream:job:j-1:files", "dream", DM_KEY_FAMILY_JOB));
    cr_assert_null(dm_keys_name_of("dream:job:", "dream", DM_KEY_FAMILY_JOB));
    cr_assert_null(dm_keys_name_of("other:job:j-1", "dream", DM_KEY_FAMILY_JOB));
    cr_assert_null(dm_keys_name_of("dream:jobs", "dream", DM_KEY_FAMILY_JOB));
    cr_assert_str_eq(dm_keys_name_of("dream:worker:h:1", "dream", DM_KEY_FAMILY_WORKER), "h:1");
    cr_assert_null(dm_keys_name_of("dream:job:j-1", "dream", DM_KEY_FAMILY_WORKER));
}

Test(keys, refuses_what_does_not_fit)
{
    char small[14];
    char b[DM_KEYS_MAX];
    char prefix[DM_KEYS_PREFIX_MAX + 2];
    char id[200];
    struct dm_keys k;

    /* "dream:job:j-1" is 13 bytes: fits 14 exactly, its :events does not. */
    cr_assert_eq(dm_keys_job(small, sizeof(small), "dream", "j-1", DM_JOB_KEY_HASH), 0);
    cr_assert_str_eq(small, "dream:job:j-1");
    cr_assert_eq(dm_keys_job(small, sizeof(small), "dream", "j-1", DM_JOB_KEY_EVENTS),
                 DM_ERR_LIMIT);
    cr_assert_str_eq(small, "");
    cr_assert_eq(dm_keys_worker(small, sizeof(small), "dream", "a-long-host"), DM_ERR_LIMIT);
    cr_assert_str_eq(small, "");
    cr_assert_eq(dm_keys_job(b, 0, "dream", "j", DM_JOB_KEY_HASH), DM_ERR_LIMIT);

    memset(prefix, 'p', sizeof(prefix) - 1);
    prefix[sizeof(prefix) - 1] = '\0'; /* DM_KEYS_PREFIX_MAX + 1 bytes */
    cr_assert_eq(dm_keys_init(&k, prefix), DM_ERR_LIMIT);
    cr_assert_str_eq(k.jobs, "");
    prefix[DM_KEYS_PREFIX_MAX] = '\0'; /* exactly the maximum */
    cr_assert_eq(dm_keys_init(&k, prefix), 0);
    cr_assert_eq(strlen(k.control), DM_KEYS_PREFIX_MAX + strlen(":control"));

    /* The longest prefix and a 128-byte jobId fit the documented room. */
    memset(id, 'j', 128);
    id[128] = '\0';
    cr_assert_eq(dm_keys_job(b, sizeof(b), prefix, id, DM_JOB_KEY_EVENTS), 0);
    memset(id, 'j', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    cr_assert_eq(dm_keys_job(b, sizeof(b), prefix, id, DM_JOB_KEY_EVENTS), DM_ERR_LIMIT);
}

Test(keys, refuses_missing_parts)
{
    char b[DM_KEYS_MAX];
    struct dm_keys k;
    cr_assert_eq(dm_keys_init(&k, ""), DM_ERR_INVALID);
    cr_assert_eq(dm_keys_init(&k, NULL), DM_ERR_INVALID);
    cr_assert_eq(dm_keys_job(b, sizeof(b), "dream", "", DM_JOB_KEY_HASH), DM_ERR_INVALID);
    cr_assert_eq(dm_keys_job(b, sizeof(b), "dream", NULL, DM_JOB_KEY_HASH), DM_ERR_INVALID);
    cr_assert_eq(dm_keys_worker(b, sizeof(b), NULL, "w"), DM_ERR_INVALID);
}

Test(keys, index_and_stats_keys)
{
    struct dm_keys k;
    char out[DM_KEYS_MAX], small[12];

    cr_assert_eq(dm_keys_init(&k, "dream"), 0);
    cr_assert_str_eq(k.idx_created, "dream:idx:created");
    cr_assert_eq(dm_keys_idx(out, sizeof(out), "dream", DM_IDX_STATUS, "failed"), 0);
    cr_assert_str_eq(out, "dream:idx:status:failed");
    cr_assert_eq(dm_keys_idx(out, sizeof(out), "dream", DM_IDX_REPO, "acme/app"), 0);
    cr_assert_str_eq(out, "dream:idx:repo:acme/app");
    cr_assert_eq(dm_keys_idx(out, sizeof(out), "p", DM_IDX_USER, "user-1"), 0);
    cr_assert_str_eq(out, "p:idx:user:user-1");
    cr_assert_eq(dm_keys_stats_hour(out, sizeof(out), "dream", 499035), 0);
    cr_assert_str_eq(out, "dream:stats:499035");
    cr_assert_eq(dm_keys_idx(out, sizeof(out), "dream", (enum dm_idx_key)7, "x"), DM_ERR_INVALID);
    cr_assert_str_eq(out, "");
    cr_assert_eq(dm_keys_idx(out, sizeof(out), "dream", DM_IDX_STATUS, ""), DM_ERR_INVALID);
    cr_assert_eq(dm_keys_idx(small, sizeof(small), "dream", DM_IDX_REPO, "acme/app"), DM_ERR_LIMIT);
    cr_assert_str_eq(small, "");
}
