/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The clocks hvd's modules read at their boundary and pass down as "now"
 * (CONVENTIONS 11): decisions take time as an argument, so unit tests can
 * feed any time they like.
 */
#include <time.h>

#include "wire.h"

int64_t
hvd_now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

int64_t
hvd_now_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
hvd_now_wall(void)
{
	return (int64_t)time(NULL);
}

int64_t
hvd_now_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
