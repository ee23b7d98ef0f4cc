/*
 * fsutil: the few file-tree operations dreamd's own folders need (the mirror cache, the checks'
 * base cache and work folders). Blocking file-system calls: threadpool or start-up only, never
 * the loop thread.
 */
#ifndef DREAM_FSUTIL_H
#define DREAM_FSUTIL_H

#include <stddef.h>

/* Creates path and its missing parents (mode 0755). Returns 0 or -1 with errno set
 * (ENAMETOOLONG past PATH_MAX). An existing folder is fine. */
int dm_fs_mkdir_p(const char *path);

/* dm_fs_mkdir_p of the folder that holds path (nothing when path has no '/'). */
int dm_fs_mkdir_parent(const char *path);

/* Removes path and everything under it; symlinks are removed, never followed. Best effort: what
 * cannot be removed stays. */
void dm_fs_rm_rf(const char *path);

/* Reads at most max bytes of path (not following a final symlink) into a malloc'd,
 * NUL-terminated buffer (free()); *len gets the bytes read. NULL when it cannot be opened or on
 * NOMEM. */
char *dm_fs_read(const char *path, size_t max, size_t *len);

#endif
