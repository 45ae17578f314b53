/* preflight.c - see preflight.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "preflight.h"

int cw_preflight_file(const char *path, char *err, size_t cap) {
  struct stat st;
  if (stat(path, &st) != 0) return snprintf(err, cap, "%s: %s", path, strerror(errno)), -1;
  if (!S_ISREG(st.st_mode)) return snprintf(err, cap, "%s: not a regular file", path), -1;
  if (access(path, R_OK) != 0) return snprintf(err, cap, "%s: %s", path, strerror(errno)), -1;
  return 0;
}

static int readable(const char *what, const char *path, char *err, size_t cap) {
  if (!*path) return 0;
  return cw_preflight_file(path, err, cap) ? (snprintf(err + strlen(err), cap - strlen(err),
                                                       " ([mqtt] %s)", what), -1)
                                           : 0;
}

/* The directory exists and is writable, or the nearest existing parent is
 * (the daemon creates the rest). */
static int writable_dir(const char *what, const char *dir, char *err, size_t cap) {
  char d[512];
  struct stat st;
  snprintf(d, sizeof d, "%s", *dir ? dir : ".");
  for (;;) {
    if (stat(d, &st) == 0) {
      if (!S_ISDIR(st.st_mode)) return snprintf(err, cap, "%s: %s is not a directory", what, d), -1;
      if (access(d, W_OK | X_OK) != 0)
        return snprintf(err, cap, "%s: directory %s: %s", what, d, strerror(errno)), -1;
      return 0;
    }
    char *slash = strrchr(d, '/');
    if (!slash) snprintf(d, sizeof d, ".");
    else if (slash == d) d[1] = 0;
    else *slash = 0;
  }
}

/* The directory a file goes in. */
static int file_dir(const char *what, const char *path, char *err, size_t cap) {
  char d[512];
  if (!*path || !strcmp(path, "-")) return 0;
  snprintf(d, sizeof d, "%s", path);
  char *slash = strrchr(d, '/');
  if (!slash) snprintf(d, sizeof d, ".");
  else if (slash == d) d[1] = 0;
  else *slash = 0;
  struct stat st;
  if (stat(path, &st) == 0 && (S_ISDIR(st.st_mode) || access(path, W_OK) != 0))
    return snprintf(err, cap, "%s: %s: %s", what, path,
                    S_ISDIR(st.st_mode) ? "is a directory" : strerror(errno)), -1;
  return writable_dir(what, d, err, cap);
}

int cw_preflight(const cw_config_t *c, char *err, size_t cap) {
  static const char *const schemes[] = {"tcp://", "mqtt://", "ssl://", "mqtts://", "ws://", "wss://"};
  int ok = 0;
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
    ok |= !strncmp(c->mqtt_uri, schemes[i], strlen(schemes[i]));
  if (!ok)
    return snprintf(err, cap, "[mqtt] uri %s: expected tcp://, mqtt://, ssl://, mqtts://, ws:// "
                    "or wss://", c->mqtt_uri), -1;
  if (readable("password_file", c->mqtt_password_file, err, cap) ||
      readable("cafile", c->mqtt_cafile, err, cap) ||
      readable("certfile", c->mqtt_certfile, err, cap) ||
      readable("keyfile", c->mqtt_keyfile, err, cap) ||
      readable("keyfile_password_file", c->mqtt_keyfile_password_file, err, cap))
    return -1;
  if (c->mqtt_capath[0] && access(c->mqtt_capath, R_OK | X_OK) != 0)
    return snprintf(err, cap, "[mqtt] capath %s: %s", c->mqtt_capath, strerror(errno)), -1;
  if (writable_dir("[spool] dir", c->spool_dir, err, cap) ||
      file_dir("[alerts] log", c->alert_log, err, cap) ||
      file_dir("[pipeline] deadletter", c->deadletter, err, cap))
    return -1;
  if (!(c->det.thermal_warn_c < c->det.thermal_crit_c))
    return snprintf(err, cap, "[detectors] thermal_warn_c %g must be below thermal_crit_c %g",
                    c->det.thermal_warn_c, c->det.thermal_crit_c), -1;
  return 0;
}

int cw_preflight_strict(const cw_config_t *c, char *err, size_t cap) {
  if (c->duplicate[0]) return snprintf(err, cap, "%s", c->duplicate), -1;
  return 0;
}
