/* alertlat.c - alert latency probe for `make bench`: publishes readings that
 * must raise a critical thermal_runaway alert (t = 95 C) on fresh sockets and
 * times each until its alert arrives on the alert topic, end to end through
 * the broker, the daemon and the broker again.
 *   alertlat -u URI [-n probes] [-g gap_ms] [-p topic_prefix] [-w timeout_s] [-o FILE]
 * Prints: alertlat: probes=N received=M p50_ms=.. p99_ms=.. max_ms=..
 * -o FILE writes every latency (ms, one per line, sorted) for plotting. */
#include <MQTTAsync.h>
#include <getopt.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROBES 100000

static double sent_ms[MAX_PROBES];
static double lat_ms[MAX_PROBES];
static _Atomic int received;
static char run_id[16];
static const char *prefix = "cw/alerts";

static double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long long wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Alert topics look like PREFIX/LAT<run>-<probe>/1/thermal_runaway. */
static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m) {
  (void)ctx;
  double now = mono_ms();
  char buf[256];
  int n = topic_len > 0 ? topic_len : (int)strlen(topic);
  if (n >= (int)sizeof buf) n = sizeof buf - 1;
  memcpy(buf, topic, n);
  buf[n] = 0;
  char want[64];
  snprintf(want, sizeof want, "/LAT%s-", run_id);
  char *p = strstr(buf, want);
  if (p && m->payloadlen > 0 && memmem(m->payload, m->payloadlen, "\"raised\"", 8)) {
    int idx = atoi(p + strlen(want));
    if (idx >= 0 && idx < MAX_PROBES && lat_ms[idx] == 0 && sent_ms[idx] > 0) {
      lat_ms[idx] = now - sent_ms[idx];
      atomic_fetch_add(&received, 1);
    }
  }
  MQTTAsync_freeMessage(&m);
  MQTTAsync_free(topic);
  return 1;
}

static void on_ok(void *ctx, MQTTAsync_successData *r) {
  (void)r;
  atomic_fetch_add((_Atomic int *)ctx, 1);
}

static void on_fail(void *ctx, MQTTAsync_failureData *r) {
  (void)ctx;
  fprintf(stderr, "alertlat: MQTT operation failed (%d)\n", r ? r->code : -1);
  exit(1);
}

static _Atomic int sub_connected, pub_connected, subscribed;

static MQTTAsync mk(const char *uri, const char *id, _Atomic int *flag) {
  MQTTAsync c;
  MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
  if (MQTTAsync_createWithOptions(&c, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) != 0) exit(1);
  MQTTAsync_setCallbacks(c, NULL, NULL, on_message, NULL);
  MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
  o.cleansession = 1;
  o.onSuccess = on_ok;
  o.onFailure = on_fail;
  o.context = (void *)flag;
  if (MQTTAsync_connect(c, &o) != 0) exit(1);
  while (!atomic_load(flag)) usleep(1000);
  return c;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  const char *uri = "tcp://127.0.0.1:1883";
  const char *dump = NULL;
  int n = 200, gap = 20, wait_s = 10, opt;
  while ((opt = getopt(argc, argv, "u:n:g:p:w:o:")) != -1) {
    switch (opt) {
    case 'u': uri = optarg; break;
    case 'n': n = atoi(optarg); break;
    case 'g': gap = atoi(optarg); break;
    case 'p': prefix = optarg; break;
    case 'w': wait_s = atoi(optarg); break;
    case 'o': dump = optarg; break;
    default:
      fprintf(stderr,
              "usage: alertlat -u URI [-n probes] [-g gap_ms] [-p prefix] [-w timeout_s] [-o FILE]\n");
      return 2;
    }
  }
  if (n < 1 || n > MAX_PROBES) return 2;
  snprintf(run_id, sizeof run_id, "%lld", wall_ms() % 1000000);
  /* Client ids carry the run id: two probes never take over each other's connection. */
  char sub_id[64], pub_id[64];
  snprintf(sub_id, sizeof sub_id, "cw-alertlat-sub-%s", run_id);
  snprintf(pub_id, sizeof pub_id, "cw-alertlat-pub-%s", run_id);
  MQTTAsync sub = mk(uri, sub_id, &sub_connected);
  char filter[256];
  snprintf(filter, sizeof filter, "%s/+/+/thermal_runaway", prefix);
  MQTTAsync_responseOptions so = MQTTAsync_responseOptions_initializer;
  so.onSuccess = on_ok;
  so.onFailure = on_fail;
  so.context = (void *)&subscribed;
  if (MQTTAsync_subscribe(sub, filter, 1, &so) != 0) return 1;
  while (!atomic_load(&subscribed)) usleep(1000);
  MQTTAsync pub = mk(uri, pub_id, &pub_connected);
  for (int i = 0; i < n; i++) {
    char topic[128], payload[160];
    snprintf(topic, sizeof topic, "cw/LAT%s-%d/1/telemetry", run_id, i);
    int len = snprintf(payload, sizeof payload,
                       "{\"ts\":%lld,\"v\":230.0,\"a\":0.8,\"w\":184.0,\"t\":95.0,\"smoke\":0,"
                       "\"state\":\"charging\"}",
                       wall_ms());
    MQTTAsync_message m = MQTTAsync_message_initializer;
    m.payload = payload;
    m.payloadlen = len;
    m.qos = 1;
    sent_ms[i] = mono_ms();
    if (MQTTAsync_sendMessage(pub, topic, &m, NULL) != 0) {
      fprintf(stderr, "alertlat: publish failed\n");
      return 1;
    }
    usleep((useconds_t)gap * 1000);
  }
  double deadline = mono_ms() + wait_s * 1000.0;
  while (atomic_load(&received) < n && mono_ms() < deadline) usleep(5000);
  int got = atomic_load(&received);
  double *v = malloc(sizeof(double) * (got ? got : 1));
  int k = 0;
  for (int i = 0; i < n; i++)
    if (lat_ms[i] > 0) v[k++] = lat_ms[i];
  qsort(v, k, sizeof *v, cmp);
  if (dump) {
    FILE *f = fopen(dump, "w");
    if (!f) {
      perror(dump);
    } else {
      for (int i = 0; i < k; i++) fprintf(f, "%.3f\n", v[i]);
      fclose(f);
    }
  }
  printf("alertlat: probes=%d received=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", n, k,
         k ? v[k / 2] : 0, k ? v[(int)((k - 1) * 0.99)] : 0, k ? v[k - 1] : 0);
  free(v);
  MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
  MQTTAsync_disconnect(pub, &d);
  MQTTAsync_disconnect(sub, &d);
  usleep(100000);
  MQTTAsync_destroy(&pub);
  MQTTAsync_destroy(&sub);
  return k == n ? 0 : 1;
}
