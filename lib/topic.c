/* topic.c - configurable MQTT topic patterns ("cw/{station}/{socket}/telemetry"):
 * compile a pattern once, derive the subscription filter from it, and match
 * received topics, extracting and validating station and socket. Matching runs
 * once per message on the ingest hot path, so it walks the topic bytes once
 * and allocates nothing. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "decode.h"

#define PH_STATION "{station}"
#define PH_SOCKET "{socket}"
#define PH_PARTITION "{partition}"
#define SEG_MAX ((int)sizeof(((cw_topic_t *)0)->seg[0]) - 1) /* 63 bytes + NUL */

int cw_topic_compile(cw_topic_t *t, const char *pattern) {
  cw_topic_t c;
  memset(&c, 0, sizeof c);
  c.station_seg = -1;
  c.socket_seg = -1;
  c.partition_seg = -1;
  if (!t || !pattern) return -EINVAL;
  size_t plen = strlen(pattern);
  if (plen == 0 || plen >= sizeof c.pattern) return -EINVAL;
  memcpy(c.pattern, pattern, plen + 1);

  const char *p = pattern;
  for (;;) {
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    /* Empty segments ("a//b", leading or trailing '/') are legal MQTT but
     * almost always a typo in a config file; refuse them. */
    if (n == 0 || c.nseg >= CW_TOPIC_MAX_SEGMENTS) return -EINVAL;
    if (n == sizeof PH_STATION - 1 && memcmp(p, PH_STATION, n) == 0) {
      if (c.station_seg >= 0) return -EINVAL;
      c.station_seg = c.nseg;
    } else if (n == sizeof PH_SOCKET - 1 && memcmp(p, PH_SOCKET, n) == 0) {
      if (c.socket_seg >= 0) return -EINVAL;
      c.socket_seg = c.nseg;
    } else if (n == sizeof PH_PARTITION - 1 && memcmp(p, PH_PARTITION, n) == 0) {
      if (c.partition_seg >= 0) return -EINVAL;
      c.partition_seg = c.nseg;
    } else {
      if (n > (size_t)SEG_MAX) return -EINVAL;
      /* '+' and '#' are MQTT wildcards: a pattern names topics, not filters.
       * A brace outside an exact placeholder is a misspelt placeholder. */
      for (size_t i = 0; i < n; i++)
        if (p[i] == '+' || p[i] == '#' || p[i] == '{' || p[i] == '}') return -EINVAL;
      memcpy(c.seg[c.nseg], p, n);
      c.seg[c.nseg][n] = '\0';
    }
    c.nseg++;
    if (!slash) break;
    p = slash + 1;
  }
  if (c.station_seg < 0) return -EINVAL;
  *t = c;
  return 0;
}

int cw_topic_filter(const cw_topic_t *t, char *out, size_t cap) {
  return cw_topic_filter_partition(t, -1, out, cap);
}

int cw_topic_filter_partition(const cw_topic_t *t, int partition, char *out, size_t cap) {
  size_t o = 0;
  char num[16];
  if (!t || !out || t->nseg <= 0) return -EINVAL;
  snprintf(num, sizeof num, "%d", partition);
  for (int i = 0; i < t->nseg; i++) {
    const char *s = (i == t->station_seg || i == t->socket_seg) ? "+" : t->seg[i];
    if (i == t->partition_seg) s = partition < 0 ? "+" : num;
    size_t n = strlen(s);
    if (o + (i > 0) + n + 1 > cap) return -ENOSPC;
    if (i > 0) out[o++] = '/';
    memcpy(out + o, s, n);
    o += n;
  }
  out[o] = '\0';
  return 0;
}

/* Socket segment: plain decimal 1..255. No sign, no spaces and no leading
 * zeros: "07" and "7" are different MQTT topics, and accepting both would
 * let two topics alias one socket (and its per-socket ordering). */
static int parse_socket(const char *s, size_t n) {
  if (n == 0 || n > 3 || s[0] == '0') return -1;
  int v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v <= 255 ? v : -1;
}

/* Partition segment: plain decimal 0..99999 without leading zeros (the
 * broker writes the number as it computed it; the value is not checked
 * against the station here: the broker is trusted to partition). */
static bool partition_valid(const char *s, size_t n) {
  if (n == 0 || n > 5 || (n > 1 && s[0] == '0')) return false;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

cw_reject_t cw_topic_match(const cw_topic_t *t, const char *topic, size_t len,
                           char station[CW_STATION_MAX + 1], int *socket) {
  const char *st = NULL;
  size_t st_len = 0;
  int sock = 0;
  size_t pos = 0;
  if (!t || !topic || t->nseg <= 0 || len == 0) return CW_REJ_BAD_TOPIC;
  for (int i = 0; i < t->nseg; i++) {
    /* Each pattern segment consumes exactly one topic segment; the topic
     * must have ended exactly when the pattern does. */
    if (pos > len || (i > 0 && pos == len)) return CW_REJ_BAD_TOPIC;
    const char *seg = topic + pos;
    const char *slash = memchr(seg, '/', len - pos);
    size_t n = slash ? (size_t)(slash - seg) : len - pos;
    bool last = i == t->nseg - 1;
    if (last ? slash != NULL : slash == NULL) return CW_REJ_BAD_TOPIC;
    if (i == t->station_seg) {
      if (!cw_station_valid(seg, n)) return CW_REJ_BAD_TOPIC;
      st = seg;
      st_len = n;
    } else if (i == t->socket_seg) {
      sock = parse_socket(seg, n);
      if (sock < 0) return CW_REJ_BAD_TOPIC;
    } else if (i == t->partition_seg) {
      if (!partition_valid(seg, n)) return CW_REJ_BAD_TOPIC;
    } else {
      /* Exact length first: a topic may carry NUL bytes, strncmp would stop there. */
      if (strnlen(t->seg[i], sizeof t->seg[i]) != n || memcmp(t->seg[i], seg, n) != 0)
        return CW_REJ_BAD_TOPIC;
    }
    pos += n + 1;
  }
  if (station) {
    memcpy(station, st, st_len);
    station[st_len] = '\0';
  }
  if (socket) *socket = sock;
  return CW_REJ_OK;
}
