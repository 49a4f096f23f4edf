/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * /api/v1/images: the image store.  Kernels, initramfs and disk images are
 * uploaded once (POST /api/v1/images/{name}?kind=..., the body streamed to
 * a file and hashed as it arrives, see http.c), stored by content as
 * state-dir/images/<sha256>, and fetched by agents from the boot port at
 * /images/<sha256>, which they check against the hash.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "rest.h"

bool
image_name_valid(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 63 && ((s[0] >= 'a' && s[0] <= 'z') ||
	    (s[0] >= '0' && s[0] <= '9')) &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static json_t *
api_image_json(const struct image_row *im)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:o}", "name", im->name, "kind",
	    im->kind, "sha256", im->sha256, "size", (json_int_t)im->size,
	    "created_at", api_time_json(im->created_at));
}

void
api_images_list(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	struct image_row *rows = NULL;
	size_t n = 0;
	json_t *arr;

	(void)req;
	if (db_image_list(hvd->db, &rows, &n) < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error");
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, api_image_json(&rows[i]));
	free(rows);
	rep->status = MHD_HTTP_OK;
	rep->json = json_pack("{s:o}", "images", arr);
}

void
api_image_add(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *name)
{
	const char *kind = req->query(req, "kind");
	struct image_row im = { 0 }, old;
	char path[PATH_MAX];
	struct stat st;
	int r;

	if (req->upload_path == NULL) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "no upload");
		return;
	}
	if (!image_name_valid(name)) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "image name '%s' must be 1..63 "
		    "of a-z 0-9 . _ - starting with a letter or digit", name);
		return;
	}
	if (kind == NULL || (strcmp(kind, "kernel") != 0 &&
	    strcmp(kind, "initramfs") != 0 && strcmp(kind, "disk") != 0)) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "query 'kind' must be kernel, "
		    "initramfs or disk");
		return;
	}
	if (req->upload_size == 0) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "the image is empty");
		return;
	}
	if (db_image_get(hvd->db, name, &old) == 0) {
		http_error(rep, MHD_HTTP_CONFLICT, "an image named '%s' already "
		    "exists (sha256 %.16s...)", name, old.sha256);
		return;
	}
	snprintf(im.name, sizeof(im.name), "%s", name);
	snprintf(im.kind, sizeof(im.kind), "%s", kind);
	snprintf(im.sha256, sizeof(im.sha256), "%s", req->upload_sha256);
	im.size = req->upload_size;
	snprintf(path, sizeof(path), "%s/images/%s", hvd->conf->state_dir,
	    im.sha256);
	/* Content-addressed: the same bytes under another name share a file. */
	if (stat(path, &st) == -1) {
		if (fsync(req->upload_fd) == -1 || fchmod(req->upload_fd, 0644) == -1 ||
		    rename(req->upload_path, path) == -1) {
			log_warn("image %s: %s", name, path);
			http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot store "
			    "the image");
			return;
		}
		http_upload_keep(req);
	}
	if ((r = db_image_add(hvd->db, &im, req->actor, hvd_now_wall())) < 0) {
		http_error(rep, r == -EEXIST ? MHD_HTTP_CONFLICT :
		    MHD_HTTP_INTERNAL_SERVER_ERROR, r == -EEXIST ? "an image named "
		    "'%s' already exists" : "database error", name);
		return;
	}
	log_info("image %s: added by %s (%s, %llu bytes)", name, req->actor, kind,
	    (unsigned long long)im.size);
	rep->status = MHD_HTTP_CREATED;
	rep->json = api_image_json(&im);
	snprintf(rep->location, sizeof(rep->location), "/api/v1/images/%s", name);
}

void
api_image_delete(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *name)
{
	struct image_row im;
	char path[PATH_MAX];
	bool last = false;
	int r;

	if ((r = db_image_get(hvd->db, name, &im)) < 0) {
		http_error(rep, r == -ENOENT ? MHD_HTTP_NOT_FOUND :
		    MHD_HTTP_INTERNAL_SERVER_ERROR, r == -ENOENT ? "no image '%s'" :
		    "database error", name);
		return;
	}
	if ((r = db_image_delete(hvd->db, &im, req->actor, hvd_now_wall(),
	    &last)) == -EBUSY) {
		http_error(rep, MHD_HTTP_CONFLICT, "image '%s' is used by a VM",
		    name);
		return;
	}
	if (r < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error");
		return;
	}
	if (last) {
		snprintf(path, sizeof(path), "%s/images/%s", hvd->conf->state_dir,
		    im.sha256);
		unlink(path);
	}
	rep->status = MHD_HTTP_NO_CONTENT;
}

/* POST /api/v1/images/{name}: the body is the image, streamed to a file. */
bool
api_image_is_upload(const char *method, const char *url)
{
	return strcmp(method, "POST") == 0 &&
	    strncmp(url, "/api/v1/images/", 15) == 0 && url[15] != '\0' &&
	    strchr(url + 15, '/') == NULL;
}
