/*
 * hv-agent: runs in every Xen host's dom0.  For now it only identifies
 * itself; the agent link, telemetry and libxl come with later work (see the
 * README's roadmap).  It must never pretend to do more than it does.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	int ch;

	while ((ch = getopt(argc, argv, "V")) != -1) {
		switch (ch) {
		case 'V':
			printf("hv-agent %s\n", HV_VERSION);
			return 0;
		default:
			fprintf(stderr, "usage: hv-agent -V\n");
			return 2;
		}
	}
	fprintf(stderr, "hv-agent %s: the agent link is not implemented yet\n",
	    HV_VERSION);
	return 1;
}
