/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * tls_trust.c: how hvctl trusts hvd's TLS key on an https:// URL.
 *
 * Either a CA vouches for the certificate (--ca FILE, $HVCTL_CA: libcurl
 * checks the chain, the dates and the name), or the key is pinned, as ssh
 * does with known hosts: --pin / $HVCTL_PIN, or the key remembered for
 * that host:port in the known-hosts file ($HVCTL_KNOWN_HOSTS, else
 * $XDG_CONFIG_HOME/hvctl/known_hosts, else ~/.config/hvctl/known_hosts;
 * lines "HOST:PORT sha256//BASE64").  A pin is the SHA-256 of the
 * certificate's SubjectPublicKeyInfo, curl's --pinnedpubkey form, which
 * hvd logs at start and `hvctl status` shows (listen.tcp_pin).
 *
 * On first use (no CA, no pin, nothing remembered) hvctl fetches the key
 * hvd presents and asks on a terminal; without one it refuses and prints
 * the key to compare and the --pin to pass.  A pin given on the command
 * line is remembered once a request through it succeeded.  A remembered
 * key that no longer matches is refused, naming the file and line.
 *
 * Must never send a request over TLS that was checked neither way, or
 * print the token.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sodium.h>

#include "file_replace.h"
#include "hvctl.h"
#include "tls_pin.h"

#define PIN_PREFIX	"sha256//"

static const char *
known_hosts_path(char *buf, size_t len)
{
	const char *e;

	if ((e = getenv("HVCTL_KNOWN_HOSTS")) != NULL && e[0] != '\0')
		snprintf(buf, len, "%s", e);
	else if ((e = getenv("XDG_CONFIG_HOME")) != NULL && e[0] == '/')
		snprintf(buf, len, "%s/hvctl/known_hosts", e);
	else if ((e = getenv("HOME")) != NULL && e[0] == '/')
		snprintf(buf, len, "%s/.config/hvctl/known_hosts", e);
	else
		return NULL;
	return buf;
}

/* The remembered pin of HOSTPORT into PIN; its line number, or 0. */
static unsigned
known_hosts_find(const char *path, const char *hostport, char *pin,
    size_t pinlen)
{
	char line[512];
	unsigned n = 0;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *hp, *p;

		n++;
		if (known_hosts_line(line, &hp, &p) == 0 &&
		    strcmp(hp, hostport) == 0) {
			snprintf(pin, pinlen, "%s", p);
			fclose(f);
			return n;
		}
	}
	fclose(f);
	return 0;
}

/* Writes HOSTPORT's pin into the file, replacing its old line. */
static int
known_hosts_put(const char *path, const char *hostport, const char *pin)
{
	char dir[PATH_MAX], line[512], *slash, *buf = NULL;
	size_t hl = strlen(hostport), len = 0;
	FILE *in, *mem;
	int r;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
		return -EINVAL;
	*slash = '\0';
	/* ~/.config/hvctl: the last two levels are made if need be. */
	if (mkdir(dir, 0700) == -1 && errno == ENOENT) {
		char up[PATH_MAX], *s2;

		snprintf(up, sizeof(up), "%s", dir);
		if ((s2 = strrchr(up, '/')) != NULL && s2 != up) {
			*s2 = '\0';
			(void)mkdir(up, 0700);
		}
		(void)mkdir(dir, 0700);
	}
	if ((mem = open_memstream(&buf, &len)) == NULL)
		return -ENOMEM;
	if ((in = fopen(path, "re")) != NULL) {
		while (fgets(line, sizeof(line), in) != NULL)
			if (!(strncmp(line, hostport, hl) == 0 && line[hl] == ' '))
				fputs(line, mem);
		fclose(in);
	}
	fprintf(mem, "%s %s\n", hostport, pin);
	if (fclose(mem) != 0) {
		free(buf);
		return -ENOMEM;
	}
	r = file_replace(dir, slash + 1, buf, len, 0600);
	free(buf);
	return r;
}

/* The key hvd at URL presents, fetched without trusting it: nothing but
 * the handshake and a HEAD of /healthz go over that connection. */
static int
presented_pin(const char *url, char *pin, size_t len, char *why, size_t wlen)
{
	struct curl_certinfo *ci = NULL;
	struct curl_slist *s;
	char u[1024], eb[CURL_ERROR_SIZE] = "";
	CURLcode cc;
	CURL *c;
	int r = -ENOENT;

	if ((c = curl_easy_init()) == NULL)
		return -ENOMEM;
	snprintf(u, sizeof(u), "%s/healthz", url);
	curl_easy_setopt(c, CURLOPT_URL, u);
	curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(c, CURLOPT_CERTINFO, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, eb);
	if ((cc = curl_easy_perform(c)) != CURLE_OK) {
		snprintf(why, wlen, "%s", eb[0] ? eb : curl_easy_strerror(cc));
		curl_easy_cleanup(c);
		return -EIO;
	}
	if (curl_easy_getinfo(c, CURLINFO_CERTINFO, &ci) == CURLE_OK &&
	    ci != NULL && ci->num_of_certs > 0)
		for (s = ci->certinfo[0]; s != NULL; s = s->next)
			if (strncmp(s->data, "Cert:", 5) == 0) {
				r = len >= TLS_PIN_SIZE ?
				    tls_pin_of_pem(s->data + 5, pin) : -EINVAL;
				break;
			}
	if (r < 0)
		snprintf(why, wlen, "no certificate in the handshake");
	curl_easy_cleanup(c);
	return r;
}

static bool
ask_yes(void)
{
	char ans[16];

	if (fgets(ans, sizeof(ans), stdin) == NULL)
		return false;
	return strcmp(ans, "yes\n") == 0 || strcmp(ans, "y\n") == 0;
}

int
tls_trust_prepare(struct hvctl *h)
{
	char hostport[300], path[PATH_MAX], seen[80], why[CURL_ERROR_SIZE];
	const char *kh;
	unsigned line;

	h->tls_pin[0] = '\0';
	h->tls_remember = false;
	if (!url_is_https(h->url))
		return HVCTL_OK;
	if (url_hostport(h->url, hostport, sizeof(hostport)) < 0) {
		fprintf(stderr, "hvctl: --url %s: no host:port after https://\n",
		    h->url);
		return HVCTL_USAGE;
	}
	if (h->ca != NULL)
		return HVCTL_OK;	/* libcurl checks the chain */
	if (h->pin != NULL) {
		if (!tls_pin_valid(h->pin)) {
			fprintf(stderr, "hvctl: --pin '%s' is not sha256// followed "
			    "by 44 base64 characters (hvd logs its pin at start)\n",
			    h->pin);
			return HVCTL_USAGE;
		}
		snprintf(h->tls_pin, sizeof(h->tls_pin), "%s", h->pin);
		h->tls_remember = true;
		return HVCTL_OK;
	}
	kh = known_hosts_path(path, sizeof(path));
	if (kh != NULL && (line = known_hosts_find(kh, hostport, h->tls_pin,
	    sizeof(h->tls_pin))) > 0) {
		snprintf(h->tls_known, sizeof(h->tls_known), "%s line %u", kh,
		    line);
		return HVCTL_OK;
	}
	/* First use. */
	if (presented_pin(h->url, seen, sizeof(seen), why, sizeof(why)) < 0) {
		fprintf(stderr, "hvctl: cannot read the TLS key of %s: %s\n",
		    h->url, why);
		return HVCTL_NOT_RUNNING;
	}
	if (!isatty(STDIN_FILENO) || !isatty(STDERR_FILENO)) {
		fprintf(stderr, "hvctl: %s is not known yet; it presents the key\n"
		    "  %s\n"
		    "Compare it with hvd's own (its log at start: \"api: listening "
		    "on ..., TLS, key ...\",\n"
		    "or hvctl status on the orchestration node), then pass it once:"
		    "\n  hvctl --url %s --pin %s ...\n"
		    "(remembered in %s), or use --ca FILE if a CA signed hvd's "
		    "certificate.\n", hostport, seen, h->url, seen,
		    kh ? kh : "no known-hosts file: set HOME or HVCTL_KNOWN_HOSTS");
		return HVCTL_FAIL;
	}
	fprintf(stderr, "hvctl: %s is not known yet; it presents the key\n"
	    "  %s\n"
	    "Compare it with hvd's own (its log at start, or hvctl status on the "
	    "orchestration node).\nTrust it and remember it in %s? [y/N] ",
	    hostport, seen, kh ? kh : "(nowhere: set HOME)");
	if (!ask_yes()) {
		fprintf(stderr, "hvctl: not trusted; nothing sent\n");
		return HVCTL_FAIL;
	}
	snprintf(h->tls_pin, sizeof(h->tls_pin), "%s", seen);
	h->tls_remember = true;
	return HVCTL_OK;
}

void
tls_trust_apply(struct hvctl *h, CURL *c)
{
	if (!url_is_https(h->url))
		return;
	h->tls_err[0] = '\0';
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->tls_err);
	if (h->ca != NULL) {
		curl_easy_setopt(c, CURLOPT_CAINFO, h->ca);
		return;
	}
	/* The pin is the whole check: a self-signed certificate names no CA,
	 * and the key, not the name, is what the operator compared. */
	curl_easy_setopt(c, CURLOPT_PINNEDPUBLICKEY, h->tls_pin);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
}

void
tls_trust_remember(struct hvctl *h)
{
	char hostport[300], path[PATH_MAX];
	const char *kh;
	int r;

	if (!h->tls_remember)
		return;
	h->tls_remember = false;
	if ((kh = known_hosts_path(path, sizeof(path))) == NULL ||
	    url_hostport(h->url, hostport, sizeof(hostport)) < 0)
		return;
	if ((r = known_hosts_put(kh, hostport, h->tls_pin)) < 0)
		fprintf(stderr, "hvctl: cannot remember %s's key in %s: %s\n",
		    hostport, kh, strerror(-r));
}

bool
tls_trust_explain(struct hvctl *h, CURLcode cc)
{
	char seen[80], why[CURL_ERROR_SIZE];

	if (!url_is_https(h->url))
		return false;
	if (cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH) {
		char whose[PATH_MAX + 32];

		if (presented_pin(h->url, seen, sizeof(seen), why,
		    sizeof(why)) < 0)
			snprintf(seen, sizeof(seen), "(unreadable: %s)", why);
		if (h->tls_known[0] != '\0')
			snprintf(whose, sizeof(whose), "remembered in %s",
			    h->tls_known);
		else
			snprintf(whose, sizeof(whose), "given with --pin");
		fprintf(stderr, "hvctl: %s presents the key\n  %s\nnot the one "
		    "%s:\n  %s\nIt may be an impostor, or hvd's certificate was "
		    "replaced. Nothing was sent.\nIf you know it was replaced, "
		    "check the new key against hvd's log and run again with "
		    "--pin.\n", h->url, seen, whose, h->tls_pin);
		return true;
	}
	if (h->tls_err[0] != '\0' && (cc == CURLE_PEER_FAILED_VERIFICATION ||
	    cc == CURLE_SSL_CONNECT_ERROR || cc == CURLE_SSL_CACERT_BADFILE)) {
		fprintf(stderr, "hvctl: TLS with %s failed: %s\n", h->url,
		    h->tls_err);
		return true;
	}
	return false;
}
