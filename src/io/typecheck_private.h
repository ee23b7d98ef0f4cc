/*
 * typecheck_private: what the files of the type-check share (contract in
 * include/dream/io/typecheck.h). Not for use outside src/io/typecheck*.c.
 *
 *   typecheck.c       finding tsc; the loop side: the steps queued on the threadpool, tsc as a
 *                     child with a deadline and capped pipes, the completion; dm_typecheck_start
 *                     and dm_typecheck_cancel.
 *   typecheck_work.c  the threadpool side: the work directory, the untyped declarations, the
 *                     generated tsconfig, the base's baseline, parsing the output.
 *
 * Threading: struct dm_typecheck belongs to the loop thread except while its work is queued;
 * the work callback touches only the check's own copies and its atomic cancel flag.
 */
#ifndef DREAM_IO_TYPECHECK_PRIVATE_H
#define DREAM_IO_TYPECHECK_PRIVATE_H

#include "dream/core/buf.h"
#include "dream/io/typecheck.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define TIMEOUT_DEFAULT_MS 60000u
#define OUTPUT_CAP_DEFAULT ((size_t)1 << 20)
#define FILE_BYTES_DEFAULT ((size_t)2 << 20)
#define BASE_FILES_DEFAULT ((size_t)20000)
#define MEM_DEFAULT_MB ((size_t)4096)
#define UNTYPED_MAX 4000 /* packages declared untyped at most */
#define GRACE_MS 500
#define CONFIG_NAME "tsconfig.dream-check.json"
#define SHIMS_NAME "dream-check-untyped.d.ts"
#define GLOBALS_NAME "dream-check-globals.d.ts"

enum step { STEP_PREPARE, STEP_RUN, STEP_FINISH };

struct dm_typecheck {
    uv_loop_t *loop;
    uv_work_t work;
    atomic_int cancel;
    enum step step;
    /* inputs */
    char *tsc;
    char *prlimit;
    char *base_dir;
    char *work_dir;
    char *baseline;      /* the base's own diagnostics, cached in this file (or NULL) */
    char *baseline_text; /* its content, read by prepare (NULL: none yet) */
    size_t baseline_len;
    int from_baseline; /* a base-only check answered from the file: tsc does not run */
    struct dm_typecheck_file *files;
    size_t nfiles;
    unsigned timeout_ms;
    size_t output_cap, max_file_bytes, max_base_files, max_diags, mem_mb;
    dm_typecheck_cb on_done;
    void *arg;
    /* the untyped packages (prepare) */
    char **untyped;
    size_t n_untyped;
    int any_jsx;
    /* the folders made for the change's files (prepare; repository-relative), each made once */
    char **dirs;
    size_t ndirs;
    int dry; /* no tsc to run: the base is walked and counted, nothing is written */
    size_t base_len, work_len; /* strlen of base_dir and work_dir (prepare) */
    /* the child */
    uv_process_t proc;
    uv_pipe_t out, errp;
    uv_timer_t timer;
    int open_handles;
    int spawned, exited, out_eof, err_eof, timed_out, finishing;
    int spawn_err;
    int64_t exit_status;
    int term_signal;
    struct dm_buf outb, errb;
    char rbuf[16384];
    /* results */
    int rc;
    struct dm_error err;
    struct dm_typecheck_result res;
};

/* 1 once the check is cancelled (any thread). */
static inline int typecheck_cancelled(struct dm_typecheck *tc)
{
    return atomic_load(&tc->cancel) != 0;
}

/* ---- typecheck.c ---- */

/* The first executable called name on $PATH (a default PATH when unset); malloc'ed, or NULL. */
char *typecheck_search_path(const char *name);

/* The version in the package.json next to the binary's folder ("7.0.2"), or "". */
void typecheck_read_version(const char *tsc, char *out, size_t n);

/* ---- typecheck_work.c ---- */

/* The threadpool's work for the check's current step: prepare (the work directory, the
 * untyped declarations, the tsconfig; or the answer from the baseline), or finish (parse the
 * output, the baseline, remove the work directory). Sets tc->rc and tc->err. */
void typecheck_on_work(uv_work_t *req);

#endif
