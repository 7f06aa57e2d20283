/*
 * testalloc.h - a counting allocator for tests: fails the Nth allocation
 * (and, with tm_testalloc_fail_from, every one after it) and tracks how many
 * blocks are outstanding, so failure paths can be checked for leaks:
 *
 *     for (n = 1; ; n++) { tm_testalloc_fail_at(n); st = f(); ...;
 *                          tm_testalloc_reset(); CHECK(outstanding == 0) }
 */
#ifndef TM_TESTS_TESTALLOC_H
#define TM_TESTS_TESTALLOC_H

/* Installs the counting allocator; allocation number n (1-based) fails. */
void tm_testalloc_fail_at(long n);
/* Stops failing; counting goes on so later frees keep the count exact. Only
 * blocks allocated after tm_testalloc_fail_at are counted. */
void tm_testalloc_reset(void);
/* Blocks allocated through the counting allocator and not yet freed. */
long tm_testalloc_outstanding(void);
/* Allocations attempted since the last tm_testalloc_fail_at. */
long tm_testalloc_calls(void);

/*
 * For a server whose threads run while the test fails allocations (the
 * HTTP torture): tm_testalloc_fail_at(0) installs the allocator before any
 * thread starts; then tm_testalloc_arm(n) fails the nth allocation counted
 * from now and restarts tm_testalloc_calls, without reinstalling (a write
 * other threads would race with) or touching the outstanding count. With
 * tm_testalloc_marked_only(1), only the allocations of threads that called
 * tm_testalloc_mark_thread() are numbered and failed; every thread's blocks
 * are still counted in tm_testalloc_outstanding, as a block may be freed on
 * another thread than the one that took it.
 */
void tm_testalloc_arm(long n);
void tm_testalloc_marked_only(int on);
void tm_testalloc_mark_thread(void);

#endif
