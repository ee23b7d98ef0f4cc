/*
 * forge_rules: GitHub's rules on names, titles and bodies (see
 * include/dream/domain/forge_rules.h). Pure; any thread.
 */
#include "dream/domain/forge_rules.h"

#include "dream/core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRUNC_NOTE "\n\n_(truncated by dreamd: the full text is longer than GitHub allows)_\n"

int dm_forge_name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > DM_FORGE_NAME_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return 0;
        }
    }
    return 1;
}

/* Characters as GitHub counts them (astral characters count twice, as in UTF-16). */
static size_t char_weight(unsigned char lead)
{
    return lead >= 0xF0 ? 2 : 1;
}

static char *cap_text(const char *s, size_t max_chars, const char *note)
{
    size_t chars = 0, i;
    size_t note_chars = note ? strlen(note) : 0;
    size_t keep, cut = 0;
    struct dm_buf b;

    if (!s) {
        return strdup("");
    }
    for (i = 0; s[i]; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            chars += char_weight((unsigned char)s[i]);
        }
    }
    if (chars <= max_chars) {
        return strdup(s);
    }
    keep = max_chars > note_chars ? max_chars - note_chars : 0;
    chars = 0;
    for (i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xC0) != 0x80) {
            if (chars + char_weight(c) > keep) {
                break;
            }
            chars += char_weight(c);
        }
        cut = i + 1;
    }
    /* cut now ends after a whole character: the next byte (if any) is a lead byte. */
    while (s[cut] && ((unsigned char)s[cut] & 0xC0) == 0x80) {
        cut++;
    }
    dm_buf_init(&b, 0);
    if (dm_buf_append(&b, s, cut) < 0 || (note && dm_buf_puts(&b, note) < 0)) {
        dm_buf_free(&b);
        return NULL;
    }
    return dm_buf_detach(&b);
}

char *dm_forge_cap_body(const char *body, size_t max_chars)
{
    return cap_text(body, max_chars, TRUNC_NOTE);
}

/* "[Dream] <title>", one line, capped. */
char *dm_forge_title(const char *title)
{
    char *t;
    char *capped;

    if (asprintf(&t, "%s%s",
                 strncmp(title, DM_FORGE_TITLE_PREFIX, strlen(DM_FORGE_TITLE_PREFIX)) == 0
                     ? ""
                     : DM_FORGE_TITLE_PREFIX,
                 title) < 0) {
        return NULL;
    }
    for (char *p = t; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = ' ';
        }
    }
    capped = cap_text(t, DM_FORGE_TITLE_MAX, NULL);
    free(t);
    return capped;
}
