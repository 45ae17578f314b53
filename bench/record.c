/* record.c - subscribe to MQTT topic filters and append every message heard to
 * a capture file (docs/CAPTURE.md), binary-safe, with its receive time. Stops
 * after -n messages, -d seconds, or SIGINT/SIGTERM, and prints the count.
 * With a bare subscriber's cost it doubles as the broker's delivery ceiling. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <MQTTAsync.h>

#include "capture.h"

#define MAX_FILTERS 32

typedef struct rec {
  MQTTAsync cli;
  FILE *out;
  char *filters[MAX_FILTERS];
  int qos[MAX_FILTERS];
  int nfilters;
  uint64_t max_msgs;
  /* under mu */
  pthread_mutex_t mu;
  uint64_t count, bytes;
  int64_t first_us, last_us;
  int state; /* 0 connecting, 1 subscribed, -1 failed */
  bool write_error, lost;
} rec_t;

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) {
  (void)sig;
  interrupted = 1;
}

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void set_state(rec_t *r, int s) {
  pthread_mutex_lock(&r->mu);
  r->state = s;
  pthread_mutex_unlock(&r->mu);
}

/* Paho's receive thread: append and return quickly. */
static int on_message(void *ctx, char *topic, int tlen, MQTTAsync_message *m) {
  rec_t *r = ctx;
  int64_t t = now_us();
  size_t tl = tlen > 0 ? (size_t)tlen : strlen(topic);
  pthread_mutex_lock(&r->mu);
  if (r->max_msgs == 0 || r->count < r->max_msgs) {
    if (cw_cap_write(r->out, (uint64_t)t, topic, tl, m->payload, (size_t)m->payloadlen))
      r->write_error = true;
    if (r->count == 0) r->first_us = t;
    r->last_us = t;
    r->count++;
    r->bytes += (uint64_t)m->payloadlen;
  }
  pthread_mutex_unlock(&r->mu);
  MQTTAsync_freeMessage(&m);
  MQTTAsync_free(topic);
  return 1;
}

static void on_lost(void *ctx, char *cause) {
  rec_t *r = ctx;
  fprintf(stderr, "record: connection lost: %s\n", cause ? cause : "unknown");
  pthread_mutex_lock(&r->mu);
  r->lost = true;
  pthread_mutex_unlock(&r->mu);
}

static void on_subscribed(void *ctx, MQTTAsync_successData *d) {
  (void)d;
  set_state(ctx, 1);
}
static void on_failed(void *ctx, MQTTAsync_failureData *d) {
  fprintf(stderr, "record: connect/subscribe failed: %s (code %d)\n",
          d && d->message ? d->message : "no reason given", d ? d->code : 0);
  set_state(ctx, -1);
}

static void on_connected(void *ctx, MQTTAsync_successData *d) {
  rec_t *r = ctx;
  (void)d;
  MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
  ro.onSuccess = on_subscribed;
  ro.onFailure = on_failed;
  ro.context = r;
  if (MQTTAsync_subscribeMany(r->cli, r->nfilters, r->filters, r->qos, &ro) != MQTTASYNC_SUCCESS)
    set_state(r, -1);
}

static void usage(FILE *f) {
  fprintf(f, "usage: record -u URI -t FILTER [-t FILTER...] -o FILE [-n max_msgs]\n"
             "              [-d seconds] [-q qos]\n"
             "Stops after -n messages, -d seconds, or SIGINT/SIGTERM; prints the count.\n");
}

int main(int argc, char **argv) {
  rec_t r = {.mu = PTHREAD_MUTEX_INITIALIZER};
  const char *uri = NULL, *path = NULL;
  double dur_s = 0;
  int qos = 1, c, rc = 1;
  while ((c = getopt(argc, argv, "u:t:o:n:d:q:h")) != -1) {
    switch (c) {
    case 'u': uri = optarg; break;
    case 't':
      if (r.nfilters == MAX_FILTERS) {
        fprintf(stderr, "record: at most %d filters\n", MAX_FILTERS);
        return 2;
      }
      r.filters[r.nfilters++] = optarg;
      break;
    case 'o': path = optarg; break;
    case 'n': r.max_msgs = strtoull(optarg, NULL, 10); break;
    case 'd': dur_s = atof(optarg); break;
    case 'q': qos = atoi(optarg); break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (!uri || !path || r.nfilters == 0 || qos < 0 || qos > 2 || dur_s < 0 || optind != argc) {
    usage(stderr);
    return 2;
  }
  for (int i = 0; i < r.nfilters; i++) r.qos[i] = qos;
  r.out = fopen(path, "wb");
  if (!r.out || cw_cap_write_header(r.out)) {
    perror(path);
    goto out;
  }
  /* A large stdio buffer: the callback must not block on small writes. */
  setvbuf(r.out, NULL, _IOFBF, 1 << 20);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  char id[64];
  snprintf(id, sizeof id, "cw-record-%d", (int)getpid());
  if (MQTTAsync_create(&r.cli, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL) != MQTTASYNC_SUCCESS) {
    fprintf(stderr, "record: bad broker uri %s\n", uri);
    goto out;
  }
  MQTTAsync_setCallbacks(r.cli, &r, on_lost, on_message, NULL);
  MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
  o.keepAliveInterval = 30;
  o.cleansession = 1;
  o.connectTimeout = 10;
  o.onSuccess = on_connected;
  o.onFailure = on_failed;
  o.context = &r;
  if (MQTTAsync_connect(r.cli, &o) != MQTTASYNC_SUCCESS) {
    fprintf(stderr, "record: cannot start connecting to %s\n", uri);
    goto out;
  }
  int64_t start = now_us(), subscribed_at = 0;
  for (;;) {
    usleep(20000);
    pthread_mutex_lock(&r.mu);
    int st = r.state;
    bool stop = r.lost || r.write_error || (r.max_msgs && r.count >= r.max_msgs);
    pthread_mutex_unlock(&r.mu);
    if (st < 0) goto out;
    if (st == 1 && !subscribed_at) {
      subscribed_at = now_us();
      fprintf(stderr, "record: subscribed to %d filter%s on %s\n", r.nfilters,
              r.nfilters == 1 ? "" : "s", uri);
    }
    if (st == 0 && now_us() - start > 15000000) {
      fprintf(stderr, "record: timed out connecting to %s\n", uri);
      goto out;
    }
    if (stop || interrupted) break;
    if (dur_s > 0 && subscribed_at && (double)(now_us() - subscribed_at) / 1e6 >= dur_s) break;
  }
  MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
  d.timeout = 1000;
  MQTTAsync_disconnect(r.cli, &d);
  usleep(200000);
  pthread_mutex_lock(&r.mu);
  double span = r.count > 1 ? (double)(r.last_us - r.first_us) / 1e6 : 0;
  printf("record: %llu msgs, %llu payload bytes, %.3f s first to last%s\n",
         (unsigned long long)r.count, (unsigned long long)r.bytes, span,
         r.write_error ? " (WRITE ERROR)" : "");
  printf("record: msgs=%llu seconds=%.3f\n", (unsigned long long)r.count, span);
  rc = r.write_error || r.lost ? 1 : 0;
  pthread_mutex_unlock(&r.mu);
out:
  if (r.cli) MQTTAsync_destroy(&r.cli);
  if (r.out && fclose(r.out)) {
    perror(path);
    rc = 1;
  }
  return rc;
}
