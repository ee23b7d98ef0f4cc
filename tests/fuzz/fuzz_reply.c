/* libFuzzer target for reply and text: any model reply is either refused (DM_ERR_INVALID, or
 * DM_ERR_LIMIT for an oversized file reply) or gives a file that is UTF-8 without NUL, uses LF
 * only at line ends and ends in exactly one LF, or a JSON object; and the text helpers keep
 * their promises on any bytes (a cut never splits a sequence of valid text and never grows, a
 * cleaned line is one line within its cap, the validators agree with each other). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dream/core/buf.h"
#include "dream/core/error.h"
#include "dream/core/text.h"
#include "dream/domain/reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_file(const char *reply, size_t size)
{
    struct dm_error err;
    char *out = NULL;
    size_t n;
    int rc = dm_reply_extract_file(&out, reply, size, &err);

    if (rc != 0) {
        if ((rc != DM_ERR_INVALID && rc != DM_ERR_LIMIT && rc != DM_ERR_NOMEM) || out) {
            abort();
        }
        return;
    }
    n = strlen(out);
    if (n == 0 || n > size + 1 || out[n - 1] != '\n' || (n > 1 && out[n - 2] == '\n')) {
        abort();
    }
    if (dm_text_utf8_check(out, n, NULL) != 0) {
        abort();
    }
    free(out);
}

static void fuzz_json(const char *reply, size_t size)
{
    struct dm_error err;
    cJSON *root = NULL;
    int rc = dm_reply_json(&root, reply, size, 4096, "fuzz reply", &err);

    if (rc != 0) {
        if ((rc != DM_ERR_INVALID && rc != DM_ERR_NOMEM) || root ||
            strncmp(err.msg, "fuzz reply", 10) != 0) {
            abort();
        }
        return;
    }
    if (!cJSON_IsObject(root) || size > 4096 || dm_text_check(reply, size, NULL) != 0) {
        abort();
    }
    cJSON_Delete(root);
}

static void fuzz_text(const char *s, size_t size)
{
    long count = dm_text_utf8_count(s, size);
    size_t max = size / 2;
    size_t cut = dm_text_cut(s, size, max);
    size_t chars = dm_text_prefix_chars(s, size, max);
    struct dm_buf b;
    char *copy;
    char *line;

    if ((count < 0) != (dm_text_utf8_check(s, size, NULL) != 0)) {
        abort();
    }
    if (dm_text_check(s, size, NULL) == 0 && count < 0) {
        abort();
    }
    if (cut > max || chars > size || (max > 0 && size > 0 && cut == 0 && max >= 4)) {
        abort();
    }
    /* Cutting valid text by bytes or by characters leaves valid text. */
    if (count >= 0 &&
        (dm_text_utf8_check(s, cut, NULL) != 0 || dm_text_utf8_check(s, chars, NULL) != 0 ||
         (size_t)dm_text_utf8_count(s, chars) != ((size_t)count < max ? (size_t)count : max))) {
        abort();
    }
    dm_buf_init(&b, 0);
    if (dm_text_put_cut(&b, s, size, max + 3) != 0 || b.len > max + 3) {
        abort();
    }
    dm_buf_free(&b);
    copy = malloc(size + 1);
    if (!copy) {
        return;
    }
    memcpy(copy, s, size);
    copy[size] = '\0';
    line = dm_text_clean_line(copy, 200);
    if (!line || strlen(line) > 200) {
        abort();
    }
    for (const unsigned char *p = (const unsigned char *)line; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            abort();
        }
    }
    (void)dm_text_lang_of(copy);
    free(line);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_file((const char *)data, size);
    fuzz_json((const char *)data, size);
    fuzz_text((const char *)data, size);
    return 0;
}
