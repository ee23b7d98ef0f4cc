/*
 * dmctl: dreamctl as a child process (see dmctl.h). Test processes only.
 */
#include "dmctl.h"
#include "dmtest.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int dmt_ctl_run(const char *url, const char *const *args, const char *const *env,
                const char *in_path, int timeout_ms, char **out, char **err)
{
    char bin[512], urlopt[200], opath[] = "/tmp/dmctl-out-XXXXXX",
                                epath[] = "/tmp/dmctl-err-XXXXXX";
    const char *argv[64];
    long long deadline = dmt_now_ms() + timeout_ms;
    int n = 0, st = 0, ofd, efd;
    pid_t pid, got;

    snprintf(bin, sizeof(bin), "%s/dreamctl", dmt_binary_dir());
    snprintf(urlopt, sizeof(urlopt), "--redis-url=%s", url);
    argv[n++] = bin;
    argv[n++] = urlopt;
    for (int i = 0; args[i] && n < 62; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    ofd = mkstemp(opath);
    efd = mkstemp(epath);
    cr_assert(ofd >= 0 && efd >= 0, "mkstemp");
    fflush(NULL);
    pid = fork();
    cr_assert_geq(pid, 0, "fork");
    if (pid == 0) {
        int i = open(in_path ? in_path : "/dev/null", O_RDONLY);
        if (i < 0) {
            _exit(127);
        }
        dup2(ofd, 1);
        dup2(efd, 2);
        dup2(i, 0);
        unsetenv("DREAM_REDIS_URL");
        unsetenv("DREAM_PREFIX");
        unsetenv("DREAM_SIGN_SECRET");
        for (int k = 0; env && env[k]; k++) {
            putenv((char *)env[k]);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(ofd);
    close(efd);
    while ((got = waitpid(pid, &st, WNOHANG)) == 0 && dmt_now_ms() < deadline) {
        dmt_sleep_ms(10);
    }
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    {
        char *o = dmt_read_file(opath), *e = dmt_read_file(epath);
        unlink(opath);
        unlink(epath);
        cr_assert(got != 0, "dreamctl did not exit within %d ms; stderr: %s", timeout_ms,
                  e ? e : "");
        cr_assert(WIFEXITED(st), "dreamctl died (status %d); stderr: %s", st, e ? e : "");
        if (out) {
            *out = o ? o : strdup("");
        } else {
            free(o);
        }
        if (err) {
            *err = e ? e : strdup("");
        } else {
            free(e);
        }
    }
    return WEXITSTATUS(st);
}
