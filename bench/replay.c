/* replay.c - publish a capture (docs/CAPTURE.md) to an MQTT broker, as fast as
 * possible or at a multiple of the recorded timing, over P connections (each
 * topic pinned to one connection by hash, so per-socket order holds), with a
 * bounded window of unacknowledged messages per connection. Payload "ts"
 * values are shifted into the present: paced, the first record maps to now;
 * as fast as possible, the last one does (so nothing lands in the future). */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <MQTTAsync.h>

#include "capture.h"

typedef struct conn {
  MQTTAsync cli;
  int idx;
  int inflight;  /* sent, not yet completed (under mu) */
  int state;     /* 0 connecting, 1 up, -1 failed (under mu) */
  bool disconnected;
} conn_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static uint64_t n_failed; /* publishes that completed with failure (under mu) */
static bool lost;         /* a connection dropped (under mu) */
static volatile sig_atomic_t interrupted;

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void on_connected(void *ctx, MQTTAsync_successData *d) {
  conn_t *c = ctx;
  (void)d;
  pthread_mutex_lock(&mu);
  c->state = 1;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}
static void on_connect_failed(void *ctx, MQTTAsync_failureData *d) {
  conn_t *c = ctx;
  fprintf(stderr, "replay: connection %d failed: %s (code %d)\n", c->idx,
          d && d->message ? d->message : "no reason given", d ? d->code : 0);
  pthread_mutex_lock(&mu);
  c->state = -1;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}
static void on_lost(void *ctx, char *cause) {
  conn_t *c = ctx;
  fprintf(stderr, "replay: connection %d lost: %s\n", c->idx, cause ? cause : "unknown");
  pthread_mutex_lock(&mu);
  lost = true;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}
static int on_message(void *ctx, char *topic, int tlen, MQTTAsync_message *m) {
  (void)ctx;
  (void)tlen;
  MQTTAsync_freeMessage(&m);
  MQTTAsync_free(topic);
  return 1;
}
/* Completion of one publish: PUBACK for QoS 1, written to the socket for
 * QoS 0. Gives back one unit of the connection's window. */
static void on_sent(void *ctx, MQTTAsync_successData *d) {
  conn_t *c = ctx;
  (void)d;
  pthread_mutex_lock(&mu);
  c->inflight--;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}
static void on_send_failed(void *ctx, MQTTAsync_failureData *d) {
  conn_t *c = ctx;
  (void)d;
  pthread_mutex_lock(&mu);
  c->inflight--;
  n_failed++;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}
static void on_disconnected(void *ctx, MQTTAsync_successData *d) {
  conn_t *c = ctx;
  (void)d;
  pthread_mutex_lock(&mu);
  c->disconnected = true;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

static void on_signal(int sig) {
  (void)sig;
  interrupted = 1;
}

/* FNV-1a: keeps one topic on one connection. */
static uint32_t fnv1a(const char *p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 16777619u;
  return h;
}

/* Copy payload into out, adding delta_ms to the number after every "ts":
 * key (textual: no JSON re-encode). Counts the keys seen in *nts. Returns the
 * new length, or -1 if out is too small. */
static long shift_ts(const uint8_t *p, size_t len, int64_t delta_ms, char *out, size_t cap,
                     int *nts) {
  static const char key[] = "\"ts\":";
  size_t i = 0, o = 0;
  *nts = 0;
  while (i < len) {
    const uint8_t *hit = memmem(p + i, len - i, key, sizeof key - 1);
    size_t upto = hit ? (size_t)(hit - p) + sizeof key - 1 : len;
    if (o + (upto - i) > cap) return -1;
    memcpy(out + o, p + i, upto - i);
    o += upto - i;
    i = upto;
    if (!hit) break;
    (*nts)++;
    while (i < len && (p[i] == ' ' || p[i] == '\t')) {
      if (o >= cap) return -1;
      out[o++] = (char)p[i++];
    }
    size_t j = i;
    bool neg = j < len && p[j] == '-';
    if (neg) j++;
    int64_t v = 0;
    size_t d0 = j;
    while (j < len && p[j] >= '0' && p[j] <= '9' && j - d0 < 18) v = v * 10 + (p[j++] - '0');
    bool is_int = j > d0 && (j == len || (p[j] != '.' && p[j] != 'e' && p[j] != 'E' &&
                                          !(p[j] >= '0' && p[j] <= '9')));
    if (!is_int || delta_ms == 0) continue; /* leave anything odd untouched */
    if (neg) v = -v;
    char num[24];
    int n = snprintf(num, sizeof num, "%lld", (long long)(v + delta_ms));
    if (o + (size_t)n > cap) return -1;
    memcpy(out + o, num, (size_t)n);
    o += (size_t)n;
    i = j;
  }
  return (long)o;
}

static int count_ts(const uint8_t *p, size_t len) {
  int n = 0;
  const uint8_t *q = p, *end = p + len, *hit;
  while (q < end && (hit = memmem(q, (size_t)(end - q), "\"ts\":", 5)) != NULL) {
    n++;
    q = hit + 5;
  }
  return n;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: replay -f FILE [-u mqtt_uri] [-P parallel_connections] [-q 0|1]\n"
          "              [-x speed_factor | --asap] [--no-shift] [--client-prefix X]\n"
          "              [--max-inflight N] [--check]\n"
          "Defaults: -u tcp://127.0.0.1:1883 -P 1 -q 1 --asap --client-prefix cw-replay\n"
          "--max-inflight 100 (per connection). --check validates the file and exits.\n");
}

static void progress(size_t done, size_t total, int64_t t0, bool tty) {
  double el = (double)(mono_us() - t0) / 1e6;
  double rate = el > 0 ? (double)done / el : 0;
  if (tty) {
    int bar = total ? (int)(30.0 * (double)done / (double)total) : 30;
    fprintf(stderr, "\r[%.*s%*s] %3d%% %zu/%zu msgs %.0f msgs/s ", bar,
            "##############################", 30 - bar, "",
            total ? (int)(100.0 * (double)done / (double)total) : 100, done, total, rate);
  } else {
    fprintf(stderr, "replay: %zu/%zu msgs, %.1f s, %.0f msgs/s\n", done, total, el, rate);
  }
}

int main(int argc, char **argv) {
  const char *file = NULL, *uri = "tcp://127.0.0.1:1883", *prefix = "cw-replay";
  /* Paho keeps unfinished commands in lists it scans per message: measured
   * here, a window of 1000 cost ~74 us CPU per message, 100 ~32 us. */
  int P = 1, qos = 1, max_inflight = 100;
  double speed = 0; /* 0 = as fast as possible */
  bool shift = true, check = false;
  cw_cap_t cap = {0};
  conn_t *conns = NULL;
  char *pbuf = NULL;
  int rc = 1, c;
  static const struct option opts[] = {
      {"asap", no_argument, 0, 'A'},          {"no-shift", no_argument, 0, 'N'},
      {"client-prefix", required_argument, 0, 'C'}, {"max-inflight", required_argument, 0, 'I'},
      {"check", no_argument, 0, 'K'},         {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  while ((c = getopt_long(argc, argv, "f:u:P:q:x:h", opts, NULL)) != -1) {
    switch (c) {
    case 'f': file = optarg; break;
    case 'u': uri = optarg; break;
    case 'P': P = atoi(optarg); break;
    case 'q': qos = atoi(optarg); break;
    case 'x': speed = atof(optarg); break;
    case 'A': speed = 0; break;
    case 'N': shift = false; break;
    case 'C': prefix = optarg; break;
    case 'I': max_inflight = atoi(optarg); break;
    case 'K': check = true; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (!file || P < 1 || P > 256 || (qos != 0 && qos != 1) || speed < 0 || max_inflight < 1 ||
      optind != argc) {
    usage(stderr);
    return 2;
  }
  int lr = cw_cap_load(&cap, file);
  if (lr) {
    fprintf(stderr, "replay: %s: %s\n", file,
            lr == -EINVAL ? "not a complete capture file (bad magic or truncated record)"
                          : strerror(-lr));
    return 1;
  }
  size_t maxp = 0;
  {
    size_t off = CW_CAP_MAGIC_LEN;
    cw_cap_rec_t r;
    uint64_t readings = 0;
    while (cw_cap_parse(cap.buf, cap.len, &off, &r) == 1) {
      int n = count_ts(r.payload, r.payload_len);
      readings += n ? (uint64_t)n : 1;
      if (r.payload_len > maxp) maxp = r.payload_len;
    }
    if (check) {
      printf("replay: %s: %zu msgs, %llu readings, %.3f s recorded\n", file, cap.nrec,
             (unsigned long long)readings, (double)(cap.last_us - cap.first_us) / 1e6);
      cw_cap_free(&cap);
      return 0;
    }
  }
  /* Each shifted number may grow by a few digits: leave room for it. */
  size_t pcap = maxp * 2 + 64;
  pbuf = malloc(pcap);
  conns = calloc((size_t)P, sizeof *conns);
  if (!pbuf || !conns) goto out;
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);

  for (int i = 0; i < P; i++) {
    conn_t *cn = &conns[i];
    char id[96];
    cn->idx = i;
    snprintf(id, sizeof id, "%s-%d-%d", prefix, (int)getpid(), i);
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    co.maxBufferedMessages = max_inflight + 16; /* paho counts queued sends against it */
    if (MQTTAsync_createWithOptions(&cn->cli, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) !=
        MQTTASYNC_SUCCESS) {
      fprintf(stderr, "replay: bad broker uri %s\n", uri);
      goto out;
    }
    MQTTAsync_setCallbacks(cn->cli, cn, on_lost, on_message, NULL);
    MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
    o.keepAliveInterval = 30;
    o.cleansession = 1;
    o.maxInflight = max_inflight;
    o.connectTimeout = 10;
    o.onSuccess = on_connected;
    o.onFailure = on_connect_failed;
    o.context = cn;
    if (MQTTAsync_connect(cn->cli, &o) != MQTTASYNC_SUCCESS) {
      fprintf(stderr, "replay: connect %d could not start\n", i);
      goto out;
    }
  }
  {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 15;
    pthread_mutex_lock(&mu);
    for (;;) {
      int up = 0, bad = 0;
      for (int i = 0; i < P; i++) up += conns[i].state == 1, bad += conns[i].state == -1;
      if (bad || up == P || interrupted) {
        pthread_mutex_unlock(&mu);
        if (bad || up != P) {
          fprintf(stderr, "replay: could not connect to %s\n", uri);
          goto out;
        }
        break;
      }
      if (pthread_cond_timedwait(&cv, &mu, &dl) == ETIMEDOUT) {
        pthread_mutex_unlock(&mu);
        fprintf(stderr, "replay: timed out connecting to %s\n", uri);
        goto out;
      }
    }
  }

  bool tty = isatty(2);
  /* Paced: the first record maps to now, so ts keep pace with the wall clock.
   * As fast as possible: the LAST record maps to now, so a long capture sent
   * in seconds lands entirely in the recent past instead of minutes ahead
   * (the daemon rejects ts more than 5 min in the future). */
  int64_t anchor_us = speed > 0 ? (int64_t)cap.first_us : (int64_t)cap.last_us;
  int64_t delta_ms = shift ? now_us() / 1000 - anchor_us / 1000 : 0;
  int64_t t0 = mono_us(), last_prog = t0;
  size_t off = CW_CAP_MAGIC_LEN, done = 0;
  uint64_t readings = 0;
  char topic[65536 + 1];
  cw_cap_rec_t r;
  while (!interrupted && cw_cap_parse(cap.buf, cap.len, &off, &r) == 1) {
    if (speed > 0) { /* pace: record i goes out at (recv_i - recv_0) / speed */
      int64_t due = t0 + (int64_t)((double)(r.recv_us - cap.first_us) / speed);
      int64_t wait = due - mono_us();
      if (wait > 200) {
        struct timespec ts = {wait / 1000000, (wait % 1000000) * 1000};
        nanosleep(&ts, NULL);
      }
    }
    int nts = 0;
    long plen = shift_ts(r.payload, r.payload_len, delta_ms, pbuf, pcap, &nts);
    if (plen < 0) {
      fprintf(stderr, "replay: payload grew too much after ts shift\n");
      goto out;
    }
    readings += nts ? (uint64_t)nts : 1;
    memcpy(topic, r.topic, r.topic_len);
    topic[r.topic_len] = '\0';
    conn_t *cn = &conns[P == 1 ? 0 : fnv1a(r.topic, r.topic_len) % (uint32_t)P];
    pthread_mutex_lock(&mu);
    while (cn->inflight >= max_inflight && !lost && !interrupted) {
      struct timespec dl;
      clock_gettime(CLOCK_REALTIME, &dl);
      dl.tv_sec += 1;
      pthread_cond_timedwait(&cv, &mu, &dl);
    }
    bool dead = lost;
    cn->inflight++;
    pthread_mutex_unlock(&mu);
    if (dead) goto out;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = on_sent;
    ro.onFailure = on_send_failed;
    ro.context = cn;
    int src = MQTTAsync_send(cn->cli, topic, (int)plen, pbuf, qos, 0, &ro);
    if (src != MQTTASYNC_SUCCESS) {
      fprintf(stderr, "replay: publish failed (paho code %d)\n", src);
      goto out;
    }
    done++;
    int64_t nowm = mono_us();
    if (nowm - last_prog > (tty ? 200000 : 5000000)) {
      progress(done, cap.nrec, t0, tty);
      last_prog = nowm;
    }
  }
  /* Wait until every publish has completed (bounded). */
  {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 60;
    pthread_mutex_lock(&mu);
    for (;;) {
      int pend = 0;
      for (int i = 0; i < P; i++) pend += conns[i].inflight;
      if (pend == 0 || lost) break;
      if (pthread_cond_timedwait(&cv, &mu, &dl) == ETIMEDOUT) {
        pthread_mutex_unlock(&mu);
        fprintf(stderr, "replay: %d publishes not acknowledged after 60 s\n", pend);
        goto out;
      }
    }
    bool dead = lost;
    uint64_t failed = n_failed;
    pthread_mutex_unlock(&mu);
    double secs = (double)(mono_us() - t0) / 1e6;
    if (tty) {
      progress(done, cap.nrec, t0, tty);
      fputc('\n', stderr);
    }
    if (secs <= 0) secs = 1e-6;
    printf("replay: %zu messages, %llu readings in %.3f s: %.0f msgs/s, %.0f readings/s"
           " (qos %d, %d connection%s%s)\n",
           done, (unsigned long long)readings, secs, (double)done / secs,
           (double)readings / secs, qos, P, P == 1 ? "" : "s",
           speed > 0 ? ", paced" : ", asap");
    if (failed) printf("replay: %llu publishes failed\n", (unsigned long long)failed);
    printf("replay: msgs=%zu readings=%llu seconds=%.3f\n", done, (unsigned long long)readings,
           secs);
    fflush(stdout);
    rc = dead || failed || interrupted ? 1 : 0;
    if (interrupted) fprintf(stderr, "replay: interrupted\n");
  }
out:
  if (conns) {
    for (int i = 0; i < P; i++) {
      if (!conns[i].cli) continue;
      if (conns[i].state == 1) {
        MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
        d.timeout = 2000;
        d.onSuccess = on_disconnected;
        d.context = &conns[i];
        if (MQTTAsync_disconnect(conns[i].cli, &d) == MQTTASYNC_SUCCESS) {
          for (int k = 0; k < 30; k++) { /* bounded: 3 s */
            pthread_mutex_lock(&mu);
            bool gone = conns[i].disconnected;
            pthread_mutex_unlock(&mu);
            if (gone) break;
            usleep(100000);
          }
        }
      }
      MQTTAsync_destroy(&conns[i].cli);
    }
  }
  free(conns);
  free(pbuf);
  cw_cap_free(&cap);
  return rc;
}
