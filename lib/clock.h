/* clock.h - the clocks and the sleep every thread uses. Wall time for
 * timestamps that leave the process (alert ts, ids), monotonic time for
 * intervals and deadlines (never jumps with the wall clock). */
#ifndef CW_CLOCK_H
#define CW_CLOCK_H

#include <stdint.h>

int64_t cw_now_ms(void);  /* CLOCK_REALTIME, ms since the epoch */
int64_t cw_now_us(void);  /* CLOCK_REALTIME, µs since the epoch */
int64_t cw_mono_ms(void); /* CLOCK_MONOTONIC, ms */
void cw_sleep_ms(int ms); /* nanosleep; ms <= 0 returns at once */

#endif
