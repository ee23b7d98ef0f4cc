/*
 * esbuild_report: what esbuild's output says when a check fails (see
 * include/dream/domain/esbuild_report.h). Pure; any thread.
 */
#include "dream/domain/esbuild_report.h"

#include <stdio.h>
#include <string.h>

/* The first line of s[0..n) starting at or after p, trimmed, into out. */
static void take_line(const char *p, const char *end, char *out, size_t outlen)
{
    const char *e;
    size_t n;

    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }
    e = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
    if (!e) {
        e = end;
    }
    while (e > p && (e[-1] == ' ' || e[-1] == '\r' || e[-1] == '\t')) {
        e--;
    }
    n = (size_t)(e - p);
    if (n >= outlen) {
        n = outlen - 1;
    }
    memcpy(out, p, n);
    out[n] = '\0';
}

/* A location line as esbuild prints it under an error: "<file>:<line>:<column>:". */
static int is_location(const char *s)
{
    size_t n = strlen(s);
    const char *p;
    int colons = 0;

    if (n < 5 || s[n - 1] != ':') {
        return 0;
    }
    p = s + n - 2;
    for (int part = 0; part < 2; part++) {
        const char *digits_end = p;
        while (p > s && *p >= '0' && *p <= '9') {
            p--;
        }
        if (p == digits_end || *p != ':') {
            return 0;
        }
        colons++;
        p--;
    }
    return colons == 2 && p >= s;
}

int dm_esbuild_first_error(const struct dm_buf *b, char *out, size_t outlen)
{
    static const char tag[] = "[ERROR] ";
    const char *text = b->data;
    const char *end;
    const char *at;
    const char *p;
    char msg[1024];
    char line[1024];

    if (!text) {
        return 0;
    }
    end = text + b->len;
    at = strstr(text, tag);
    if (!at) {
        return 0;
    }
    take_line(at + sizeof(tag) - 1, end, msg, sizeof(msg));
    p = memchr(at, '\n', (size_t)(end - at));
    /* The location is the first non-empty line after the message, if it looks like one. */
    while (p && p < end) {
        p++;
        take_line(p, end, line, sizeof(line));
        if (line[0]) {
            if (is_location(line)) {
                line[strlen(line) - 1] = '\0';
                snprintf(out, outlen, "%s: %s", line, msg);
                return 1;
            }
            break;
        }
        p = memchr(p, '\n', (size_t)(end - p));
    }
    snprintf(out, outlen, "%s", msg);
    return 1;
}

void dm_esbuild_last_line(const struct dm_buf *b, char *out, size_t outlen)
{
    const char *end;
    const char *p;

    out[0] = '\0';
    if (!b->data || !b->len) {
        return;
    }
    end = b->data + b->len;
    while (end > b->data && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ')) {
        end--;
    }
    p = end;
    while (p > b->data && p[-1] != '\n') {
        p--;
    }
    take_line(p, end, out, outlen);
}
