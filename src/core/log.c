/*
 * log: JSON-lines records on stderr (see include/dream/core/log.h). Any thread: the level is an
 * atomic, each record is one write(2).
 */
#include "dream/core/log.h"
#include "dream/core/error.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = DM_LOG_INFO;
static atomic_int log_fd = 2;

void dm_log_set_level(enum dm_log_level level)
{
    atomic_store(&log_level, (int)level);
}

enum dm_log_level dm_log_get_level(void)
{
    return (enum dm_log_level)atomic_load(&log_level);
}

void dm_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

const char *dm_log_level_name(enum dm_log_level level)
{
    if ((int)level < 0 || level > DM_LOG_OFF) {
        return "unknown";
    }
    return level_names[level];
}

int dm_log_parse_level(const char *s, enum dm_log_level *out)
{
    for (int i = 0; i <= DM_LOG_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum dm_log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = DM_LOG_WARN;
        return 0;
    }
    return DM_ERR_INVALID;
}

long long dm_time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long dm_time_parse_rfc3339(const char *ts)
{
    struct tm tm;
    int ms = 0;

    if (!ts) {
        return -1;
    }
    memset(&tm, 0, sizeof(tm));
    if (sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6) {
        return -1;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm) * 1000 + ms;
}

int dm_time_parse_when(const char *s, long long now_ms, long long *out)
{
    char *end;
    long long v, unit;

    if (!s || !*s) {
        return -1;
    }
    if (strchr(s, 'T')) {
        v = dm_time_parse_rfc3339(s);
        if (v < 0) {
            return -1;
        }
        *out = v;
        return 0;
    }
    if (!isdigit((unsigned char)s[0])) {
        return -1;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || v < 0 || v > 100000000000000LL) {
        return -1;
    }
    switch (*end) {
    case '\0':
        *out = v; /* epoch ms */
        return 0;
    case 's':
        unit = 1000;
        break;
    case 'm':
        unit = 60 * 1000;
        break;
    case 'h':
        unit = 3600 * 1000;
        break;
    case 'd':
        unit = 24 * 3600 * 1000LL;
        break;
    default:
        return -1;
    }
    if (end[1] != '\0' || v > 100000000LL) { /* so v * unit cannot overflow */
        return -1;
    }
    *out = now_ms - v * unit;
    return 0;
}

char *dm_time_rfc3339(long long ms, char *out, unsigned long outlen)
{
    struct tm tm;
    time_t secs;
    size_t n;

    if (ms < 0) {
        ms = dm_time_now_ms();
    }
    secs = (time_t)(ms / 1000);
    /* strftime bounds the date; the milliseconds are 0..999 (no truncation warning to silence) */
    if (outlen == 0) {
        return out;
    }
    if (!gmtime_r(&secs, &tm) || (n = strftime(out, outlen, "%Y-%m-%dT%H:%M:%S", &tm)) == 0) {
        out[0] = '\0';
        return out;
    }
    snprintf(out + n, outlen - n, ".%03uZ", (unsigned)(ms % 1000));
    return out;
}

void dm_json_escape_into(char *out, unsigned long cap, unsigned long *pos, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    unsigned long p = *pos;

    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[7];
        size_t n;

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            n = 2;
        } else if (c == '\n') {
            memcpy(esc, "\\n", 2);
            n = 2;
        } else if (c == '\r') {
            memcpy(esc, "\\r", 2);
            n = 2;
        } else if (c == '\t') {
            memcpy(esc, "\\t", 2);
            n = 2;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        } else {
            esc[0] = (char)c;
            n = 1;
        }
        if (p + n >= cap) {
            break;
        }
        memcpy(out + p, esc, n);
        p += n;
    }
    /* Never end on a partial UTF-8 sequence: back up to a lead byte boundary. */
    if (s && *s) {
        while (p > *pos && ((unsigned char)out[p - 1] & 0xC0) == 0x80) {
            p--;
        }
        if (p > *pos && ((unsigned char)out[p - 1] & 0xC0) == 0xC0) {
            p--;
        }
    }
    out[p] = '\0';
    *pos = p;
}

static void put(char *out, unsigned long cap, unsigned long *pos, const char *s)
{
    size_t n = strlen(s);
    if (*pos + n >= cap) {
        n = cap - *pos - 1;
    }
    memcpy(out + *pos, s, n);
    *pos += n;
    out[*pos] = '\0';
}

void dm_log(enum dm_log_level level, const char *module, const char *job, const char *fmt, ...)
{
    enum { CAP = 8192, TAIL = 4 };
    char line[CAP];
    char msg[CAP];
    char ts[32];
    unsigned long pos = 0;
    va_list ap;
    int saved = errno;

    if ((int)level < atomic_load(&log_level) || level >= DM_LOG_OFF) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    put(line, CAP - TAIL, &pos, "{\"ts\":\"");
    put(line, CAP - TAIL, &pos, dm_time_rfc3339(-1, ts, sizeof(ts)));
    put(line, CAP - TAIL, &pos, "\",\"level\":\"");
    put(line, CAP - TAIL, &pos, dm_log_level_name(level));
    put(line, CAP - TAIL, &pos, "\",\"module\":\"");
    dm_json_escape_into(line, CAP - TAIL, &pos, module ? module : "-");
    if (job) {
        put(line, CAP - TAIL, &pos, "\",\"job\":\"");
        dm_json_escape_into(line, CAP - TAIL, &pos, job);
    }
    put(line, CAP - TAIL, &pos, "\",\"msg\":\"");
    dm_json_escape_into(line, CAP - TAIL, &pos, msg);
    /* TAIL bytes are always left for the closing quote, brace and newline. */
    memcpy(line + pos, "\"}\n", 3);
    pos += 3;
    {
        ssize_t w = write(atomic_load(&log_fd), line, pos);
        (void)w;
    }
    errno = saved;
}
