/*
 * callback_dest: where a callback event may go (see callback_private.h): the host and port of
 * its URL, the allow-list (DREAM_CALLBACK_HOSTS), the refusal of internal literal addresses and
 * names, the asynchronous resolution (uv_getaddrinfo) whose every address must be public, and
 * the checked address the delivery is pinned to. Loop thread only.
 */
#include "dream/core/log.h"
#include "dream/domain/netaddr.h"
#include "callback_private.h"

#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "scheme://host[:port]/path" of url, for logs (no user info, no query). */
void callback_url_for_log(const char *url, char *out, size_t outlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL;
    char *host = NULL;
    char *port = NULL;
    char *path = NULL;

    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
        curl_url_get(u, CURLUPART_HOST, &host, 0);
        curl_url_get(u, CURLUPART_PORT, &port, 0);
        curl_url_get(u, CURLUPART_PATH, &path, 0);
        snprintf(out, outlen, "%s://%s%s%s%s", scheme ? scheme : "?", host ? host : "?",
                 port ? ":" : "", port ? port : "", path ? path : "/");
    } else {
        snprintf(out, outlen, "<invalid url>");
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(u);
}

/* The host and port of a callback URL. Returns 0 or -1 (unusable URL). */
int callback_url_parts(const char *url, char *host, size_t hostlen, long *port)
{
    CURLU *u = curl_url();
    char *h = NULL;
    char *p = NULL;
    int rc = -1;

    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) == CURLUE_OK &&
        strlen(h) < hostlen) {
        snprintf(host, hostlen, "%s", h);
        *port = strtol(p, NULL, 10);
        rc = 0;
    }
    curl_free(h);
    curl_free(p);
    curl_url_cleanup(u);
    return rc;
}

/* Refuses cur for good: its destination is internal. */
static void refuse(struct job *j, const char *host, const char *what)
{
    char where[512];

    callback_url_for_log(j->cur->url, where, sizeof(where));
    dm_warn("callback", j->id,
            "callback seq %lld to %s refused: %s %s (add the host to DREAM_CALLBACK_HOSTS to "
            "allow it)",
            j->cur->seq, where, host, what);
    callback_drop_current(j);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res);

/* Starts (or restarts after a backoff) the delivery of cur: takes a slot or queues for one,
 * then checks the destination. Returns 1 when cur was finished synchronously (refused or
 * unusable: the caller goes on with the next event), 0 when delivery goes on asynchronously. */
int callback_begin(struct job *j)
{
    struct dm_callbacks *cb = j->cb;
    struct addrinfo hints;
    struct dm_netaddr lit;
    enum dm_netaddr_class c;
    long port = 0;
    int rc;

    if (!j->has_slot) {
        if (cb->active >= cb->max_conns || (cb->wait_head && cb->wait_head != j)) {
            if (!j->waiting_slot) {
                j->waiting_slot = 1;
                j->wait_next = NULL;
                if (cb->wait_tail) {
                    cb->wait_tail->wait_next = j;
                } else {
                    cb->wait_head = j;
                }
                cb->wait_tail = j;
            }
            return 0;
        }
        callback_unwait(j);
        j->has_slot = 1;
        cb->active++;
    }
    if (callback_url_parts(j->cur->url, j->host, sizeof(j->host), &port)) {
        j->attempt++;
        callback_give_up(j, "unusable URL");
        return 1;
    }
    if (cb->allow && dm_netaddr_host_listed(cb->allow, j->host, strlen(j->host))) {
        return callback_send_or_fail(j, NULL);
    }
    c = dm_netaddr_classify_host(j->host, strlen(j->host));
    if (dm_netaddr_refused(c)) {
        char what[96];
        snprintf(what, sizeof(what), "is a %s %s", dm_netaddr_class_name(c),
                 c == DM_NETADDR_METADATA ? "name" : "address");
        refuse(j, j->host, what);
        return 1;
    }
    if (dm_netaddr_parse(j->host, strlen(j->host), &lit)) {
        return callback_send_or_fail(j, NULL); /* a public literal: nothing to resolve */
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = uv_getaddrinfo(cb->loop, &j->gai, on_resolved, j->host, NULL, &hints);
    if (rc) {
        char why[128];
        snprintf(why, sizeof(why), "cannot resolve: %s", uv_strerror(rc));
        j->attempt++;
        return callback_attempt_failed(j, 1, 0, why);
    }
    j->gai.data = j;
    j->resolving = 1;
    return 0;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct job *j = req->data;
    struct dm_callbacks *cb = j->cb;
    struct dm_netaddr pin;
    int have = 0;
    int done = 0;

    j->resolving = 0;
    if (cb->closing || status == UV_ECANCELED || !j->cur) {
        if (j->cur) {
            callback_drop_current(j);
        }
        callback_release_slot(j);
        uv_freeaddrinfo(res);
        callback_pump(j);
        callback_kick_waiting(cb);
        return;
    }
    if (status) {
        char why[HOST_MAX + 128];
        snprintf(why, sizeof(why), "cannot resolve %s: %s", j->host, uv_strerror(status));
        j->attempt++;
        done = callback_attempt_failed(j, 1, 0, why);
        goto out;
    }
    /* Every address must be public: curl may try any of them, and a name that mixes public and
     * internal addresses is an attack or a mistake either way. */
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        struct dm_netaddr a;
        enum dm_netaddr_class c;
        memset(&a, 0, sizeof(a));
        if (ai->ai_family == AF_INET) {
            a.family = 4;
            memcpy(a.bytes, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
        } else if (ai->ai_family == AF_INET6) {
            a.family = 6;
            memcpy(a.bytes, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
        } else {
            continue;
        }
        c = dm_netaddr_classify(&a);
        if (dm_netaddr_refused(c)) {
            char what[128];
            char lit[INET6_ADDRSTRLEN];
            snprintf(what, sizeof(what), "resolves to %s, a %s address",
                     dm_netaddr_format(&a, lit, sizeof(lit)), dm_netaddr_class_name(c));
            refuse(j, j->host, what);
            done = 1;
            goto out;
        }
        if (!have) {
            pin = a;
            have = 1;
        }
    }
    if (!have) {
        j->attempt++;
        done = callback_attempt_failed(j, 1, 0, "the name has no IPv4 or IPv6 address");
        goto out;
    }
    done = callback_send_or_fail(j, &pin);
out:
    uv_freeaddrinfo(res);
    if (done) {
        callback_pump(j);
    }
    callback_kick_waiting(cb);
}
