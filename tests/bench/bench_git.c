/*
 * bench_git: times dm_git_publish of N generated files into an existing repository — first with
 * an empty data directory (the mirror is cloned), then on the cached mirror (a fetch of the base
 * only), then a re-publish of the same job (nothing to push). Built and run by bench_git.sh.
 *
 *   bench_git <data_dir> <url_template> <token|-> <owner> <repo> <nfiles> <label>
 */
#include "dream/io/git.h"
#include "dream/core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int run(const char *what, const char *label, const struct dm_git_opts *o, const char *owner,
               const char *repo, const char *branch, const char *job,
               const struct dm_git_file *files, size_t n)
{
    struct dm_git_result res;
    struct dm_error err = {0};
    double t0 = now_ms();
    int rc = dm_git_publish(&res, o, owner, repo, "main", branch, job, "bench-spec",
                            "[Dream] Benchmark\n\nTwenty generated files.", 1767225600LL, files, n,
                            &err);
    double t1 = now_ms();

    if (rc < 0) {
        fprintf(stderr, "bench_git: %s failed: %s\n", what, err.msg);
        return 1;
    }
    printf("  %-5s %-44s %8.1f ms  (commit %.12s, pushed %d)\n", label, what, t1 - t0, res.commit,
           res.pushed);
    return 0;
}

int main(int argc, char **argv)
{
    struct dm_git_opts o = DM_GIT_OPTS_INIT;
    struct dm_git_file *files;
    size_t n;
    int rc = 0;

    if (argc != 8) {
        fprintf(stderr,
                "usage: %s <data_dir> <url_template> <token|-> <owner> <repo> <nfiles> "
                "<label>\n",
                argv[0]);
        return 2;
    }
    dm_log_set_level(DM_LOG_WARN);
    o.data_dir = argv[1];
    o.url_template = argv[2];
    o.token = strcmp(argv[3], "-") == 0 ? NULL : argv[3];
    o.author_name = "Dream Bench";
    o.author_email = "bench@dream.test";
    n = (size_t)atoi(argv[6]);
    files = calloc(n, sizeof(*files));
    for (size_t i = 0; i < n; i++) {
        char *path, *content;
        if (asprintf(&path, "src/generated/module-%02zu.ts", i) < 0 ||
            asprintf(&content,
                     "// generated %zu\nexport function handler%zu(x: number): number {\n"
                     "    return x * %zu;\n}\n",
                     i, i, i + 1) < 0) {
            return 1;
        }
        files[i].path = path;
        files[i].content = content;
        files[i].len = strlen(content);
    }
    rc |= run("first (clone mirror + commit + push)", argv[7], &o, argv[4], argv[5],
              "dream/bench-1", "bench-job-1", files, n);
    if (rc == 0) {
        rc |= run("cached mirror (fetch + commit + push)", argv[7], &o, argv[4], argv[5],
                  "dream/bench-2", "bench-job-2", files, n);
    }
    if (rc == 0) {
        rc |= run("re-publish of the same job (no push)", argv[7], &o, argv[4], argv[5],
                  "dream/bench-2", "bench-job-2", files, n);
    }
    for (size_t i = 0; i < n; i++) {
        free((char *)files[i].path);
        free((char *)files[i].content);
    }
    free(files);
    return rc;
}
