/*
 * fsutil: creating and removing dreamd's own file trees (see include/dream/io/fsutil.h).
 * Blocking; threadpool or start-up only.
 */
#include "dream/io/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int dm_fs_mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    size_t n = strlen(path);

    if (n >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    /* Most calls find the parent there: one mkdir, not one per component. */
    if (mkdir(path, 0755) == 0 || errno == EEXIST) {
        return 0;
    }
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

int dm_fs_mkdir_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');

    if (!slash || (size_t)(slash - path) >= sizeof(dir)) {
        return 0;
    }
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    return dm_fs_mkdir_p(dir);
}

void dm_fs_rm_rf(const char *path)
{
    struct stat st;
    DIR *d;
    struct dirent *e;

    if (lstat(path, &st) != 0) {
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    d = opendir(path);
    if (d) {
        while ((e = readdir(d)) != NULL) {
            char *child = NULL;
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            if (asprintf(&child, "%s/%s", path, e->d_name) >= 0) {
                dm_fs_rm_rf(child);
                free(child);
            }
        }
        closedir(d);
    }
    rmdir(path);
}

char *dm_fs_read(const char *path, size_t max, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    char *buf;
    size_t got = 0;

    *len = 0;
    if (fd < 0) {
        return NULL;
    }
    buf = malloc(max + 1);
    while (buf && got < max) {
        ssize_t r = read(fd, buf + got, max - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (buf) {
        buf[got] = '\0';
        *len = got;
    }
    return buf;
}
