#!/usr/bin/env bash
# The servers of the topology test (topology.test.ts), all on 127.0.0.1, in one folder:
#   BASE      PostgreSQL primary             (superuser tombstone, trust)
#   BASE+1    its streaming replica          (pg_basebackup -R, hot standby)
#   BASE+2    PgBouncer, transaction pooling, in front of the primary (role blog_app, scram)
#   BASE+3    nginx, balancing BASE+4 and BASE+5 (the two service instances the test starts)
#
#   servers.sh start DIR BASE     start them (DIR is created; it must not exist)
#   servers.sh stop DIR           stop whatever of them runs, leave DIR
#   servers.sh stop-replica DIR   stop the replica only; stop-pooler DIR: PgBouncer only
#
# As root (CI), PostgreSQL and PgBouncer run as the postgres user (both refuse root); nginx runs with
# its configuration, pid and logs in DIR. The pgbouncer.ini written here is the one docs/scaling.md shows.
set -euo pipefail

command="${1:?start or stop}"
dir="${2:?folder}"

export PATH="$PATH:/usr/sbin"
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

stop() {
  if [ -f "$dir/nginx/nginx.pid" ]; then kill "$(cat "$dir/nginx/nginx.pid")" 2>/dev/null || true; fi
  if [ -f "$dir/pgbouncer/pgbouncer.pid" ]; then kill "$(cat "$dir/pgbouncer/pgbouncer.pid")" 2>/dev/null || true; fi
  for data in "$dir/replica" "$dir/primary"; do
    if [ -f "$data/postmaster.pid" ]; then as_pg "$pg_bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true; fi
  done
}

if [ "$command" = stop ]; then stop; exit 0; fi
if [ "$command" = stop-replica ]; then as_pg "$pg_bin/pg_ctl" -D "$dir/replica" -m fast -w stop >/dev/null; exit 0; fi
if [ "$command" = stop-pooler ]; then
  pid="$(cat "$dir/pgbouncer/pgbouncer.pid")"
  kill "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
  echo "PgBouncer did not stop" >&2
  exit 1
fi
[ "$command" = start ] || { echo "usage: servers.sh start DIR BASE | stop DIR" >&2; exit 2; }
base="${3:?base port}"
primary_port=$base replica_port=$((base + 1)) bouncer_port=$((base + 2)) nginx_port=$((base + 3))
trap 'status=$?; if [ $status != 0 ]; then stop; fi' EXIT

mkdir -p "$dir"
chmod 755 "$dir"
mkdir -p "$dir/pgbouncer" "$dir/nginx"
if [ "$(id -u)" = 0 ]; then chown postgres "$dir" "$dir/pgbouncer"; fi

# --- the primary --------------------------------------------------------------------------------
as_pg "$pg_bin/initdb" -D "$dir/primary" -U tombstone --auth=trust -E UTF8 --no-locale >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$dir/primary" -l "$dir/primary.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $primary_port -k $dir -c max_connections=100 -c fsync=off -c full_page_writes=off -c wal_level=replica -c hot_standby_feedback=on" \
  start >/dev/null
psql() { "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 "$@"; }
psql -p "$primary_port" -U tombstone -d postgres <<'SQL'
create role blog_owner login;
create database blog owner blog_owner;
create role blog_app login password 'app-secret';
-- Through PgBouncer the service cannot send its timeouts at connect; the role carries them.
alter role blog_app set statement_timeout = '10s';
alter role blog_app set lock_timeout = '5s';
SQL

# --- the streaming replica ------------------------------------------------------------------------
as_pg "$pg_bin/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U tombstone -D "$dir/replica" -R -X stream -c fast
as_pg "$pg_bin/pg_ctl" -D "$dir/replica" -l "$dir/replica.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $replica_port -k $dir -c hot_standby=on -c fsync=off" \
  start >/dev/null

# --- PgBouncer in transaction pooling -------------------------------------------------------------
cat >"$dir/pgbouncer/pgbouncer.ini" <<INI
[databases]
blog = host=127.0.0.1 port=$primary_port dbname=blog

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/pgbouncer/userlist.txt
pool_mode = transaction
max_client_conn = 200
default_pool_size = 20
; the service sends no other startup parameter (DB_STATEMENT_TIMEOUT_MS=0, DB_LOCK_TIMEOUT_MS=0)
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer/pgbouncer.log
pidfile = $dir/pgbouncer/pgbouncer.pid
INI
printf '"blog_app" "app-secret"\n' >"$dir/pgbouncer/userlist.txt"
if [ "$(id -u)" = 0 ]; then chown postgres "$dir/pgbouncer/pgbouncer.ini" "$dir/pgbouncer/userlist.txt"; fi
chmod 600 "$dir/pgbouncer/userlist.txt"
as_pg pgbouncer -d "$dir/pgbouncer/pgbouncer.ini"

# --- nginx in front of the two instances ------------------------------------------------------------
cat >"$dir/nginx/nginx.conf" <<CONF
daemon on;
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path $dir/nginx/body;
  proxy_temp_path $dir/nginx/proxy;
  fastcgi_temp_path $dir/nginx/fastcgi;
  uwsgi_temp_path $dir/nginx/uwsgi;
  scgi_temp_path $dir/nginx/scgi;
  upstream blog {
    server 127.0.0.1:$((base + 4));
    server 127.0.0.1:$((base + 5));
    keepalive 16;
  }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://blog;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
CONF
chmod -R a+rwX "$dir/nginx"
nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -e "$dir/nginx/error.log"

# Ready when PgBouncer and the replica answer.
for _ in $(seq 1 100); do
  if PGPASSWORD=app-secret psql -p "$bouncer_port" -U blog_app -d blog -c 'select 1' >/dev/null 2>&1 \
    && psql -p "$replica_port" -U tombstone -d blog -c 'select 1' >/dev/null 2>&1; then
    exit 0
  fi
  sleep 0.1
done
echo "PgBouncer or the replica did not answer" >&2
exit 1
