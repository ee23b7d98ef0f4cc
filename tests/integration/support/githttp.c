/*
 * githttp: smart-HTTP git server and git command-line helpers for integration tests (see
 * githttp.h). Test processes only.
 */
#include "githttp.h"

#include "dmtest.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

const char *dmt_githttp_script(void)
{
    static char path[1024];
    snprintf(path, sizeof(path), "%s/tests/fakes/git_http_server.sh", dmt_source_dir());
    return path;
}

static char *vsh(int must, const char *fmt, va_list ap)
{
    char *cmd = NULL;
    char *out = NULL;
    size_t len = 0, cap = 0;
    char chunk[4096];
    FILE *p;
    int status;

    if (vasprintf(&cmd, fmt, ap) < 0) {
        cr_assert_fail("vasprintf");
    }
    p = popen(cmd, "r");
    cr_assert_not_null(p, "popen %s", cmd);
    for (;;) {
        size_t n = fread(chunk, 1, sizeof(chunk), p);
        if (n == 0) {
            break;
        }
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            out = realloc(out, cap);
            cr_assert_not_null(out);
        }
        memcpy(out + len, chunk, n);
        len += n;
    }
    status = pclose(p);
    if (!out) {
        out = calloc(1, 1);
    }
    out[len] = '\0';
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r')) {
        out[--len] = '\0';
    }
    if (status != 0) {
        if (must) {
            cr_log_error("command failed (%d): %s\n%s", status, cmd, out);
            free(cmd);
            free(out);
            cr_assert_fail("shell command failed");
        }
        free(out);
        out = NULL;
    }
    free(cmd);
    return out;
}

char *dmt_sh(const char *fmt, ...)
{
    va_list ap;
    char *r;
    va_start(ap, fmt);
    r = vsh(1, fmt, ap);
    va_end(ap);
    return r;
}

char *dmt_sh_try(const char *fmt, ...)
{
    va_list ap;
    char *r;
    va_start(ap, fmt);
    r = vsh(0, fmt, ap);
    va_end(ap);
    return r;
}

char *dmt_git_make_repo(const char *root, const char *owner, const char *repo, const char *branch)
{
    return dmt_sh("'%s' init-repo '%s' '%s' '%s' '%s'", dmt_githttp_script(), root, owner, repo,
                  branch ? branch : "main");
}

void dmt_git_reject_hook(const char *bare, const char *message)
{
    free(dmt_sh("'%s' reject-hook '%s' '%s'", dmt_githttp_script(), bare, message));
}

void dmt_git_clear_hook(const char *bare)
{
    free(dmt_sh("'%s' clear-hook '%s'", dmt_githttp_script(), bare));
}

static int port_open(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int ok;

    if (fd < 0) {
        return 0;
    }
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

void dmt_githttp_start(struct dmt_githttp *g, const char *user, const char *password)
{
    char port[16];
    char log[1024];

    memset(g, 0, sizeof(*g));
    g->dir = dmt_tempdir("githttp");
    if (asprintf(&g->root, "%s/repos", g->dir) < 0) {
        cr_assert_fail("asprintf");
    }
    for (int attempt = 0; attempt < 5; attempt++) {
        g->port = dmt_free_port();
        snprintf(port, sizeof(port), "%d", g->port);
        snprintf(log, sizeof(log), "%s/server.log", g->dir);
        char *argv[] = {"/bin/sh",
                        (char *)dmt_githttp_script(),
                        "run",
                        g->dir,
                        port,
                        (char *)user,
                        (char *)password,
                        NULL};
        g->pid = dmt_spawn(argv, NULL, log);
        long long deadline = dmt_now_ms() + 10000;
        while (dmt_now_ms() < deadline) {
            if (port_open(g->port)) {
                snprintf(g->url_template, sizeof(g->url_template),
                         "http://127.0.0.1:%d/git/{owner}/{repo}.git", g->port);
                return;
            }
            if (waitpid(g->pid, NULL, WNOHANG) == g->pid) {
                g->pid = 0;
                break; /* lost the port to someone else: try another */
            }
            dmt_sleep_ms(20);
        }
        if (g->pid > 0) {
            dmt_stop(g->pid, SIGKILL, 2000);
            g->pid = 0;
        }
    }
    {
        char *l = dmt_read_file(log);
        cr_log_error("git http server did not start: %s", l ? l : "(no log)");
        free(l);
    }
    cr_assert_fail("git http server did not start");
}

void dmt_githttp_stop(struct dmt_githttp *g)
{
    if (g->pid > 0) {
        dmt_stop(g->pid, SIGTERM, 5000);
        g->pid = 0;
    }
    if (g->dir) {
        dmt_rmtree(g->dir);
    }
    free(g->dir);
    free(g->root);
    g->dir = NULL;
    g->root = NULL;
}

int dmt_githttp_requests(const struct dmt_githttp *g, const char *method, const char *needle)
{
    char path[1024];
    char *log, *line, *save = NULL;
    size_t ml = strlen(method);
    int n = 0;

    snprintf(path, sizeof(path), "%s/requests.log", g->dir);
    log = dmt_read_file(path);
    if (!log) {
        return 0;
    }
    for (line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, method, ml) == 0 && line[ml] == ' ' && strstr(line + ml, needle)) {
            n++;
        }
    }
    free(log);
    return n;
}
