/*
 * fixture: bare git repositories made from the fixture trees under tests/data/repos/ (see
 * fixture.h), with the git command line. Test processes only.
 */
#include "fixture.h"

#include "dmtest.h"
#include "githttp.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *dmt_fixture_dir(const char *name)
{
    static char path[1024];
    struct stat st;

    snprintf(path, sizeof(path), "%s/tests/data/repos/%s", dmt_source_dir(), name);
    cr_assert(stat(path, &st) == 0 && S_ISDIR(st.st_mode), "no fixture %s (%s)", name, path);
    return path;
}

char *dmt_fixture_bare(const char *name, const char *bare)
{
    char src[1024];

    snprintf(src, sizeof(src), "%s", dmt_fixture_dir(name));
    /* Fixed identities and dates: the same tree always makes the same commit. */
    free(dmt_sh("set -e; rm -rf '%s'; mkdir -p '%s'; git init -q --bare -b main '%s';"
                " git -C '%s' config http.receivepack true;"
                " git -C '%s' config core.logAllRefUpdates always;"
                " work=$(mktemp -d \"${TMPDIR:-/tmp}/fixture-XXXXXX\");"
                " cp -R '%s/.' \"$work\"; git -C \"$work\" init -q -b main;"
                " git -C \"$work\" add -A;"
                " GIT_AUTHOR_NAME=Fixture GIT_AUTHOR_EMAIL=fixture@example.com"
                " GIT_COMMITTER_NAME=Fixture GIT_COMMITTER_EMAIL=fixture@example.com"
                " GIT_AUTHOR_DATE='2024-01-01T12:00:00Z' GIT_COMMITTER_DATE='2024-01-01T12:00:00Z'"
                " git -C \"$work\" -c commit.gpgsign=false commit -q -m 'Fixture %s';"
                " git -C \"$work\" push -q '%s' main:refs/heads/main; rm -rf \"$work\"",
                bare, bare, bare, bare, bare, src, name, bare));
    return strdup(bare);
}

char *dmt_fixture_file(const char *name, const char *path)
{
    char full[2048];
    snprintf(full, sizeof(full), "%s/%s", dmt_fixture_dir(name), path);
    return dmt_read_file(full);
}

char *dmt_fixture_head(const char *bare)
{
    return dmt_sh("git --git-dir='%s' rev-parse --verify refs/heads/main", bare);
}
