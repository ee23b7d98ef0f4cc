/*
 * githttp: a real smart-HTTP git server for integration tests (tests/fakes/git_http_server.sh:
 * git http-backend behind lighttpd with Basic auth), plus small helpers that make and inspect
 * bare repositories with the git command line. Test processes only; setup failures abort the
 * current Criterion test.
 */
#ifndef DMT_GITHTTP_H
#define DMT_GITHTTP_H

#include <sys/types.h>

struct dmt_githttp {
    pid_t pid;
    int port;
    char *dir;              /* server directory (config, logs); repos live in <dir>/repos */
    char *root;             /* <dir>/repos */
    char url_template[256]; /* http://127.0.0.1:<port>/git/{owner}/{repo}.git */
};

/* Starts the server on a free port with one Basic-auth user (user, password) and waits until
 * it answers. */
void dmt_githttp_start(struct dmt_githttp *g, const char *user, const char *password);
/* Stops the server and removes its directory. */
void dmt_githttp_stop(struct dmt_githttp *g);

/* Requests the server has taken (past authentication; counted before they are served, in
 * <dir>/requests.log) whose method is method and whose path or query contains needle, e.g.
 * ("GET", "service=git-upload-pack") for the ref advertisements of fetches, ("POST",
 * "git-upload-pack") for their downloads. */
int dmt_githttp_requests(const struct dmt_githttp *g, const char *method, const char *needle);

/* Creates <root>/<owner>/<repo>.git, bare, receive-pack enabled, with one commit on branch
 * holding README.md. Returns its path (caller frees). root may be any directory (file:// tests
 * use a plain temporary directory). */
char *dmt_git_make_repo(const char *root, const char *owner, const char *repo, const char *branch);

/* Installs / removes a pre-receive hook in a bare repository that refuses every push with
 * message. */
void dmt_git_reject_hook(const char *bare, const char *message);
void dmt_git_clear_hook(const char *bare);

/* Runs a shell command (sh -c) and returns its stdout, trailing newlines trimmed (caller frees);
 * aborts the test when it exits non-zero. */
char *dmt_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like dmt_sh but returns NULL instead of aborting when the command fails. */
char *dmt_sh_try(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The path of tests/fakes/git_http_server.sh. Static buffer. */
const char *dmt_githttp_script(void);

#endif
