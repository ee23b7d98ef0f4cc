/* libFuzzer target for safety: scans of any bytes under every language never crash, keep
 * excerpts printable and secret excerpts redacted; the path and branch checks never crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dream/domain/safety.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const paths[] = {"migrations/a.sql", "src/a.ts",   "scripts/a.sh",
                                        "docs/a.md",        "src/a.yaml", "Dockerfile"};
    struct dm_findings f = DM_FINDINGS_INIT;
    struct dm_error err;
    const char *path;
    char *s;
    char *json;

    if (size == 0) {
        return 0;
    }
    path = paths[data[0] % (sizeof(paths) / sizeof(paths[0]))];
    if (dm_safety_scan(&f, path, (const char *)data + 1, size - 1, DM_SAFETY_RULES_ALL, &err) ==
        0) {
        for (size_t i = 0; i < f.len; i++) {
            const struct dm_finding *it = &f.items[i];
            if (it->line < 1 || strlen(it->excerpt) >= DM_SAFETY_EXCERPT_MAX) {
                abort();
            }
            if (it->kind == DM_FINDING_SECRET && strlen(it->excerpt) > 4 + 3) {
                abort();
            }
        }
        json = dm_findings_to_json(&f);
        free(json);
    }
    dm_findings_free(&f);

    s = malloc(size + 1);
    if (!s) {
        return 0;
    }
    memcpy(s, data, size);
    s[size] = '\0';
    (void)dm_safety_check_path(s, NULL, data[0] & 1, &err);
    (void)dm_safety_check_branch(s, "dream/", "main", NULL, &err);
    free(s);
    return 0;
}
