/* mqtt_client.c - see mqtt_client.h. */
#include <errno.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fsutil.h"
#include "mqtt_client.h"

static int read_password(const char *path, char *out, size_t cap) {
  FILE *f = fopen(path, "re");
  if (!f) return -errno;
  if (!fgets(out, (int)cap, f)) out[0] = 0;
  fclose(f);
  out[strcspn(out, "\r\n")] = 0;
  return 0;
}

/* OpenSSL's own words (certificate verify failed, ...), once per attempt. */
static int on_ssl_error(const char *str, size_t len, void *u) {
  cw_mqtt_client_t *cl = u;
  if (!cl->quiet)
    cw_log(CW_LOG_ERROR, "mqtt: %s TLS: %.*s", cl->what, (int)strcspn(str, "\n") < (int)len ?
           (int)strcspn(str, "\n") : (int)len, str);
  return 0;
}

/* A client certificate that cannot work is a start-up error in words: the
 * broker's refusal of an expired one reaches the client as a bare EOF. */
static int check_cert(const char *path, const char *what) {
  FILE *f = fopen(path, "re");
  if (!f) {
    int rc = -errno;
    cw_log(CW_LOG_ERROR, "mqtt: %s certfile %s: %s", what, path, strerror(errno));
    return rc;
  }
  X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
  fclose(f);
  if (!x) {
    cw_log(CW_LOG_ERROR, "mqtt: %s certfile %s: not a PEM certificate", what, path);
    return -EINVAL;
  }
  int rc = 0;
  if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
    cw_log(CW_LOG_ERROR, "mqtt: %s client certificate %s: certificate expired", what, path);
    rc = -EKEYEXPIRED;
  } else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
    cw_log(CW_LOG_ERROR, "mqtt: %s client certificate %s: certificate not yet valid", what, path);
    rc = -EKEYEXPIRED;
  }
  X509_free(x);
  return rc;
}

static int tls_setup(cw_mqtt_client_t *cl) {
  const cw_config_t *cfg = cl->env->cfg;
  int rc;
  cl->tls = !strncmp(cfg->mqtt_uri, "ssl://", 6) || !strncmp(cfg->mqtt_uri, "mqtts://", 8);
  if (!cl->tls) return 0;
  if (cfg->mqtt_keyfile_password_file[0] &&
      (rc = read_password(cfg->mqtt_keyfile_password_file, cl->keypass, sizeof cl->keypass))) {
    cw_log(CW_LOG_ERROR, "mqtt: keyfile_password_file %s: %s", cfg->mqtt_keyfile_password_file,
           strerror(-rc));
    return rc;
  }
  if (cfg->mqtt_certfile[0] && (rc = check_cert(cfg->mqtt_certfile, cl->what))) return rc;
  MQTTAsync_SSLOptions s = MQTTAsync_SSLOptions_initializer;
  s.trustStore = cfg->mqtt_cafile[0] ? cfg->mqtt_cafile : NULL;
  s.CApath = cfg->mqtt_capath[0] ? cfg->mqtt_capath : NULL;
  s.keyStore = cfg->mqtt_certfile[0] ? cfg->mqtt_certfile : NULL;
  s.privateKey = cfg->mqtt_keyfile[0] ? cfg->mqtt_keyfile : NULL;
  s.privateKeyPassword = cl->keypass[0] ? cl->keypass : NULL;
  s.sslVersion = cfg->mqtt_tls_version;
  s.enableServerCertAuth = cfg->mqtt_tls_verify;
  s.verify = cfg->mqtt_tls_verify; /* host name too */
  s.ssl_error_cb = on_ssl_error;
  s.ssl_error_context = cl;
  cl->ssl = s;
  return 0;
}

/* paho's failure in words: MQTT CONNACK codes and the common transport cases. */
static const char *connect_words(const MQTTAsync_failureData *r) {
  if (!r) return "no answer";
  switch (r->code) {
  case 1: return "refused: unacceptable protocol version";
  case 2: return "refused: client id rejected";
  case 3: return "refused: server unavailable";
  case 4: return "refused: bad user name or password";
  case 5: return "refused: not authorised";
  case MQTTASYNC_FAILURE:
    if (r->message && strstr(r->message, "TLS"))
      return "connection refused, or the TLS handshake failed (certificate not accepted?)";
    return r->message ? r->message : "connection refused";
  default: return r->message ? r->message : "failed";
  }
}

int cw_mqtt_client_init(cw_mqtt_client_t *cl, const cw_env_t *env, uv_loop_t *loop, void *owner,
                        const char *id, const char *what, MQTTAsync_createOptions *co) {
  const cw_config_t *cfg = env->cfg;
  int rc;
  cl->env = env;
  cl->owner = owner;
  cl->what = what;
  snprintf(cl->id, sizeof cl->id, "%s", id);
  if (cfg->mqtt_password_file[0] &&
      (rc = read_password(cfg->mqtt_password_file, cl->password, sizeof cl->password))) {
    cw_log(CW_LOG_ERROR, "mqtt: password_file %s: %s", cfg->mqtt_password_file, strerror(-rc));
    return rc;
  }
  /* "uri" may list several brokers (a cluster): tried in order at each connect */
  snprintf(cl->uris, sizeof cl->uris, "%s", cfg->mqtt_uri);
  for (char *save = NULL, *u = strtok_r(cl->uris, ", ", &save); u && cl->nuris < 8;
       u = strtok_r(NULL, ", ", &save))
    cl->uri_v[cl->nuris++] = u;
  if (!cl->nuris) return -EINVAL;
  int ptype = MQTTCLIENT_PERSISTENCE_NONE;
  if (cl->persist_dir) {
    if ((rc = cw_mkdir_p(cl->persist_dir))) {
      cw_log(CW_LOG_ERROR, "mqtt: %s outbox %s: %s", what, cl->persist_dir, strerror(-rc));
      return rc;
    }
    ptype = MQTTCLIENT_PERSISTENCE_DEFAULT;
  }
  if ((rc = tls_setup(cl))) return rc;
  rc = MQTTAsync_createWithOptions(&cl->c, cl->uri_v[0], cl->id, ptype, (void *)cl->persist_dir,
                                   co);
  if (rc != MQTTASYNC_SUCCESS) {
    cw_log(CW_LOG_ERROR, "mqtt: cannot create the %s client for %s: error %d", what, cfg->mqtt_uri,
           rc);
    return -EINVAL;
  }
  cl->created = 1;
  if (loop) {
    uv_timer_init(loop, &cl->retry);
    cl->retry.data = cl;
    cl->timer_open = 1;
  }
  return 0;
}

static void on_connect_fail(void *ctx, MQTTAsync_failureData *r) {
  cw_mqtt_client_t *cl = ctx;
  atomic_store(&cl->connecting, 0);
  if (!cl->quiet)
    cw_log(CW_LOG_WARN, "mqtt: %s connect to %s failed: %s; retrying", cl->what,
           cl->env->cfg->mqtt_uri, connect_words(r));
}

static int client_connect(cw_mqtt_client_t *cl) {
  const cw_config_t *cfg = cl->env->cfg;
  MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
  o.keepAliveInterval = cfg->mqtt_keepalive;
  o.cleansession = 0; /* persistent session: the broker queues while we are away */
  o.automaticReconnect = !cl->no_reconnect;
  o.minRetryInterval = 1;
  o.maxRetryInterval = cfg->mqtt_reconnect_max_s;
  o.connectTimeout = 10;
  if (cl->nuris > 1) {
    o.serverURIs = cl->uri_v;
    o.serverURIcount = cl->nuris;
  }
  if (cfg->mqtt_username[0]) {
    o.username = cfg->mqtt_username;
    o.password = cl->password[0] ? cl->password : NULL;
  }
  if (cl->tls) o.ssl = &cl->ssl;
  o.onFailure = on_connect_fail;
  o.context = cl;
  atomic_store(&cl->connecting, 1);
  int rc = MQTTAsync_connect(cl->c, &o);
  if (rc != MQTTASYNC_SUCCESS) {
    atomic_store(&cl->connecting, 0);
    cw_log(CW_LOG_ERROR, "mqtt: %s connect request failed: %s (error %d)", cl->what,
           rc == MQTTASYNC_BAD_PROTOCOL ? "this URI scheme needs a TLS build of paho"
                                        : "invalid connect options", rc);
    return -EIO;
  }
  return 0;
}

void cw_mqtt_client_connected(cw_mqtt_client_t *cl) {
  atomic_store(&cl->connecting, 0);
  atomic_store(&cl->ever_connected, 1);
}

/* Main loop, every second: paho's automatic reconnect only takes over
 * after a first successful connect, so the first one is retried here with
 * capped back-off. */
static void on_retry(uv_timer_t *t) {
  cw_mqtt_client_t *cl = t->data;
  if (atomic_load(&cl->paused) || atomic_load(&cl->ever_connected) || atomic_load(&cl->connecting))
    return;
  int64_t now = cw_now_ms();
  if (now < cl->next_try_ms) return;
  int max_s = cl->env->cfg->mqtt_reconnect_max_s;
  cl->backoff_s = cl->backoff_s ? cl->backoff_s * 2 : 1;
  if (cl->backoff_s > max_s) cl->backoff_s = max_s;
  cl->next_try_ms = now + (int64_t)cl->backoff_s * 1000;
  client_connect(cl);
}

int cw_mqtt_client_start(cw_mqtt_client_t *cl) {
  int rc = client_connect(cl);
  cl->backoff_s = 1;
  cl->next_try_ms = cw_now_ms() + 1000;
  if (cl->timer_open) uv_timer_start(&cl->retry, on_retry, 1000, 1000);
  return rc;
}

int cw_mqtt_client_pause(cw_mqtt_client_t *cl) {
  if (atomic_exchange(&cl->paused, 1)) return 1;
  if (cl->timer_open) uv_timer_stop(&cl->retry);
  return 0;
}

static void on_disc(void *ctx, MQTTAsync_successData *r) {
  (void)r;
  atomic_store(&((cw_mqtt_client_t *)ctx)->disc_done, 1);
}
static void on_disc_fail(void *ctx, MQTTAsync_failureData *r) {
  (void)r;
  atomic_store(&((cw_mqtt_client_t *)ctx)->disc_done, 1);
}

void cw_mqtt_client_disconnect(cw_mqtt_client_t *cl, int timeout_ms, int wait_ms) {
  MQTTAsync_disconnectOptions o = MQTTAsync_disconnectOptions_initializer;
  o.timeout = timeout_ms;
  o.onSuccess = on_disc;
  o.onFailure = on_disc_fail;
  o.context = cl;
  atomic_store(&cl->disc_done, 0);
  if (MQTTAsync_disconnect(cl->c, &o) != MQTTASYNC_SUCCESS) atomic_store(&cl->disc_done, 1);
  for (int i = 0; i < wait_ms / 5 && !atomic_load(&cl->disc_done); i++) cw_sleep_ms(5);
}

static void on_closed(uv_handle_t *h) { free(((cw_mqtt_client_t *)h->data)->owner); }

int cw_mqtt_client_release(cw_mqtt_client_t *cl) {
  if (cl->created) MQTTAsync_destroy(&cl->c);
  cl->created = 0;
  if (!cl->timer_open) return 0;
  uv_close((uv_handle_t *)&cl->retry, on_closed);
  return 1;
}
