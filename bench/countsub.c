/* countsub.c - the broker-delivery ceiling for `make bench`: a bare paho
 * MQTTAsync subscriber that only counts messages. Its msgs/s and CPU per
 * message are what any MQTT consumer on this machine pays before doing work.
 *   countsub -u URI -t FILTER [-q QOS] [-n EXPECT] [-i IDLE_S] [-c CLIENT_ID] [-C]
 * -C keeps a persistent session (clean session off), so a backlog queued by
 * the broker while it was away is drained: the consumer-side ceiling.
 * Seconds run from the first message to the last; CPU is this process's
 * user+system time from the connect to the end.
 * Prints one machine-readable line: countsub: msgs=N seconds=S msgs_per_s=R cpu_us_per_msg=C */
#include <MQTTAsync.h>
#include <errno.h>
#include <getopt.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static _Atomic long count;
static _Atomic long first_ns, last_ns;
static _Atomic int subscribed, failed;
static const char *filter = "cw/#";
static int qos = 1;

static long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m) {
  (void)ctx;
  (void)topic_len;
  long t = now_ns();
  long zero = 0;
  atomic_compare_exchange_strong(&first_ns, &zero, t);
  atomic_store(&last_ns, t);
  atomic_fetch_add(&count, 1);
  MQTTAsync_freeMessage(&m);
  MQTTAsync_free(topic);
  return 1;
}

static void on_sub(void *ctx, MQTTAsync_successData *r) {
  (void)ctx;
  (void)r;
  atomic_store(&subscribed, 1);
}

static void on_fail(void *ctx, MQTTAsync_failureData *r) {
  (void)ctx;
  fprintf(stderr, "countsub: %s failed (%d)\n", "connect/subscribe", r ? r->code : -1);
  atomic_store(&failed, 1);
}

static void on_connect(void *ctx, MQTTAsync_successData *r) {
  (void)r;
  MQTTAsync c = ctx;
  MQTTAsync_responseOptions o = MQTTAsync_responseOptions_initializer;
  o.onSuccess = on_sub;
  o.onFailure = on_fail;
  o.context = c;
  if (MQTTAsync_subscribe(c, filter, qos, &o) != MQTTASYNC_SUCCESS) atomic_store(&failed, 1);
}

int main(int argc, char **argv) {
  const char *uri = "tcp://127.0.0.1:1883", *cid = "cw-countsub";
  long expect = 0;
  double idle_s = 5;
  int opt, clean = 1;
  while ((opt = getopt(argc, argv, "u:t:q:n:i:c:Ch")) != -1) {
    switch (opt) {
    case 'u': uri = optarg; break;
    case 't': filter = optarg; break;
    case 'q': qos = atoi(optarg); break;
    case 'n': expect = atol(optarg); break;
    case 'i': idle_s = atof(optarg); break;
    case 'c': cid = optarg; break;
    case 'C': clean = 0; break;
    default:
      fprintf(stderr, "usage: countsub -u URI -t FILTER [-q QOS] [-n EXPECT] [-i IDLE_S] [-c ID] [-C]\n");
      return 2;
    }
  }
  MQTTAsync c;
  MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
  if (MQTTAsync_createWithOptions(&c, uri, cid, MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) !=
      MQTTASYNC_SUCCESS)
    return 1;
  MQTTAsync_setCallbacks(c, NULL, NULL, on_message, NULL);
  MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
  o.cleansession = clean;
  o.keepAliveInterval = 30;
  o.onSuccess = on_connect;
  o.onFailure = on_fail;
  o.context = c;
  /* CPU counts from before the connect: with -C the backlog starts flowing
   * as soon as the session resumes, before the subscribe is acknowledged. */
  double cpu0 = cpu_s();
  if (MQTTAsync_connect(c, &o) != MQTTASYNC_SUCCESS) return 1;
  while (!atomic_load(&subscribed) && !atomic_load(&failed)) usleep(1000);
  if (atomic_load(&failed)) return 1;
  printf("countsub: ready\n");
  fflush(stdout);
  long last_seen = 0, idle_since = now_ns();
  for (;;) {
    usleep(2000);
    long n = atomic_load(&count);
    if (expect > 0 && n >= expect) break;
    if (n != last_seen) {
      last_seen = n;
      idle_since = now_ns();
    } else if (n > 0 && (now_ns() - idle_since) / 1e9 > idle_s) {
      break;
    } else if (n == 0 && (now_ns() - idle_since) / 1e9 > 10 * idle_s) {
      break;
    }
  }
  double cpu = cpu_s() - cpu0;
  long n = atomic_load(&count);
  double secs = n ? (atomic_load(&last_ns) - atomic_load(&first_ns)) / 1e9 : 0;
  printf("countsub: msgs=%ld seconds=%.3f msgs_per_s=%.0f cpu_us_per_msg=%.2f\n", n, secs,
         secs > 0 ? n / secs : 0, n ? cpu * 1e6 / n : 0);
  MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
  MQTTAsync_disconnect(c, &d);
  usleep(100000);
  MQTTAsync_destroy(&c);
  return expect > 0 && n < expect ? 1 : 0;
}
