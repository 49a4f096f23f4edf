/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * licence.h: what hvd --version and hvctl --version say of the licence,
 * and where the source of the running version is (the AGPL's network
 * clause: hvd serves it to anyone, GET /source.tar.gz).
 */
#ifndef HV_LICENCE_H
#define HV_LICENCE_H

#define HV_LICENCE_LINE "AGPL-3.0-or-later (commercial licences available); " \
	"this version's source: GET /source.tar.gz from hvd"

#endif
