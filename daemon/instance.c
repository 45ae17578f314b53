/* instance.c - see instance.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "fsutil.h"
#include "instance.h"

int cw_instance_lock(const char *spool_dir, int *holder, char *err, size_t cap) {
  char path[600], buf[32];
  int rc;
  *holder = 0;
  if ((rc = cw_mkdir_p(spool_dir))) {
    snprintf(err, cap, "spool directory %s: %s", spool_dir, strerror(-rc));
    return rc;
  }
  snprintf(path, sizeof path, "%s/chargewatchd.lock", spool_dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    rc = -errno;
    snprintf(err, cap, "%s: %s", path, strerror(errno));
    return rc;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    rc = errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    *holder = atoi(buf);
    snprintf(err, cap, "another chargewatchd (pid %d) holds %s: one daemon per configuration",
             *holder, path);
    close(fd);
    return rc;
  }
  int len = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
    /* the lock holds all the same; only the PID in the message is lost */
  }
  return 0; /* fd stays open (and locked) until the process exits */
}
