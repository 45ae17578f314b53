/* config.c - the INI configuration file (libinih): defaults that work against
 * a local broker and database, strict parsing of every key, and errors that
 * name FILE:LINE, the section and the key. Key names are a contract with
 * outside tools (deployment scripts, docs/, daemon/chargewatch.conf). */
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "config.h"
#include "ingest.h"
#include "journal.h"
#include "log.h"
#include "partition.h"
#include "ring.h"

void cw_config_defaults(cw_config_t *c) {
  memset(c, 0, sizeof *c);
  snprintf(c->mqtt_uri, sizeof c->mqtt_uri, "tcp://127.0.0.1:1883");
  snprintf(c->mqtt_client_id, sizeof c->mqtt_client_id, "chargewatchd");
  snprintf(c->mqtt_topic, sizeof c->mqtt_topic, "cw/{station}/{socket}/telemetry");
  snprintf(c->mqtt_station_topic, sizeof c->mqtt_station_topic, "cw/{station}/telemetry");
  c->mqtt_qos = 1;
  c->mqtt_keepalive = 30;
  c->mqtt_reconnect_max_s = 30;
  snprintf(c->mqtt_cmd_topic, sizeof c->mqtt_cmd_topic, "cw/ops/cmd");
  snprintf(c->pg_conninfo, sizeof c->pg_conninfo, "dbname=chargewatch");
  c->pg_batch_rows = 5000;
  c->pg_batch_ms = 200;
  c->pg_partitions_ahead = 3;
  c->workers = 1;
  c->ring_slots = 1024;
  c->max_payload = 16384;
  snprintf(c->deadletter, sizeof c->deadletter, "./deadletter.log");
  c->deadletter_max_bytes = 64ull << 20;
  c->auto_register = true;
  c->max_age_s = 604800;
  c->shutdown_timeout_s = 10;
  snprintf(c->spool_dir, sizeof c->spool_dir, "./spool");
  c->spool_max_bytes = 1ull << 30;
  c->journal_bytes = CW_JOURNAL_DEFAULT_BYTES;
  snprintf(c->alert_log, sizeof c->alert_log, "./alerts.log");
  c->alert_log_format = CW_LOG_TEXT;
  snprintf(c->alert_default_tz, sizeof c->alert_default_tz, "Asia/Shanghai");
  snprintf(c->alert_topic_prefix, sizeof c->alert_topic_prefix, "cw/alerts");
  c->alert_retain = true;
  c->alert_actuate = false;
  c->mqtt_tls_verify = true;
  c->ingest_lag_s = 10;
  c->ingest_alert_s = 10;
  cw_detect_cfg_defaults(&c->det);
  snprintf(c->http_listen, sizeof c->http_listen, "127.0.0.1:9187");
  c->log_level = CW_LOG_INFO;
  c->partitions = 64;
  c->partition_hash = CW_PART_FNV1A;
  snprintf(c->client_id_prefix, sizeof c->client_id_prefix, "cw-shard-");
  snprintf(c->journal_dir, sizeof c->journal_dir, "./journal");
  c->lease_check_ms = 1000;
  c->blind_s = 120;
}

/* ------------------------------------------------------------ value parsers */

/* Whole string must be a base-10 integer within [lo, hi]. */
static int parse_i64(const char *v, long long lo, long long hi, long long *out) {
  char *end;
  if (!*v || (*v != '-' && *v != '+' && (*v < '0' || *v > '9'))) return -EINVAL;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (errno == ERANGE || end == v || *end) return errno == ERANGE ? -ERANGE : -EINVAL;
  if (x < lo || x > hi) return -ERANGE;
  *out = x;
  return 0;
}

static int parse_u64(const char *v, unsigned long long lo, unsigned long long hi,
                     unsigned long long *out) {
  char *end;
  if (*v < '0' || *v > '9') return -EINVAL; /* strtoull accepts "-1" */
  errno = 0;
  unsigned long long x = strtoull(v, &end, 10);
  if (errno == ERANGE || *end) return errno == ERANGE ? -ERANGE : -EINVAL;
  if (x < lo || x > hi) return -ERANGE;
  *out = x;
  return 0;
}

static int parse_bool(const char *v, bool *out) {
  static const char *yes[] = {"true", "yes", "on", "1"};
  static const char *no[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < 4; i++) {
    if (!strcasecmp(v, yes[i])) return *out = true, 0;
    if (!strcasecmp(v, no[i])) return *out = false, 0;
  }
  return -EINVAL;
}

static int copy_str(char *dst, size_t cap, const char *v) {
  size_t n = strlen(v);
  if (n >= cap) return -ENAMETOOLONG;
  memcpy(dst, v, n + 1);
  return 0;
}

/* "host:port" or "[v6]:port"; "" disables. Only the shape is checked here,
 * the address itself by uv_ip*_addr in http.c and below. */
int cw_config_split_listen(const char *s, char *host, size_t hostcap, int *port) {
  const char *colon;
  const char *h = s, *hend;
  if (*s == '[') {
    hend = strchr(s, ']');
    if (!hend || hend[1] != ':') return -EINVAL;
    h = s + 1;
    colon = hend + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon) return -EINVAL;
    hend = colon;
  }
  size_t hl = (size_t)(hend - h);
  if (hl == 0 || hl >= hostcap) return -EINVAL;
  memcpy(host, h, hl);
  host[hl] = 0;
  long long p;
  if (parse_i64(colon + 1, 1, 65535, &p)) return -EINVAL;
  *port = (int)p;
  struct sockaddr_in6 a6;
  struct sockaddr_in a4;
  if (uv_ip4_addr(host, *port, &a4) != 0 && uv_ip6_addr(host, *port, &a6) != 0) return -EINVAL;
  return 0;
}

/* ------------------------------------------------------------ the handler */

typedef struct {
  cw_config_t *c;
  const char *file;
  char *err;
  size_t errlen;
  int failed;         /* an error has been recorded (only the first is kept) */
  char section[32];   /* where it was, for the message */
  char key[64];
  const char *why;
  long long lo, hi;   /* range, for "out of range" */
  int line;           /* the line being parsed (counted by the readers below) */
  int at_bol;         /* the last chunk read ended a line */
  struct seen_key {   /* every [section] key given, for duplicates */
    char name[100];
    int line;
  } *seen;
  size_t nseen, capseen;
} parse_ctx_t;

/* A key given twice in one section (inih reads sections that appear twice
 * as one): the later value wins at start, and the first duplicate is kept
 * in c->duplicate for --check-config (preflight.c), which refuses it. */
static void note_key(parse_ctx_t *p, const char *section, const char *name) {
  char k[100];
  snprintf(k, sizeof k, "%s\n%s", section, name);
  for (size_t i = 0; i < p->nseen; i++) {
    if (strcmp(p->seen[i].name, k)) continue;
    if (!p->c->duplicate[0])
      snprintf(p->c->duplicate, sizeof p->c->duplicate,
               "%s:%d: [%s] %s: duplicate key, first given at %s:%d", p->file, p->line, section,
               name, p->file, p->seen[i].line);
    p->seen[i].line = p->line;
    return;
  }
  if (p->nseen == p->capseen) {
    size_t cap = p->capseen ? 2 * p->capseen : 32;
    struct seen_key *n = realloc(p->seen, cap * sizeof *n);
    if (!n) return; /* only a check */
    p->seen = n;
    p->capseen = cap;
  }
  snprintf(p->seen[p->nseen].name, sizeof p->seen[p->nseen].name, "%s", k);
  p->seen[p->nseen++].line = p->line;
}

/* inih's line reader, counting lines for note_key: a chunk that follows a
 * line end starts the next line (a long line may come in several chunks). */
static void count_line(parse_ctx_t *p, const char *chunk) {
  if (p->at_bol || !p->line) p->line++;
  size_t n = strlen(chunk);
  p->at_bol = n && chunk[n - 1] == '\n';
}

typedef struct {
  parse_ctx_t *p;
  FILE *f;
  const char *s; /* or a string */
} line_src_t;

static char *read_line(char *str, int num, void *stream) {
  line_src_t *src = stream;
  if (src->f) {
    if (!fgets(str, num, src->f)) return NULL;
  } else {
    if (!*src->s || num < 2) return NULL;
    const char *nl = strchr(src->s, '\n');
    size_t n = nl ? (size_t)(nl - src->s) + 1 : strlen(src->s);
    if (n > (size_t)num - 1) n = (size_t)num - 1;
    memcpy(str, src->s, n);
    str[n] = 0;
    src->s += n;
  }
  count_line(src->p, str);
  return str;
}

#define INT_KEY(name, field, lo, hi)                   \
  if (!strcmp(key, name)) {                            \
    long long x;                                       \
    rlo = (lo), rhi = (hi);                            \
    if ((rc = parse_i64(v, lo, hi, &x))) goto bad_int; \
    c->field = (int)x;                                 \
    return 0;                                          \
  }
#define U64_KEY(name, field, lo, hi)                   \
  if (!strcmp(key, name)) {                            \
    unsigned long long x;                              \
    rlo = (long long)(lo), rhi = (long long)(hi);      \
    if ((rc = parse_u64(v, lo, hi, &x))) goto bad_int; \
    c->field = x;                                      \
    return 0;                                          \
  }
#define STR_KEY(name, field)                                            \
  if (!strcmp(key, name)) {                                             \
    if (copy_str(c->field, sizeof c->field, v)) goto too_long;          \
    return 0;                                                           \
  }
#define BOOL_KEY(name, field)                            \
  if (!strcmp(key, name)) {                              \
    if (parse_bool(v, &c->field)) goto bad_bool;         \
    return 0;                                            \
  }

/* [cluster] own: "auto" or a comma-separated list of shard numbers. */
static int parse_own(const char *v, uint64_t *mask) {
  uint64_t m = 0;
  if (!strcmp(v, "auto")) return *mask = 0, 0;
  for (const char *p = v;;) {
    char *end;
    while (*p == ' ') p++;
    if (*p < '0' || *p > '9') return -EINVAL;
    long k = strtol(p, &end, 10);
    if (k < 0 || k >= CW_MAX_SHARDS) return -ERANGE;
    m |= 1ull << k;
    p = end;
    while (*p == ' ') p++;
    if (!*p) break;
    if (*p++ != ',') return -EINVAL;
  }
  return *mask = m, 0;
}

/* Returns 0 on success or writes *why (static text) and returns -1. lo/hi
 * for the range message are passed back through *lo,*hi. */
static int set_key(cw_config_t *c, const char *sec, const char *key, const char *v,
                   const char **why, long long *lo, long long *hi) {
  int rc;
  long long rlo = 0, rhi = 0;
  cw_topic_t t;
  if (!strcmp(sec, "mqtt")) {
    if (!strcmp(key, "uri")) {
      if (!*v) return *why = "must not be empty", -1;
      if (copy_str(c->mqtt_uri, sizeof c->mqtt_uri, v)) goto too_long;
      return 0;
    }
    if (!strcmp(key, "client_id")) {
      if (!*v) return *why = "must not be empty (a fixed id keeps the persistent session)", -1;
      if (copy_str(c->mqtt_client_id, sizeof c->mqtt_client_id, v)) goto too_long;
      return 0;
    }
    if (!strcmp(key, "topic") || !strcmp(key, "station_topic")) {
      if (cw_topic_compile(&t, v)) return *why = "topic pattern does not compile", -1;
      char *dst = !strcmp(key, "topic") ? c->mqtt_topic : c->mqtt_station_topic;
      if (copy_str(dst, sizeof c->mqtt_topic, v)) goto too_long;
      return 0;
    }
    INT_KEY("qos", mqtt_qos, 0, 2)
    INT_KEY("keepalive", mqtt_keepalive, 1, 65535)
    STR_KEY("username", mqtt_username)
    STR_KEY("password_file", mqtt_password_file)
    INT_KEY("reconnect_max_s", mqtt_reconnect_max_s, 1, 3600)
    STR_KEY("cafile", mqtt_cafile)
    STR_KEY("capath", mqtt_capath)
    STR_KEY("certfile", mqtt_certfile)
    STR_KEY("keyfile", mqtt_keyfile)
    STR_KEY("keyfile_password_file", mqtt_keyfile_password_file)
    BOOL_KEY("tls_verify", mqtt_tls_verify)
    if (!strcmp(key, "tls_version")) {
      if (!*v) c->mqtt_tls_version = 0;
      else if (!strcmp(v, "tlsv1.2")) c->mqtt_tls_version = 3;
      else return *why = "expected tlsv1.2 or empty (the library's default, TLS 1.2 or later)", -1;
      return 0;
    }
    STR_KEY("cmd_publishers", mqtt_cmd_publishers)
    if (!strcmp(key, "cmd_topic")) {
      if (!*v || strpbrk(v, "+#")) return *why = "must be a non-empty topic without wildcards", -1;
      if (copy_str(c->mqtt_cmd_topic, sizeof c->mqtt_cmd_topic, v)) goto too_long;
      return 0;
    }
  } else if (!strcmp(sec, "postgres")) {
    STR_KEY("conninfo", pg_conninfo)
    INT_KEY("batch_rows", pg_batch_rows, 1, 1000000)
    INT_KEY("batch_ms", pg_batch_ms, 1, 60000)
    INT_KEY("partitions_ahead", pg_partitions_ahead, 1, 366)
    INT_KEY("retain_days", pg_retain_days, 0, 36500)
  } else if (!strcmp(sec, "pipeline")) {
    INT_KEY("workers", workers, 1, 64)
    /* 16 slots = the ring's 4 KiB minimum; 1 Mi slots = 256 MiB per ring */
    INT_KEY("ring_slots", ring_slots, 16, 1 << 20)
    U64_KEY("max_payload", max_payload, 64, 16u << 20)
    STR_KEY("deadletter", deadletter)
    U64_KEY("deadletter_max_bytes", deadletter_max_bytes, 4096, 1ull << 50)
    BOOL_KEY("auto_register", auto_register)
    /* at least an hour; at most ten years of backfill */
    INT_KEY("max_age_s", max_age_s, 3600, 315360000)
    INT_KEY("shutdown_timeout_s", shutdown_timeout_s, 1, 3600)
  } else if (!strcmp(sec, "spool")) {
    STR_KEY("dir", spool_dir)
    U64_KEY("max_bytes", spool_max_bytes, 1u << 20, 1ull << 50)
    STR_KEY("journal", journal)
    U64_KEY("journal_bytes", journal_bytes, 1u << 20, 1ull << 30)
  } else if (!strcmp(sec, "alerts")) {
    STR_KEY("log", alert_log)
    if (!strcmp(key, "log_format")) {
      if (!strcmp(v, "text")) c->alert_log_format = CW_LOG_TEXT;
      else if (!strcmp(v, "json")) c->alert_log_format = CW_LOG_JSON;
      else return *why = "expected text or json", -1;
      return 0;
    }
    if (!strcmp(key, "topic_prefix")) {
      size_t n = strlen(v);
      if (!n || strpbrk(v, "+#") || v[n - 1] == '/')
        return *why = "must be a non-empty topic without wildcards or trailing '/'", -1;
      if (copy_str(c->alert_topic_prefix, sizeof c->alert_topic_prefix, v)) goto too_long;
      return 0;
    }
    if (!strcmp(key, "default_timezone")) {
      /* an IANA name ("Europe/Berlin", "Etc/GMT-8", "UTC"); the database
       * checks that it knows it when the first station is registered */
      if (!*v || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_/+-") != strlen(v))
        return *why = "expected an IANA time zone name such as Asia/Shanghai", -1;
      if (copy_str(c->alert_default_tz, sizeof c->alert_default_tz, v)) goto too_long;
      return 0;
    }
    BOOL_KEY("retain", alert_retain)
    BOOL_KEY("actuate", alert_actuate)
  } else if (!strcmp(sec, "detectors")) {
    INT_KEY("ingest_lag_s", ingest_lag_s, 1, 3600)
    INT_KEY("ingest_alert_s", ingest_alert_s, 0, 86400)
    rc = cw_detect_cfg_set(&c->det, key, v);
    if (rc == -ENOENT) return *why = "unknown key", -1;
    if (rc) return *why = "not a finite number in the accepted range", -1;
    return 0;
  } else if (!strcmp(sec, "http")) {
    if (!strcmp(key, "listen")) {
      char host[64];
      int port;
      if (*v && cw_config_split_listen(v, host, sizeof host, &port))
        return *why = "expected ADDRESS:PORT (e.g. 127.0.0.1:9187) or empty", -1;
      if (copy_str(c->http_listen, sizeof c->http_listen, v)) goto too_long;
      return 0;
    }
  } else if (!strcmp(sec, "log")) {
    if (!strcmp(key, "level")) {
      static const char *names[] = {"error", "warn", "info", "debug"};
      for (int i = 0; i < 4; i++)
        if (!strcmp(v, names[i])) return c->log_level = i, 0;
      return *why = "expected error, warn, info or debug", -1;
    }
  } else if (!strcmp(sec, "cluster")) {
    INT_KEY("shards", shards, 0, CW_MAX_SHARDS)
    INT_KEY("partitions", partitions, 1, 65536)
    INT_KEY("max_shards", max_shards, 0, CW_MAX_SHARDS)
    INT_KEY("lease_check_ms", lease_check_ms, 100, 60000)
    INT_KEY("blind_s", blind_s, 0, 86400)
    if (!strcmp(key, "partition_hash")) {
      if (!strcmp(v, "fnv1a")) c->partition_hash = CW_PART_FNV1A;
      else if (!strcmp(v, "md5")) c->partition_hash = CW_PART_MD5;
      else return *why = "expected fnv1a (NATS partition()) or md5 (EMQX rule)", -1;
      return 0;
    }
    if (!strcmp(key, "own")) {
      if (parse_own(v, &c->own_mask)) return *why = "expected auto or a list of shards 0..63", -1;
      return 0;
    }
    if (!strcmp(key, "client_id_prefix")) {
      if (!*v || strpbrk(v, "+#/")) return *why = "must be non-empty, without + # /", -1;
      if (copy_str(c->client_id_prefix, sizeof c->client_id_prefix, v)) goto too_long;
      return 0;
    }
    if (!strcmp(key, "journal_dir")) {
      if (!*v) return *why = "must be non-empty", -1;
      if (copy_str(c->journal_dir, sizeof c->journal_dir, v)) goto too_long;
      return 0;
    }
    if (!strncmp(key, "shard_conninfo.", 15)) {
      long long k;
      rlo = 0, rhi = CW_MAX_SHARDS - 1;
      if ((rc = parse_i64(key + 15, rlo, rhi, &k))) goto bad_int;
      if (copy_str(c->shard_conninfo[k], sizeof c->shard_conninfo[k], v)) goto too_long;
      return 0;
    }
  } else {
    return *why = "unknown section", -1;
  }
  return *why = "unknown key", -1;
too_long:
  return *why = "value too long", -1;
bad_bool:
  return *why = "expected true/false, yes/no, on/off or 1/0", -1;
bad_int:
  *lo = rlo;
  *hi = rhi;
  return *why = rc == -ERANGE ? "out of range" : "not an integer", -1;
}

static int handler(void *user, const char *section, const char *name, const char *value) {
  parse_ctx_t *p = user;
  const char *why = NULL;
  long long lo = 0, hi = 0;
  if (!value) value = "";
  note_key(p, section, name);
  if (set_key(p->c, section, name, value, &why, &lo, &hi) == 0) return 1;
  if (!p->failed) {
    /* inih stops here and returns this line number; finish() formats */
    p->failed = 1;
    snprintf(p->section, sizeof p->section, "%s", section);
    snprintf(p->key, sizeof p->key, "%s", name);
    p->why = why;
    p->lo = lo;
    p->hi = hi;
  }
  return 0;
}

/* The [cluster] keys against each other and against the topics. */
static int check_cluster(const cw_config_t *c, parse_ctx_t *p) {
  const char *why = NULL;
  cw_topic_t t[2];
  if (c->shards == 0) return 0;
  if (c->shards > c->partitions || c->partitions % c->shards)
    why = "shards must divide partitions (shard k owns the partitions p with p mod shards = k)";
  else if (c->own_mask && c->shards < 64 && (c->own_mask >> c->shards))
    why = "own names a shard >= shards";
  else if (c->max_shards > c->shards)
    why = "max_shards is larger than shards";
  else if (cw_topic_compile(&t[0], c->mqtt_topic) || cw_topic_compile(&t[1], c->mqtt_station_topic) ||
           t[0].partition_seg < 0 || t[1].partition_seg < 0)
    why = "[mqtt] topic and station_topic need a {partition} segment with shards set";
  for (int k = c->shards; !why && k < CW_MAX_SHARDS; k++)
    if (c->shard_conninfo[k][0]) why = "a shard_conninfo.K names a shard >= shards";
  if (!why) return 0;
  snprintf(p->err, p->errlen, "%s: [cluster]: %s", p->file, why);
  return -EINVAL;
}

static int check_whole(const cw_config_t *c, parse_ctx_t *p) {
  if (check_cluster(c, p)) return -EINVAL;
  /* a record (header + topic + payload) must fit the ring's max record */
  size_t cap = cw_ring_capacity_for_slots(c->ring_slots);
  size_t need = sizeof(cw_ingest_hdr_t) + CW_TOPIC_MAX_LEN + c->max_payload + 16;
  if (need > cap / 4) {
    snprintf(p->err, p->errlen,
             "%s: [pipeline] max_payload: %zu bytes does not fit a ring of ring_slots=%d "
             "(largest record %zu bytes): raise ring_slots",
             p->file, c->max_payload, c->ring_slots, cap / 4);
    return -EINVAL;
  }
  /* and the journal's: a larger message would not survive a SIGKILL */
  uint64_t jmax = cw_journal_max_message(cw_journal_capacity_for(c->journal_bytes));
  if (CW_TOPIC_MAX_LEN + (uint64_t)c->max_payload > jmax) {
    snprintf(p->err, p->errlen,
             "%s: [pipeline] max_payload: %zu bytes does not fit a journal of [spool] journal_bytes=%llu "
             "(largest message %llu bytes with the topic): raise journal_bytes",
             p->file, c->max_payload, (unsigned long long)c->journal_bytes, (unsigned long long)jmax);
    return -EINVAL;
  }
  return 0;
}

static int finish(parse_ctx_t *p, int rc, cw_config_t *c) {
  free(p->seen);
  p->seen = NULL;
  if (rc == 0 && !p->failed) return check_whole(c, p);
  if (rc == -2) {
    snprintf(p->err, p->errlen, "%s: out of memory", p->file);
    return -ENOMEM;
  }
  if (rc < 0) {
    snprintf(p->err, p->errlen, "%s: cannot open", p->file);
    return -ENOENT;
  }
  if (!p->failed)
    snprintf(p->err, p->errlen, "%s:%d: syntax error (expected [section] or key = value)",
             p->file, rc);
  else if (!strcmp(p->why, "out of range"))
    snprintf(p->err, p->errlen, "%s:%d: [%s] %s: out of range (%lld..%lld)", p->file, rc,
             p->section, p->key, p->lo, p->hi);
  else
    snprintf(p->err, p->errlen, "%s:%d: [%s] %s: %s", p->file, rc, p->section, p->key, p->why);
  return -EINVAL;
}

static void set_inih_options(void) {
  /* Strict and predictable: no continuation lines (an indented line is just
   * a key), ';' inline comments, long lines for conninfo strings. */
  ini_allow_multiline = false;
  ini_use_stack = false;  /* heap line buffer, so the two sizes below apply */
  ini_max_line = 4096;
  ini_initial_alloc = 4096;
  ini_stop_on_first_error = true;
}

int cw_config_load(cw_config_t *c, const char *path, char *err, size_t errlen) {
  parse_ctx_t p = {.c = c, .file = path, .err = err, .errlen = errlen};
  if (errlen) err[0] = 0;
  FILE *f = fopen(path, "r");
  if (!f) {
    int e = errno;
    snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
    return -e;
  }
  set_inih_options();
  c->duplicate[0] = 0;
  line_src_t src = {.p = &p, .f = f};
  int rc = ini_parse_stream(read_line, &src, handler, &p);
  fclose(f);
  return finish(&p, rc, c);
}

int cw_config_load_string(cw_config_t *c, const char *text, const char *name, char *err,
                          size_t errlen) {
  parse_ctx_t p = {.c = c, .file = name, .err = err, .errlen = errlen};
  if (errlen) err[0] = 0;
  set_inih_options();
  c->duplicate[0] = 0;
  line_src_t src = {.p = &p, .s = text};
  int rc = ini_parse_stream(read_line, &src, handler, &p);
  return finish(&p, rc, c);
}

int cw_config_decode_cfg(const cw_config_t *c, cw_decode_cfg_t *out) {
  int rc = cw_decode_cfg_defaults(out);
  if (rc) return rc;
  if ((rc = cw_topic_compile(&out->socket_topic, c->mqtt_topic))) return rc;
  if ((rc = cw_topic_compile(&out->station_topic, c->mqtt_station_topic))) return rc;
  out->max_payload = c->max_payload;
  out->max_age_ms = (int64_t)c->max_age_s * 1000;
  return 0;
}
