/*
 * ctl: the contract of `dreamctl`, the command-line producer and operator tool
 * (src/cmd/dreamctl.c and the ctl_*.c beside it): its exit codes, which scripts and tests rely on.
 * Just constants; no code.
 */
#ifndef DREAM_CTL_H
#define DREAM_CTL_H

enum dm_ctl_exit {
    DM_CTL_EXIT_OK = 0,          /* the command worked; a watched/awaited job ended `complete` */
    DM_CTL_EXIT_FAILED = 1,      /* the command failed, or the job ended failed, cancelled,
                                    dead_lettered or rejected (or was not run: duplicate) */
    DM_CTL_EXIT_USAGE = 2,       /* usage error or invalid input (bad option, invalid job) */
    DM_CTL_EXIT_PARKED = 3,      /* the watched/awaited job is parked in paused_approval */
    DM_CTL_EXIT_UNREACHABLE = 4, /* Redis could not be reached (or the connection broke) */
    DM_CTL_EXIT_TIMEOUT = 5,     /* --timeout passed before the job ended or parked */
};

#endif
