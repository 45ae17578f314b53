/* fsutil.c - see fsutil.h. */
#include "fsutil.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

int cw_mkdir_p(const char *dir) {
  char path[PATH_MAX];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof(path)) return -ENAMETOOLONG;
  memcpy(path, dir, n + 1);
  for (char *p = path + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(path, 0700) < 0 && errno != EEXIST) return -errno;
    *p = '/';
  }
  if (mkdir(path, 0700) < 0 && errno != EEXIST) return -errno;
  return 0;
}
