/*
 * netaddr: which network addresses and host names an outbound request (a job's callbackUrl) may
 * reach. Callback URLs come from job bodies, so they are hostile: a producer must not make a
 * replica talk to itself, its pod network, the cloud metadata service or anything else inside
 * the operator's network (SSRF).
 *
 * This module parses the host of a URL in every form that libcurl or getaddrinfo would turn into
 * an address (dotted IPv4 with 1 to 4 parts, each decimal, octal "0…" or hex "0x…", so
 * "2130706433", "0x7f.1", "127.1" and "0177.0.0.1" are all 127.0.0.1; IPv6 with or without
 * brackets, including IPv4-mapped "::ffff:127.0.0.1" and IPv4-compatible "::127.0.0.1"), and
 * classifies addresses:
 *   IPv4: 0/8 unspecified, 10/8 172.16/12 192.168/16 private, 100.64/10 CGNAT, 127/8 loopback,
 *         169.254/16 link-local (cloud metadata), 192.0.0/24 192.88.99/24 198.18/15 240/4
 *         reserved, 192.0.2/24 198.51.100/24 203.0.113/24 documentation, 224/4 multicast,
 *         255.255.255.255 broadcast;
 *   IPv6: :: unspecified, ::1 loopback, fc00::/7 fec0::/10 private, fe80::/10 link-local, ff00::/8
 *         multicast, 2001:db8::/32 documentation, 100::/64 and the rest of ::/8 reserved,
 *         64:ff9b:1::/48 private; the IPv4 inside ::ffff:0:0/96, ::/96, 64:ff9b::/96 (NAT64),
 *         2002::/16 (6to4) and 2001::/32 (Teredo) is classified as IPv4.
 * Names: "localhost" and "*.localhost" are loopback; cloud metadata names
 * (metadata.google.internal, metadata.goog, metadata, instance-data, instance-data.ec2.internal,
 * metadata.azure.internal, metadata.tencentyun.com, *.internal ...) are "metadata". Any other
 * name is only judged after resolution (dm_netaddr_classify on each address).
 *
 * Pure (libc only); no state; any thread.
 */
#ifndef DREAM_NETADDR_H
#define DREAM_NETADDR_H

#include <stddef.h>
#include <stdint.h>

enum dm_netaddr_class {
    DM_NETADDR_PUBLIC = 0, /* reachable on the internet: allowed */
    DM_NETADDR_NAME,       /* a host name: decide after resolution */
    DM_NETADDR_LOOPBACK,
    DM_NETADDR_PRIVATE,    /* RFC 1918, fc00::/7, site-local */
    DM_NETADDR_CGNAT,      /* 100.64.0.0/10 */
    DM_NETADDR_LINK_LOCAL, /* 169.254/16 (metadata services), fe80::/10 */
    DM_NETADDR_MULTICAST,
    DM_NETADDR_UNSPECIFIED, /* 0.0.0.0/8, :: */
    DM_NETADDR_BROADCAST,
    DM_NETADDR_DOCUMENTATION,
    DM_NETADDR_RESERVED,
    DM_NETADDR_METADATA, /* a cloud metadata host name */
    DM_NETADDR_INVALID,  /* not a usable host */
};

/* One IP address: family 4 (bytes[0..3]) or 6 (bytes[0..15]), network byte order. */
struct dm_netaddr {
    int family;
    unsigned char bytes[16];
};

/* Lower-case name of a class ("loopback", "private", "CGNAT", "link-local", "multicast",
 * "unspecified", "broadcast", "documentation", "reserved", "cloud metadata", "public", "name",
 * "invalid"), for refusals: "callbackUrl: must not point to a loopback address". */
const char *dm_netaddr_class_name(enum dm_netaddr_class c);

/* 1 when a destination of class c is refused: everything except PUBLIC, NAME and DOCUMENTATION
 * (not routed on the internet, so harmless, and used as examples). */
int dm_netaddr_refused(enum dm_netaddr_class c);

/* Parses host (n bytes, not NUL-terminated; "[v6]" brackets allowed, a trailing dot allowed) as
 * an IP address literal in any of the forms above. Returns 1 and fills *out when it is one,
 * 0 when it is not a literal (a name, or digits that no resolver reads as an address). */
int dm_netaddr_parse(const char *host, size_t n, struct dm_netaddr *out);

/* Class of one address. */
enum dm_netaddr_class dm_netaddr_classify(const struct dm_netaddr *a);

/* Class of a URL's host (n bytes): a literal's class, LOOPBACK or METADATA for the names above,
 * NAME for any other name, INVALID for an empty host. Case-insensitive; one trailing dot is
 * ignored. */
enum dm_netaddr_class dm_netaddr_classify_host(const char *host, size_t n);

/* Formats a into out ("127.0.0.1", "::1"); returns out ("?" when outlen is too small). */
char *dm_netaddr_format(const struct dm_netaddr *a, char *out, size_t outlen);

/* Host list matching for allow-lists: 1 when host (n bytes, brackets of an IPv6 literal and one
 * trailing dot ignored) equals, case-insensitively, one of the comma-separated names in list
 * (spaces around names ignored; NULL or "" matches nothing). */
int dm_netaddr_host_listed(const char *list, const char *host, size_t n);

#endif
