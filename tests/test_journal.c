/* test_journal.c - the ingest journal: append and replay in order, the
 * committed mark, wrapping, reopening, an invalid header set aside, a torn
 * record cutting the replay, a full journal waiting for a commit, and a
 * process killed with SIGKILL losing nothing it appended. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "journal.h"
#include "test.h"

typedef struct {
  char dir[256];
  char path[300];
} tmpj_t;

static int tmpj_init(tmpj_t *t) {
  const char *d = getenv("TMPDIR");
  snprintf(t->dir, sizeof t->dir, "%s/cwjournal.XXXXXX", d && *d ? d : "/tmp");
  if (!mkdtemp(t->dir)) return -1;
  snprintf(t->path, sizeof t->path, "%s/ingest.journal", t->dir);
  return 0;
}

static void tmpj_free(tmpj_t *t) {
  char p[320];
  unlink(t->path);
  snprintf(p, sizeof p, "%s.bad", t->path);
  unlink(p);
  rmdir(t->dir);
}

/* Message i: topic "s/<i>", payload of a length varying with i. */
static size_t payload_for(int i, char *buf, size_t cap) {
  size_t n = (size_t)(i * 37 % 300) + 1;
  if (n > cap) n = cap;
  for (size_t k = 0; k < n; k++) buf[k] = (char)('a' + (i + (int)k) % 26);
  return n;
}

static int64_t append_i(cw_journal_t *j, int i) {
  char topic[32], pl[400];
  int tl = snprintf(topic, sizeof topic, "s/%d", i);
  size_t pn = payload_for(i, pl, sizeof pl);
  return cw_journal_append(j, 1000 + i, topic, (size_t)tl, pl, pn, NULL, NULL);
}

/* A new journal of cap bytes in a new directory with messages 0..n-1
 * appended (their jpos in pos); NULL on failure. */
static cw_journal_t *fresh(tmpj_t *t, uint64_t cap, int64_t *pos, int n) {
  cw_journal_t *j;
  if (tmpj_init(t) || cw_journal_open(t->path, cap, &j) != 0) return NULL;
  for (int i = 0; i < n; i++) pos[i] = append_i(j, i);
  return j;
}

typedef struct {
  int next;     /* index expected next */
  int bad;      /* entries not matching */
  int64_t last; /* jpos of the last entry */
} seen_t;

static void visit(void *ctx, const cw_journal_entry_t *e) {
  seen_t *s = ctx;
  char topic[32], pl[400];
  int tl = snprintf(topic, sizeof topic, "s/%d", s->next);
  size_t pn = payload_for(s->next, pl, sizeof pl);
  if (e->recv_ms != 1000 + s->next || e->topic_len != (size_t)tl ||
      memcmp(e->topic, topic, (size_t)tl) || e->payload_len != pn ||
      memcmp(e->payload, pl, pn) || e->jpos <= s->last)
    s->bad++;
  s->last = e->jpos;
  s->next++;
}

CW_TEST(journal_append_replay) {
  tmpj_t t;
  cw_journal_t *j;
  CHECK(tmpj_init(&t) == 0);
  CHECK_EQ(cw_journal_open(t.path, 1 << 20, &j), 0);
  CHECK_EQ(cw_journal_head(j), 0);
  int64_t prev = 0;
  for (int i = 0; i < 500; i++) {
    int64_t p = append_i(j, i);
    CHECK(p > prev);
    CHECK_EQ(p % 8, 0);
    prev = p;
  }
  CHECK_EQ(cw_journal_head(j), prev);
  seen_t s = {0};
  cw_journal_replay_stats_t st;
  CHECK_EQ(cw_journal_replay(j, 0, visit, &s, &st), 0);
  CHECK_EQ(s.next, 500);
  CHECK_EQ(s.bad, 0);
  CHECK_EQ(s.last, prev);
  CHECK_EQ(st.entries, 500);
  CHECK_EQ(st.dropped, 0);
  /* too large for the journal: refused, nothing written */
  static char big[400 << 10];
  CHECK_EQ(cw_journal_append(j, 1, "t", 1, big, sizeof big, NULL, NULL), -EMSGSIZE);
  CHECK_EQ(cw_journal_head(j), prev);
  cw_journal_close(j);
  tmpj_free(&t);
}

CW_TEST(journal_committed_mark) {
  tmpj_t t;
  int64_t pos[100];
  cw_journal_t *j = fresh(&t, 1 << 20, pos, 100);
  CHECK(j != NULL);
  cw_journal_commit(j, pos[59]);
  CHECK_EQ(cw_journal_committed(j), pos[59]);
  cw_journal_commit(j, pos[10]); /* lower: ignored */
  CHECK_EQ(cw_journal_committed(j), pos[59]);
  seen_t s = {.next = 60};
  cw_journal_replay(j, 0, visit, &s, NULL);
  CHECK_EQ(s.next, 100);
  CHECK_EQ(s.bad, 0);
  /* from beyond the mark: starts there */
  s = (seen_t){.next = 80};
  cw_journal_replay(j, pos[79], visit, &s, NULL);
  CHECK_EQ(s.next, 100);
  CHECK_EQ(s.bad, 0);
  cw_journal_commit(j, pos[99] + 4096); /* beyond the head: clamped */
  CHECK_EQ(cw_journal_committed(j), pos[99]);
  s = (seen_t){.next = 100};
  cw_journal_replay(j, 0, visit, &s, NULL);
  CHECK_EQ(s.next, 100);
  cw_journal_close(j);
  tmpj_free(&t);
}

CW_TEST(journal_wrap) {
  tmpj_t t;
  cw_journal_t *j;
  CHECK(tmpj_init(&t) == 0);
  CHECK_EQ(cw_journal_open(t.path, 1000, &j), 0); /* rounded up to 64 KiB */
  CHECK_EQ(cw_journal_capacity(j), 64 << 10);
  /* ~20 times around, committing all but the last 50 messages as it goes */
  int64_t pos[4000];
  for (int i = 0; i < 4000; i++) {
    pos[i] = append_i(j, i);
    CHECK(pos[i] > 0);
    if (i >= 50) cw_journal_commit(j, pos[i - 50]);
  }
  CHECK(cw_journal_head(j) > 10 * (64 << 10));
  seen_t s = {.next = 3950, .last = pos[3949]};
  cw_journal_replay(j, 0, visit, &s, NULL);
  CHECK_EQ(s.next, 4000);
  CHECK_EQ(s.bad, 0);
  cw_journal_close(j);
  tmpj_free(&t);
}

CW_TEST(journal_reopen) {
  tmpj_t t;
  cw_journal_t *j;
  int64_t pos[300];
  CHECK(tmpj_init(&t) == 0);
  CHECK_EQ(cw_journal_open(t.path, 64 << 10, &j), 0);
  for (int i = 0; i < 300; i++) {
    pos[i] = append_i(j, i);
    if (i >= 20) cw_journal_commit(j, pos[i - 20]);
  }
  cw_journal_close(j);
  CHECK_EQ(cw_journal_open(t.path, 1 << 20, &j), 0); /* keeps its own capacity */
  CHECK_EQ(cw_journal_capacity(j), 64 << 10);
  CHECK_EQ(cw_journal_head(j), pos[299]);
  CHECK_EQ(cw_journal_committed(j), pos[279]);
  seen_t s = {.next = 280, .last = pos[279]};
  cw_journal_replay(j, 0, visit, &s, NULL);
  CHECK_EQ(s.next, 300);
  CHECK_EQ(s.bad, 0);
  /* appends continue after the replayed ones */
  CHECK(append_i(j, 300) > pos[299]);
  cw_journal_close(j);
  tmpj_free(&t);
}

/* [spool] journal_bytes changed: the daemon's own journal (opened alone)
 * is made anew at the new size once nothing is left to replay, never while
 * a message is; a journal other processes may map keeps its size. */
CW_TEST(journal_resize_alone) {
  tmpj_t t;
  cw_journal_t *j;
  CHECK(tmpj_init(&t) == 0);
  CHECK_EQ(cw_journal_open_alone(t.path, 64 << 10, &j), 0);
  int64_t p0 = append_i(j, 0);
  cw_journal_close(j);
  /* message 0 not committed: kept, at its size, and replayed */
  CHECK_EQ(cw_journal_open_alone(t.path, 128 << 10, &j), 0);
  CHECK_EQ(cw_journal_capacity(j), 64 << 10);
  seen_t s = {.next = 0, .last = 0};
  cw_journal_replay(j, 0, visit, &s, NULL);
  CHECK_EQ(s.next, 1);
  cw_journal_commit(j, p0);
  cw_journal_close(j);
  /* shared use keeps the size even when empty */
  CHECK_EQ(cw_journal_open(t.path, 128 << 10, &j), 0);
  CHECK_EQ(cw_journal_capacity(j), 64 << 10);
  cw_journal_close(j);
  /* alone and empty: the new size, a journal with nothing to replay */
  CHECK_EQ(cw_journal_open_alone(t.path, 100 << 10, &j), 0);
  CHECK_EQ(cw_journal_capacity(j), 128 << 10);
  CHECK_EQ(cw_journal_head(j), 0);
  CHECK_EQ(cw_journal_committed(j), 0);
  s = (seen_t){.next = 0, .last = 0};
  cw_journal_replay(j, 0, visit, &s, NULL);
  CHECK_EQ(s.next, 0);
  CHECK(append_i(j, 1) > 0);
  cw_journal_close(j);
  tmpj_free(&t);
}

static int write_at(const char *path, off_t off, const void *b, size_t n) {
  int fd = open(path, O_WRONLY);
  if (fd < 0) return -1;
  int rc = pwrite(fd, b, n, off) == (ssize_t)n ? 0 : -1;
  close(fd);
  return rc;
}

CW_TEST(journal_bad_header_set_aside) {
  tmpj_t t;
  cw_journal_t *j;
  char bad[320];
  struct stat st;
  CHECK(tmpj_init(&t) == 0);
  snprintf(bad, sizeof bad, "%s.bad", t.path);
  CHECK_EQ(cw_journal_open(t.path, 64 << 10, &j), 0);
  for (int i = 0; i < 10; i++) append_i(j, i);
  cw_journal_close(j);
  /* a torn header: the capacity no longer matches its CRC */
  uint64_t cap = 1 << 20;
  CHECK(write_at(t.path, 16, &cap, sizeof cap) == 0);
  CHECK_EQ(cw_journal_open(t.path, 64 << 10, &j), 1);
  CHECK(stat(bad, &st) == 0);
  CHECK_EQ(cw_journal_head(j), 0);
  cw_journal_close(j);
  /* committed after the head: inconsistent, also set aside */
  unlink(bad);
  CHECK_EQ(cw_journal_open(t.path, 64 << 10, &j), 0);
  append_i(j, 0);
  cw_journal_close(j);
  uint64_t com = 4096;
  CHECK(write_at(t.path, 128, &com, sizeof com) == 0); /* the committed field */
  CHECK_EQ(cw_journal_open(t.path, 64 << 10, &j), 1);
  cw_journal_close(j);
  /* not a journal at all (too short) */
  unlink(bad);
  CHECK(write_at(t.path, 0, "x", 1) == 0 && truncate(t.path, 100) == 0);
  CHECK_EQ(cw_journal_open(t.path, 64 << 10, &j), 1);
  CHECK(stat(bad, &st) == 0);
  CHECK(append_i(j, 0) > 0);
  cw_journal_close(j);
  tmpj_free(&t);
}

CW_TEST(journal_torn_record) {
  tmpj_t t;
  int64_t pos[50];
  cw_journal_t *j = fresh(&t, 64 << 10, pos, 50);
  CHECK(j != NULL);
  cw_journal_close(j);
  /* flip a payload byte of message 30 (as pages lost with the machine would) */
  char c = '#';
  CHECK(write_at(t.path, 4096 + pos[29] + 40, &c, 1) == 0);
  CHECK_EQ(cw_journal_open(t.path, 64 << 10, &j), 0);
  seen_t s = {0};
  cw_journal_replay_stats_t st;
  cw_journal_replay(j, 0, visit, &s, &st);
  CHECK_EQ(s.next, 30);
  CHECK_EQ(s.bad, 0);
  CHECK_EQ(st.dropped, (uint64_t)(pos[49] - pos[29]));
  CHECK_EQ(cw_journal_head(j), pos[29]); /* new appends overwrite the rest */
  CHECK_EQ(append_i(j, 30), pos[30]);
  cw_journal_close(j);
  tmpj_free(&t);
}

/* Two handles on one file (two processes of one machine): once one has
 * appended, the other refuses to write until it has replayed. */
CW_TEST(journal_two_handles) {
  tmpj_t t;
  int64_t pos[3];
  cw_journal_t *a = fresh(&t, 64 << 10, pos, 3), *b;
  CHECK(a != NULL);
  CHECK_EQ(cw_journal_open(t.path, 64 << 10, &b), 0);
  seen_t s = {0};
  cw_journal_replay(b, 0, visit, &s, NULL);
  CHECK_EQ(s.next, 3);
  int64_t pb = append_i(b, 3);
  CHECK(pb > pos[2]);
  CHECK_EQ(append_i(a, 3), -EBUSY);
  CHECK_EQ(cw_journal_head(a), pb); /* nothing written over b's record */
  s = (seen_t){.next = 3, .last = pos[2]};
  cw_journal_replay(a, pos[2], visit, &s, NULL);
  CHECK_EQ(s.next, 4);
  CHECK_EQ(s.bad, 0);
  CHECK(append_i(a, 4) > pb);
  cw_journal_close(b);
  cw_journal_close(a);
  tmpj_free(&t);
}

typedef struct {
  cw_journal_t *j;
  _Atomic int stop;
  _Atomic int64_t got;
  int waited;
} appender_t;

static void *append_thread(void *arg) {
  appender_t *a = arg;
  char pl[8000];
  memset(pl, 'p', sizeof pl);
  atomic_store(&a->got, cw_journal_append(a->j, 1, "t", 1, pl, sizeof pl, &a->stop, &a->waited));
  return NULL;
}

CW_TEST(journal_full_waits) {
  tmpj_t t;
  cw_journal_t *j;
  pthread_t th;
  char pl[8000];
  memset(pl, 'p', sizeof pl);
  CHECK(tmpj_init(&t) == 0);
  CHECK_EQ(cw_journal_open(t.path, 64 << 10, &j), 0);
  int64_t first = 0, last = 0;
  while (cw_journal_head(j) + 8040 <= 64 << 10) {
    last = cw_journal_append(j, 1, "t", 1, pl, sizeof pl, NULL, NULL);
    if (!first) first = last;
  }
  /* full: the append waits, then gives up when stopped */
  appender_t a = {.j = j};
  atomic_store(&a.got, 1);
  CHECK(pthread_create(&th, NULL, append_thread, &a) == 0);
  cw_sleep_ms(20); /* it cannot finish meanwhile: nothing makes room */
  CHECK_EQ(atomic_load(&a.got), 1);
  atomic_store(&a.stop, 1);
  pthread_join(th, NULL);
  CHECK_EQ(atomic_load(&a.got), -ECANCELED);
  CHECK_EQ(a.waited, 1); /* read after the join */
  CHECK_EQ(cw_journal_head(j), last);
  /* full again: a commit lets the waiting append through */
  a = (appender_t){.j = j};
  atomic_store(&a.got, 1);
  CHECK(pthread_create(&th, NULL, append_thread, &a) == 0);
  cw_sleep_ms(20);
  CHECK_EQ(atomic_load(&a.got), 1); /* still waiting */
  cw_journal_commit(j, first);
  pthread_join(th, NULL);
  CHECK(atomic_load(&a.got) > last);
  CHECK_EQ(a.waited, 1);
  cw_journal_close(j);
  tmpj_free(&t);
}

/* A child appends 2000 messages, commits the first 1000 and kills itself
 * with SIGKILL without closing anything: the parent replays exactly the
 * other 1000. */
CW_TEST(journal_sigkill) {
  tmpj_t t;
  CHECK(tmpj_init(&t) == 0);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    cw_journal_t *cj;
    if (cw_journal_open(t.path, 1 << 20, &cj) != 0) _exit(2);
    int64_t p = 0;
    for (int i = 0; i < 2000; i++) {
      p = append_i(cj, i);
      if (i == 999) cw_journal_commit(cj, p);
    }
    kill(getpid(), SIGKILL);
    _exit(3);
  }
  int status;
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  cw_journal_t *j;
  CHECK_EQ(cw_journal_open(t.path, 1 << 20, &j), 0);
  seen_t s = {.next = 1000};
  cw_journal_replay(j, 0, visit, &s, NULL);
  CHECK_EQ(s.next, 2000);
  CHECK_EQ(s.bad, 0);
  CHECK_EQ(s.last, cw_journal_head(j));
  cw_journal_close(j);
  tmpj_free(&t);
}
