/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvctl image add|list|rm: the image store VMs boot from.
 *
 *   image add NAME FILE [--kind kernel|initramfs|disk]
 *
 * The kind defaults from the name: vmlinuz* and *kernel* are kernels,
 * initr* are initramfs, anything else a disk.  The file is streamed to hvd,
 * which hashes it as it arrives.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "hvctl.h"

static const char *
image_kind_guess(const char *name)
{
	if (strncmp(name, "vmlinuz", 7) == 0 || strstr(name, "kernel"))
		return "kernel";
	if (strncmp(name, "initr", 5) == 0)
		return "initramfs";
	return "disk";
}

int
cmd_image_add(struct hvctl *h, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kind", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	struct hvctl_reply rep;
	const char *kind = NULL, *name, *file;
	char path[256];
	struct stat st;
	FILE *f;
	int ch, r;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'k')
			return HVCTL_USAGE;
		kind = optarg;
	}
	if (optind + 2 != argc)
		return hvctl_usage_error("image add", "expects NAME FILE");
	name = argv[optind];
	file = argv[optind + 1];
	if (strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789._-") !=
	    strlen(name) || name[0] == '\0' || strlen(name) > 63)
		return hvctl_usage_error("image add", "'%s' is not an image name",
		    name);
	if (kind == NULL)
		kind = image_kind_guess(name);
	if ((f = fopen(file, "re")) == NULL || fstat(fileno(f), &st) == -1 ||
	    !S_ISREG(st.st_mode)) {
		if (f)
			fclose(f);
		return hvctl_usage_error("image add", "%s: %s", file,
		    f ? "not a regular file" : strerror(errno));
	}
	snprintf(path, sizeof(path), "/api/v1/images/%s?kind=%s", name, kind);
	r = client_upload(h, path, f, (uint64_t)st.st_size, &rep);
	fclose(f);
	if (r != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, "image add")) == HVCTL_OK) {
		if (h->json)
			output_json(rep.body);
		else
			printf("image %s: %s, %lld bytes, sha256 %s\n", name,
			    output_cell(rep.body, "kind"),
			    (long long)json_integer_value(json_object_get(rep.body,
			    "size")), output_cell(rep.body, "sha256"));
	}
	client_reply_dispose(&rep);
	return r;
}

int
cmd_image_list(struct hvctl *h, int argc, char **argv)
{
	static const char *const headers[] = { "NAME", "KIND", "SIZE", "SHA256" };
	struct hvctl_reply rep;
	struct table *t;
	json_t *im;
	size_t i;
	int r;

	(void)argv;
	if (argc > 1)
		return hvctl_usage_error("image list", "takes no arguments");
	if ((r = client_call(h, "GET", "/api/v1/images", NULL, &rep)) != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, "image list")) == HVCTL_OK) {
		if (h->json) {
			output_json(rep.body);
		} else {
			t = table_new(headers, 4);
			json_array_foreach(json_object_get(rep.body, "images"), i, im) {
				char size[32];
				const char *cells[4];

				snprintf(size, sizeof(size), "%lld", (long long)
				    json_integer_value(json_object_get(im, "size")));
				cells[0] = output_cell(im, "name");
				cells[1] = output_cell(im, "kind");
				cells[2] = size;
				cells[3] = output_cell(im, "sha256");
				table_add(t, cells);
			}
			table_print(t);
			table_free(t);
		}
	}
	client_reply_dispose(&rep);
	return r;
}

int
cmd_image_rm(struct hvctl *h, int argc, char **argv)
{
	struct hvctl_reply rep;
	char path[128];
	int r;

	if (argc != 2 || strspn(argv[1], "abcdefghijklmnopqrstuvwxyz0123456789._-")
	    != strlen(argv[1]) || argv[1][0] == '\0' || strlen(argv[1]) > 63)
		return hvctl_usage_error("image rm", "expects one image NAME");
	snprintf(path, sizeof(path), "/api/v1/images/%s", argv[1]);
	if ((r = client_call(h, "DELETE", path, NULL, &rep)) != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, "image rm")) == HVCTL_OK && !h->json)
		printf("removed image %s\n", argv[1]);
	client_reply_dispose(&rep);
	return r;
}
