/* fuzz-sources: daemon/config.c lib/detect.c lib/detect_thermal.c lib/detect_overload.c lib/detect_overnight.c lib/detect_offline.c lib/detect_session.c lib/session.c lib/alert.c lib/socket_table.c lib/cw.c lib/topic.c lib/decode.c lib/json_arena.c lib/text.c lib/ring.c lib/journal.c lib/spool.c lib/clock.c lib/fsutil.c */
/* fuzz-libs: -linih -lcjson -lm */
/* fuzz-pkgs: libuv */
/* fuzz_config.c - libFuzzer target for the configuration parser: the input
 * is an INI file. Whatever it holds, loading must either succeed with every
 * value inside its documented range, or fail with a message that names the
 * file; never crash or read past a buffer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

/* config.c logs nothing, but its objects may reference cw_log via headers */
void cw_log(int level, const char *fmt, ...) {
  (void)level, (void)fmt;
}

static void check(int ok) {
  if (!ok) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static cw_config_t c;
  char err[512];
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = 0;
  cw_config_defaults(&c);
  int rc = cw_config_load_string(&c, text, "fuzz.conf", err, sizeof err);
  if (rc == 0) {
    cw_decode_cfg_t dc;
    check(c.mqtt_qos >= 0 && c.mqtt_qos <= 2);
    check(c.workers >= 1 && c.workers <= 64);
    check(c.ring_slots >= 16 && c.ring_slots <= (1 << 20));
    check(c.max_payload >= 64);
    check(c.mqtt_keepalive >= 1 && c.shutdown_timeout_s >= 1);
    check(c.log_level >= CW_LOG_ERROR && c.log_level <= CW_LOG_DEBUG);
    check(memchr(c.mqtt_uri, 0, sizeof c.mqtt_uri) != NULL);
    check(memchr(c.pg_conninfo, 0, sizeof c.pg_conninfo) != NULL);
    check(c.mqtt_client_id[0] != 0);
    check(cw_config_decode_cfg(&c, &dc) == 0); /* accepted topics compile */
  } else {
    check(rc < 0);
    check(strncmp(err, "fuzz.conf", 9) == 0);
  }
  free(text);
  return 0;
}
