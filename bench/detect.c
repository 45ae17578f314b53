/* detect.c - detection benchmark (make bench-detect): replays the labelled
 * corpus (real public traces from tests/data and generated field
 * scenarios, see tests/test_detect_util.c) through the detection engine
 * with the default thresholds at 1, 5, 15 and 30 s sampling, and prints per
 * trace the alerts raised, the lead time before each labelled runaway onset
 * and the false alerts, then the totals: recall, false alerts per 1,000
 * socket-hours, median and worst lead. Markdown on stdout.
 *
 * Labels: a runaway onset is the first 1 Hz step >= 1 C/s above 80 C of a
 * cell (FSRI data). Detected = a thermal_runaway alert on that socket at or
 * before the onset. A scenario may also declare true incidents per kind
 * (the cycling iron is one real overload). Every other "raised" event is a
 * false alert: the other field scenarios are healthy equipment. A
 * "repeated" event is not counted (it is not announced). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_detect_util.h"

const char *cw_test_data_dir(void) {
  const char *d = getenv("CW_TEST_DATA");
  return d && *d ? d : "tests/data";
}

static int cmp_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return x < y ? -1 : x > y;
}

static const char *sev_name(cw_severity_t s) { return s == CW_SEV_CRITICAL ? "crit" : "warn"; }

typedef struct totals {
  int labels, detected, false_alerts;
  double socket_hours;
  long long warn_lead[256], crit_lead[256];
  int nwarn, ncrit;
} totals_t;

static long long median(long long *v, int n) {
  if (!n) return 0;
  qsort(v, (size_t)n, sizeof(*v), cmp_ll);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void run_one(const det_scen_t *sc, int step, totals_t *tot) {
  det_rec_t *r = det_new(NULL);
  det_scen_out_t o;
  memset(&o, 0, sizeof(o));
  if (sc->run(r, step, &o) < 0) {
    printf("| %s | %d s | data missing | | |\n", sc->name, step);
    det_free(r);
    return;
  }
  char alerts[2048] = "", leads[1024] = "";
  size_t al = 0, ll = 0;
  int nfalse = 0, seen[CW_KIND__COUNT] = {0};
  for (int i = 0; i < r->n; i++) {
    const cw_alert_event_t *e = &r->ev[i];
    if (e->event != CW_EV_RAISED && e->event != CW_EV_ESCALATED) continue;
    bool labelled = false;
    for (int k = 0; k < o.nlabel; k++) labelled = labelled || o.label_socket[k] == e->socket;
    bool is_false = !(labelled && e->kind == CW_KIND_THERMAL_RUNAWAY) && e->event == CW_EV_RAISED &&
                    ++seen[e->kind] > o.expect[e->kind];
    if (is_false) nfalse++;
    if (al < sizeof(alerts) - 80)
      al += (size_t)snprintf(alerts + al, sizeof(alerts) - al, "%s%s/%u %s %s @%llds%s",
                             al ? "; " : "", cw_kind_name(e->kind), e->socket,
                             sev_name(e->severity), cw_event_name(e->event),
                             (long long)((e->ts_ms - o.start_ms) / 1000),
                             is_false ? " **false**" : "");
  }
  for (int k = 0; k < o.nlabel; k++) {
    int64_t warn = -1, crit = -1;
    for (int i = 0; i < r->n; i++) {
      const cw_alert_event_t *e = &r->ev[i];
      if (e->socket != o.label_socket[k] || e->kind != CW_KIND_THERMAL_RUNAWAY) continue;
      if (warn < 0) warn = e->ts_ms;
      if (crit < 0 && e->severity == CW_SEV_CRITICAL) crit = e->ts_ms;
    }
    long long wl = warn < 0 ? -999999 : (o.label_onset_ms[k] - warn) / 1000;
    long long cl = crit < 0 ? -999999 : (o.label_onset_ms[k] - crit) / 1000;
    tot->labels++;
    if (warn >= 0 && wl >= 0) tot->detected++;
    if (warn >= 0 && tot->nwarn < 256) tot->warn_lead[tot->nwarn++] = wl;
    if (crit >= 0 && tot->ncrit < 256) tot->crit_lead[tot->ncrit++] = cl;
    if (ll < sizeof(leads) - 40)
      ll += (size_t)snprintf(leads + ll, sizeof(leads) - ll, "%ss%u %+lld/%+lld", ll ? ", " : "",
                             o.label_socket[k], wl, cl);
  }
  tot->false_alerts += nfalse;
  tot->socket_hours += o.socket_hours;
  printf("| %s | %d s | %s | %s | %d |\n", sc->name, step, al ? alerts : "none",
         ll ? leads : "-", nfalse);
  det_free(r);
}

int main(int argc, char **argv) {
  static const int steps[] = {1, 5, 15, 30};
  const char *only = argc > 1 ? argv[1] : NULL;
  totals_t tot;
  memset(&tot, 0, sizeof(tot));
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  printf("Corpus:\n\n");
  for (int i = 0; i < det_nscens; i++)
    printf("- `%s`: %s\n", det_scens[i].name, det_scens[i].source);
  printf("\n| trace | sampling "
         "| alerts raised/escalated (kind/socket severity event @s from start) "
         "| lead s before onset (socket warning/critical) | false |\n|---|---|---|---|---|\n");
  for (int i = 0; i < det_nscens; i++) {
    if (only && !strstr(det_scens[i].name, only)) continue;
    for (int s = 0; s < 4; s++) {
      if (!strcmp(det_scens[i].name, "report_on_change") && s) break; /* own cadence */
      run_one(&det_scens[i], steps[s], &tot);
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double fa = tot.socket_hours > 0 ? tot.false_alerts * 1000.0 / tot.socket_hours : 0;
  int nw = tot.nwarn, nc = tot.ncrit;
  long long wmed = median(tot.warn_lead, nw), cmed = median(tot.crit_lead, nc);
  printf("\n| totals | value |\n|---|---|\n");
  printf("| runaways labelled (socket x sampling) | %d |\n", tot.labels);
  printf("| recall (thermal alert at or before onset) | %d/%d = %.0f %% |\n", tot.detected,
         tot.labels, tot.labels ? 100.0 * tot.detected / tot.labels : 0);
  printf("| false alerts | %d in %.1f socket-hours = %.2f per 1,000 socket-hours |\n",
         tot.false_alerts, tot.socket_hours, fa);
  printf("| first-alert lead: median / worst | %lld s / %lld s |\n", wmed,
         nw ? tot.warn_lead[0] : 0);
  printf("| critical lead: median / worst | %lld s / %lld s |\n", cmed, nc ? tot.crit_lead[0] : 0);
  printf("| criticals after onset | ");
  int late = 0;
  for (int i = 0; i < nc; i++) late += tot.crit_lead[i] < 0;
  printf("%d of %d |\n", late, nc);
  fprintf(stderr, "bench-detect: %.1f s\n",
          (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
  return 0;
}
