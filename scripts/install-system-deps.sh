#!/usr/bin/env bash
# System packages the tests drive as real parts: tmux (the console driven like a
# person), Postfix (the relay the relay agent holds and releases), PostgreSQL
# (the store for many hosts; the tests start their own throwaway cluster) and
# systemd's systemd-analyze (which checks the service files; nothing is started).
# Installing the postfix package configures nothing: the debconf answer "No
# configuration" leaves /etc/postfix unset-up and the tests run their own private instance.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! command -v apt-get >/dev/null || [ "$(id -u)" != 0 ]; then
  echo "install-system-deps: needs apt-get and root; skipping" >&2
  exit 0
fi
missing=()
command -v tmux >/dev/null || missing+=(tmux)
[ -x /usr/sbin/postfix ] || missing+=(postfix)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
# psycopg's binary wheel brings its own libpq; the pure-Python fallback needs the system's.
compgen -G '/usr/lib/*/libpq.so.5' >/dev/null || missing+=(libpq5)
command -v systemd-analyze >/dev/null || missing+=(systemd)  # `systemd-analyze verify` of contrib/systemd
command -v ip >/dev/null || missing+=(iproute2)  # the many-hosts tests' network namespaces (tests/hosts)
if [ ${#missing[@]} -gt 0 ]; then
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  # No system cluster: the package would otherwise create and start one on port 5432.
  mkdir -p /etc/postgresql-common
  [ -e /etc/postgresql-common/createcluster.conf ] ||
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold \
    "${missing[@]}" >/dev/null
fi
# PostgreSQL refuses to run as root: the tests' server runs as this unprivileged account.
if ! getent passwd mailconsole-pg >/dev/null; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin mailconsole-pg
fi
