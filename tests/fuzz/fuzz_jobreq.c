/* libFuzzer target for jobreq: parse never crashes; a parsed job round-trips through
 * dm_jobreq_to_json() to the same JSON; dm_jobreq_peek_id() agrees with the parser's jobId. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dream/domain/jobreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const hosts[] = {"localhost"};
    struct dm_jobreq_opts opts = DM_JOBREQ_OPTS_INIT;
    struct dm_jobreq *job = NULL;
    struct dm_error err;
    char id[DM_JOBREQ_ID_MAX + 1];
    int peek;

    opts.http_hosts = hosts;
    opts.n_http_hosts = 1;
    opts.trust_optional = size > 0 && (data[0] & 1);
    peek = dm_jobreq_peek_id(id, sizeof(id), (const char *)data, size);
    if (dm_jobreq_parse(&job, (const char *)data, size, &opts, &err) == 0) {
        struct dm_jobreq *again = NULL;
        char *a = dm_jobreq_to_json(job);
        char *b;
        if (!a || dm_jobreq_parse(&again, a, strlen(a), &opts, &err) != 0) {
            abort();
        }
        b = dm_jobreq_to_json(again);
        if (!b || strcmp(a, b) != 0) {
            abort();
        }
        if (peek != 0 || strcmp(id, job->job_id) != 0) {
            abort();
        }
        free(a);
        free(b);
        dm_jobreq_free(again);
        dm_jobreq_free(job);
    }
    return 0;
}
