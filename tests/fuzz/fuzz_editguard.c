/* libFuzzer target for exports and the edit guard: any bytes are read without crashing, in
 * linear time (libFuzzer's -timeout catches a quadratic path), and the results keep their
 * promises: names and registrations are printable single lines within their caps, at most
 * DM_EXPORTS_MAX_NAMES per list, without duplicates; a file compared with itself always passes
 * the guard; the guard answers only 0, DM_ERR_INVALID (with a message naming the path) or
 * DM_ERR_NOMEM. The input is split at its first 0xff byte into base and edit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dream/core/error.h"
#include "dream/domain/editguard.h"
#include "dream/domain/exports.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_list(char *const *list, size_t n)
{
    if (n > DM_EXPORTS_MAX_NAMES) {
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(list[i]);
        if (len > DM_EXPORTS_NAME_MAX + 4) {
            abort();
        }
        for (size_t k = 0; k < len; k++) {
            if ((unsigned char)list[i][k] < 0x20 || list[i][k] == 0x7f) {
                abort();
            }
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(list[i], list[j]) == 0) {
                abort();
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const uint8_t *cut = memchr(data, 0xff, size);
    size_t base_len = cut ? (size_t)(cut - data) : size;
    const char *edit = cut ? s + base_len + 1 : s;
    size_t edit_len = cut ? size - base_len - 1 : size;
    struct dm_exports e;
    struct dm_error err;
    int rc;

    if (dm_exports_read(&e, s, size, &err) == 0) {
        check_list(e.names, e.n_names);
        check_list(e.routes, e.n_routes);
        dm_exports_clear(&e);
    }
    rc = dm_editguard_check("src/index.ts", s, base_len, s, base_len, 0, &err);
    if (rc != 0 && rc != DM_ERR_NOMEM) {
        abort();
    }
    rc = dm_editguard_check("src/index.ts", s, base_len, edit, edit_len, 0, &err);
    if (rc != 0 && rc != DM_ERR_INVALID && rc != DM_ERR_NOMEM) {
        abort();
    }
    if (rc == DM_ERR_INVALID && !strstr(err.msg, "edit of src/index.ts")) {
        abort();
    }
    return 0;
}
