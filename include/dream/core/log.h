/*
 * log: one JSON object per line on stderr:
 *   {"ts":"2026-11-24T02:04:58.123Z","level":"info","module":"queue","msg":"...","job":"..."}
 * `job` is present only when given. Each record is formatted into a local buffer and written
 * with a single write(2), so records from threadpool threads never interleave. Safe on any
 * thread. Never log secrets: callers pass redacted text.
 */
#ifndef DREAM_LOG_H
#define DREAM_LOG_H

enum dm_log_level {
    DM_LOG_DEBUG = 0,
    DM_LOG_INFO = 1,
    DM_LOG_WARN = 2,
    DM_LOG_ERROR = 3,
    DM_LOG_OFF = 4,
};

/* Sets the least level written (atomic; any thread). */
void dm_log_set_level(enum dm_log_level level);
enum dm_log_level dm_log_get_level(void);

/* Parses "debug", "info", "warn", "error", "off". Returns 0 or DM_ERR_INVALID. */
int dm_log_parse_level(const char *s, enum dm_log_level *out);
const char *dm_log_level_name(enum dm_log_level level);

/* Redirects records to fd (default 2). For tests. */
void dm_log_set_fd(int fd);

/* Writes one record. job may be NULL. Records longer than 8 KiB are truncated (still valid JSON).
 */
void dm_log(enum dm_log_level level, const char *module, const char *job, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define dm_debug(mod, job, ...) dm_log(DM_LOG_DEBUG, mod, job, __VA_ARGS__)
#define dm_info(mod, job, ...) dm_log(DM_LOG_INFO, mod, job, __VA_ARGS__)
#define dm_warn(mod, job, ...) dm_log(DM_LOG_WARN, mod, job, __VA_ARGS__)
#define dm_errorf(mod, job, ...) dm_log(DM_LOG_ERROR, mod, job, __VA_ARGS__)

/* Formats now (or ms since the epoch when ms >= 0) as RFC 3339 UTC with milliseconds into out
 * (at least 25 bytes). Returns out. Thread-safe. */
char *dm_time_rfc3339(long long ms, char *out, unsigned long outlen);

/* Milliseconds since the epoch (wall clock). */
long long dm_time_now_ms(void);

/* Milliseconds since the epoch of an RFC 3339 UTC time as dm_time_rfc3339() writes it
 * ("2026-12-06T04:00:00.123Z"; the fraction may be left out). -1 when ts is NULL or not one. */
long long dm_time_parse_rfc3339(const char *ts);

/* A point in time as operators write it (dreamctl --since/--until, the dashboard's since=): a
 * duration back from now_ms ("90s", "15m", "1h", "7d"; at most 10^8 units), milliseconds since
 * the epoch, or an RFC 3339 time. Writes *out and returns 0, or returns -1 (out untouched). */
int dm_time_parse_when(const char *s, long long now_ms, long long *out);

/* Appends s as JSON string content (no quotes) to out[*pos..cap), escaping as needed; stops
 * before overflowing, never splitting an escape. Used by log and events. */
void dm_json_escape_into(char *out, unsigned long cap, unsigned long *pos, const char *s);

#endif
