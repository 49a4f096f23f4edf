#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# The manual pages (doc/man/) and hvctl's bash completion
# (packaging/completion/hvctl) against the code as it is:
#   - each page renders with man(1) without a single groff warning (and a
#     broken page would be caught: the check is tried on one first);
#   - hvctl.1 has an entry for every command of hvctl help, with its usage
#     line exactly, and no entry for a command that does not exist;
#     hvd.conf.5 and hv-agent.8 have one for every keyword the two config
#     parsers accept (their keyword tables), and none for another; every
#     keyword packaging/hvd.conf shows is one the parser accepts; hvd.8 and
#     hv-agent.8 document every option their usage prints;
#   - cmake --install into a DESTDIR puts the four pages (with the build's
#     version) and the completion in place;
#   - the completion, sourced in a bash without the bash-completion
#     package, completes families, verbs, options and option values from
#     hvctl help, and names from a running hvd (python3, and the awk
#     fallback without it), silently when hvd is not there.
. "$(dirname "$0")/lib.sh"
: "${HV_AGENT:?HV_AGENT must point at the hv-agent binary}"
: "${HV_BUILD_DIR:?HV_BUILD_DIR must be the build directory}"
: "${HV_VERSION:?HV_VERSION must be the build version (PROJECT_VERSION)}"
need_cmd man groff cmake -- "man-db and groff-base render the pages"

SRC=$(cd "$(dirname "$0")/../.." && pwd)
MAN=$SRC/doc/man
COMPLETION=$SRC/packaging/completion/hvctl
PAGES=(hvctl.1 hvd.conf.5 hvd.8 hv-agent.8)

# render WIDTH PAGE: the page as man shows it, on stdout; groff's
# warnings (all of them: -ww) on stderr.
render() {
	MANWIDTH=$1 LC_ALL=C.UTF-8 MANPAGER=cat PAGER=cat man --warnings=w -l "$2"
}
# warnings PAGE: what man and groff say about PAGE at 80 columns.
# shellcheck disable=SC2069 # stderr kept, stdout dropped, on purpose
warnings() { render 80 "$1" 2>&1 >/dev/null; }

# --- the warning check itself catches a broken page
printf '%s\n' '.TH BROKEN 1' '.SH NAME' 'broken \- a page' '.SH DESCRIPTION' \
	'.NOSUCH macro' 'text \q escape' >"$T/broken.1"
expect "a broken page draws warnings" "$(warnings "$T/broken.1")" \
	"*macro 'NOSUCH' not defined*"

# --- every page renders without a warning
for p in "${PAGES[@]}"; do
	expect "$p: exists" "$([ -s "$MAN/$p" ] && echo yes)" yes
	expect_eq "$p: renders without warnings" "$(warnings "$MAN/$p")" ""
	expect "$p: renders" "$(render 80 "$MAN/$p" 2>/dev/null | grep -c '^NAME$')" 1
done

# --- hvctl.1: one entry per command, its tag the usage line exactly
export HVCTL_SOCKET="$T/none.sock"
"$HVCTL" help | sed -n '/^commands:$/,/^$/{s/^  \([a-z]\)/\1/p}' >"$T/usages"
expect "hvctl help lists 30 commands or more" "$(($(wc -l <"$T/usages") >= 30))" 1
# Wide enough that no tag wraps: each tag is one line, 7 spaces in.
render 1000 "$MAN/hvctl.1" 2>/dev/null |
	sed -n '/^COMMANDS$/,/^[A-Z]/{s/^       \([a-z]\)/\1/p}' >"$T/tags"
# A tag shorter than the indent has its text on the same line.
python3 - "$T/usages" "$T/tags" >"$T/cmdcheck" <<'EOF'
import sys
usages = [l.rstrip("\n") for l in open(sys.argv[1])]
tags = [l.rstrip("\n") for l in open(sys.argv[2])]
def matches(u, t):
    return t == u or (len(u) < 7 and t.startswith(u + " "))
for u in usages:
    if not any(matches(u, t) for t in tags):
        print("no entry in hvctl.1: " + u)
for t in tags:
    if not any(matches(u, t) for u in usages):
        print("hvctl.1 has an entry hvctl help lacks: " + t)
EOF
expect_eq "hvctl.1: every command of hvctl help, usage exact, and no other" \
	"$(cat "$T/cmdcheck")" ""
expect "hvctl.1: the exit statuses 0 to 5" \
	"$(render 80 "$MAN/hvctl.1" 2>/dev/null | sed -n '/^EXIT STATUS$/,/^[A-Z]/p' |
	grep -cE '^       [0-5] ')" 6
for v in HVCTL_SOCKET HVCTL_URL HVCTL_TOKEN HVCTL_CA HVCTL_PIN HVCTL_KNOWN_HOSTS; do
	expect "hvctl.1: ENVIRONMENT has $v" \
		"$(render 80 "$MAN/hvctl.1" 2>/dev/null | sed -n '/^ENVIRONMENT$/,/^[A-Z]/p' |
		grep -c "^       $v$")" 1
done

# --- configuration keywords: the parsers' tables against the pages
# table FILE: the names of FILE's keyword table, one a line.
table() {
	sed -n '/_keywords\[\] = {/,/^};/s/^[[:space:]]*{ "\([a-z0-9-]*\)",.*/\1/p' "$1" | sort
}
# tp_keywords PAGE [SECTION]: the lower-case words that begin a .TP tag
# set in bold (.B, .BI, .BR) in PAGE, or in its SECTION only.
tp_keywords() {
	local from=${2:-}
	awk -v from="$from" '
		/^\.SH / { sec = substr($0, 5); gsub(/"/, "", sec) }
		from != "" && sec != from { next }
		tp { tp = 0; if ($1 ~ /^\.B[IR]?$/) { w = $2; gsub(/\\/, "", w); if (w ~ /^[a-z][a-z0-9-]*$/) print w } }
		/^\.TP/ { tp = 1 }' "$1" | sort -u
}
table "$SRC/daemon/wire/config.c" >"$T/kw.parser"
expect "hvd's keyword table read: 30 keywords or more" "$(($(wc -l <"$T/kw.parser") >= 30))" 1
tp_keywords "$MAN/hvd.conf.5" >"$T/kw.page"
expect_eq "hvd.conf.5: every keyword of config.c, and no other" \
	"$(diff "$T/kw.parser" "$T/kw.page")" ""
sed -n 's/^#\{0,1\}\([a-z][a-z0-9-]*\) .*/\1/p' "$SRC/packaging/hvd.conf" | sort -u >"$T/kw.example"
expect "packaging/hvd.conf read" "$(($(wc -l <"$T/kw.example") >= 20))" 1
expect_eq "packaging/hvd.conf shows only keywords config.c accepts" \
	"$(comm -23 "$T/kw.example" "$T/kw.parser")" ""
table "$SRC/agent/conf.c" >"$T/akw.parser"
expect "the agent's keyword table read" "$(($(wc -l <"$T/akw.parser") >= 8))" 1
tp_keywords "$MAN/hv-agent.8" CONFIGURATION >"$T/akw.page"
expect_eq "hv-agent.8: every keyword of agent/conf.c, and no other" \
	"$(diff "$T/akw.parser" "$T/akw.page")" ""

# --- options: what each binary's usage lists is in the page's OPTIONS
# usage_opts TEXT-FILE: the options a usage text lists at line starts.
usage_opts() {
	sed -n 's/^  \(-[-a-zA-Z][-a-z]*\)\(, \(--[a-z-]*\)\)\{0,1\}.*/\1 \3/p' "$1" | tr ' ' '\n' | sed '/^$/d' | sort -u
}
# page_opts PAGE: the options that begin the tags of PAGE's OPTIONS.
page_opts() {
	render 1000 "$1" 2>/dev/null | sed -n '/^OPTIONS$/,/^[A-Z]/p' |
		sed -n 's/^       \(-[^ ].*\)/\1/p' | sed 's/  .*//' | tr ', ' '\n' |
		grep '^-' | sort -u
}
"$HVD" --no-such-option >"$T/hvd.usage" 2>&1 || true
usage_opts "$T/hvd.usage" >"$T/hvd.opts"
expect "hvd's usage read: -L, --restore, --version among them" \
	"$(grep -cx -e -L -e --restore -e --version "$T/hvd.opts")" 3
expect_eq "hvd.8: every option of hvd's usage" \
	"$(comm -23 "$T/hvd.opts" <(page_opts "$MAN/hvd.8"))" ""
"$HV_AGENT" --help >"$T/agent.usage" 2>&1 || true
usage_opts "$T/agent.usage" >"$T/agent.opts"
expect "hv-agent's usage read: -V, --version, --help among them" \
	"$(grep -cx -e -V -e --version -e --help "$T/agent.opts")" 3
expect_eq "hv-agent.8: every option of hv-agent's usage" \
	"$(comm -23 "$T/agent.opts" <(page_opts "$MAN/hv-agent.8"))" ""

# --- cmake --install puts the pages and the completion in place
rc=0
DESTDIR="$T/root" cmake --install "$HV_BUILD_DIR" --prefix /usr >"$T/install.log" 2>&1 || rc=$?
expect "cmake --install into a DESTDIR" "$rc" 0
[ "$rc" = 0 ] || tail -n 5 "$T/install.log"
for f in share/man/man1/hvctl.1 share/man/man5/hvd.conf.5 share/man/man8/hvd.8 \
	share/man/man8/hv-agent.8 share/bash-completion/completions/hvctl; do
	expect "installed: /usr/$f" "$([ -s "$T/root/usr/$f" ] && echo yes)" yes
done
for p in "${PAGES[@]}"; do
	s=${p##*.}
	expect_eq "installed $p: the source with the build's version (else: rebuild)" \
		"$(sed "s/@PROJECT_VERSION@/$HV_VERSION/" "$MAN/$p" |
		diff - "$T/root/usr/share/man/man$s/$p" 2>&1 | head -5)" ""
	expect_eq "installed $p: renders without warnings" \
		"$(warnings "$T/root/usr/share/man/man$s/$p" 2>&1)" ""
done
expect "installed hvd.8: the version in the footer" \
	"$(render 80 "$T/root/usr/share/man/man8/hvd.8" 2>/dev/null | tail -1)" "hypervisor $HV_VERSION*HVD(8)"
expect_eq "installed completion: the file in packaging/" \
	"$(cmp "$COMPLETION" "$T/root/usr/share/bash-completion/completions/hvctl" 2>&1)" ""

# --- the completion, in a plain bash with no bash-completion loaded
mkdir -p "$T/bin"
ln -s "$HVCTL" "$T/bin/hvctl"
cat >"$T/comp.sh" <<'EOF'
# bash comp.sh [--line] WORD...: complete the last WORD (it may be "") as
# bash would after "hvctl"; prints COMPREPLY one a line.  With --line,
# COMP_LINE and COMP_POINT are set as well (the words are joined by
# spaces, except around a lone "=").
line=0
if [ "$1" = --line ]; then line=1; shift; fi
if declare -F _init_completion >/dev/null; then
	echo "bash-completion is loaded; this test is about the fallback" >&2
	exit 1
fi
. "$COMPLETION"
COMP_WORDS=(hvctl "$@")
COMP_CWORD=$#
if [ $line = 1 ]; then
	COMP_LINE=hvctl
	prev=
	for w in "$@"; do
		if [ "$w" = = ] || [ "$prev" = = ]; then COMP_LINE+=$w; else COMP_LINE+=" $w"; fi
		prev=$w
	done
	COMP_POINT=${#COMP_LINE}
fi
_hvctl
printf '%s\n' "${COMPREPLY[@]}"
EOF
# comp WORD...: the candidates, on one line; stderr goes to $T/comp.err.
comp() {
	PATH="$T/bin:$PATH" COMPLETION="$COMPLETION" bash --norc --noprofile "$T/comp.sh" "$@" \
		2>>"$T/comp.err" | tr '\n' ' ' | sed 's/ $//'
}
: >"$T/comp.err"
expect_eq "complete 'hvctl vm mi'" "$(comp vm mi)" migrate
expect_eq "complete 'hvctl ho'" "$(comp ho)" host
expect_eq "complete 'hvctl vm create x --ker'" "$(comp vm create x --ker)" --kernel
expect_eq "complete 'hvctl --json vm mi' (a global option first)" "$(comp --json vm mi)" migrate
expect "complete 'hvctl ': every family of hvctl help" "$(comp '')" \
	"status net vm image backup host boot top token help version"
expect_eq "complete 'hvctl host dr'" "$(comp host dr)" drain
expect_eq "complete 'hvctl vm create x --type ': the values on the usage line" \
	"$(comp vm create x --type '')" "pv pvh"
expect_eq "complete 'hvctl image add x --kind=d' (COMP_LINE): after the '='" \
	"$(comp --line image add x --kind = d)" disk
expect_eq "complete 'hvctl backup --': its option, then the global ones" \
	"$(comp backup --)" "--force --json --socket --url --help"
expect_eq "complete 'hvctl help vm mi'" "$(comp help vm mi)" migrate
# No hvd: no names, and not a word on stderr.
expect_eq "no hvd: 'hvctl net show ' completes nothing" "$(comp net show '')" ""
expect_eq "no hvd: 'hvctl vm create x --kernel ' completes nothing" \
	"$(comp vm create x --kernel '')" ""
expect_eq "the completion printed nothing on stderr" "$(cat "$T/comp.err")" ""

# With hvd: the names it holds.
start_hvd
"$HVCTL" net create prod --vni 100 >/dev/null
"$HVCTL" net create ops --vni 200 >/dev/null
head -c 4096 /dev/urandom >"$T/kernel"
"$HVCTL" image add vmlinuz-test "$T/kernel" >/dev/null
"$HVCTL" host add h1 --pubkey "$(printf '%064d' 7)" >/dev/null
# (hvd lists networks by VNI.)
expect_eq "hvd: 'hvctl net show ' completes its networks" "$(comp net show '')" "prod ops"
expect_eq "hvd: 'hvctl net show p' completes prod" "$(comp net show p)" prod
expect_eq "hvd: 'hvctl net delete o' completes ops" "$(comp net delete o)" ops
expect_eq "hvd: 'hvctl vm create x --kernel ' completes images" \
	"$(comp vm create x --kernel '')" vmlinuz-test
expect_eq "hvd: 'hvctl image rm ' completes images" "$(comp image rm '')" vmlinuz-test
expect_eq "hvd: 'hvctl host drain ' completes hosts" "$(comp host drain '')" h1
expect_eq "hvd: 'hvctl vm create x --net ' completes VNIs" "$(comp vm create x --net '')" "100 200"
# The socket named on the line is the one asked.
expect_eq "hvd: --socket on the line is used" \
	"$(HVCTL_SOCKET="$T/none.sock" comp --socket "$T/hvd.sock" net show p)" prod
expect_eq "hvd: without it, \$HVCTL_SOCKET (nothing there)" \
	"$(HVCTL_SOCKET="$T/none.sock" comp net show p)" ""
# Without python3, the awk fallback reads the same names.
mkdir -p "$T/nopy"
for t in bash hvctl timeout awk sed tr; do
	ln -s "$(PATH="$T/bin:$PATH" command -v "$t")" "$T/nopy/$t"
done
nopy() {
	PATH="$T/nopy" COMPLETION="$COMPLETION" "$T/nopy/bash" --norc --noprofile "$T/comp.sh" "$@" \
		2>>"$T/comp.err" | "$T/nopy/tr" '\n' ' '
}
expect_eq "no python3: the fallback has no python3" \
	"$(PATH="$T/nopy" "$T/nopy/bash" -c 'command -v python3' || true)" ""
expect_eq "no python3: 'hvctl net show ' completes its networks" "$(nopy net show '')" "prod ops "
expect_eq "no python3: 'hvctl image rm v' completes images" "$(nopy image rm v)" "vmlinuz-test "
expect_eq "no python3: 'hvctl vm create x --net ' completes VNIs" "$(nopy vm create x --net '')" "100 200 "
expect_eq "the completion printed nothing on stderr" "$(cat "$T/comp.err")" ""
finish
