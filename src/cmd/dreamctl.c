/*
 * dreamctl: the command-line producer and operator tool of dreamd. This file is its entry: the
 * command table, argument parsing, the --help texts and the global settings (Redis URL, key
 * prefix, caps). The commands live beside it (src/cmd/ctl_int.h lists the files): submit builds
 * jobs through jobreq, watch/status follow events, the operator commands run the Lua scripts of
 * src/domain/scripts.c. Every key name comes from dream/core/keys.h.
 *
 * One thread, one synchronous hiredis connection, no event loop: every command is a short
 * sequence of requests, and following events is a loop of blocking XREADs. The exit codes are
 * the contract of include/dream/cmd/ctl.h. Errors go to stderr; with --json they are also written
 * to stdout as {"error","exitCode"} so scripts that parse stdout see them.
 */
#include "ctl_int.h"

#include "dream/core/config.h"
#include "dream/core/log.h"

#include <stdlib.h>
#include <string.h>

const struct optdef ctl_global_opts[] = {
    {"redis-url", "URL", "Redis (env DREAM_REDIS_URL; default redis://127.0.0.1:6379/0)"},
    {"prefix", "PREFIX", "key prefix (env DREAM_PREFIX; default dream)"},
    {"json", NULL, "machine-readable output (JSON; one document per line when following)"},
    {"help", NULL, "show help"},
    {NULL, NULL, NULL},
};

static const char exit_codes_help[] =
    "Exit codes:\n"
    "  0  ok; a watched or awaited job ended complete\n"
    "  1  the command failed, or the job ended failed, cancelled, dead_lettered or rejected\n"
    "     (or was not run: duplicate)\n"
    "  2  usage error or invalid input\n"
    "  3  the watched or awaited job is parked (paused_approval): approve or reject it\n"
    "  4  Redis unreachable\n"
    "  5  --timeout passed first\n";

/* ---- the command table, help and argument parsing ---- */

static int cmd_help(struct ctl *ctl);

static const struct optdef submit_opts[] = {
    {"repo", "OWNER/NAME", "target repository (required)"},
    {"base", "BRANCH", "base branch (default main)"},
    {"branch-prefix", "PREFIX", "prefix of the new branch (default dream/)"},
    {"max-tokens", "N", "budget.maxTokens (default 200000)"},
    {"max-dollars", "X",
     "budget.maxDollars (default 5; none: no dollar limit, tokens count against --max-tokens)"},
    {"priority", "P", "critical, high, medium (default) or low"},
    {"repo-type", "T", "storia-digital, petranto-com, byok-cloud or custom (default)"},
    {"effort", "TEXT", "estimatedEffort (free text, up to 64 characters)"},
    {"trust", "LEVEL", "observer, planner, builder (default) or shipper"},
    {"token", "JWT",
     "a signed token for the entry (signed mode: its dreamTrustLevel is the trust level; it must "
     "carry dreamJobSha256)"},
    {"token-file", "PATH", "the same token read from PATH (not shown in the process list)"},
    {"sign-secret-file", "PATH",
     "sign an HS256 token (iss, sub=userId, jti=jobId, dreamTrustLevel, dreamJobSha256, iat, "
     "exp=iat+1h, aud) with the secret in PATH (else env DREAM_SIGN_SECRET; never on argv)"},
    {"issuer", "ISS", "the token's iss (default storia)"},
    {"audience", "AUD", "the token's aud (default $DREAM_SIGNING_AUDIENCE; none when unset)"},
    {"job-id", "ID", "job id (default: generated, job-<utc time>-<random>)"},
    {"spec-id", "ID", "specId (default: the job id)"},
    {"user-id", "ID", "userId (default: $USER)"},
    {"callback-url", "URL", "callbackUrl for HTTP status callbacks (https)"},
    {"draft", NULL, "open the pull request as a draft (default: the worker's DREAM_PR_DRAFT)"},
    {"no-draft", NULL, "open it ready for review, whatever DREAM_PR_DRAFT says"},
    {"labels", "L[,L...]", "labels of the pull request (\"\": none; default DREAM_PR_LABELS)"},
    {"reviewers", "LOGIN[,...]", "reviewers to request (default DREAM_PR_REVIEWERS)"},
    {"team-reviewers", "SLUG[,...]", "team reviewers to request (default DREAM_PR_TEAM_REVIEWERS)"},
    {"spec-url", "URL", "specUrl: a link to the spec in the pull request's body"},
    {"watch", NULL, "then follow the job's events to its end (exit code as below)"},
    {"wait", NULL, "then wait quietly until the job ends or parks (exit code as below)"},
    {"timeout", "SECONDS", "with --watch/--wait: give up after this long (exit 5)"},
    {NULL, NULL, NULL},
};

static const struct optdef watch_opts[] = {
    {"timeout", "SECONDS", "give up after this long (exit 5; without ID: exit 0)"},
    {NULL, NULL, NULL},
};

static const struct optdef jobs_opts[] = {
    {"status", "S[,S...]",
     "only jobs in these statuses, comma-separated or --status repeated (running, "
     "paused_approval, approved, requeued, "
     "retry_requested, complete, failed, cancelled, rejected, dead_lettered)"},
    {"repo", "OWNER/NAME", "only jobs for this repository"},
    {"user", "ID", "only jobs of this userId"},
    {"since", "WHEN",
     "only jobs created (with --status: that entered the status) at or after WHEN: a duration "
     "back from now (90s, 15m, 1h, 7d), epoch ms or an RFC 3339 time"},
    {"until", "WHEN", "the same, at or before WHEN"},
    {"min-cost", "USD", "only jobs that cost at least this many dollars"},
    {"limit", "N", "at most N jobs, newest first (default 50; 0: all)"},
    {"cursor", "C", "continue after the page that printed this cursor"},
    {NULL, NULL, NULL},
};

static const struct optdef retry_opts[] = {
    {"from-stage", "S",
     "start at stage S (plan, generate, review, gate, push, pr) instead of the "
     "one the job ended in; plan also drops the plan and the files"},
    {"regenerate", NULL, "drop the checkpointed files: every file is generated (and paid) again"},
    {"force", NULL, "also a rejected job, or one whose retry is already queued"},
    {"token", "JWT", "a fresh signed token for the job (signed mode; one job only)"},
    {"token-file", "PATH", "the same token read from PATH (not shown in the process list)"},
    {"issuer", "ISS", "iss of a token signed from DREAM_SIGN_SECRET (default storia)"},
    {"audience", "AUD", "aud of a signed token (default $DREAM_SIGNING_AUDIENCE)"},
    {"by", "NAME", "who retries (default $USER)"},
    {"status", "S[,S...]", "bulk: retry the jobs in these statuses (filters as for `jobs`)"},
    {"repo", "OWNER/NAME", "bulk: only jobs for this repository"},
    {"user", "ID", "bulk: only jobs of this userId"},
    {"since", "WHEN", "bulk: only jobs that entered the status at or after WHEN (1h, 7d, ...)"},
    {"until", "WHEN", "bulk: ... at or before WHEN"},
    {"min-cost", "USD", "bulk: only jobs that cost at least this much"},
    {"limit", "N", "bulk: at most N jobs (default: all that match)"},
    {"yes", NULL, "bulk: do not ask for confirmation"},
    {NULL, NULL, NULL},
};

static const struct optdef stats_opts[] = {
    {"since", "DURATION",
     "the window of the per-hour, duration and spend figures (default 24h; "
     "up to 31d)"},
    {"watch", NULL, "print again every 2 s until interrupted"},
    {NULL, NULL, NULL},
};

static const struct optdef approve_opts[] = {
    {"by", "NAME", "who approves (default $USER)"},
    {NULL, NULL, NULL},
};

static const struct optdef reject_opts[] = {
    {"reason", "TEXT", "why (goes into the rejected event and the job's error)"},
    {"by", "NAME", "who rejects (default $USER)"},
    {NULL, NULL, NULL},
};

static const struct optdef cancel_opts[] = {
    {"by", "NAME", "who cancels (default $USER)"},
    {NULL, NULL, NULL},
};

static const struct optdef dead_opts[] = {
    {"limit", "N", "list: at most N dead letters, oldest first (default 100)"},
    {"by", "NAME", "requeue: who requeues (default $USER)"},
    {"token", "JWT", "requeue: a fresh signed token for the job (signed mode)"},
    {"token-file", "PATH",
     "requeue: the same token read from PATH (not shown in the process list)"},
    {"sign-secret-file", "PATH",
     "requeue: sign a fresh token for the job with the secret in PATH (else env "
     "DREAM_SIGN_SECRET)"},
    {"trust", "LEVEL", "requeue: the signed token's dreamTrustLevel (default: the job's)"},
    {"issuer", "ISS", "requeue: the signed token's iss (default storia)"},
    {"audience", "AUD", "requeue: the signed token's aud (default $DREAM_SIGNING_AUDIENCE)"},
    {NULL, NULL, NULL},
};

static const struct optdef no_opts[] = {
    {NULL, NULL, NULL},
};

static const struct command commands[] = {
    {"submit", "submit [FILE|-] --repo OWNER/NAME [options]",
     "put a build job for a spec (Markdown file, or stdin) on the jobs stream",
     "Builds the job JSON (DESIGN.md field names), checks it as a worker would, and adds\n"
     "`type build job <json> [token <jwt>]` to <prefix>:jobs. Prints the job id (--json:\n"
     "{\"jobId\",\"entry\"}). With --watch it then prints the job's events and a progress line;\n"
     "with --wait it waits quietly and prints the outcome (--json: "
     "{\"jobId\",\"entry\",\"status\",\n"
     "\"exitCode\",\"event\"}). Either exits with the job's outcome (0 complete, 1 failed,\n"
     "cancelled, rejected, dead_lettered or not run, 3 parked, 5 timeout).\n",
     submit_opts, 0, 1, ctl_run_submit},
    {"watch", "watch [ID] [--timeout SECONDS]",
     "replay a job's events, then follow them live to its end; without ID follow every job",
     "With ID: replays <prefix>:job:<ID>:events, then follows it until the job ends or parks; a\n"
     "progress line shows files done/total, tokens, dollars and elapsed time. Exit code: 0\n"
     "complete, 1 failed/cancelled/rejected/dead_lettered, 3 parked, 5 timeout. Without ID:\n"
     "follows <prefix>:events from now on until interrupted (or --timeout, exit 0). --json\n"
     "prints each event's JSON on its own line.\n",
     watch_opts, 0, 1, ctl_run_watch},
    {"status", "status ID", "show a job's hash: status, stage, attempts, costs, branch, PR, plan",
     NULL, no_opts, 1, 1, ctl_run_status},
    {"jobs",
     "jobs [--status S[,S...]] [--repo OWNER/NAME] [--user ID] [--since WHEN] [--until WHEN]\n"
     "       [--min-cost USD] [--limit N] [--cursor C]",
     "list jobs from the job index, newest first",
     "Reads the index the Lua scripts keep (<prefix>:idx:*), never SCANs the keyspace. With\n"
     "--status the jobs are ordered by when they entered the status, else by creation. Each\n"
     "page ends with a cursor (--json: every row has its \"cursor\") to pass as --cursor.\n",
     jobs_opts, 0, 0, ctl_run_jobs},
    {"retry",
     "retry ID [--from-stage S] [--regenerate] [--force] [--token JWT | --token-file PATH]\n"
     "       retry --status S[,S...] [--since WHEN] [--repo OWNER/NAME] [...] [--yes]",
     "run a job that ended failed, cancelled or dead_lettered again, from its checkpoint",
     "Queues `type retry id <jobId> [token <jwt>]` on <prefix>:jobs through the RETRY script:\n"
     "the job becomes retry_requested (event `retry_requested`), attempts start afresh, and a\n"
     "worker continues it at the stage it ended in with its checkpointed files (not paid for\n"
     "again unless --regenerate). A rejected job needs --force. A signed job needs a fresh\n"
     "token: --token, or one signed over the stored job from DREAM_SIGN_SECRET. Without ID,\n"
     "--status selects the jobs as `jobs` does; dreamctl asks before retrying them (--yes).\n",
     retry_opts, 0, 1, ctl_run_retry},
    {"stats", "stats [--since DURATION] [--watch]",
     "counts, throughput, durations, stream lag, workers, spend and the parked queue",
     "Jobs by status; completed and failed per hour; p50/p95 duration of runs and of each stage\n"
     "(log buckets, within 19%); the jobs stream's length, lag and pending entries; the workers\n"
     "with their jobs and model requests in flight; tokens and dollars by model and by\n"
     "repository; the parked jobs with their ages. From counters the scripts and workers keep:\n"
     "no job is read. --json prints one document.\n",
     stats_opts, 0, 0, ctl_run_stats},
    {"approve", "approve ID [--by NAME]",
     "approve a parked job: emits `approved` and queues a resume entry",
     "Only a job in paused_approval can be approved; anything else is refused (exit 1).\n",
     approve_opts, 1, 1, ctl_run_approve},
    {"reject", "reject ID [--reason TEXT] [--by NAME]",
     "reject a parked job: it ends `rejected` and its keys expire",
     "Only a job in paused_approval can be rejected; anything else is refused (exit 1).\n",
     reject_opts, 1, 1, ctl_run_reject},
    {"cancel", "cancel ID [--by NAME]",
     "cancel a job: a parked one ends at once, a running one at its next stage boundary", NULL,
     cancel_opts, 1, 1, ctl_run_cancel},
    {"dead", "dead [list | requeue DEAD-ID [--token JWT | --token-file PATH] | purge [DEAD-ID]]",
     "list, requeue or purge dead letters (<prefix>:dead)",
     "requeue puts the dead letter's job back on the jobs stream and resets a finished job so it\n"
     "runs again from its checkpoint; purge deletes one dead letter, or all of them.\n"
     "A signed job (signed mode) is requeued with a fresh token: --token JWT, or one signed here\n"
     "with --sign-secret-file PATH or DREAM_SIGN_SECRET; else with the token the dead letter\n"
     "kept. Without any, a signed job's requeue is refused (exit 1) with the reason.\n",
     dead_opts, 0, 2, ctl_run_dead},
    {"workers", "workers", "list live workers (replicas) with their heartbeat fields", NULL,
     no_opts, 0, 0, ctl_run_workers},
    {"help", "help [COMMAND]", "show help", NULL, no_opts, 0, 1, cmd_help},
    {NULL, NULL, NULL, NULL, NULL, 0, 0, NULL},
};

static const struct command *find_command(const char *name)
{
    for (const struct command *c = commands; c->name; c++) {
        if (strcmp(c->name, name) == 0) {
            return c;
        }
    }
    return NULL;
}

static void print_opts(FILE *f, const struct optdef *defs)
{
    for (const struct optdef *d = defs; d && d->name; d++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", d->name, d->arg ? " " : "", d->arg ? d->arg : "");
        fprintf(f, "  %-26s %s\n", left, d->help);
    }
}

static void usage_global(FILE *f)
{
    fprintf(f,
            "dreamctl %s: submit build jobs to dreamd, follow them, approve and operate.\n\n"
            "Usage: dreamctl [global options] COMMAND [options] [arguments]\n\n"
            "Commands:\n",
            DREAM_VERSION);
    for (const struct command *c = commands; c->name; c++) {
        fprintf(f, "  %-9s %s\n", c->name, c->summary);
    }
    fprintf(f, "\nGlobal options (also accepted after the command):\n");
    print_opts(f, ctl_global_opts);
    fprintf(f, "  %-26s %s\n", "--version", "print the version");
    fprintf(f, "\nEnvironment: DREAM_REDIS_URL, DREAM_PREFIX, DREAM_SIGN_SECRET, DREAM_JOB_TTL_S\n"
               "(TTL of rejected/cancelled jobs, default 604800), DREAM_EVENTS_MAXLEN.\n\n");
    fprintf(f, "%s\nRun `dreamctl COMMAND --help` for a command's options.\n", exit_codes_help);
}

static void usage_command(FILE *f, const struct command *c)
{
    fprintf(f, "Usage: dreamctl %s\n\n%s.\n", c->synopsis, c->summary);
    if (c->details) {
        fprintf(f, "\n%s", c->details);
    }
    if (c->opts && c->opts->name) {
        fprintf(f, "\nOptions:\n");
        print_opts(f, c->opts);
    }
    fprintf(f, "\nGlobal options:\n");
    print_opts(f, ctl_global_opts);
    fprintf(f, "\n%s", exit_codes_help);
}

static int cmd_help(struct ctl *ctl)
{
    const struct command *c = ctl->npos ? find_command(ctl->pos[0]) : NULL;
    if (ctl->npos && !c) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "unknown command '%s'", ctl->pos[0]);
    }
    if (c) {
        usage_command(stdout, c);
    } else {
        usage_global(stdout);
    }
    return 0;
}

/* Finds an option definition: index into ctl->val, or -1. */
static int find_opt(const struct command *cmd, const char *name, size_t len,
                    const struct optdef **def)
{
    int i = 0;
    for (const struct optdef *d = cmd ? cmd->opts : NULL; d && d->name; d++, i++) {
        if (strlen(d->name) == len && strncmp(d->name, name, len) == 0) {
            *def = d;
            return i;
        }
    }
    for (const struct optdef *d = ctl_global_opts; d->name; d++, i++) {
        if (strlen(d->name) == len && strncmp(d->name, name, len) == 0) {
            *def = d;
            return i;
        }
    }
    return -1;
}

/* Parses argv (except the command word at skip) against the command's and the global options.
 * Returns 0 or DM_CTL_EXIT_USAGE (reported). */
static int parse_args(struct ctl *ctl, int argc, char **argv, int skip)
{
    int only_pos = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i == skip) {
            continue;
        }
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (!only_pos && (strcmp(a, "-h") == 0)) {
            a = "--help";
        }
        if (!only_pos && strncmp(a, "--", 2) == 0) {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            const struct optdef *def = NULL;
            int k;
            if (len == 11 && strncmp(name, "sign-secret", 11) == 0) {
                /* Like dreamd's secret flags: argv is in /proc/<pid>/cmdline for every user. The
                 * value is never repeated. */
                return ctl_fail(ctl, DM_CTL_EXIT_USAGE,
                                "--sign-secret: a secret is not taken from a flag (flags show in "
                                "/proc/<pid>/cmdline): give --sign-secret-file PATH (a file "
                                "holding it) or set DREAM_SIGN_SECRET");
            }
            k = find_opt(ctl->cmd, name, len, &def);
            if (k < 0 || k >= MAX_OPTS) {
                return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "unknown option %.*s%s%s", (int)len + 2, a,
                                ctl->cmd ? " for " : "", ctl->cmd ? ctl->cmd->name : "");
            }
            if (def->arg) {
                const char *prev = ctl->val[k];
                if (eq) {
                    ctl->val[k] = eq + 1;
                } else if (i + 1 < argc && i + 1 != skip) {
                    ctl->val[k] = argv[++i];
                } else {
                    return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "option --%s needs a value (%s)",
                                    def->name, def->arg);
                }
                if (prev && strcmp(def->name, "status") == 0) {
                    /* --status a --status b: the same as --status a,b */
                    char joined[sizeof(ctl->statuses)];
                    snprintf(joined, sizeof(joined), "%s,%s", prev, ctl->val[k]);
                    snprintf(ctl->statuses, sizeof(ctl->statuses), "%s", joined);
                    ctl->val[k] = ctl->statuses;
                }
            } else {
                if (eq) {
                    return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "option --%s takes no value",
                                    def->name);
                }
                ctl->val[k] = "1";
            }
            continue;
        }
        if (!only_pos && a[0] == '-' && a[1] != '\0') {
            return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "unknown option %s", a);
        }
        if (ctl->npos >= ctl->cmd->max_pos || ctl->npos >= MAX_POS) {
            return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "unexpected argument '%s'", a);
        }
        ctl->pos[ctl->npos++] = a;
    }
    return 0;
}

/* Settings from the environment with a numeric default. */
static void env_number(char *out, size_t n, const char *name, const char *def)
{
    const char *v = getenv(name);
    snprintf(out, n, "%s", v && ctl_is_digits(v) && strlen(v) < 16 ? v : def);
}

int main(int argc, char **argv)
{
    struct ctl ctl;
    int cmd_index = 0, rc = 0, version = 0, help = 0;

    memset(&ctl, 0, sizeof(ctl));
    /* Find the command word: global options may come before it. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const struct optdef *def = NULL;
        if (strcmp(a, "--") == 0) {
            break;
        }
        if (a[0] != '-' || strcmp(a, "-") == 0) {
            cmd_index = i;
            break;
        }
        if (strcmp(a, "--version") == 0) {
            version = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help = 1;
            continue;
        }
        if (strncmp(a, "--", 2) == 0 &&
            find_opt(NULL, a + 2, strchr(a, '=') ? (size_t)(strchr(a, '=') - a - 2) : strlen(a + 2),
                     &def) >= 0) {
            if (def->arg && !strchr(a, '=')) {
                i++;
            }
            if (strcmp(def->name, "json") == 0) {
                ctl.json = 1;
            }
            continue;
        }
        return ctl_fail(&ctl, DM_CTL_EXIT_USAGE, "unknown option %s", a);
    }
    if (!cmd_index) {
        if (version) {
            printf("dreamctl %s\n", DREAM_VERSION);
            return 0;
        }
        if (help) {
            usage_global(stdout);
            return 0;
        }
        usage_global(stderr);
        return ctl_fail(&ctl, DM_CTL_EXIT_USAGE, "missing command");
    }
    ctl.cmd = find_command(argv[cmd_index]);
    if (!ctl.cmd) {
        return ctl_fail(&ctl, DM_CTL_EXIT_USAGE, "unknown command '%s'", argv[cmd_index]);
    }
    if ((rc = parse_args(&ctl, argc, argv, cmd_index))) {
        return rc;
    }
    ctl.json = ctl_opt(&ctl, "json") != NULL;
    if (ctl_opt(&ctl, "help")) {
        usage_command(stdout, ctl.cmd);
        return 0;
    }
    if ((rc = ctl_token_file(&ctl))) {
        return rc;
    }
    if (ctl.npos < ctl.cmd->min_pos) {
        return ctl_fail(&ctl, DM_CTL_EXIT_USAGE, "%s: missing argument (usage: dreamctl %s)",
                        ctl.cmd->name, ctl.cmd->synopsis);
    }
    ctl.redis_url = ctl_opt(&ctl, "redis-url");
    if (!ctl.redis_url) {
        ctl.redis_url = getenv("DREAM_REDIS_URL");
    }
    if (!ctl.redis_url || !*ctl.redis_url) {
        ctl.redis_url = "redis://127.0.0.1:6379/0";
    }
    ctl.prefix = ctl_opt(&ctl, "prefix");
    if (!ctl.prefix) {
        ctl.prefix = getenv("DREAM_PREFIX");
    }
    if (!ctl.prefix || !*ctl.prefix) {
        ctl.prefix = "dream";
    }
    if (strlen(ctl.prefix) > DM_KEYS_PREFIX_MAX || strpbrk(ctl.prefix, " \t\r\n*?[]") ||
        dm_keys_init(&ctl.keys, ctl.prefix)) {
        return ctl_fail(
            &ctl, DM_CTL_EXIT_USAGE,
            "--prefix (DREAM_PREFIX): at most 64 characters, no spaces or glob characters");
    }
    env_number(ctl.gmax, sizeof(ctl.gmax), "DREAM_EVENTS_MAXLEN", "100000");
    env_number(ctl.ttl, sizeof(ctl.ttl), "DREAM_JOB_TTL_S", "604800");
    ctl_default_who(ctl.who, sizeof(ctl.who));

    rc = ctl.cmd->run(&ctl);
    if (ctl.broken && rc != DM_CTL_EXIT_USAGE) {
        rc = DM_CTL_EXIT_UNREACHABLE;
    }
    if (ctl.c) {
        redisFree(ctl.c);
    }
    ctl_secret_free(ctl.token);
    fflush(stdout);
    return rc;
}
