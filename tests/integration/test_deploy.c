/*
 * Deployment artifacts: runs scripts/check-deploy.sh (Dockerfile, deploy/compose.yaml,
 * deploy/k8s/, deploy/systemd/ against dreamd's own settings, with the built dreamd's --help)
 * on the tree as it is, where it must pass, and on temporary copies broken in one place each,
 * where it must fail and name the problem. Test process only; runs the script as a child.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dmtest.h"

/* Runs check-deploy.sh with DREAM_CHECK_ROOT=root (NULL: the source tree, with the built dreamd
 * and every external validator found on the machine; a copy gets only the script's own checks,
 * which are the ones these tests break, in a second instead of several); returns its exit
 * status and its output in *out (caller frees). */
static int run_check(const char *root, const char *logdir, char **out)
{
    char log[1024];
    char cmd[4096];
    int st;

    snprintf(log, sizeof(log), "%s/check-deploy.log", logdir);
    snprintf(cmd, sizeof(cmd), "%s%s%s'%s/scripts/check-deploy.sh' >'%s' 2>&1",
             root ? "env -u DREAM_BINARY_DIR DREAM_CHECK_TOOLS=0 DREAM_CHECK_ROOT='" : "",
             root ? root : "", root ? "' " : "", dmt_source_dir(), log);
    st = system(cmd);
    *out = dmt_read_file(log);
    cr_assert_not_null(*out, "no output from %s", cmd);
    cr_assert(st != -1 && WIFEXITED(st), "check-deploy.sh did not exit normally: %s", *out);
    return WEXITSTATUS(st);
}

/* A copy of everything check-deploy.sh reads, in a fresh directory (caller frees). */
static char *copy_tree(void)
{
    char *dir = dmt_tempdir("deploy");
    const char *src = dmt_source_dir();
    char cmd[4096];

    snprintf(
        cmd, sizeof(cmd),
        "set -e; cd '%s'; mkdir -p src/core scripts tests; cp -r '%s/Dockerfile' '%s/deploy' .;"
        " cp '%s/src/core/config.c' src/core/; cp '%s/scripts/bootstrap.sh' '%s/scripts/build.sh' "
        "scripts/;"
        " cp -r '%s/tests/fakes' tests/",
        dir, src, src, src, src, src, src);
    cr_assert_eq(system(cmd), 0, "cannot copy the tree: %s", cmd);
    return dir;
}

/* Replaces the first occurrence of from with to in root/rel (asserts it is there). */
static void edit(const char *root, const char *rel, const char *from, const char *to)
{
    char path[1024];
    char *text;
    char *at;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    text = dmt_read_file(path);
    cr_assert_not_null(text, "cannot read %s", path);
    at = strstr(text, from);
    cr_assert_not_null(at, "'%s' not in %s", from, path);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fwrite(text, 1, (size_t)(at - text), f);
    fputs(to, f);
    fputs(at + strlen(from), f);
    cr_assert_eq(fclose(f), 0);
    free(text);
}

/* Breaks a copy with one edit and asserts the check fails naming want. */
static void expect_failure(const char *rel, const char *from, const char *to, const char *want)
{
    char *root = copy_tree();
    char *out = NULL;
    int rc;

    edit(root, rel, from, to);
    rc = run_check(root, root, &out);
    cr_expect_neq(rc, 0, "check-deploy.sh passed a copy with %s: '%s' -> '%s':\n%s", rel, from, to,
                  out);
    cr_expect(strstr(out, want) != NULL, "output does not name the problem '%s':\n%s", want, out);
    free(out);
    dmt_rmtree(root);
    free(root);
}

Test(deploy, artifacts_pass_the_checks)
{
    char *dir = dmt_tempdir("deploy-log");
    char *out = NULL;
    char dreamd[1024];
    int rc = run_check(NULL, dir, &out);

    cr_expect_eq(rc, 0, "check-deploy.sh failed on the tree:\n%s", out);
    cr_expect(strstr(out, "check-deploy: all ") != NULL, "%s", out);
    /* The checks that carry the points ran, not only parsing. */
    cr_expect(strstr(out, "ok: k8s Deployment: terminationGracePeriodSeconds (35s)") != NULL, "%s",
              out);
    cr_expect(strstr(out, "ok: compose.yaml: dreamd: stop_grace_period (35.0s)") != NULL, "%s",
              out);
    cr_expect(strstr(out, "ok: systemd: TimeoutStopSec (35.0s)") != NULL, "%s", out);
    cr_expect(strstr(out, "ok: Dockerfile: a build-stage RUN calls scripts/build.sh") != NULL, "%s",
              out);
    cr_expect(strstr(out, "ok: k8s ScaledObject: lagCount is a positive integer") != NULL, "%s",
              out);
    /* With the built dreamd, the settings come from its --help too and must agree. */
    snprintf(dreamd, sizeof(dreamd), "%s/dreamd", dmt_binary_dir());
    if (access(dreamd, X_OK) == 0) {
        cr_expect(strstr(out, "ok: dreamd --help and src/core/config.c's table agree") != NULL,
                  "%s", out);
        /* ...and dreamd itself accepts each deployment's complete environment. */
        cr_expect(strstr(out, "ok: k8s Deployment: dreamd --print-config accepts every setting") !=
                      NULL,
                  "%s", out);
        cr_expect(strstr(out, "ok: systemd: dreamd --print-config accepts every setting") != NULL,
                  "%s", out);
    }
    free(out);
    dmt_rmtree(dir);
    free(dir);
}

Test(deploy, termination_grace_shorter_than_the_drain_fails)
{
    expect_failure("deploy/k8s/deployment.yaml", "terminationGracePeriodSeconds: 35",
                   "terminationGracePeriodSeconds: 20",
                   "FAIL: k8s Deployment: terminationGracePeriodSeconds (20s)");
}

Test(deploy, longer_drain_than_compose_and_systemd_allow_fails)
{
    expect_failure("deploy/compose.yaml", "DREAM_SHUTDOWN_GRACE_MS: \"25000\"",
                   "DREAM_SHUTDOWN_GRACE_MS: \"34000\"",
                   "FAIL: compose.yaml: dreamd: stop_grace_period (35.0s) exceeds "
                   "DREAM_SHUTDOWN_GRACE_MS (34000 ms)");
    expect_failure("deploy/systemd/dreamd.env", "DREAM_SHUTDOWN_GRACE_MS=25000",
                   "DREAM_SHUTDOWN_GRACE_MS=31000",
                   "FAIL: systemd: TimeoutStopSec (35.0s) exceeds DREAM_SHUTDOWN_GRACE_MS");
}

Test(deploy, unknown_setting_fails)
{
    expect_failure("deploy/k8s/configmap.yaml", "DREAM_LOG_LEVEL:", "DREAM_LOGLEVEL:",
                   "FAIL: k8s ConfigMap dreamd-config: DREAM_LOGLEVEL is not a dreamd setting");
}

Test(deploy, dockerfile_not_built_by_the_scripts_fails)
{
    expect_failure("Dockerfile", "RUN ./scripts/build.sh build/release /opt/dreamd",
                   "RUN cmake -S . -B build/release && cmake --build build/release && mkdir -p "
                   "/opt/dreamd/bin && cp build/release/dreamd /opt/dreamd/bin/",
                   "FAIL: Dockerfile: a build-stage RUN calls scripts/build.sh");
}

Test(deploy, keda_trigger_on_the_wrong_stream_fails)
{
    expect_failure("deploy/k8s/scaledobject.yaml", "stream: dream:jobs", "stream: jobs",
                   "FAIL: k8s ScaledObject: stream dream:jobs");
}
