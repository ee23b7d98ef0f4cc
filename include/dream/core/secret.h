/*
 * secret: handling of secret strings (API keys, tokens, passwords, signing secrets) in memory:
 * wiped before they are freed, so they do not linger in freed heap pages, core files or swap.
 * Pure; any thread.
 */
#ifndef DREAM_SECRET_H
#define DREAM_SECRET_H

#include <stddef.h>

/* Overwrites the n bytes at p with zeros in a way the compiler may not remove. */
void dm_secret_wipe(void *p, size_t n);

/* Wipes the NUL-terminated string s, then frees it. NULL is fine. */
void dm_secret_free(char *s);

#endif
