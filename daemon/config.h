/* config.h - the daemon's configuration: one struct filled from defaults
 * and an INI file (config.c). Key names are a contract with outside tools;
 * docs/OPERATIONS.md and daemon/chargewatch.conf list them. */
#ifndef CW_CONFIG_H
#define CW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode.h"
#include "detect.h"

typedef enum { CW_LOG_TEXT = 0, CW_LOG_JSON = 1 } cw_log_format_t;

#define CW_MAX_SHARDS 64 /* [cluster] shards: one bit each in own_mask */

typedef struct cw_config {
  /* [mqtt] */
  char mqtt_uri[256];        /* uri, default tcp://127.0.0.1:1883 */
  char mqtt_client_id[64];   /* client_id, default chargewatchd (fixed: persistent session) */
  char mqtt_topic[256];      /* topic, default cw/{station}/{socket}/telemetry */
  char mqtt_station_topic[256]; /* station_topic, default cw/{station}/telemetry */
  int mqtt_qos;              /* qos, default 1 */
  int mqtt_keepalive;        /* keepalive seconds, default 30 */
  char mqtt_username[128];   /* username, default "" */
  char mqtt_password_file[256]; /* password_file, default "" */
  int mqtt_reconnect_max_s;  /* reconnect_max_s, default 30 */
  /* TLS, for ssl:// and mqtts:// (both clients; names as in mosquitto's own) */
  char mqtt_cafile[256], mqtt_capath[256], mqtt_certfile[256], mqtt_keyfile[256];
  char mqtt_keyfile_password_file[256];
  int mqtt_tls_version;      /* tls_version: "" (library default), tlsv1.2 = 3 */
  bool mqtt_tls_verify;      /* tls_verify, default true: chain and host name */
  char mqtt_cmd_topic[256];  /* cmd_topic, default cw/ops/cmd (was cw/alerts/cmd) */
  char mqtt_cmd_publishers[256]; /* cmd_publishers: who the broker ACL lets publish on
                                  * cmd_topic (recorded with each MQTT command), default "" */
  /* [postgres] */
  char pg_conninfo[512];     /* conninfo, default "dbname=chargewatch host=127.0.0.1" */
  int pg_batch_rows;         /* batch_rows, default 5000 */
  int pg_batch_ms;           /* batch_ms, default 200 */
  int pg_partitions_ahead;   /* partitions_ahead (days), default 3 */
  int pg_retain_days;        /* retain_days: readings partitions kept (days), 0 = for ever (default) */
  /* [pipeline] */
  int workers;               /* workers, default 1 */
  int ring_slots;            /* ring_slots: ring capacity in 256-byte slots, default 1024 (256 KiB) */
  size_t max_payload;        /* max_payload bytes, default 16384 */
  char deadletter[256];      /* deadletter path, default ./deadletter.log */
  uint64_t deadletter_max_bytes; /* deadletter_max_bytes, default 64 MiB, then rotated (.1) */
  bool auto_register;        /* auto_register, default true */
  int max_age_s;             /* max_age_s, default 604800 (7 days) */
  int shutdown_timeout_s;    /* shutdown_timeout_s, default 10 */
  /* [spool] */
  char spool_dir[256];       /* dir, default ./spool */
  uint64_t spool_max_bytes;  /* max_bytes, default 1 GiB */
  char journal[256];         /* journal: the ingest journal without [cluster], default
                                "" (<dir>/ingest.journal; docs/RELIABILITY.md) */
  uint64_t journal_bytes;    /* journal_bytes: each ingest journal's size (with [cluster]
                                each shard's), default 8 MiB */
  /* [alerts] */
  char alert_log[256];       /* log, default ./alerts.log ("-" = stdout) */
  cw_log_format_t alert_log_format; /* log_format text|json */
  char alert_default_tz[64]; /* default_timezone: IANA zone of auto-registered stations, Asia/Shanghai */
  char alert_topic_prefix[128]; /* topic_prefix, default cw/alerts */
  bool alert_retain;         /* retain, default true */
  bool alert_actuate;        /* actuate, default false: publish cut-power on critical */
  /* [detectors] */
  cw_detect_cfg_t det;       /* one key per field of cw_detect_cfg_t */
  int ingest_lag_s;          /* ingest_lag_s, default 10: a reading is live within this of its ts */
  int ingest_alert_s;        /* ingest_alert_s, default 10: blind this long raises `ingest` */
  /* [http] */
  char http_listen[64];      /* listen, default 127.0.0.1:9187 ("" = off) */
  /* [log] */
  int log_level;             /* level: error|warn|info|debug, default info */
  /* [cluster] (docs/SCALING.md). shards == 0: no cluster mode, one ingest
   * connection with [mqtt] client_id and topics, as without the section. */
  int shards;                /* shards S, default 0 (off) */
  int partitions;            /* partitions P, default 64 (the broker mapping's count) */
  int partition_hash;        /* partition_hash fnv1a|md5 (cw_part_hash_t), default fnv1a */
  uint64_t own_mask;         /* own: auto (0) or a list of shards (bit k = shard k) */
  int max_shards;            /* max_shards, default 0 (= shards) */
  char client_id_prefix[48]; /* client_id_prefix, default cw-shard- */
  int lease_check_ms;        /* lease_check_ms, default 1000 */
  int blind_s;               /* blind_s: no offline alerts this long after a shard connects, 120 */
  char journal_dir[256];     /* journal_dir: shard-K.journal files, shared by the daemons of one
                                machine, default ./journal (docs/RELIABILITY.md) */
  char shard_conninfo[CW_MAX_SHARDS][512]; /* shard_conninfo.K, default "" ([postgres] conninfo) */
  /* not a key: the first key given twice in one section, as
   * "FILE:L2: [sec] key: duplicate key, first given at FILE:L1" ("" if
   * none); the later value is used, --check-config refuses it */
  char duplicate[400];
} cw_config_t;

void cw_config_defaults(cw_config_t *c);
/* Load an INI file over the defaults. Unknown sections/keys and bad values are
 * errors: err gets "FILE:LINE: [section] key: reason". 0 or -EINVAL/-errno. */
int cw_config_load(cw_config_t *c, const char *path, char *err, size_t errlen);
/* Fill a cw_decode_cfg_t from the config (compiles the topic patterns). */
int cw_config_decode_cfg(const cw_config_t *c, cw_decode_cfg_t *out);

/* Like cw_config_load, from a NUL-terminated string; name stands in for the
 * file name in messages (tests, fuzzing). */
int cw_config_load_string(cw_config_t *c, const char *text, const char *name, char *err,
                          size_t errlen);
/* Split an [http] listen value "HOST:PORT" / "[V6]:PORT" and check the
 * address parses. 0 or -EINVAL. */
int cw_config_split_listen(const char *s, char *host, size_t hostcap, int *port);

#endif
