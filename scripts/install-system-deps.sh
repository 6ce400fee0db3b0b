#!/usr/bin/env bash
# System packages the tests drive as real parts: tmux (the console driven like a
# person), Postfix (the relay the relay agent holds and releases) and systemd's
# systemd-analyze (which checks the service files; nothing is started). Installing
# the postfix package configures nothing: the debconf answer "No configuration"
# leaves /etc/postfix unset-up and the tests run their own private instance.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! command -v apt-get >/dev/null || [ "$(id -u)" != 0 ]; then
  echo "install-system-deps: needs apt-get and root; skipping" >&2
  exit 0
fi
missing=()
command -v tmux >/dev/null || missing+=(tmux)
[ -x /usr/sbin/postfix ] || missing+=(postfix)
command -v systemd-analyze >/dev/null || missing+=(systemd)  # `systemd-analyze verify` of contrib/systemd
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
