/*
 * typecheck: tsc on the whole change, off the loop (contract in include/dream/io/typecheck.h).
 *
 * A struct dm_typecheck goes through three steps: prepare (threadpool: the work directory, the
 * untyped declarations, the generated tsconfig), run (loop: tsc as a child with a deadline and
 * capped pipes) and finish (threadpool: parse, remove the work directory), then the completion
 * on the loop. It owns copies of every input, the child's handles (embedded, closed before the
 * completion) and the result. Loop thread, except the two work callbacks, which touch only the
 * check's own copies and its atomic cancel flag.
 */
#include "dream/io/typecheck.h"
#include "dream/core/buf.h"
#include "dream/core/log.h"
#include "dream/core/text.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TIMEOUT_DEFAULT_MS 60000u
#define OUTPUT_CAP_DEFAULT ((size_t)1 << 20)
#define FILE_BYTES_DEFAULT ((size_t)2 << 20)
#define BASE_FILES_DEFAULT ((size_t)20000)
#define MEM_DEFAULT_MB ((size_t)4096)
#define UNTYPED_MAX 4000 /* packages declared untyped at most */
#define GRACE_MS 500
#define CONFIG_NAME "tsconfig.dream-check.json"
#define SHIMS_NAME "dream-check-untyped.d.ts"
#define TS_DIR ".tools/typescript/node_modules"

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

/* ---- finding tsc ------------------------------------------------------------------------- */

static int is_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static char *search_path(const char *name)
{
    const char *path = getenv("PATH");
    const char *p;

    if (!path || !*path) {
        path = "/usr/local/bin:/usr/bin:/bin";
    }
    for (p = path;;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        char *cand = NULL;
        if (n && asprintf(&cand, "%.*s/%s", (int)n, p, name) >= 0) {
            if (is_executable(cand)) {
                return cand;
            }
            free(cand);
        }
        if (!colon) {
            return NULL;
        }
        p = colon + 1;
    }
}

static const char *platform_package(void)
{
#if defined(__linux__) && defined(__x86_64__)
    return "@typescript/typescript-linux-x64";
#elif defined(__linux__) && defined(__aarch64__)
    return "@typescript/typescript-linux-arm64";
#elif defined(__APPLE__) && defined(__aarch64__)
    return "@typescript/typescript-darwin-arm64";
#elif defined(__APPLE__)
    return "@typescript/typescript-darwin-x64";
#else
    return NULL;
#endif
}

/* The compiler under root's .tools/typescript: the native binary, else the node launcher. */
static char *try_root(const char *root)
{
    const char *pkg = platform_package();
    char *cand = NULL;

    if (pkg && asprintf(&cand, "%s/" TS_DIR "/%s/lib/tsc", root, pkg) >= 0) {
        if (is_executable(cand)) {
            return cand;
        }
        free(cand);
    }
    if (asprintf(&cand, "%s/" TS_DIR "/.bin/tsc", root) >= 0) {
        if (is_executable(cand)) {
            return cand;
        }
        free(cand);
    }
    return NULL;
}

char *dm_typecheck_find_tsc(const char *configured)
{
    char exe[PATH_MAX];
    size_t size = sizeof(exe);
    const char *src;
    char *found = NULL;

    if (configured && *configured) {
        if (strchr(configured, '/')) {
            return is_executable(configured) ? strdup(configured) : NULL;
        }
        return search_path(configured);
    }
    if (uv_exepath(exe, &size) == 0) {
        char *slash = strrchr(exe, '/');
        if (slash) {
            char root[PATH_MAX + 8];
            *slash = '\0';
            snprintf(root, sizeof(root), "%s/..", exe);
            found = try_root(root);
            if (!found) {
                snprintf(root, sizeof(root), "%s/../..", exe);
                found = try_root(root);
            }
        }
    }
    src = getenv("DREAM_SOURCE_DIR");
    if (!found && src && *src) {
        found = try_root(src);
    }
    return found ? found : search_path("tsc");
}

/* The version in the package.json next to the binary's folder ("7.0.2"), or "". */
static void read_version(const char *tsc, char *out, size_t n)
{
    char path[PATH_MAX];
    char buf[4096];
    const char *slash = strrchr(tsc, '/');
    const char *v;
    FILE *f;
    size_t got;

    out[0] = '\0';
    if (!slash) {
        return;
    }
    /* .../@typescript/typescript-<os>-<arch>/lib/tsc or .../typescript/bin/tsc */
    snprintf(path, sizeof(path), "%.*s/../package.json", (int)(slash - tsc), tsc);
    f = fopen(path, "r");
    if (!f) {
        return;
    }
    got = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[got] = '\0';
    v = strstr(buf, "\"version\"");
    if (v && (v = strchr(v + 9, '"')) != NULL) {
        size_t k = 0;
        for (v++; *v && *v != '"' && k + 1 < n; v++) {
            out[k++] = *v;
        }
        out[k] = '\0';
    }
}

/* ---- the threadpool side: files ----------------------------------------------------------- */

static int cancelled(struct dm_typecheck *tc)
{
    return atomic_load(&tc->cancel) != 0;
}

static int mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    size_t n = strlen(path);

    if (n >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
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

static int mkdir_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash || (size_t)(slash - path) >= sizeof(dir)) {
        return 0;
    }
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    return mkdir_p(dir);
}

/* Removes path and everything under it (symlinks are removed, never followed). */
static void rm_rf(const char *path)
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
                rm_rf(child);
                free(child);
            }
        }
        closedir(d);
    }
    rmdir(path);
}

static const char *ext_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    return dot ? dot + 1 : "";
}

/* 1: a TypeScript or JavaScript source; 2: JSON (tsconfig, package.json, imported data). */
static int kind_of(const char *path)
{
    static const char *const code[] = {"ts", "tsx", "mts", "cts", "js", "jsx", "mjs", "cjs"};
    const char *ext = ext_of(path);
    for (size_t i = 0; i < sizeof(code) / sizeof(code[0]); i++) {
        if (strcmp(ext, code[i]) == 0) {
            return 1;
        }
    }
    return strcmp(ext, "json") == 0 ? 2 : 0;
}

static int is_jsx(const char *path)
{
    const char *ext = ext_of(path);
    return strcmp(ext, "tsx") == 0 || strcmp(ext, "jsx") == 0;
}

/* A specifier safe to write in a declaration: package characters only. */
static int spec_ok(const char *s, size_t n)
{
    if (!n || n > 200 || s[0] == '#' || (n > 1 && s[0] == '~' && s[1] == '/') ||
        (n > 1 && s[0] == '@' && s[1] == '/')) {
        return 0; /* empty, too long, or a path alias (#x, ~/x, @/x) the tsconfig resolves */
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '@' || c == '/' || c == '.' || c == '_' || c == '-' || c == ':' || c == '+' ||
              c == '~' || c == '$')) {
            return 0;
        }
    }
    return 1;
}

static int add_untyped_n(struct dm_typecheck *tc, const char *spec, size_t n)
{
    char **nu;
    if (!spec_ok(spec, n) || tc->n_untyped >= UNTYPED_MAX) {
        return 0;
    }
    for (size_t i = 0; i < tc->n_untyped; i++) {
        if (strlen(tc->untyped[i]) == n && memcmp(tc->untyped[i], spec, n) == 0) {
            return 0;
        }
    }
    nu = realloc(tc->untyped, (tc->n_untyped + 1) * sizeof(*nu));
    if (!nu) {
        return DM_ERR_NOMEM;
    }
    tc->untyped = nu;
    tc->untyped[tc->n_untyped] = strndup(spec, n);
    if (!tc->untyped[tc->n_untyped]) {
        return DM_ERR_NOMEM;
    }
    tc->n_untyped++;
    return 0;
}

static int on_bare_import(void *arg, const char *spec, size_t len)
{
    return add_untyped_n(arg, spec, len);
}

static int scan_imports(struct dm_typecheck *tc, const char *path, const char *text, size_t len)
{
    if (is_jsx(path)) {
        tc->any_jsx = 1;
    }
    return dm_tsc_bare_imports(text, len, on_bare_import, tc);
}

static int write_all(const char *path, const char *content, size_t len)
{
    int fd;
    size_t off = 0;

    if (mkdir_parent(path) != 0) {
        return -1;
    }
    unlink(path); /* never write through a link into the base cache */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -1;
    }
    while (off < len) {
        ssize_t w = write(fd, content + off, len - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    return close(fd);
}

/* Reads at most max bytes of path into a malloc'd buffer. */
static char *read_file(const char *path, size_t max, size_t *len)
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

static int link_or_copy(const char *from, const char *to, size_t max)
{
    size_t len;
    char *content;
    int rc;

    if (mkdir_parent(to) != 0) {
        return -1;
    }
    if (link(from, to) == 0) {
        return 0;
    }
    content = read_file(from, max, &len);
    if (!content) {
        return -1;
    }
    rc = write_all(to, content, len);
    free(content);
    return rc;
}

static int in_change(const struct dm_typecheck *tc, const char *rel)
{
    for (size_t i = 0; i < tc->nfiles; i++) {
        if (strcmp(tc->files[i].path, rel) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Links the base's TS/JS/JSON files under rel (a folder of base_dir, "" for the root) into the
 * work directory. */
static int link_base(struct dm_typecheck *tc, const char *rel, int depth)
{
    char dir[PATH_MAX];
    DIR *d;
    struct dirent *e;
    int rc = 0;

    if (depth > 64) {
        return 0;
    }
    snprintf(dir, sizeof(dir), "%s%s%s", tc->base_dir, *rel ? "/" : "", rel);
    d = opendir(dir);
    if (!d) {
        return depth == 0
                   ? dm_error_set(&tc->err, DM_ERR_IO, "cannot read %s: %s", dir, strerror(errno))
                   : 0;
    }
    while (!rc && (e = readdir(d)) != NULL) {
        char child[PATH_MAX], from[PATH_MAX], to[PATH_MAX];
        struct stat st;
        int kind;

        if (e->d_name[0] == '.' &&
            (e->d_name[1] == '\0' || (e->d_name[1] == '.' && e->d_name[2] == '\0') ||
             strcmp(e->d_name, ".git") == 0)) {
            continue;
        }
        if (strcmp(e->d_name, "node_modules") == 0 || cancelled(tc)) {
            continue;
        }
        if ((size_t)snprintf(child, sizeof(child), "%s%s%s", rel, *rel ? "/" : "", e->d_name) >=
                sizeof(child) ||
            (size_t)snprintf(from, sizeof(from), "%s/%s", tc->base_dir, child) >= sizeof(from) ||
            (size_t)snprintf(to, sizeof(to), "%s/%s", tc->work_dir, child) >= sizeof(to)) {
            continue;
        }
        if (lstat(from, &st) != 0) {
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            rc = link_base(tc, child, depth + 1);
            continue;
        }
        kind = S_ISREG(st.st_mode) ? kind_of(child) : 0;
        if (!kind || (size_t)st.st_size > tc->max_file_bytes || in_change(tc, child)) {
            continue;
        }
        if (tc->res.files >= tc->max_base_files) {
            rc = dm_error_set(&tc->err, DM_ERR_LIMIT,
                              "the base has more than %zu files to type-check", tc->max_base_files);
            break;
        }
        if (link_or_copy(from, to, tc->max_file_bytes) != 0) {
            rc = dm_error_set(&tc->err, DM_ERR_IO, "cannot write %s: %s", to, strerror(errno));
            break;
        }
        if (kind == 1) {
            size_t len;
            char *text = read_file(from, tc->max_file_bytes, &len);
            tc->res.files++;
            if (text) {
                rc = scan_imports(tc, child, text, len);
                free(text);
                if (rc) {
                    rc = dm_error_set(&tc->err, DM_ERR_NOMEM, "out of memory");
                }
            }
        }
    }
    closedir(d);
    return rc;
}

static int path_ok(const char *p)
{
    const char *s = p;
    if (!*p || *p == '/' || strchr(p, '\\')) {
        return 0;
    }
    while (*s) {
        const char *slash = strchr(s, '/');
        size_t n = slash ? (size_t)(slash - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) {
            return 0;
        }
        s += n + (slash ? 1 : 0);
    }
    return 1;
}

static int write_config(struct dm_typecheck *tc)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *co = cJSON_AddObjectToObject(root, "compilerOptions");
    cJSON *files = cJSON_AddArrayToObject(root, "files");
    char path[PATH_MAX];
    char *text = NULL;
    struct stat st;
    int rc = 0;

    snprintf(path, sizeof(path), "%s/tsconfig.json", tc->work_dir);
    tc->res.repo_tsconfig = stat(path, &st) == 0 && S_ISREG(st.st_mode);
    if (tc->res.repo_tsconfig) {
        cJSON_AddStringToObject(root, "extends", "./tsconfig.json");
    } else {
        cJSON *inc = cJSON_AddArrayToObject(root, "include");
        cJSON *exc = cJSON_AddArrayToObject(root, "exclude");
        cJSON_AddItemToArray(inc, cJSON_CreateString("**/*"));
        cJSON_AddItemToArray(exc, cJSON_CreateString("node_modules"));
        cJSON_AddBoolToObject(co, "strict", 1);
        cJSON_AddStringToObject(co, "target", "ES2022");
        cJSON_AddStringToObject(co, "module", "ESNext");
        cJSON_AddStringToObject(co, "moduleResolution", "Bundler");
        cJSON_AddStringToObject(co, "jsx", "react-jsx");
        cJSON_AddBoolToObject(co, "allowJs", 1);
        cJSON_AddBoolToObject(co, "checkJs", 0);
        cJSON_AddBoolToObject(co, "resolveJsonModule", 1);
        cJSON_AddBoolToObject(co, "esModuleInterop", 1);
        cJSON_AddBoolToObject(co, "allowImportingTsExtensions", 1);
    }
    cJSON_AddBoolToObject(co, "noEmit", 1);
    cJSON_AddBoolToObject(co, "incremental", 0);
    cJSON_AddBoolToObject(co, "composite", 0);
    cJSON_AddBoolToObject(co, "skipLibCheck", 1);
    cJSON_AddArrayToObject(co, "types");
    if (tc->n_untyped) {
        cJSON_AddBoolToObject(co, "noImplicitAny", 0);
        cJSON_AddItemToArray(files, cJSON_CreateString("./" SHIMS_NAME));
    }
    for (size_t i = 0; i < tc->nfiles; i++) {
        if (kind_of(tc->files[i].path) == 1) {
            char rel[PATH_MAX];
            snprintf(rel, sizeof(rel), "./%s", tc->files[i].path);
            cJSON_AddItemToArray(files, cJSON_CreateString(rel));
        }
    }
    text = cJSON_Print(root);
    snprintf(path, sizeof(path), "%s/" CONFIG_NAME, tc->work_dir);
    if (!text) {
        rc = dm_error_set(&tc->err, DM_ERR_NOMEM, "out of memory");
    } else if (write_all(path, text, strlen(text)) != 0) {
        rc = dm_error_set(&tc->err, DM_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    }
    free(text);
    cJSON_Delete(root);
    return rc;
}

static int write_shims(struct dm_typecheck *tc)
{
    struct dm_buf b;
    char path[PATH_MAX];
    int rc = 0;

    if (tc->any_jsx) {
        /* The automatic JSX runtime imports these itself. */
        for (size_t i = 0, n = tc->n_untyped; i < n; i++) {
            if (strcmp(tc->untyped[i], "react") == 0 || strcmp(tc->untyped[i], "preact") == 0) {
                char rt[64];
                snprintf(rt, sizeof(rt), "%s/jsx-runtime", tc->untyped[i]);
                rc = rc ? rc : add_untyped_n(tc, rt, strlen(rt));
                snprintf(rt, sizeof(rt), "%s/jsx-dev-runtime", tc->untyped[i]);
                rc = rc ? rc : add_untyped_n(tc, rt, strlen(rt));
            }
        }
    }
    tc->res.untyped = tc->n_untyped;
    if (rc || !tc->n_untyped) {
        return rc ? dm_error_set(&tc->err, DM_ERR_NOMEM, "out of memory") : 0;
    }
    dm_buf_init(&b, 0);
    dm_buf_puts(&b, "// Generated by dreamd's type-check: the repository's dependencies are not "
                    "installed, so every package imported is declared untyped.\n");
    for (size_t i = 0; i < tc->n_untyped; i++) {
        dm_buf_printf(&b, "declare module '%s';\n", tc->untyped[i]);
    }
    snprintf(path, sizeof(path), "%s/" SHIMS_NAME, tc->work_dir);
    if (write_all(path, b.data, b.len) != 0) {
        rc = dm_error_set(&tc->err, DM_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    }
    dm_buf_free(&b);
    return rc;
}

static int baseline_parse(struct dm_typecheck *tc);

static int prepare(struct dm_typecheck *tc)
{
    char *configured = tc->tsc;
    int rc;

    tc->tsc = dm_typecheck_find_tsc(configured);
    free(configured);
    if (tc->baseline) {
        tc->baseline_text = read_file(tc->baseline, (size_t)4 << 20, &tc->baseline_len);
        if (tc->baseline_text && tc->nfiles == 0) {
            /* The base's own check is known already: nothing to run. */
            tc->from_baseline = 1;
            return baseline_parse(tc);
        }
    }
    tc->prlimit = search_path("prlimit");
    if (tc->tsc) {
        read_version(tc->tsc, tc->res.version, sizeof(tc->res.version));
    }

    for (size_t i = 0; i < tc->nfiles; i++) {
        if (!path_ok(tc->files[i].path)) {
            return dm_error_set(&tc->err, DM_ERR_INVALID, "%s: not a repository path",
                                tc->files[i].path);
        }
        if (tc->files[i].len > tc->max_file_bytes) {
            return dm_error_set(&tc->err, DM_ERR_LIMIT,
                                "%s: %zu bytes, over the type-check's cap of %zu",
                                tc->files[i].path, tc->files[i].len, tc->max_file_bytes);
        }
    }
    rm_rf(tc->work_dir);
    if (mkdir_p(tc->work_dir) != 0) {
        return dm_error_set(&tc->err, DM_ERR_IO, "cannot create %s: %s", tc->work_dir,
                            strerror(errno));
    }
    if (tc->base_dir && (rc = link_base(tc, "", 0)) != 0) {
        return rc;
    }
    for (size_t i = 0; i < tc->nfiles; i++) {
        const struct dm_typecheck_file *f = &tc->files[i];
        char to[PATH_MAX];
        if (cancelled(tc)) {
            return dm_error_set(&tc->err, DM_ERR_CANCELLED, "type-check cancelled");
        }
        snprintf(to, sizeof(to), "%s/%s", tc->work_dir, f->path);
        if (write_all(to, f->content, f->len) != 0) {
            return dm_error_set(&tc->err, DM_ERR_IO, "cannot write %s: %s", to, strerror(errno));
        }
        if (kind_of(f->path) == 1) {
            tc->res.files++;
            if (scan_imports(tc, f->path, f->content, f->len)) {
                return dm_error_set(&tc->err, DM_ERR_NOMEM, "out of memory");
            }
        }
    }
    if ((rc = write_shims(tc)) != 0) {
        return rc;
    }
    return write_config(tc);
}

/* Drops what only untyped packages cause: TS2347 ("Untyped function calls may not accept type
 * arguments", e.g. Hono's c.req.json<T>() once hono is untyped). */
static void drop_untyped_only(struct dm_typecheck_result *res)
{
    size_t k = 0;
    for (size_t i = 0; i < res->diags.n; i++) {
        struct dm_tsc_diag *d = &res->diags.items[i];
        if (d->code == 2347) {
            free(d->file);
            free(d->message);
            res->ignored++;
            continue;
        }
        res->diags.items[k++] = *d;
    }
    res->diags.n = k;
}

/* One line of a baseline file: "<file>\t<code>\t<message>\n" (file empty when global). */
static void baseline_line(struct dm_buf *b, const struct dm_tsc_diag *d)
{
    dm_buf_printf(b, "%s\t%u\t%s\n", d->file ? d->file : "", d->code, d->message);
}

/* Reads a baseline file's lines back as diagnostics (line and column 0). */
static int baseline_parse(struct dm_typecheck *tc)
{
    struct dm_buf out;
    const char *p = tc->baseline_text;
    const char *end = p + tc->baseline_len;
    int rc;

    /* Rewritten as tsc's own format, so one parser reads both. */
    dm_buf_init(&out, 0);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *t1 = memchr(p, '\t', (size_t)(le - p));
        const char *t2 = t1 ? memchr(t1 + 1, '\t', (size_t)(le - t1 - 1)) : NULL;
        if (t1 && t2) {
            if (t1 > p) {
                dm_buf_printf(&out, "%.*s(0,0): error TS%.*s: %.*s\n", (int)(t1 - p), p,
                              (int)(t2 - t1 - 1), t1 + 1, (int)(le - t2 - 1), t2 + 1);
            } else {
                dm_buf_printf(&out, "error TS%.*s: %.*s\n", (int)(t2 - t1 - 1), t1 + 1,
                              (int)(le - t2 - 1), t2 + 1);
            }
        }
        p = nl ? nl + 1 : end;
    }
    rc = dm_tsc_parse(&tc->res.diags, out.data ? out.data : "", out.len, tc->max_diags, &tc->err);
    dm_buf_free(&out);
    return rc;
}

/* 1 when d is in the baseline and its file is not one the change replaces. */
static int in_baseline(const struct dm_typecheck *tc, const struct dm_tsc_diag *d)
{
    struct dm_buf line;
    const char *p = tc->baseline_text;
    int found = 0;

    if (!p || (d->file && in_change(tc, d->file))) {
        return 0;
    }
    dm_buf_init(&line, 0);
    baseline_line(&line, d);
    for (const char *q = p; line.data && (q = strstr(q, line.data)) != NULL; q++) {
        if (q == p || q[-1] == '\n') {
            found = 1;
            break;
        }
    }
    dm_buf_free(&line);
    return found;
}

static void drop_known(struct dm_typecheck *tc)
{
    struct dm_typecheck_result *res = &tc->res;
    size_t k = 0;
    for (size_t i = 0; i < res->diags.n; i++) {
        struct dm_tsc_diag *d = &res->diags.items[i];
        if (in_baseline(tc, d)) {
            free(d->file);
            free(d->message);
            res->known++;
            continue;
        }
        res->diags.items[k++] = *d;
    }
    res->diags.n = k;
}

/* Writes the base-only run's diagnostics to the baseline file (aside, then renamed). */
static void baseline_write(struct dm_typecheck *tc)
{
    struct dm_buf b;
    char tmp[PATH_MAX];

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", tc->baseline, (long)getpid()) >=
        sizeof(tmp)) {
        return;
    }
    dm_buf_init(&b, 0);
    dm_buf_puts(&b, "");
    for (size_t i = 0; i < tc->res.diags.n; i++) {
        baseline_line(&b, &tc->res.diags.items[i]);
    }
    if (write_all(tmp, b.data ? b.data : "", b.len) == 0) {
        rename(tmp, tc->baseline);
    }
    unlink(tmp);
    dm_buf_free(&b);
}

static void on_work(uv_work_t *req)
{
    struct dm_typecheck *tc = req->data;

    if (cancelled(tc)) {
        tc->rc = dm_error_set(&tc->err, DM_ERR_CANCELLED, "type-check cancelled");
    } else if (tc->step == STEP_PREPARE) {
        tc->rc = prepare(tc);
        if (tc->from_baseline) {
            rm_rf(tc->work_dir);
        }
    }
    if (tc->step == STEP_FINISH || tc->rc) {
        if (tc->rc == 0 && tc->exited) {
            /* tsc writes its diagnostics on stdout; stderr only for crashes. */
            struct dm_buf *b = tc->outb.len ? &tc->outb : &tc->errb;
            tc->rc = dm_tsc_parse(&tc->res.diags, b->data ? b->data : "", b->len, tc->max_diags,
                                  &tc->err);
            if (tc->rc == 0 && tc->n_untyped) {
                drop_untyped_only(&tc->res);
            }
            if (tc->rc == 0 && tc->baseline && tc->nfiles == 0 && !tc->res.diags.dropped) {
                baseline_write(tc);
            } else if (tc->rc == 0 && tc->nfiles > 0) {
                drop_known(tc);
            }
        }
        rm_rf(tc->work_dir);
    }
}

/* ---- the loop side ---------------------------------------------------------------------- */

static void typecheck_free(struct dm_typecheck *tc)
{
    free(tc->tsc);
    free(tc->prlimit);
    free(tc->base_dir);
    free(tc->work_dir);
    free(tc->baseline);
    free(tc->baseline_text);
    for (size_t i = 0; i < tc->nfiles; i++) {
        free((char *)tc->files[i].path);
        free((char *)tc->files[i].content);
    }
    free(tc->files);
    for (size_t i = 0; i < tc->n_untyped; i++) {
        free(tc->untyped[i]);
    }
    free(tc->untyped);
    dm_buf_free(&tc->outb);
    dm_buf_free(&tc->errb);
    dm_tsc_diags_free(&tc->res.diags);
    free(tc);
}

static void complete(struct dm_typecheck *tc)
{
    tc->res.from_baseline = tc->from_baseline;
    tc->on_done(tc->arg, tc->rc, tc->rc ? NULL : &tc->res, &tc->err);
    typecheck_free(tc);
}

static void on_work_done(uv_work_t *req, int status);

static void queue_step(struct dm_typecheck *tc, enum step step)
{
    tc->step = step;
    if (uv_queue_work(tc->loop, &tc->work, on_work, on_work_done) != 0) {
        if (!tc->rc) {
            tc->rc = dm_error_set(&tc->err, DM_ERR_IO, "cannot queue the type-check's work");
        }
        complete(tc); /* from a loop callback: never inside dm_typecheck_start */
    }
}

/* The outcome of the child, before its output is parsed. */
static void child_outcome(struct dm_typecheck *tc)
{
    if (cancelled(tc)) {
        tc->rc = dm_error_set(&tc->err, DM_ERR_CANCELLED, "type-check cancelled");
    } else if (!tc->spawned) {
        int unavailable = tc->spawn_err == UV_ENOENT || tc->spawn_err == UV_EACCES;
        tc->rc = dm_error_set(&tc->err, unavailable ? DM_ERR_UNAVAILABLE : DM_ERR_IO,
                              "tsc could not run: %s", uv_strerror(tc->spawn_err));
    } else if (tc->timed_out) {
        tc->rc = dm_error_set(&tc->err, DM_ERR_TIMEOUT,
                              "the type-check did not finish within %u ms (tsc was stopped)",
                              tc->timeout_ms);
    } else if (tc->term_signal) {
        tc->rc = dm_error_set(&tc->err, DM_ERR_IO,
                              "tsc was killed by signal %d (over its memory limit of %zu MiB?)",
                              tc->term_signal, tc->mem_mb);
    } else if (tc->exit_status != 0 && tc->exit_status != 1 && tc->exit_status != 2) {
        char last[300] = "";
        if (tc->errb.len) {
            char *line = dm_text_clean_line(tc->errb.data, 280);
            if (line) {
                snprintf(last, sizeof(last), ": %s", line);
                free(line);
            }
        }
        tc->rc = dm_error_set(&tc->err, DM_ERR_IO, "tsc exited with status %lld%s",
                              (long long)tc->exit_status, last);
    }
    tc->res.output_cut = tc->outb.len >= tc->output_cap || tc->errb.len >= tc->output_cap;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct dm_typecheck *tc = h->data;
    if (--tc->open_handles == 0) {
        child_outcome(tc);
        queue_step(tc, STEP_FINISH);
    }
}

static void close_handle(struct dm_typecheck *tc, uv_handle_t *h)
{
    if (h->data == tc && !uv_is_closing(h)) {
        uv_close(h, on_handle_closed);
    }
}

static void finish_child(struct dm_typecheck *tc)
{
    if (tc->finishing) {
        return;
    }
    tc->finishing = 1;
    close_handle(tc, (uv_handle_t *)&tc->timer);
    close_handle(tc, (uv_handle_t *)&tc->out);
    close_handle(tc, (uv_handle_t *)&tc->errp);
    close_handle(tc, (uv_handle_t *)&tc->proc);
}

static void kill_group(struct dm_typecheck *tc)
{
    if (tc->spawned && !tc->exited) {
        if (uv_kill(-tc->proc.pid, SIGKILL) != 0) {
            uv_process_kill(&tc->proc, SIGKILL);
        }
    }
}

static void on_timer(uv_timer_t *t)
{
    struct dm_typecheck *tc = t->data;
    if (!tc->exited) {
        tc->timed_out = 1;
        dm_warn("typecheck", NULL, "tsc timed out after %u ms: killing it", tc->timeout_ms);
        kill_group(tc);
        return;
    }
    finish_child(tc);
}

static void on_exit_cb(uv_process_t *p, int64_t exit_status, int term_signal)
{
    struct dm_typecheck *tc = p->data;
    tc->exited = 1;
    tc->exit_status = exit_status;
    tc->term_signal = term_signal;
    if (tc->out_eof && tc->err_eof) {
        finish_child(tc);
        return;
    }
    uv_timer_start(&tc->timer, on_timer, GRACE_MS, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct dm_typecheck *tc = h->data;
    (void)suggested;
    *buf = uv_buf_init(tc->rbuf, sizeof(tc->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct dm_typecheck *tc = s->data;
    int is_out = s == (uv_stream_t *)&tc->out;
    struct dm_buf *b = is_out ? &tc->outb : &tc->errb;

    if (nread > 0) {
        size_t room = tc->output_cap > b->len ? tc->output_cap - b->len : 0;
        size_t n = (size_t)nread < room ? (size_t)nread : room;
        if (n) {
            dm_buf_append(b, buf->base, n);
        }
        return;
    }
    if (nread == 0) {
        return;
    }
    uv_read_stop(s);
    if (is_out) {
        tc->out_eof = 1;
    } else {
        tc->err_eof = 1;
    }
    close_handle(tc, (uv_handle_t *)s);
    if (tc->exited && tc->out_eof && tc->err_eof) {
        finish_child(tc);
    }
}

static int init_handle(struct dm_typecheck *tc, uv_handle_t *h, int rc)
{
    if (rc == 0) {
        h->data = tc;
        tc->open_handles++;
    }
    return rc;
}

static void run_tsc(struct dm_typecheck *tc)
{
    uv_process_options_t o;
    uv_stdio_container_t stdio[3];
    char as_arg[64], gomem[64];
    char *args[12];
    char *env[3];
    char *path_env = NULL;
    int n = 0;
    int rc;

    tc->step = STEP_RUN;
    dm_buf_init(&tc->outb, tc->output_cap + 1);
    dm_buf_init(&tc->errb, tc->output_cap + 1);
    rc = init_handle(tc, (uv_handle_t *)&tc->timer, uv_timer_init(tc->loop, &tc->timer));
    rc = rc ? rc : init_handle(tc, (uv_handle_t *)&tc->out, uv_pipe_init(tc->loop, &tc->out, 0));
    rc = rc ? rc : init_handle(tc, (uv_handle_t *)&tc->errp, uv_pipe_init(tc->loop, &tc->errp, 0));
    if (rc == 0 && asprintf(&path_env, "PATH=%s",
                            getenv("PATH") ? getenv("PATH") : "/usr/local/bin:/usr/bin:/bin") < 0) {
        path_env = NULL;
        rc = UV_ENOMEM;
    }
    if (rc || !tc->tsc) {
        tc->spawn_err = rc ? rc : UV_ENOENT;
        if (tc->open_handles) {
            finish_child(tc);
        } else {
            child_outcome(tc);
            queue_step(tc, STEP_FINISH);
        }
        free(path_env);
        return;
    }
    snprintf(as_arg, sizeof(as_arg), "--as=%zu", tc->mem_mb << 20);
    snprintf(gomem, sizeof(gomem), "GOMEMLIMIT=%zuMiB", tc->mem_mb / 2 ? tc->mem_mb / 2 : 1);
    if (tc->prlimit) {
        args[n++] = tc->prlimit;
        args[n++] = as_arg;
        args[n++] = "--";
    }
    args[n++] = tc->tsc;
    args[n++] = "-p";
    args[n++] = CONFIG_NAME;
    args[n++] = "--pretty";
    args[n++] = "false";
    args[n] = NULL;
    env[0] = path_env;
    env[1] = gomem;
    env[2] = NULL;

    memset(&o, 0, sizeof(o));
    memset(stdio, 0, sizeof(stdio));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&tc->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&tc->errp;
    o.file = args[0];
    o.args = args;
    o.env = env;
    o.cwd = tc->work_dir;
    o.exit_cb = on_exit_cb;
    o.stdio = stdio;
    o.stdio_count = 3;
    o.flags = UV_PROCESS_DETACHED;
    rc = uv_spawn(tc->loop, &tc->proc, &o);
    init_handle(tc, (uv_handle_t *)&tc->proc, 0);
    free(path_env);
    if (rc) {
        tc->spawn_err = rc;
        finish_child(tc);
        return;
    }
    tc->spawned = 1;
    uv_timer_start(&tc->timer, on_timer, tc->timeout_ms, 0);
    uv_read_start((uv_stream_t *)&tc->out, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&tc->errp, on_alloc, on_read);
}

static void on_work_done(uv_work_t *req, int status)
{
    struct dm_typecheck *tc = req->data;

    if (status == UV_ECANCELED && !tc->rc) {
        tc->rc = dm_error_set(&tc->err, DM_ERR_CANCELLED, "type-check cancelled");
    }
    if (tc->step == STEP_PREPARE && tc->rc == 0 && !tc->from_baseline) {
        run_tsc(tc);
        return;
    }
    complete(tc);
}

static char *dup_or_null(const char *s, int *failed)
{
    char *c;
    if (!s) {
        return NULL;
    }
    c = strdup(s);
    *failed |= !c;
    return c;
}

int dm_typecheck_start(struct dm_typecheck **out, uv_loop_t *loop,
                       const struct dm_typecheck_opts *opts, const struct dm_typecheck_req *req,
                       struct dm_error *err)
{
    struct dm_typecheck_opts def = DM_TYPECHECK_OPTS_INIT;
    struct dm_typecheck *tc;
    int failed = 0;

    if (out) {
        *out = NULL;
    }
    if (!opts) {
        opts = &def;
    }
    tc = calloc(1, sizeof(*tc));
    if (!tc) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    tc->loop = loop;
    tc->work.data = tc;
    atomic_init(&tc->cancel, 0);
    tc->timeout_ms = opts->timeout_ms ? opts->timeout_ms : TIMEOUT_DEFAULT_MS;
    tc->output_cap = opts->output_cap ? opts->output_cap : OUTPUT_CAP_DEFAULT;
    tc->max_file_bytes = opts->max_file_bytes ? opts->max_file_bytes : FILE_BYTES_DEFAULT;
    tc->max_base_files = opts->max_base_files ? opts->max_base_files : BASE_FILES_DEFAULT;
    tc->max_diags = opts->max_diags;
    tc->mem_mb = opts->mem_limit_mb ? opts->mem_limit_mb : MEM_DEFAULT_MB;
    /* Found on the threadpool (prepare): the search stats files. */
    tc->tsc = dup_or_null(opts->tsc && *opts->tsc ? opts->tsc : NULL, &failed);
    tc->base_dir = dup_or_null(req->base_dir, &failed);
    tc->work_dir = dup_or_null(req->work_dir, &failed);
    tc->baseline = dup_or_null(req->baseline, &failed);
    tc->files = calloc(req->nfiles + 1, sizeof(*tc->files));
    failed |= !tc->files || !tc->work_dir;
    for (size_t i = 0; !failed && i < req->nfiles; i++) {
        char *content = malloc(req->files[i].len + 1);
        char *path = strdup(req->files[i].path);
        if (!content || !path) {
            free(content);
            free(path);
            failed = 1;
            break;
        }
        memcpy(content, req->files[i].content, req->files[i].len);
        content[req->files[i].len] = '\0';
        tc->files[i].path = path;
        tc->files[i].content = content;
        tc->files[i].len = req->files[i].len;
        tc->nfiles++;
    }
    tc->on_done = req->on_done;
    tc->arg = req->arg;
    if (failed) {
        typecheck_free(tc);
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    tc->step = STEP_PREPARE;
    if (uv_queue_work(loop, &tc->work, on_work, on_work_done) != 0) {
        typecheck_free(tc);
        return dm_error_set(err, DM_ERR_IO, "cannot queue the type-check's work");
    }
    if (out) {
        *out = tc;
    }
    return 0;
}

void dm_typecheck_cancel(struct dm_typecheck *tc)
{
    if (!tc) {
        return;
    }
    atomic_store(&tc->cancel, 1);
    if (tc->step == STEP_RUN) {
        kill_group(tc);
    }
}
