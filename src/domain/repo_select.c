/*
 * repo_select: what of the base is worth reading (see include/dream/domain/repo.h): the skip
 * rules (vendored, generated, binary), the text check, the two steps of the selection within
 * the limits, and building a struct dm_repo. Pure; any thread.
 */
#include "dream/domain/repo.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct dm_repo_limits dm_repo_limits_resolve(const struct dm_repo_limits *lim)
{
    struct dm_repo_limits l = {0, 0, 0};
    if (lim) {
        l = *lim;
    }
    if (!l.file_bytes) {
        l.file_bytes = DM_REPO_FILE_BYTES_DEFAULT;
    }
    if (!l.total_bytes) {
        l.total_bytes = DM_REPO_TOTAL_BYTES_DEFAULT;
    }
    if (!l.files) {
        l.files = DM_REPO_FILES_DEFAULT;
    }
    return l;
}

/* ---- skip rules ---- */

static int has_dir(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    const char *p = path;
    for (;;) {
        if (strncmp(p, dir, n) == 0 && p[n] == '/') {
            return 1;
        }
        p = strchr(p, '/');
        if (!p) {
            return 0;
        }
        p++;
    }
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int dm_repo_path_skipped(const char *path)
{
    static const char *const vendored[] = {"node_modules", "vendor", "dist",     "build",
                                           ".git",         ".next",  "coverage", ".turbo"};
    static const char *const lockfiles[] = {
        "package-lock.json", "yarn.lock",           "pnpm-lock.yaml", "bun.lockb",
        "bun.lock",          "npm-shrinkwrap.json", "Cargo.lock",     "poetry.lock",
        "composer.lock",     "Gemfile.lock",        "go.sum"};
    static const char *const generated[] = {".min.js", ".min.css", ".map", ".snap"};
    static const char *const binary[] = {
        ".png",      ".jpg", ".jpeg",  ".gif",  ".webp",   ".ico",     ".bmp",   ".tif",  ".tiff",
        ".avif",     ".psd", ".pdf",   ".woff", ".woff2",  ".ttf",     ".otf",   ".eot",  ".zip",
        ".gz",       ".tgz", ".bz2",   ".xz",   ".7z",     ".rar",     ".tar",   ".jar",  ".war",
        ".mp3",      ".mp4", ".wav",   ".ogg",  ".webm",   ".mov",     ".avi",   ".flac", ".exe",
        ".dll",      ".so",  ".dylib", ".a",    ".o",      ".obj",     ".class", ".pyc",  ".wasm",
        ".node",     ".bin", ".dat",   ".db",   ".sqlite", ".sqlite3", ".lockb", ".heic", ".icns",
        ".keystore", ".p12", ".pfx",   ".der"};
    const char *name;

    if (!path || !*path) {
        return 1;
    }
    for (size_t i = 0; i < sizeof(vendored) / sizeof(vendored[0]); i++) {
        if (has_dir(path, vendored[i])) {
            return 1;
        }
    }
    name = base_name(path);
    for (size_t i = 0; i < sizeof(lockfiles) / sizeof(lockfiles[0]); i++) {
        if (strcmp(name, lockfiles[i]) == 0) {
            return 1;
        }
    }
    for (size_t i = 0; i < sizeof(generated) / sizeof(generated[0]); i++) {
        if (ends_with(name, generated[i])) {
            return 1;
        }
    }
    for (size_t i = 0; i < sizeof(binary) / sizeof(binary[0]); i++) {
        if (ends_with(name, binary[i])) {
            return 1;
        }
    }
    return 0;
}

/* Length of the UTF-8 sequence starting at s[0..n), 0 when invalid, -1 when it is cut short
 * (valid so far but n ends it). */
static long utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned cp;

    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if (i >= n) {
            return -1;
        }
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3F);
        /* Overlong, surrogate and out-of-range forms show after the second byte. */
        if (i == 1 && ((len == 3 && cp < 0x20) || (len == 3 && cp >= 0x360 && cp <= 0x37F) ||
                       (len == 4 && cp < 0x10) || (len == 4 && cp > 0x10F))) {
            return 0;
        }
    }
    return (long)len;
}

int dm_repo_text_check(const char *buf, size_t len, int cut, size_t *keep)
{
    const unsigned char *s = (const unsigned char *)buf;
    size_t i = 0;

    if (keep) {
        *keep = 0;
    }
    while (i < len) {
        long l;
        if (s[i] == 0) {
            return 0;
        }
        l = utf8_seq(s + i, len - i);
        if (l == 0) {
            return 0;
        }
        if (l < 0) {
            if (!cut) {
                return 0;
            }
            break; /* the cut fell inside a character: keep what comes before it */
        }
        i += (size_t)l;
    }
    if (keep) {
        *keep = i;
    }
    return 1;
}

/* ---- building a dm_repo ---- */

int dm_repo_add_entry(struct dm_repo *r, const char *path, size_t size)
{
    struct dm_repo_entry *t;
    char *p;

    /* Grow by doubling: the capacity is the next power of two at or above n_tree. */
    if ((r->n_tree & (r->n_tree - 1)) == 0) {
        size_t cap = r->n_tree ? r->n_tree * 2 : 16;
        if (r->n_tree && r->n_tree < 16) {
            cap = 16;
        }
        t = realloc(r->tree, cap * sizeof(*t));
        if (!t) {
            return DM_ERR_NOMEM;
        }
        r->tree = t;
    }
    p = strdup(path);
    if (!p) {
        return DM_ERR_NOMEM;
    }
    r->tree[r->n_tree].path = p;
    r->tree[r->n_tree].size = size;
    r->n_tree++;
    return 0;
}

int dm_repo_add_file(struct dm_repo *r, const char *path, const char *content, size_t len, int cut)
{
    struct dm_repo_text *f = realloc(r->files, (r->n_files + 1) * sizeof(*f));
    char *p, *c;

    if (!f) {
        return DM_ERR_NOMEM;
    }
    r->files = f;
    p = strdup(path);
    c = malloc(len + 1);
    if (!p || !c) {
        free(p);
        free(c);
        return DM_ERR_NOMEM;
    }
    if (len) {
        memcpy(c, content, len);
    }
    c[len] = '\0';
    f[r->n_files].path = p;
    f[r->n_files].content = c;
    f[r->n_files].len = len;
    f[r->n_files].cut = cut;
    r->n_files++;
    return 0;
}

size_t dm_repo_bytes(const struct dm_repo *r)
{
    size_t b = 0;
    for (size_t i = 0; r && i < r->n_files; i++) {
        b += r->files[i].len;
    }
    return b;
}

void dm_repo_paths_free(char **paths, size_t n)
{
    for (size_t i = 0; paths && i < n; i++) {
        free(paths[i]);
    }
    free(paths);
}

/* ---- selection ---- */

struct pick {
    const struct dm_repo *r;
    struct dm_repo_limits lim;
    size_t files; /* read or picked */
    size_t bytes; /* reckoned */
    char **out;
    size_t n;
    int nomem;
};

static int picked(const struct pick *k, const char *path)
{
    for (size_t i = 0; i < k->n; i++) {
        if (strcmp(k->out[i], path) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Picks e when it fits; returns 1 when it was picked. */
static int pick_entry(struct pick *k, const struct dm_repo_entry *e)
{
    size_t est;
    char **o;

    if (k->nomem || k->files >= k->lim.files || dm_repo_path_skipped(e->path) ||
        dm_repo_find(k->r, e->path) || picked(k, e->path)) {
        return 0;
    }
    est = e->size < k->lim.file_bytes ? e->size : k->lim.file_bytes;
    if (k->bytes + est > k->lim.total_bytes) {
        return 0;
    }
    o = realloc(k->out, (k->n + 1) * sizeof(*o));
    if (!o) {
        k->nomem = 1;
        return 0;
    }
    k->out = o;
    k->out[k->n] = strdup(e->path);
    if (!k->out[k->n]) {
        k->nomem = 1;
        return 0;
    }
    k->n++;
    k->files++;
    k->bytes += est;
    return 1;
}

static const struct dm_repo_entry *entry_of(const struct dm_repo *r, const char *path)
{
    for (size_t i = 0; path && i < r->n_tree; i++) {
        if (strcmp(r->tree[i].path, path) == 0) {
            return &r->tree[i];
        }
    }
    return NULL;
}

static void pick_path(struct pick *k, const char *path)
{
    const struct dm_repo_entry *e = entry_of(k->r, path);
    if (e) {
        pick_entry(k, e);
    }
}

/* A folder's files in tree order; pos is where the next candidate is looked for. */
struct folder {
    const char *dir;
    size_t pos;
    int done;
};

/* Picks the next file of f that is picked; marks f done when none is left. */
static void pick_from(struct pick *k, struct folder *f)
{
    size_t dl = strlen(f->dir);
    while (f->pos < k->r->n_tree) {
        const struct dm_repo_entry *e = &k->r->tree[f->pos++];
        if (strncmp(e->path, f->dir, dl) == 0 && pick_entry(k, e)) {
            return;
        }
    }
    f->done = 1;
}

int dm_repo_select(char ***out, size_t *n, const struct dm_repo *r, enum dm_repo_phase phase,
                   const struct dm_repo_limits *lim)
{
    static const char *const fixed[] = {"package.json",  "tsconfig.json",  "wrangler.toml",
                                        "wrangler.json", "README.md",      "readme.md",
                                        "README",        "README.markdown"};
    struct pick k;

    *out = NULL;
    *n = 0;
    memset(&k, 0, sizeof(k));
    k.r = r;
    k.lim = dm_repo_limits_resolve(lim);
    k.files = r->n_files;
    for (size_t i = 0; i < r->n_files; i++) {
        k.bytes += r->files[i].len;
    }
    if (phase == DM_REPO_PHASE_FIXED) {
        int readme = 0;
        for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
            int is_readme = strncasecmp(fixed[i], "readme", 6) == 0;
            if (is_readme && readme) {
                continue;
            }
            if (is_readme && entry_of(r, fixed[i])) {
                readme = 1;
            }
            pick_path(&k, fixed[i]);
        }
    } else {
        const struct dm_stack *s = &r->stack;
        struct folder f[4];
        size_t nf = 0;
        int left;

        pick_path(&k, s->entry);
        pick_path(&k, s->barrel);
        /* Migrations first: a replay needs them all, and they are small. */
        const char *dirs[] = {s->migrations_dir, s->routes_dir, s->components_dir, s->tests_dir};
        for (size_t i = 0; i < 4; i++) {
            int dup = 0;
            for (size_t j = 0; j < nf; j++) {
                dup |= dirs[i] && strcmp(f[j].dir, dirs[i]) == 0;
            }
            if (dirs[i] && *dirs[i] && !dup) {
                f[nf].dir = dirs[i];
                f[nf].pos = 0;
                f[nf].done = 0;
                nf++;
            }
        }
        do {
            left = 0;
            for (size_t i = 0; i < nf && !k.nomem && k.files < k.lim.files; i++) {
                if (!f[i].done) {
                    pick_from(&k, &f[i]);
                    left |= !f[i].done;
                }
            }
        } while (left && !k.nomem && k.files < k.lim.files);
    }
    if (k.nomem) {
        dm_repo_paths_free(k.out, k.n);
        return DM_ERR_NOMEM;
    }
    *out = k.out;
    *n = k.n;
    return 0;
}
