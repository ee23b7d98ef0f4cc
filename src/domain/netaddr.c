/*
 * netaddr: parsing and classification of the hosts an outbound request may reach (see
 * include/dream/domain/netaddr.h). Pure (libc); no state; any thread.
 */
#include "dream/domain/netaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define HOST_MAX 255

const char *dm_netaddr_class_name(enum dm_netaddr_class c)
{
    switch (c) {
    case DM_NETADDR_PUBLIC:
        return "public";
    case DM_NETADDR_NAME:
        return "name";
    case DM_NETADDR_LOOPBACK:
        return "loopback";
    case DM_NETADDR_PRIVATE:
        return "private";
    case DM_NETADDR_CGNAT:
        return "CGNAT";
    case DM_NETADDR_LINK_LOCAL:
        return "link-local";
    case DM_NETADDR_MULTICAST:
        return "multicast";
    case DM_NETADDR_UNSPECIFIED:
        return "unspecified";
    case DM_NETADDR_BROADCAST:
        return "broadcast";
    case DM_NETADDR_DOCUMENTATION:
        return "documentation";
    case DM_NETADDR_RESERVED:
        return "reserved";
    case DM_NETADDR_METADATA:
        return "cloud metadata";
    case DM_NETADDR_INVALID:
        break;
    }
    return "invalid";
}

int dm_netaddr_refused(enum dm_netaddr_class c)
{
    /* Documentation ranges are not routed on the internet; they are classified but left to
     * fail on their own (a public test of jobreq uses one). */
    return c != DM_NETADDR_PUBLIC && c != DM_NETADDR_NAME && c != DM_NETADDR_DOCUMENTATION;
}

/* One part of a numeric IPv4 host as inet_aton and curl read it: "0x…" hex, "0…" octal, else
 * decimal. Returns 0 and *v, or -1 when it is not a number (or is larger than max). */
static int v4_part(const char *s, size_t n, unsigned long long max, unsigned long long *v)
{
    unsigned base = 10;
    unsigned long long x = 0;
    size_t i = 0;

    if (n == 0) {
        return -1;
    }
    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2;
    } else if (n >= 2 && s[0] == '0') {
        base = 8;
        i = 1;
    }
    for (; i < n; i++) {
        unsigned d;
        char c = s[i];
        if (c >= '0' && c <= '9') {
            d = (unsigned)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            d = (unsigned)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            d = (unsigned)(c - 'A' + 10);
        } else {
            return -1;
        }
        if (d >= base) {
            return -1;
        }
        x = x * base + d;
        if (x > max) {
            return -1;
        }
    }
    *v = x;
    return 0;
}

/* "a", "a.b", "a.b.c", "a.b.c.d": the last part fills the bytes the others leave. */
static int parse_v4(const char *s, size_t n, unsigned char out[4])
{
    unsigned long long parts[4];
    size_t np = 0;
    size_t start = 0;
    uint32_t v = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (np == 4) {
                return -1;
            }
            if (v4_part(s + start, i - start, 0xffffffffULL, &parts[np])) {
                return -1;
            }
            np++;
            start = i + 1;
        }
    }
    for (size_t i = 0; i + 1 < np; i++) {
        if (parts[i] > 255) {
            return -1;
        }
        v |= (uint32_t)parts[i] << (24 - 8 * i);
    }
    if (parts[np - 1] > (0xffffffffULL >> (8 * (np - 1)))) {
        return -1;
    }
    v |= (uint32_t)parts[np - 1];
    out[0] = (unsigned char)(v >> 24);
    out[1] = (unsigned char)(v >> 16);
    out[2] = (unsigned char)(v >> 8);
    out[3] = (unsigned char)v;
    return 0;
}

/* Copies host without brackets and one trailing dot into buf; returns its length or -1. */
static int strip_host(const char *host, size_t n, char *buf, size_t buflen, int *bracketed)
{
    *bracketed = 0;
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
        *bracketed = 1;
    } else if (n > 1 && host[n - 1] == '.') {
        n--;
    }
    if (n == 0 || n >= buflen || memchr(host, '\0', n)) {
        return -1;
    }
    memcpy(buf, host, n);
    buf[n] = '\0';
    return (int)n;
}

int dm_netaddr_parse(const char *host, size_t n, struct dm_netaddr *out)
{
    char buf[HOST_MAX + 1];
    int bracketed;
    int len = strip_host(host, n, buf, sizeof(buf), &bracketed);

    if (len < 0) {
        return 0;
    }
    memset(out, 0, sizeof(*out));
    if (strchr(buf, ':')) {
        if (inet_pton(AF_INET6, buf, out->bytes) == 1) {
            out->family = 6;
            return 1;
        }
        return 0;
    }
    if (!bracketed && parse_v4(buf, (size_t)len, out->bytes) == 0) {
        out->family = 4;
        return 1;
    }
    return 0;
}

static int in4(uint32_t a, uint32_t net, int bits)
{
    uint32_t mask = bits ? 0xffffffffu << (32 - bits) : 0;
    return (a & mask) == (net & mask);
}

#define V4(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

static enum dm_netaddr_class classify_v4(uint32_t a)
{
    if (a == 0xffffffffu) {
        return DM_NETADDR_BROADCAST;
    }
    if (in4(a, V4(0, 0, 0, 0), 8)) {
        return DM_NETADDR_UNSPECIFIED;
    }
    if (in4(a, V4(127, 0, 0, 0), 8)) {
        return DM_NETADDR_LOOPBACK;
    }
    if (in4(a, V4(10, 0, 0, 0), 8) || in4(a, V4(172, 16, 0, 0), 12) ||
        in4(a, V4(192, 168, 0, 0), 16)) {
        return DM_NETADDR_PRIVATE;
    }
    if (in4(a, V4(100, 64, 0, 0), 10)) {
        return DM_NETADDR_CGNAT;
    }
    if (in4(a, V4(169, 254, 0, 0), 16)) {
        return DM_NETADDR_LINK_LOCAL;
    }
    if (in4(a, V4(224, 0, 0, 0), 4)) {
        return DM_NETADDR_MULTICAST;
    }
    if (in4(a, V4(192, 0, 2, 0), 24) || in4(a, V4(198, 51, 100, 0), 24) ||
        in4(a, V4(203, 0, 113, 0), 24)) {
        return DM_NETADDR_DOCUMENTATION;
    }
    if (in4(a, V4(192, 0, 0, 0), 24) || in4(a, V4(192, 88, 99, 0), 24) ||
        in4(a, V4(198, 18, 0, 0), 15) || in4(a, V4(240, 0, 0, 0), 4)) {
        return DM_NETADDR_RESERVED;
    }
    return DM_NETADDR_PUBLIC;
}

static uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int zeros(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i]) {
            return 0;
        }
    }
    return 1;
}

static enum dm_netaddr_class classify_v6(const unsigned char *b)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};

    if (zeros(b, 16)) {
        return DM_NETADDR_UNSPECIFIED;
    }
    if (zeros(b, 15) && b[15] == 1) {
        return DM_NETADDR_LOOPBACK;
    }
    if (!memcmp(b, mapped, 12) || !memcmp(b, nat64, 12)) {
        return classify_v4(be32(b + 12));
    }
    if (zeros(b, 12)) {
        return classify_v4(be32(b + 12)); /* IPv4-compatible ::a.b.c.d (deprecated) */
    }
    if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0 && b[5] == 1) {
        return DM_NETADDR_PRIVATE; /* 64:ff9b:1::/48, local-use NAT64 */
    }
    if (b[0] == 0x20 && b[1] == 0x02) {
        return classify_v4(be32(b + 2)); /* 6to4 */
    }
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0) {
        return classify_v4(~be32(b + 12)); /* Teredo: the client's address, inverted */
    }
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) {
        return DM_NETADDR_DOCUMENTATION;
    }
    if ((b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)) {
        return DM_NETADDR_PRIVATE; /* unique local, deprecated site-local */
    }
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) {
        return DM_NETADDR_LINK_LOCAL;
    }
    if (b[0] == 0xff) {
        return DM_NETADDR_MULTICAST;
    }
    if (b[0] == 0x00 || (b[0] == 0x01 && b[1] == 0 && zeros(b + 2, 6))) {
        return DM_NETADDR_RESERVED; /* ::/8 (beyond the forms above), 100::/64 discard */
    }
    return DM_NETADDR_PUBLIC;
}

enum dm_netaddr_class dm_netaddr_classify(const struct dm_netaddr *a)
{
    if (a->family == 4) {
        return classify_v4(be32(a->bytes));
    }
    if (a->family == 6) {
        return classify_v6(a->bytes);
    }
    return DM_NETADDR_INVALID;
}

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && strncasecmp(s + n - k, suffix, k) == 0;
}

enum dm_netaddr_class dm_netaddr_classify_host(const char *host, size_t n)
{
    static const char *const metadata[] = {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
        "metadata.packet.net",
    };
    struct dm_netaddr a;
    char buf[HOST_MAX + 1];
    int bracketed;
    int len;

    if (dm_netaddr_parse(host, n, &a)) {
        return dm_netaddr_classify(&a);
    }
    len = strip_host(host, n, buf, sizeof(buf), &bracketed);
    if (len <= 0 || bracketed) {
        return DM_NETADDR_INVALID;
    }
    if (!strcasecmp(buf, "localhost") || ends_with(buf, (size_t)len, ".localhost")) {
        return DM_NETADDR_LOOPBACK;
    }
    for (size_t i = 0; i < sizeof(metadata) / sizeof(metadata[0]); i++) {
        if (!strcasecmp(buf, metadata[i])) {
            return DM_NETADDR_METADATA;
        }
    }
    /* .internal is reserved for private use (ICANN, 2024): never a public receiver. */
    if (ends_with(buf, (size_t)len, ".internal")) {
        return DM_NETADDR_METADATA;
    }
    return DM_NETADDR_NAME;
}

char *dm_netaddr_format(const struct dm_netaddr *a, char *out, size_t outlen)
{
    if (!inet_ntop(a->family == 6 ? AF_INET6 : AF_INET, a->bytes, out, (socklen_t)outlen)) {
        snprintf(out, outlen, "?");
    }
    return out;
}

int dm_netaddr_host_listed(const char *list, const char *host, size_t n)
{
    const char *p = list;

    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    } else if (n > 1 && host[n - 1] == '.') {
        n--;
    }
    while (p && *p) {
        const char *end = strchr(p, ',');
        const char *e = end ? end : p + strlen(p);
        const char *s = p;
        while (s < e && (*s == ' ' || *s == '\t')) {
            s++;
        }
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }
        if (e > s && e[-1] == '.' && e - s > 1) {
            e--;
        }
        if ((size_t)(e - s) == n && n > 0 && strncasecmp(s, host, n) == 0) {
            return 1;
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
}
