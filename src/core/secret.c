/*
 * secret: wiping secret strings before they are freed (see include/dream/core/secret.h). Pure;
 * any thread.
 */
#include "dream/core/secret.h"

#include <stdlib.h>
#include <string.h>

void dm_secret_wipe(void *p, size_t n)
{
    if (p && n) {
        explicit_bzero(p, n);
    }
}

void dm_secret_free(char *s)
{
    if (s) {
        dm_secret_wipe(s, strlen(s));
        free(s);
    }
}
