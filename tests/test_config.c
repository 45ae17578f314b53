/* test_config.c - the INI configuration: defaults, every section, strict
 * values and errors that name FILE:LINE, section and key. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "partition.h"
#include "test.h"

static int load(cw_config_t *c, const char *text, char *err, size_t errlen) {
  cw_config_defaults(c);
  return cw_config_load_string(c, text, "t.conf", err, errlen);
}

CW_TEST(config_defaults) {
  cw_config_t c;
  cw_detect_cfg_t det;
  cw_config_defaults(&c);
  cw_detect_cfg_defaults(&det);
  CHECK_STR(c.mqtt_uri, "tcp://127.0.0.1:1883");
  CHECK_STR(c.mqtt_client_id, "chargewatchd");
  CHECK_STR(c.mqtt_topic, "cw/{station}/{socket}/telemetry");
  CHECK_STR(c.mqtt_station_topic, "cw/{station}/telemetry");
  CHECK_STR(c.mqtt_cmd_topic, "cw/ops/cmd");
  CHECK_EQ(c.mqtt_qos, 1);
  CHECK_EQ(c.mqtt_keepalive, 30);
  CHECK_EQ(c.mqtt_reconnect_max_s, 30);
  CHECK_EQ(c.pg_batch_rows, 5000);
  CHECK_EQ(c.pg_batch_ms, 200);
  CHECK_EQ(c.pg_partitions_ahead, 3);
  CHECK_EQ(c.workers, 1);
  CHECK_EQ(c.ring_slots, 1024);
  CHECK_EQ(c.max_payload, 16384);
  CHECK_EQ(c.journal_bytes, 8u << 20);
  CHECK_EQ(c.deadletter_max_bytes, 64ull << 20);
  CHECK(c.auto_register);
  CHECK_EQ(c.max_age_s, 604800);
  CHECK_EQ(c.shutdown_timeout_s, 10);
  CHECK_EQ(c.spool_max_bytes, 1ull << 30);
  CHECK_STR(c.journal, "");
  CHECK_EQ(c.alert_log_format, CW_LOG_TEXT);
  CHECK_STR(c.alert_topic_prefix, "cw/alerts");
  CHECK(c.alert_retain);
  CHECK(!c.alert_actuate);
  CHECK_STR(c.http_listen, "127.0.0.1:9187");
  CHECK_EQ(c.log_level, CW_LOG_INFO);
  CHECK(memcmp(&c.det, &det, sizeof det) == 0);
}

CW_TEST(config_empty_file_valid) {
  cw_config_t c, def;
  char err[256] = "";
  char path[] = "/tmp/cwcfgXXXXXX";
  cw_config_defaults(&def);
  CHECK_EQ(load(&c, "", err, sizeof err), 0);
  CHECK(memcmp(&c, &def, sizeof c) == 0);
  CHECK_EQ(load(&c, "; only a comment\n# another\n\n", err, sizeof err), 0);
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  close(fd);
  cw_config_defaults(&c);
  int rc = cw_config_load(&c, path, err, sizeof err);
  unlink(path);
  CHECK_EQ(rc, 0);
  CHECK(memcmp(&c, &def, sizeof c) == 0);
}

CW_TEST(config_missing_file) {
  cw_config_t c;
  char err[256] = "";
  cw_config_defaults(&c);
  CHECK_EQ(cw_config_load(&c, "/nonexistent/dir/cw.conf", err, sizeof err), -ENOENT);
  CHECK(strstr(err, "/nonexistent/dir/cw.conf") != NULL);
}

CW_TEST(config_every_section) {
  cw_config_t c;
  char err[256] = "";
  const char *text =
      "[mqtt]\nuri = tcp://10.0.0.5:1884\nclient_id = cw-a\ntopic = city/{station}/s/{socket}\n"
      "station_topic = city/{station}/all\nqos = 0\nkeepalive = 45\nusername = ingest\n"
      "password_file = /run/secrets/mqtt\nreconnect_max_s = 60\ncmd_topic = city/alerts/cmd\n"
      "[postgres]\nconninfo = service=cw\nbatch_rows = 100\nbatch_ms = 50\npartitions_ahead = 7\n"
      "[pipeline]\nworkers = 4\nring_slots = 1024\nmax_payload = 4096\ndeadletter = /var/log/dl\n"
      "deadletter_max_bytes = 1048576\nauto_register = no\nmax_age_s = 86400\n"
      "shutdown_timeout_s = 20\n"
      "[spool]\ndir = /var/lib/cw/spool\nmax_bytes = 2097152\njournal = /run/cw/ingest.journal\n"
      "[alerts]\nlog = -\nlog_format = json\ntopic_prefix = city/alerts\nretain = off\nactuate = ON\n"
      "[detectors]\nthermal_crit_c = 85\n"
      "[http]\nlisten = [::1]:9300\n"
      "[log]\nlevel = debug\n";
  CHECK_EQ(load(&c, text, err, sizeof err), 0);
  CHECK_STR(c.mqtt_uri, "tcp://10.0.0.5:1884");
  CHECK_STR(c.mqtt_client_id, "cw-a");
  CHECK_STR(c.mqtt_topic, "city/{station}/s/{socket}");
  CHECK_STR(c.mqtt_station_topic, "city/{station}/all");
  CHECK_EQ(c.mqtt_qos, 0);
  CHECK_EQ(c.mqtt_keepalive, 45);
  CHECK_STR(c.mqtt_username, "ingest");
  CHECK_STR(c.mqtt_password_file, "/run/secrets/mqtt");
  CHECK_EQ(c.mqtt_reconnect_max_s, 60);
  CHECK_STR(c.mqtt_cmd_topic, "city/alerts/cmd");
  CHECK_STR(c.pg_conninfo, "service=cw");
  CHECK_EQ(c.pg_batch_rows, 100);
  CHECK_EQ(c.pg_batch_ms, 50);
  CHECK_EQ(c.pg_partitions_ahead, 7);
  CHECK_EQ(c.workers, 4);
  CHECK_EQ(c.ring_slots, 1024);
  CHECK_EQ(c.max_payload, 4096);
  CHECK_STR(c.deadletter, "/var/log/dl");
  CHECK_EQ(c.deadletter_max_bytes, 1048576);
  CHECK(!c.auto_register);
  CHECK_EQ(c.max_age_s, 86400);
  CHECK_EQ(c.shutdown_timeout_s, 20);
  CHECK_STR(c.spool_dir, "/var/lib/cw/spool");
  CHECK_EQ(c.spool_max_bytes, 2097152);
  CHECK_STR(c.journal, "/run/cw/ingest.journal");
  CHECK_STR(c.alert_log, "-");
  CHECK_EQ(c.alert_log_format, CW_LOG_JSON);
  CHECK_STR(c.alert_topic_prefix, "city/alerts");
  CHECK(!c.alert_retain);
  CHECK(c.alert_actuate);
  CHECK_NEAR(c.det.thermal_crit_c, 85, 1e-9);
  CHECK_STR(c.http_listen, "[::1]:9300");
  CHECK_EQ(c.log_level, CW_LOG_DEBUG);
}

CW_TEST(config_unknown_key_names_file_line) {
  cw_config_t c;
  char err[256] = "";
  CHECK_EQ(load(&c, "[mqtt]\nqos = 1\n\nfrobnicate = 3\n", err, sizeof err), -EINVAL);
  CHECK_STR(err, "t.conf:4: [mqtt] frobnicate: unknown key");
  CHECK_EQ(load(&c, "; x\n[mtqq]\nuri = tcp://x:1\n", err, sizeof err), -EINVAL);
  CHECK_STR(err, "t.conf:3: [mtqq] uri: unknown section");
  /* a key before any section */
  CHECK_EQ(load(&c, "uri = tcp://x:1\n", err, sizeof err), -EINVAL);
  CHECK(strstr(err, "t.conf:1: [] uri:") != NULL);
  /* not key = value */
  CHECK_EQ(load(&c, "[mqtt]\njust words\n", err, sizeof err), -EINVAL);
  CHECK(strstr(err, "t.conf:2: syntax error") != NULL);
}

CW_TEST(config_bad_numbers) {
  cw_config_t c;
  char err[256] = "";
  static const char *bad[] = {"[postgres]\nbatch_rows = abc\n", "[postgres]\nbatch_rows = 12abc\n",
                              "[postgres]\nbatch_rows = 0x10\n", "[postgres]\nbatch_rows = 1.5\n",
                              "[postgres]\nbatch_rows =\n",      "[postgres]\nbatch_rows = - 3\n",
                              "[pipeline]\nmax_payload = -1\n",
                              "[pipeline]\nworkers = 99999999999999999999\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CHECK_EQ(load(&c, bad[i], err, sizeof err), -EINVAL);
    CHECK(strstr(err, "t.conf:2: [") != NULL);
  }
  CHECK_EQ(load(&c, "[postgres]\nbatch_rows = abc\n", err, sizeof err), -EINVAL);
  CHECK_STR(err, "t.conf:2: [postgres] batch_rows: not an integer");
  /* the value survives a failed parse untouched */
  CHECK_EQ(c.pg_batch_rows, 5000);
}

CW_TEST(config_out_of_range) {
  cw_config_t c;
  char err[256] = "";
  CHECK_EQ(load(&c, "[mqtt]\nqos = 3\n", err, sizeof err), -EINVAL);
  CHECK_STR(err, "t.conf:2: [mqtt] qos: out of range (0..2)");
  CHECK_EQ(load(&c, "[pipeline]\nworkers = 0\n", err, sizeof err), -EINVAL);
  CHECK(strstr(err, "[pipeline] workers: out of range") != NULL);
  CHECK_EQ(load(&c, "[pipeline]\nring_slots = 8\n", err, sizeof err), -EINVAL);
  CHECK_EQ(load(&c, "[http]\nlisten = 127.0.0.1:70000\n", err, sizeof err), -EINVAL);
  CHECK_EQ(load(&c, "[http]\nlisten = nohost\n", err, sizeof err), -EINVAL);
  CHECK_EQ(load(&c, "[log]\nlevel = loud\n", err, sizeof err), -EINVAL);
  CHECK_EQ(load(&c, "[alerts]\nlog_format = xml\n", err, sizeof err), -EINVAL);
  /* a payload that cannot fit the ring is refused as a whole-file error */
  CHECK_EQ(load(&c, "[pipeline]\nring_slots = 16\nmax_payload = 16384\n", err, sizeof err), -EINVAL);
  CHECK(strstr(err, "max_payload") != NULL);
  /* and one that cannot fit the ingest journal (a quarter of it at most) */
  CHECK_EQ(load(&c, "[pipeline]\nring_slots = 262144\nmax_payload = 8388608\n", err, sizeof err), -EINVAL);
  CHECK(strstr(err, "raise journal_bytes") != NULL);
  CHECK_EQ(load(&c, "[pipeline]\nring_slots = 262144\nmax_payload = 8388608\n[spool]\njournal_bytes = 67108864\n",
                err, sizeof err),
           0);
  CHECK_EQ(c.journal_bytes, 67108864);
  CHECK_EQ(load(&c, "[spool]\njournal_bytes = 65536\n", err, sizeof err), -EINVAL);
  /* edges are accepted */
  CHECK_EQ(load(&c, "[mqtt]\nqos = 2\n[pipeline]\nworkers = 64\n[http]\nlisten =\n", err, sizeof err), 0);
  CHECK_EQ(c.workers, 64);
  CHECK_STR(c.http_listen, "");
}

CW_TEST(config_bad_bool) {
  cw_config_t c;
  char err[256] = "";
  CHECK_EQ(load(&c, "[alerts]\nretain = maybe\n", err, sizeof err), -EINVAL);
  CHECK(strstr(err, "t.conf:2: [alerts] retain: expected true/false") != NULL);
  CHECK_EQ(load(&c, "[pipeline]\nauto_register = 2\n", err, sizeof err), -EINVAL);
  CHECK_EQ(load(&c, "[alerts]\nretain = FALSE\nactuate = yes\n", err, sizeof err), 0);
  CHECK(!c.alert_retain);
  CHECK(c.alert_actuate);
}

CW_TEST(config_bad_topic_pattern) {
  cw_config_t c;
  char err[256] = "";
  CHECK_EQ(load(&c, "[mqtt]\ntopic = cw/+/telemetry\n", err, sizeof err), -EINVAL);
  CHECK_STR(err, "t.conf:2: [mqtt] topic: topic pattern does not compile");
  CHECK_EQ(load(&c, "[mqtt]\nstation_topic = cw/{socket}/x\n", err, sizeof err), -EINVAL);
  CHECK_EQ(load(&c, "[mqtt]\ncmd_topic = cw/#\n", err, sizeof err), -EINVAL);
  CHECK_EQ(load(&c, "[alerts]\ntopic_prefix = cw/alerts/\n", err, sizeof err), -EINVAL);
}

CW_TEST(config_detectors_keys) {
  cw_config_t c;
  char err[256] = "";
  CHECK_EQ(load(&c,
                "[detectors]\nthermal_warn_c = 55\nthermal_rate_crit_c_s = 0.5\n"
                "overload_tamper_w = 450\nhold_s = 120\nthermal_rise_warn_count = 3\n",
                err, sizeof err),
           0);
  CHECK_NEAR(c.det.thermal_warn_c, 55, 1e-9);
  CHECK_NEAR(c.det.thermal_rate_crit_c_s, 0.5, 1e-9);
  CHECK_NEAR(c.det.overload_tamper_w, 450, 1e-9);
  CHECK_NEAR(c.det.hold_s, 120, 1e-9);
  CHECK_EQ(c.det.thermal_rise_warn_count, 3);
  CHECK_EQ(load(&c, "[detectors]\nthermal_max = 3\n", err, sizeof err), -EINVAL);
  CHECK_STR(err, "t.conf:2: [detectors] thermal_max: unknown key");
  CHECK_EQ(load(&c, "[detectors]\nhold_s = soon\n", err, sizeof err), -EINVAL);
  CHECK(strstr(err, "t.conf:2: [detectors] hold_s:") != NULL);
  CHECK_EQ(load(&c, "[detectors]\nthermal_crit_c = nan\n", err, sizeof err), -EINVAL);
}

CW_TEST(config_decode_cfg) {
  cw_config_t c;
  cw_decode_cfg_t dc;
  char err[256] = "", st[CW_STATION_MAX + 1];
  int sock = -1;
  CHECK_EQ(load(&c, "[mqtt]\ntopic = site/{station}/{socket}/tele\n[pipeline]\nmax_age_s = 7200\n"
                    "max_payload = 2048\n",
                err, sizeof err),
           0);
  CHECK_EQ(cw_config_decode_cfg(&c, &dc), 0);
  CHECK_EQ(dc.max_payload, 2048);
  CHECK_EQ(dc.max_age_ms, 7200000);
  const char *t = "site/AB-1/3/tele";
  CHECK_EQ(cw_topic_match(&dc.socket_topic, t, strlen(t), st, &sock), CW_REJ_OK);
  CHECK_STR(st, "AB-1");
  CHECK_EQ(sock, 3);
}

CW_TEST(config_listen_split) {
  char host[64];
  int port = 0;
  CHECK_EQ(cw_config_split_listen("127.0.0.1:9187", host, sizeof host, &port), 0);
  CHECK_STR(host, "127.0.0.1");
  CHECK_EQ(port, 9187);
  CHECK_EQ(cw_config_split_listen("[::1]:80", host, sizeof host, &port), 0);
  CHECK_STR(host, "::1");
  CHECK_EQ(port, 80);
  CHECK_EQ(cw_config_split_listen(":80", host, sizeof host, &port), -EINVAL);
  CHECK_EQ(cw_config_split_listen("localhost:80", host, sizeof host, &port), -EINVAL);
  CHECK_EQ(cw_config_split_listen("1.2.3.4:0", host, sizeof host, &port), -EINVAL);
}

/* daemon/chargewatch.conf documents every key with its default: with the
 * leading ';' of each key line removed it must load and equal the defaults. */
CW_TEST(config_example_matches_defaults) {
  FILE *f = fopen("daemon/chargewatch.conf", "r");
  CHECK(f != NULL);
  static char text[32768];
  size_t n = 0;
  int keys = 0;
  char line[512];
  while (fgets(line, sizeof line, f) && n + sizeof line < sizeof text) {
    const char *p = line;
    if (p[0] == ';' && p[1] >= 'a' && p[1] <= 'z' && strstr(p, " = ")) p++, keys++;
    n += (size_t)snprintf(text + n, sizeof text - n, "%s", p);
  }
  fclose(f);
  cw_config_t c, def;
  char err[256] = "";
  cw_config_defaults(&def);
  CHECK(keys >= 50);
  CHECK_EQ(load(&c, text, err, sizeof err), 0);
  CHECK(memcmp(&c, &def, sizeof c) == 0);
}

/* inih's default line buffer is 200 bytes; conninfo strings can be longer */
CW_TEST(config_long_lines) {
  cw_config_t c;
  char err[256] = "";
  static char text[4096];
  char val[600];
  memset(val, 'x', sizeof val);
  val[450] = 0;
  snprintf(text, sizeof text, "[postgres]\nconninfo = application_name=%s\nbatch_rows = 7\n", val);
  CHECK_EQ(load(&c, text, err, sizeof err), 0);
  CHECK_EQ(strlen(c.pg_conninfo), 450 + strlen("application_name="));
  CHECK_EQ(c.pg_batch_rows, 7);
  val[450] = 'x';
  val[599] = 0;
  snprintf(text, sizeof text, "[postgres]\nconninfo = %s\n", val);
  CHECK_EQ(load(&c, text, err, sizeof err), -EINVAL);
  CHECK_STR(err, "t.conf:2: [postgres] conninfo: value too long");
}

/* [cluster]: off by default (today's single connection), every key, and the
 * cross-checks against shards and the topic patterns */
CW_TEST(config_cluster) {
  cw_config_t c;
  char err[256] = "";
  const char *topics = "[mqtt]\ntopic = cwp/{partition}/cw/{station}/{socket}/telemetry\n"
                       "station_topic = cwp/{partition}/cw/{station}/telemetry\n";
  char text[2048];
  cw_config_defaults(&c);
  CHECK_EQ(c.shards, 0);
  CHECK_EQ(c.partitions, 64);
  CHECK_EQ(c.partition_hash, CW_PART_FNV1A);
  CHECK_STR(c.client_id_prefix, "cw-shard-");
  CHECK_EQ(c.lease_check_ms, 1000);
  CHECK_STR(c.journal_dir, "./journal");
  /* the section without shards changes nothing but its own keys */
  CHECK_EQ(load(&c, "[cluster]\npartitions = 32\n", err, sizeof err), 0);
  CHECK_EQ(c.shards, 0);
  snprintf(text, sizeof text,
           "%s[cluster]\npartitions = 64\npartition_hash = md5\nshards = 8\nown = 0, 3,5\n"
           "max_shards = 4\nclient_id_prefix = s-\nlease_check_ms = 500\nblind_s = 30\n"
           "shard_conninfo.3 = host=db3 dbname=cw\njournal_dir = /run/cw/journal\n",
           topics);
  CHECK_EQ(load(&c, text, err, sizeof err), 0);
  CHECK_EQ(c.shards, 8);
  CHECK_EQ(c.partition_hash, CW_PART_MD5);
  CHECK_EQ(c.own_mask, (1u << 0) | (1u << 3) | (1u << 5));
  CHECK_EQ(c.max_shards, 4);
  CHECK_STR(c.client_id_prefix, "s-");
  CHECK_EQ(c.lease_check_ms, 500);
  CHECK_EQ(c.blind_s, 30);
  CHECK_STR(c.shard_conninfo[3], "host=db3 dbname=cw");
  CHECK_STR(c.journal_dir, "/run/cw/journal");
  CHECK_EQ(load(&c, "[cluster]\nown = auto\n", err, sizeof err), 0);
  CHECK_EQ(c.own_mask, 0);
  static const struct {
    const char *text, *err;
  } bad[] = {
      {"[cluster]\nshards = 8\n", "[cluster]: [mqtt] topic and station_topic need a {partition}"},
      {"[cluster]\nshards = 7\n", "[cluster]: shards must divide partitions"},
      {"[cluster]\nshards = 65\n", "t.conf:2: [cluster] shards: out of range (0..64)"},
      {"[cluster]\nown = 1,x\n", "t.conf:2: [cluster] own: expected auto"},
      {"[cluster]\nown = 64\n", "t.conf:2: [cluster] own: expected auto"},
      {"[cluster]\npartition_hash = crc\n", "t.conf:2: [cluster] partition_hash: expected"},
      {"[cluster]\nshard_conninfo.x = a\n", "t.conf:2: [cluster] shard_conninfo.x: not an"},
      {"[cluster]\njournal_dir =\n", "t.conf:2: [cluster] journal_dir: must be non-empty"},
      {"[cluster]\nshard_conninfo.64 = a\n", "t.conf:2: [cluster] shard_conninfo.64: out of"},
      {"[cluster]\nclient_id_prefix = a/b\n", "t.conf:2: [cluster] client_id_prefix: must"},
      {"[cluster]\nlease = 1\n", "t.conf:2: [cluster] lease: unknown key"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CHECK_EQ(load(&c, bad[i].text, err, sizeof err), -EINVAL);
    if (!strstr(err, bad[i].err)) {
      cw_test_fail(__FILE__, __LINE__, "\"%s\" gave \"%s\"", bad[i].text, err);
      return;
    }
  }
  const char *cross[] = {"own = 8\n", "max_shards = 9\n", "shard_conninfo.8 = x\n"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(text, sizeof text, "%s[cluster]\nshards = 8\n%s", topics, cross[i]);
    CHECK_EQ(load(&c, text, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "t.conf: [cluster]: ") != NULL);
  }
}

/* A key given twice in one section: the later value is used, and the
 * first duplicate is kept with FILE:LINE of both for --check-config; a
 * section given twice is one section; the same key in two sections is not
 * a duplicate. */
CW_TEST(config_duplicate_key) {
  cw_config_t c;
  char err[512] = "";
  CHECK_EQ(load(&c, "[mqtt]\nqos = 0\n[log]\nlevel = info\n\n[mqtt]\n; again\nqos = 2\nqos = 1\n", err,
                sizeof err),
           0);
  CHECK_EQ(c.mqtt_qos, 1);
  CHECK_STR(c.duplicate, "t.conf:8: [mqtt] qos: duplicate key, first given at t.conf:2");
  CHECK_EQ(load(&c, "[mqtt]\nclient_id = a\n[cluster]\nclient_id_prefix = a\n[http]\nlisten = 127.0.0.1:1\n",
                err, sizeof err),
           0);
  CHECK_STR(c.duplicate, "");
  CHECK_EQ(load(&c, "[postgres]\nconninfo = a\n[spool]\ndir = /tmp\n[postgres]\nconninfo = b\n", err,
                sizeof err),
           0);
  CHECK_STR(c.pg_conninfo, "b");
  CHECK_STR(c.duplicate, "t.conf:6: [postgres] conninfo: duplicate key, first given at t.conf:2");
  /* from a file, after a long comment line */
  char path[] = "/tmp/cwcfgXXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fprintf(f, "[postgres]\nconninfo = host=x\n;%03000d\n[mqtt]\nqos=1\n[postgres]\nconninfo = y\n", 0);
  fclose(f);
  cw_config_defaults(&c);
  int rc = cw_config_load(&c, path, err, sizeof err);
  char want[128];
  snprintf(want, sizeof want, "%s:7: [postgres] conninfo: duplicate key, first given at %s:2", path,
           path);
  unlink(path);
  CHECK_EQ(rc, 0);
  CHECK_STR(c.duplicate, want);
}
