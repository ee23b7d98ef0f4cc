#!/bin/sh
# git_http_server.sh: a real smart-HTTP git server for tests — `git http-backend` (CGI) behind
# Debian's lighttpd, with HTTP Basic auth on every request, serving the bare repositories under
# <dir>/repos as http://127.0.0.1:<port>/git/<owner>/<repo>.git (pushes enabled).
#
#   git_http_server.sh run <dir> <port> <user> <password>
#       writes <dir>/lighttpd.conf and <dir>/users, then execs lighttpd in the foreground (stop
#       it with SIGTERM). Logs go to <dir>/error.log and <dir>/access.log; every authenticated
#       request is also counted in <dir>/requests.log ("<METHOD> <path>?<query>" per line),
#       written before it is served.
#   git_http_server.sh init-repo <root> <owner> <repo> [branch]
#       creates the bare repository <root>/<owner>/<repo>.git (receive-pack enabled) with one
#       commit on <branch> (default main) holding README.md; prints its path. Use <dir>/repos as
#       <root> for the server; any directory works for file:// remotes.
#   git_http_server.sh reject-hook <bare-repo> <message...>
#       installs a pre-receive hook that prints <message> to the pusher and refuses the push.
#   git_http_server.sh clear-hook <bare-repo>
#       removes that hook.
set -eu

die() {
    echo "git_http_server.sh: $*" >&2
    exit 2
}

backend() {
    for p in /usr/lib/git-core/git-http-backend /usr/libexec/git-core/git-http-backend \
             "$(git --exec-path 2>/dev/null)/git-http-backend"; do
        if [ -x "$p" ]; then
            echo "$p"
            return 0
        fi
    done
    die "git-http-backend not found"
}

cmd=${1:-}
[ -n "$cmd" ] || die "usage: $0 run|init-repo|reject-hook|clear-hook ..."
shift

case "$cmd" in
run)
    [ $# -eq 4 ] || die "usage: $0 run <dir> <port> <user> <password>"
    dir=$1 port=$2 user=$3 pass=$4
    command -v lighttpd >/dev/null 2>&1 || [ -x /usr/sbin/lighttpd ] || die "lighttpd not installed"
    lighttpd=$(command -v lighttpd 2>/dev/null || echo /usr/sbin/lighttpd)
    mkdir -p "$dir/repos"
    dir=$(cd "$dir" && pwd)
    be=$(backend)
    # Every request that passed authentication is counted in <dir>/requests.log ("<method>
    # <path>?<query>" per line) before git http-backend serves it: tests count fetches and
    # pushes there (lighttpd's access log is written in batches).
    cat >"$dir/backend.sh" <<EOF
#!/bin/sh
printf '%s %s?%s\n' "\$REQUEST_METHOD" "\$PATH_INFO" "\$QUERY_STRING" >>"$dir/requests.log"
exec "$be"
EOF
    chmod 755 "$dir/backend.sh"
    # mod_authn_file's "plain" backend: one user:password per line.
    umask 077
    printf '%s:%s\n' "$user" "$pass" >"$dir/users"
    umask 022
    cat >"$dir/lighttpd.conf" <<EOF
server.modules = ( "mod_access", "mod_alias", "mod_auth", "mod_authn_file", "mod_setenv",
                   "mod_cgi", "mod_accesslog" )
server.bind = "127.0.0.1"
server.port = $port
server.document-root = "$dir/repos"
server.errorlog = "$dir/error.log"
accesslog.filename = "$dir/access.log"
server.max-request-size = 1048576
# Stream CGI output as it comes, so hook messages (sideband progress) reach the client live.
server.stream-response-body = 2
mimetype.assign = ( "" => "application/octet-stream" )

auth.backend = "plain"
auth.backend.plain.userfile = "$dir/users"

# The path after /git is handed to git-http-backend as PATH_INFO.
alias.url = ( "/git" => "$dir/backend.sh" )
\$HTTP["url"] =~ "^/git" {
    cgi.assign = ( "" => "" )
    setenv.set-environment = (
        "GIT_PROJECT_ROOT" => "$dir/repos",
        "GIT_HTTP_EXPORT_ALL" => "1",
        "PATH" => "/usr/local/bin:/usr/bin:/bin",
        "HOME" => "$dir"
    )
    auth.require = ( "" => ( "method" => "basic", "realm" => "git", "require" => "valid-user" ) )
}
EOF
    exec "$lighttpd" -D -f "$dir/lighttpd.conf"
    ;;
init-repo)
    [ $# -ge 3 ] || die "usage: $0 init-repo <root> <owner> <repo> [branch]"
    root=$1 owner=$2 repo=$3 branch=${4:-main}
    mkdir -p "$root/$owner"
    bare="$(cd "$root/$owner" && pwd)/$repo.git"
    git init -q --bare -b "$branch" "$bare"
    git -C "$bare" config http.receivepack true
    # A reflog in the bare repository lets tests count ref updates (pushes).
    git -C "$bare" config core.logAllRefUpdates always
    work=$(mktemp -d "${TMPDIR:-/tmp}/githttp-seed-XXXXXX")
    git init -q -b "$branch" "$work"
    echo "# $repo" >"$work/README.md"
    git -C "$work" add README.md
    git -C "$work" -c user.name=Seed -c user.email=seed@example.com \
        commit -q -m "Initial commit"
    git -C "$work" push -q "$bare" "$branch:refs/heads/$branch"
    rm -rf "$work"
    echo "$bare"
    ;;
reject-hook)
    [ $# -ge 2 ] || die "usage: $0 reject-hook <bare-repo> <message...>"
    bare=$1
    shift
    msg=$*
    mkdir -p "$bare/hooks"
    # The message is written into the hook as a quoted here-document, so it is never evaluated.
    {
        echo '#!/bin/sh'
        echo 'cat >&2 <<'"'"'DREAM_HOOK_EOF'"'"''
        printf '%s\n' "$msg"
        echo 'DREAM_HOOK_EOF'
        echo 'exit 1'
    } >"$bare/hooks/pre-receive"
    chmod 755 "$bare/hooks/pre-receive"
    ;;
clear-hook)
    [ $# -eq 1 ] || die "usage: $0 clear-hook <bare-repo>"
    rm -f "$1/hooks/pre-receive"
    ;;
*)
    die "unknown command $cmd"
    ;;
esac
