/*
 * dmtest: integration-test helpers (see dmtest.h). Test processes only; aborts the current
 * Criterion test on setup failures.
 */
#include "dmtest.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *dmt_source_dir(void)
{
    const char *s = getenv("DREAM_SOURCE_DIR");
    return s ? s : ".";
}

const char *dmt_binary_dir(void)
{
    const char *s = getenv("DREAM_BINARY_DIR");
    return s ? s : ".";
}

char *dmt_tempdir(const char *tag)
{
    const char *tmp = getenv("TMPDIR");
    char *path = NULL;
    if (asprintf(&path, "%s/dmt-%s-XXXXXX", tmp ? tmp : "/tmp", tag) < 0) {
        cr_assert_fail("asprintf");
    }
    cr_assert_not_null(mkdtemp(path), "mkdtemp %s: %s", path, strerror(errno));
    return path;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

void dmt_rmtree(const char *path)
{
    if (path) {
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
}

int dmt_free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port;

    cr_assert(fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

void dmt_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

long long dmt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pid_t spawned[256];
static int nspawned;

void dmt_kill_all(void)
{
    for (int i = 0; i < nspawned; i++) {
        if (spawned[i] > 0 && kill(spawned[i], 0) == 0) {
            kill(spawned[i], SIGKILL);
            waitpid(spawned[i], NULL, 0);
        }
        spawned[i] = 0;
    }
    nspawned = 0;
}

pid_t dmt_spawn(char *const argv[], char *const env[], const char *logpath)
{
    pid_t pid = fork();
    if (pid > 0 && nspawned < 256) {
        spawned[nspawned++] = pid;
    }
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        if (logpath) {
            int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
        }
        for (int i = 0; env && env[i]; i++) {
            putenv(env[i]);
        }
        /* The child must not inherit the sanitizer's view that it is a test harness. */
        execvp(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

int dmt_stop(pid_t pid, int sig, int timeout_ms)
{
    int status = 0;
    long long deadline = dmt_now_ms() + timeout_ms;

    if (pid <= 0) {
        return -1;
    }
    kill(pid, sig);
    while (dmt_now_ms() < deadline) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            return status;
        }
        if (r < 0) {
            return -1;
        }
        dmt_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

const char *dmt_redis_url(const struct dmt_redis *r)
{
    static char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", r->port);
    return url;
}

static void redis_spawn(struct dmt_redis *r)
{
    char port[16];
    char log[512];
    snprintf(port, sizeof(port), "%d", r->port);
    snprintf(log, sizeof(log), "%s/redis.log", r->dir);
    char *argv[] = {"redis-server",
                    "--port",
                    port,
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    r->dir,
                    "--save",
                    "",
                    "--appendonly",
                    r->aof ? "yes" : "no",
                    "--appendfsync",
                    "always",
                    "--daemonize",
                    "no",
                    "--logfile",
                    log,
                    NULL};
    r->pid = dmt_spawn(argv, NULL, NULL);
    for (int i = 0; i < 500; i++) {
        redisContext *c = redisConnect("127.0.0.1", r->port);
        if (c && !c->err) {
            redisReply *rep = redisCommand(c, "PING");
            int ok = rep && rep->type == REDIS_REPLY_STATUS;
            freeReplyObject(rep);
            redisFree(c);
            if (ok) {
                return;
            }
        } else if (c) {
            redisFree(c);
        }
        dmt_sleep_ms(10);
    }
    cr_assert_fail("redis-server did not start on port %d", r->port);
}

void dmt_redis_start(struct dmt_redis *r)
{
    /* r->aof is the caller's choice; everything else is set here. */
    r->dir = dmt_tempdir("redis");
    r->port = dmt_free_port();
    redis_spawn(r);
}

void dmt_redis_restart(struct dmt_redis *r)
{
    redis_spawn(r);
}

void dmt_redis_shutdown(struct dmt_redis *r)
{
    if (r->pid > 0) {
        dmt_stop(r->pid, SIGTERM, 10000);
        r->pid = 0;
    }
}

void dmt_redis_kill(struct dmt_redis *r)
{
    if (r->pid > 0) {
        dmt_stop(r->pid, SIGKILL, 5000);
        r->pid = 0;
    }
}

void dmt_redis_stop(struct dmt_redis *r)
{
    if (r->pid > 0) {
        dmt_stop(r->pid, SIGTERM, 5000);
        r->pid = 0;
    }
    dmt_rmtree(r->dir);
    free(r->dir);
    r->dir = NULL;
}

redisContext *dmt_redis_connect(const struct dmt_redis *r)
{
    redisContext *c = redisConnect("127.0.0.1", r->port);
    cr_assert(c && !c->err, "connect to redis on %d", r->port);
    return c;
}

char *dmt_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *data;
    long n;

    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc((size_t)n + 1);
    if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
    }
    if (data) {
        data[n] = '\0';
    }
    fclose(f);
    return data;
}

void dmt_bed_start(struct dmt_redis *r, char **dir, redisContext **rc, const char *tag, int aof)
{
    memset(r, 0, sizeof(*r));
    r->aof = aof;
    dmt_redis_start(r);
    *dir = dmt_tempdir(tag);
    *rc = dmt_redis_connect(r);
}

void dmt_bed_stop(struct dmt_redis *r, char **dir, redisContext **rc)
{
    dmt_kill_all();
    if (*rc) {
        redisFree(*rc);
        *rc = NULL;
    }
    dmt_redis_stop(r);
    if (*dir) {
        dmt_rmtree(*dir);
        free(*dir);
        *dir = NULL;
    }
}
