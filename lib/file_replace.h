/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * file_replace.h: write a small file whole, so that a reader sees the old
 * bytes or the new ones, never a part: DIR/.NAME.tmp written with MODE,
 * synced, then renamed over DIR/NAME.  Used for keys, certificates and
 * the known-hosts file.
 */
#ifndef HV_FILE_REPLACE_H
#define HV_FILE_REPLACE_H

#include <stddef.h>
#include <sys/types.h>

/* 0 or a negative errno; the temporary file is gone either way.  It is
 * created O_EXCL|O_NOFOLLOW, so a leftover or a planted link fails. */
int file_replace(const char *dir, const char *name, const void *data,
    size_t len, mode_t mode);

#endif
