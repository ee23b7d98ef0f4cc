/*
 * dmtest: helpers for integration tests — temporary directories, free ports, a real
 * redis-server per test (no persistence files left behind), child processes, and a synchronous
 * hiredis client for assertions. Test processes only.
 */
#ifndef DMTEST_H
#define DMTEST_H

#include <hiredis/hiredis.h>
#include <sys/types.h>

/* Source and build tree (from DREAM_SOURCE_DIR / DREAM_BINARY_DIR, set by ctest). */
const char *dmt_source_dir(void);
const char *dmt_binary_dir(void);

/* A fresh temporary directory (mkdtemp under $TMPDIR); removed by dmt_rmtree. Caller frees. */
char *dmt_tempdir(const char *tag);
void dmt_rmtree(const char *path);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int dmt_free_port(void);

struct dmt_redis {
    pid_t pid;
    int port;
    char *dir;
    int aof; /* set before dmt_redis_start: append-only file with fsync always (restart tests) */
};

/* Starts redis-server on a free port in a temporary directory, without persistence, and waits
 * until it answers PING (aborts the test on failure). */
void dmt_redis_start(struct dmt_redis *r);
/* Restarts on the same port (after dmt_redis_kill or dmt_redis_shutdown). */
void dmt_redis_restart(struct dmt_redis *r);
/* SIGTERMs the server (a clean shutdown that keeps an AOF) and waits for it. */
void dmt_redis_shutdown(struct dmt_redis *r);
/* SIGKILLs the server and waits for it. */
void dmt_redis_kill(struct dmt_redis *r);
/* Kills the server (if running) and removes its directory. */
void dmt_redis_stop(struct dmt_redis *r);
/* A synchronous connection (aborts the test on failure). Caller redisFree()s. */
redisContext *dmt_redis_connect(const struct dmt_redis *r);
/* "redis://127.0.0.1:<port>/0" in a static buffer. */
const char *dmt_redis_url(const struct dmt_redis *r);

/* Starts argv[0] with argv and extra environment entries ("K=V", NULL-terminated, may be NULL),
 * stdout/stderr appended to logpath (NULL: inherit). Returns the pid. */
pid_t dmt_spawn(char *const argv[], char *const env[], const char *logpath);
/* SIGKILLs every process dmt_spawn started in this test process that is still running (for
 * teardown after a failed assertion, so no replica outlives its test). */
void dmt_kill_all(void);
/* Sends sig and waits up to timeout_ms; returns the exit status as from waitpid, or -1 on
 * timeout (the process is then SIGKILLed). */
int dmt_stop(pid_t pid, int sig, int timeout_ms);

/* The bed most engine-level tests run on: a fresh redis-server (with an append-only file when
 * aof), a temporary folder named after tag, and a connection. dmt_bed_stop kills every process
 * the test spawned, then frees and removes all three (safe after a failed assertion). */
void dmt_bed_start(struct dmt_redis *r, char **dir, redisContext **rc, const char *tag, int aof);
void dmt_bed_stop(struct dmt_redis *r, char **dir, redisContext **rc);

/* Sleeps ms milliseconds. */
void dmt_sleep_ms(int ms);
/* Monotonic milliseconds. */
long long dmt_now_ms(void);

/* Reads a whole file (NULL if missing). Caller frees. */
char *dmt_read_file(const char *path);

#endif
