/* detect_offline.c - offline detector, on receive time only (a replay of old
 * data must not look like silence). A socket is overdue after offline_factor x
 * its observed reading interval (EWMA of receive-time gaps), at least
 * offline_min_s. A station whose every socket is overdue is silent: one
 * critical alert for the station (socket 0) and none per socket, so a power
 * or network cut does not become an alert storm. */
#include <string.h>

#include "detect_int.h"

#define GAP_MIN_MS 100              /* closer arrivals are a buffered burst, not the interval */
#define DEFAULT_INTERVAL_MS 60000   /* until a gap is seen: docs/ARCHITECTURE.md section 1: readings every 10-60 s */
#define RESTORE_ARM_MS 86400000LL   /* restored sockets seen within a day are watched */
#define EWMA_SHIFT 3                /* alpha = 1/8: follows a rate change within ~8 readings */
/* Gaps above the threshold are outages and are kept out of the EWMA, which
 * therefore could never learn a slower rate (a device reconfigured from 10 s
 * to 5 min, or one that uploads in batches): it would raise and clear an
 * alert every interval forever. This many such gaps in a row, with no normal
 * gap between them, are the new interval rather than outages. */
#define LONG_GAPS_ADOPT 3
/* Learned cadence. Besides the mean gap (EWMA) each socket keeps the
 * longest gap it came back from on its own (gap_max_ms, decaying by 1/16
 * per normal gap): a report-on-change plug (Zigbee, some NB-IoT firmware)
 * says nothing for 3-13 min while the draw is steady, so its mean gap says
 * little about how long it may legitimately be quiet. */
#define GAP_MAX_MARGIN 1.5  /* silence up to 1.5 x the longest gap seen is not news */
#define IRREGULAR_RATIO 2   /* gap_max > 2 x mean gap: not a clocked socket */

int64_t cw__offline_threshold_ms(const cw_detect_cfg_t *cfg, const cw_sock_t *s) {
  double gap = s->gap_ms ? (double)s->gap_ms : DEFAULT_INTERVAL_MS;
  double thr = cfg->offline_factor * gap, min = cfg->offline_min_s * 1000.0;
  double envelope = GAP_MAX_MARGIN * (double)s->gap_max_ms;
  if (envelope > thr) thr = envelope;
  /* A metering socket (last reading carried power, no fault) whose cadence
   * is not learned yet or is irregular may be a report-on-change device in
   * a steady state: charging at constant power or idle. */
  bool unlearned = s->ngaps == 0;
  bool irregular = s->gap_ms && s->gap_max_ms > (uint64_t)IRREGULAR_RATIO * s->gap_ms;
  if ((s->flags & CW_SOCK_METERED) && (unlearned || irregular) &&
      thr < cfg->offline_quiet_s * 1000.0)
    thr = cfg->offline_quiet_s * 1000.0;
  if (thr < min) thr = min;
  double ceil = cfg->offline_max_s * 1000.0;
  if (thr > ceil) thr = ceil > min ? ceil : min;
  return (int64_t)thr;
}

/* A gap that ended in a reading, at most the ceiling: the socket was not
 * gone, only quiet. It widens the learned envelope, so the same quiet
 * spell does not raise again (no raise-clear-raise loop). */
static void learn_max(const cw_detect_cfg_t *cfg, cw_sock_t *s, int64_t gap) {
  if ((double)gap > cfg->offline_max_s * 1000.0) return;
  if (gap > (int64_t)s->gap_max_ms)
    s->gap_max_ms = (uint32_t)gap;
  else
    s->gap_max_ms -= s->gap_max_ms >> 4;
  if (s->ngaps < UINT8_MAX) s->ngaps++;
}

void cw__offline_seen(const cw_detect_cfg_t *cfg, cw_station_t *st, cw_sock_t *s, int64_t recv_ms,
                      int64_t resume_ms) {
  /* arming time is not a reading, nor is a gap across a blind spell */
  if (s->last_recv && !(s->flags & CW_SOCK_ARMED) && recv_ms > s->last_recv &&
      s->last_recv >= resume_ms) {
    int64_t gap = recv_ms - s->last_recv;
    if (gap >= GAP_MIN_MS) learn_max(cfg, s, gap);
    /* Gaps that were outages (overdue) would teach the mean to tolerate them. */
    if (gap < GAP_MIN_MS) {
      /* a burst: says nothing about the interval */
    } else if (gap <= cw__offline_threshold_ms(cfg, s) && !(s->flags & CW_SOCK_OVERDUE)) {
      s->long_gaps = 0;
      if (!s->gap_ms)
        s->gap_ms = (uint32_t)gap;
      else
        s->gap_ms = (uint32_t)((int64_t)s->gap_ms + ((gap - (int64_t)s->gap_ms) >> EWMA_SHIFT));
    } else if (++s->long_gaps >= LONG_GAPS_ADOPT) {
      s->long_gaps = 0; /* a steady slower rate, not outages: restart the EWMA there */
      s->gap_ms = gap < UINT32_MAX ? (uint32_t)gap : UINT32_MAX;
    }
  }
  s->flags &= (uint8_t)~(CW_SOCK_OVERDUE | CW_SOCK_ARMED);
  if (recv_ms > s->last_recv) s->last_recv = recv_ms;
  if (recv_ms > st->last_recv) st->last_recv = recv_ms;
}

/* Restored and not heard yet, or not heard since the last blind spell. */
static bool pending(const cw_engine_t *e, const cw_sock_t *s) {
  return (s->flags & CW_SOCK_ARMED) || s->last_recv < e->resume_ms;
}
static int64_t since(const cw_engine_t *e, const cw_sock_t *s) {
  return s->last_recv > e->resume_ms ? s->last_recv : e->resume_ms;
}

int cw__offline_sweep_station(cw_engine_t *e, uint32_t idx, int64_t now_ms) {
  const cw_detect_cfg_t *cfg = &e->cfg;
  cw_station_t *st = &e->tab.st[idx];
  bool any = false, all_over = true, any_live = false;
  int64_t max_thr = 0;
  uint32_t nseen = 0;
  for (uint32_t i = st->first; i; i = e->tab.so[i - 1].next) {
    cw_sock_t *s = &e->tab.so[i - 1];
    if (!s->last_recv) {
      /* Not heard since start. A socket restored with a recent last ts
       * (restart) starts its silence clock now, so a station that died while
       * the daemon was down is still reported; policy-only or long-dead
       * sockets wait for their first reading. */
      if (!(s->flags & CW_SOCK_HAVE_TS) || now_ms - s->last_ts > RESTORE_ARM_MS) continue;
      s->last_recv = now_ms;
      s->flags |= CW_SOCK_ARMED;
      if (now_ms > st->last_recv) st->last_recv = now_ms;
    }
    int64_t thr = cw__offline_threshold_ms(cfg, s);
    any = true;
    nseen++;
    /* not heard since the engine was last blind: like a restored socket,
     * not known to be live until its clock (from the resume) runs out */
    if (!pending(e, s)) any_live = true;
    if (thr > max_thr) max_thr = thr;
    if (now_ms - since(e, s) > thr) {
      s->flags |= CW_SOCK_OVERDUE;
      cw__session_timeout(e, st, s);
    } else {
      s->flags &= (uint8_t)~CW_SOCK_OVERDUE;
      all_over = false;
    }
  }
  if (!any) return 0;
  bool silent = all_over;
  /* Only restored sockets, not all overdue yet: whether the station is silent
   * is not known until their clocks run out, so an alert restored from before
   * the restart is neither cleared nor raised again meanwhile. */
  bool unknown = !silent && !any_live;

  cw_verdict_t v;
  memset(&v, 0, sizeof(v));
  v.known = !unknown;
  v.unit = "s";
  if (silent) {
    v.sev = CW_SEV_CRITICAL;
    v.value = (double)(now_ms - st->last_recv) / 1000.0;
    v.threshold = (double)max_thr / 1000.0;
    cw_verdict_msg(&v, "station silent: no reading from any of its %.0f sockets for %.0f s",
                   (double)nseen, v.value, 0);
  }
  int rc = cw_alert_apply(&e->alerts, &st->alert_offline, st->name, idx, 0, CW_KIND_OFFLINE, &v,
                          now_ms, now_ms, cfg->hold_s, cfg->cooldown_s);
  if (rc < 0) return rc;
  if (silent) return 0; /* per-socket alerts neither raise nor clear meanwhile */

  for (uint32_t i = st->first; i; i = e->tab.so[i - 1].next) {
    cw_sock_t *s = &e->tab.so[i - 1];
    if (!s->last_recv) continue;
    int64_t thr = cw__offline_threshold_ms(cfg, s);
    memset(&v, 0, sizeof(v));
    v.unit = "s";
    if (s->flags & CW_SOCK_OVERDUE) {
      /* Raise only on evidence that the station itself still talks: another
       * socket delivered after this one's deadline. Otherwise this may be the
       * first moments of a whole-station outage, which the station alert covers. */
      if (st->last_recv <= since(e, s) + thr) continue;
      v.known = true;
      v.sev = CW_SEV_WARNING;
      v.value = (double)(now_ms - s->last_recv) / 1000.0;
      v.threshold = (double)thr / 1000.0;
      cw_verdict_msg(&v, "no reading for %.0f s (expected every %.0f s)", v.value,
                     (double)(s->gap_ms ? s->gap_ms : DEFAULT_INTERVAL_MS) / 1000.0, 0);
    } else {
      v.known = !pending(e, s); /* restored or unseen since blind, not overdue: not known */
    }
    rc = cw_alert_apply(&e->alerts, &s->alert[CW_KIND_OFFLINE], st->name, idx, s->socket,
                        CW_KIND_OFFLINE, &v, now_ms, now_ms, cfg->hold_s, cfg->cooldown_s);
    if (rc < 0) return rc;
  }
  return 0;
}
