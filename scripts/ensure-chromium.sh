#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed for the browser tests. The tests
# never run without it: they fail instead of passing silently.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "ensure-chromium: /usr/bin/chromium is missing; install Debian's chromium package (needs root)" >&2
	exit 1
fi
echo "ensure-chromium: installing chromium with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
test -x /usr/bin/chromium
