/*
 * clock.h - the two clocks topicd reads: seconds since the Unix epoch, for
 * timestamps that are stored and shown, and a monotonic clock, for
 * durations (stage timings), which must not jump when the wall clock is set.
 * Thread-safety: reentrant.
 */
#ifndef TM_CORE_CLOCK_H
#define TM_CORE_CLOCK_H

/* Unix seconds now (CLOCK_REALTIME), with sub-second precision. */
double tm_clock_unix(void);

/* Seconds on CLOCK_MONOTONIC from an arbitrary origin: only differences mean anything. */
double tm_clock_monotonic(void);

#endif
