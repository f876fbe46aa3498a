#!/bin/sh
# The topology of compose.yaml without containers, on 127.0.0.1: a Redis
# primary, two replicas and three sentinels (redis-server, started by
# redis/start.sh with the same redis.conf and sentinel.conf), the demo
# upstream, and three portcullis instances whose configs are portcullis.toml
# with loopback addresses. Then it checks that they act as one:
#
#   1. a login on instance 1 gives a session that instances 2 and 3 accept,
#      and a request through instance 3 reaches the app as that user;
#   2. "sign out everywhere" on instance 2 ends the session on 1 and 3;
#   3. after a Sentinel failover (SENTINEL FAILOVER, or FAILOVER=kill) a new login on
#      instance 3 works and is accepted by instance 1 (written to the new primary).
#
# Usage: run-local.sh [--keep] [PORTCULLIS_BINARY]
#   PORTCULLIS_BINARY   default: `portcullis` on PATH
#   --keep              leave everything running after the checks (Ctrl-C stops it)
# Environment:
#   BASE_PORT=27400     ports BASE..BASE+2 Redis, +10..+12 sentinels, +20 the app,
#                       +31..+33 HTTPS, +41..+43 HTTP, +51..+53 admin
#   WORK=DIR            where configs, data and logs go (default: a new temp dir, kept)
#   WITHOUT_DURABLE_REPLICAS=1
#                       drop `durable_replicas` from the configs (a build before it)
#   FAILOVER=kill       step 3 kills the primary (SIGKILL) instead of SENTINEL FAILOVER
#   SHARED_STATE=1      one state_dir for the three (as compose.yaml's shared volume)
#                       instead of a copy of instance 1's secrets.key in each
# Needs: redis-server (7.x; 6.2 for ACL key/channel rules), curl.
# Everything it starts it stops on exit (and only that).
set -eu

keep=no
if [ "${1:-}" = --keep ]; then keep=yes; shift; fi
bin=${1:-$(command -v portcullis || true)}
[ -n "$bin" ] && [ -x "$bin" ] || { echo "run-local.sh: no portcullis binary (give its path)" >&2; exit 2; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
for tool in redis-server redis-cli curl; do
    command -v "$tool" >/dev/null || { echo "run-local.sh: $tool is needed" >&2; exit 2; }
done

here=$(cd "$(dirname "$0")" && pwd)
base=${BASE_PORT:-27400}
work=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/portcullis-three.XXXXXX")}
mkdir -p "$work"
work=$(cd "$work" && pwd)
umask 077

pids=""
stop_all() {
    status=$?
    trap - EXIT INT TERM
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in $pids; do wait "$pid" 2>/dev/null || true; done
    echo "stopped; configs, data and logs are in $work"
    exit "$status"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "== $*"; }
fail() {
    printf 'FAILED: %s\n' "$*" >&2
    exit 1
}
# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.2 s.
wait_for() {
    limit=$1 what=$2
    shift 2
    i=0
    until "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -le $((limit * 5)) ] || fail "$what: not within ${limit}s (logs in $work)"
        sleep 0.2
    done
}
hex_password() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

# --- passwords -------------------------------------------------------------
mkdir -p "$work/secrets"
hex_password >"$work/secrets/redis_admin_password"
hex_password >"$work/secrets/redis_portcullis_password"
export ADMIN_PASSWORD_FILE="$work/secrets/redis_admin_password"
export PORTCULLIS_PASSWORD_FILE="$work/secrets/redis_portcullis_password"
export BIND=127.0.0.1
admin_pw=$(cat "$ADMIN_PASSWORD_FILE")

# --- Redis: a primary, two replicas, three sentinels -------------------------
primary_port=$base
data_cli() { REDISCLI_AUTH=$admin_pw redis-cli -h 127.0.0.1 -p "$@"; }
replica_synced() { data_cli "$1" info replication | grep -q '^master_link_status:up'; }
sentinel_ready() {
    [ "$(redis-cli -h 127.0.0.1 -p "$1" sentinel replicas mymaster | grep -c '^name$')" -ge 2 ] &&
        redis-cli -h 127.0.0.1 -p "$1" sentinel ckquorum mymaster | grep -q '^OK'
}

say "Redis primary on 127.0.0.1:$primary_port, replicas on :$((base + 1)) and :$((base + 2))"
PORT=$primary_port "$here/redis/start.sh" primary "$work/redis-primary" >"$work/redis-primary.log" 2>&1 &
primary_pid=$!
pids="$pids $primary_pid"
wait_for 10 "the primary answers" data_cli "$primary_port" ping
for n in 1 2; do
    PORT=$((base + n)) PRIMARY_HOST=127.0.0.1 PRIMARY_PORT=$primary_port \
        "$here/redis/start.sh" replica "$work/redis-replica-$n" >"$work/redis-replica-$n.log" 2>&1 &
    pids="$pids $!"
done
for n in 1 2; do wait_for 20 "replica $n syncs" replica_synced $((base + n)); done

say "sentinels on :$((base + 10))..:$((base + 12)) (quorum 2)"
for n in 1 2 3; do
    PORT=$((base + 9 + n)) PRIMARY_HOST=127.0.0.1 PRIMARY_PORT=$primary_port QUORUM=2 \
        "$here/redis/start.sh" sentinel "$work/sentinel-$n" >"$work/sentinel-$n.log" 2>&1 &
    pids="$pids $!"
done
for n in 1 2 3; do wait_for 30 "sentinel $n knows both replicas and a quorum" sentinel_ready $((base + 9 + n)); done
sentinels="127.0.0.1:$((base + 10)),127.0.0.1:$((base + 11)),127.0.0.1:$((base + 12))"

# --- the app, certificates, users ---------------------------------------------
app_port=$((base + 20))
demo=$(dirname "$bin")/portcullis-demo-upstream
if [ -x "$demo" ]; then
    say "demo upstream on 127.0.0.1:$app_port"
    "$demo" "127.0.0.1:$app_port" >"$work/app.log" 2>&1 &
    pids="$pids $!"
else
    say "no portcullis-demo-upstream next to the binary: requests to the app will get 502"
fi
"$bin" certs dev --dir "$work/certs" --host wiki.localhost >"$work/certs.log" 2>&1 || fail "portcullis certs dev (see $work/certs.log)"
user_pw=$(hex_password)
hash=$(printf '%s\n' "$user_pw" | "$bin" hash-password --stdin)
sed "s|^password = .*|password = \"$hash\"|" "$here/users.example.toml" >"$work/users.toml"

# --- three portcullis instances ---------------------------------------------------
# portcullis.toml with this machine's paths and loopback ports; 127.0.0.2 (the
# checks' client address) is internal, so alice's second factor is skipped.
state_dir() {
    if [ -n "${SHARED_STATE:-}" ]; then echo "$work/state"; else echo "$work/portcullis-$1/state"; fi
}
instance_config() {
    n=$1
    awk -v https="127.0.0.1:$((base + 30 + n))" -v http="127.0.0.1:$((base + 40 + n))" \
        -v admin="127.0.0.1:$((base + 50 + n))" -v certs="$work/certs" -v state="$(state_dir "$n")" \
        -v store="redis+sentinel://$sentinels/mymaster" -v pwfile="$PORTCULLIS_PASSWORD_FILE" \
        -v users="$work/users.toml" -v app="127.0.0.1:$app_port" -v nodurable="${WITHOUT_DURABLE_REPLICAS:-}" '
        function set(v) { sub(/=.*/, "= \"" v "\""); print }
        /^\[/ { section = $0 }
        section == "[server]" && /^https *=/ { set(https); next }
        section == "[server]" && /^http *=/ { set(http); next }
        section == "[server]" && /^tls_cert *=/ { set(certs "/server.crt"); next }
        section == "[server]" && /^tls_key *=/ { set(certs "/server.key"); next }
        section == "[server]" && /^trusted_proxies *=/ { print "trusted_proxies = []"; next }
        section == "[server]" && /^state_dir *=/ { set(state); next }
        section == "[server]" && /^store *=/ { set(store); next }
        section == "[redis]" && /^password_file *=/ { set(pwfile); next }
        section == "[redis]" && /^durable_replicas *=/ && nodurable != "" { print "# " $0 " (left out: WITHOUT_DURABLE_REPLICAS)"; next }
        section == "[admin]" && /^listen *=/ { set(admin); next }
        section == "[networks]" && /^internal *=/ { print "internal = [\"127.0.0.2/32\"]"; next }
        section == "[users]" && /^file *=/ { set(users); next }
        section == "[[app]]" && /^upstream *=/ { set(app); next }
        { print }' "$here/portcullis.toml"
}
healthy() { curl -fsS "http://127.0.0.1:$((base + 50 + $1))/healthz"; }
for n in 1 2 3; do
    mkdir -p "$work/portcullis-$n"
    instance_config "$n" >"$work/portcullis-$n/portcullis.toml"
done
say "portcullis check (instance 1)"
"$bin" check --config "$work/portcullis-1/portcullis.toml" || fail "portcullis check"

say "portcullis 1 on https://127.0.0.1:$((base + 31)) (it makes secrets.key)"
"$bin" run --config "$work/portcullis-1/portcullis.toml" >"$work/portcullis-1/log" 2>&1 &
pids="$pids $!"
wait_for 30 "portcullis 1 is healthy" healthy 1
for n in 2 3; do
    if [ -n "${SHARED_STATE:-}" ]; then
        say "portcullis $n on https://127.0.0.1:$((base + 30 + n)) (the same state_dir)"
    else
        # The same secrets.key on every instance, before its first start.
        mkdir -p "$work/portcullis-$n/state"
        chmod 700 "$work/portcullis-$n/state"
        cp "$work/portcullis-1/state/secrets.key" "$work/portcullis-$n/state/secrets.key"
        say "portcullis $n on https://127.0.0.1:$((base + 30 + n)) (secrets.key of instance 1)"
    fi
    "$bin" run --config "$work/portcullis-$n/portcullis.toml" >"$work/portcullis-$n/log" 2>&1 &
    pids="$pids $!"
done
for n in 2 3; do wait_for 30 "portcullis $n is healthy" healthy "$n"; done

# --- the checks --------------------------------------------------------------
jar=$work/cookies
# browse N METHOD PATH [JSON]: a request to wiki.localhost on instance N, from
# 127.0.0.2, with one cookie jar (one browser); prints the status, body in $work/body.
browse() {
    port=$((base + 30 + $1))
    method=$2 url="https://wiki.localhost:$port$3" data=${4:-}
    set -- -sS -o "$work/body" -w '%{http_code}' --cacert "$work/certs/dev-ca.crt" --interface 127.0.0.2 \
        --resolve "wiki.localhost:$port:127.0.0.1" -b "$jar" -c "$jar" -X "$method"
    if [ -n "$data" ]; then set -- "$@" -H 'content-type: application/json' --data "$data"; fi
    curl "$@" "$url"
}
expect() { # expect STATUS WHAT N METHOD PATH [JSON]
    want=$1 what=$2
    shift 2
    got=$(browse "$@")
    [ "$got" = "$want" ] || fail "$what: HTTP $got, wanted $want ($(head -c 300 "$work/body"))"
    echo "ok: $what ($got)"
}
whoami_is() { [ "$(browse "$1" GET /.portcullis/api/whoami)" = "$2" ]; }
login='{"username":"alice","password":"'$user_pw'"}'

say "1. a login on one instance is a session on all"
expect 200 "login on instance 1" 1 POST /.portcullis/api/login "$login"
grep -q '"next":"done"' "$work/body" || fail "login on instance 1 did not finish: $(cat "$work/body")"
expect 200 "whoami on instance 2" 2 GET /.portcullis/api/whoami
expect 200 "whoami on instance 3" 3 GET /.portcullis/api/whoami
if [ -x "$demo" ]; then
    expect 200 "the app through instance 3" 3 GET /hello
    tr -d ' \n' <"$work/body" | grep -qi '"x-portcullis-user","alice"' || fail "the app did not get X-Portcullis-User: alice"
    echo "ok: the app received X-Portcullis-User: alice"
fi

say "2. sign out everywhere on instance 2 reaches instances 1 and 3"
cp "$jar" "$work/cookies.signed-in"
expect 200 "sign out everywhere on instance 2" 2 POST /.portcullis/api/logout '{"everywhere":true}'
jar=$work/cookies.signed-in # the cookie as it was before the sign-out
for n in 1 3; do
    wait_for 5 "the old session refused on instance $n" whoami_is "$n" 401
    echo "ok: the old session is refused on instance $n (401)"
done
jar=$work/cookies

old_primary=$(redis-cli -h 127.0.0.1 -p $((base + 10)) sentinel get-master-addr-by-name mymaster | tail -n 1)
t0=$(date +%s.%N)
if [ "${FAILOVER:-}" = kill ]; then
    say "3. failover: the primary killed (SIGKILL), then a login on instance 3"
    kill -KILL "$primary_pid"
    how="the primary was killed"
else
    say "3. failover: SENTINEL FAILOVER, then a login on instance 3"
    # A sentinel answers NOGOODSLAVE until it has heard from a replica itself: retry.
    failover_started() { redis-cli -h 127.0.0.1 -p $((base + 10)) sentinel failover mymaster | grep -q '^OK'; }
    wait_for 30 "a sentinel starts the failover" failover_started
    how="SENTINEL FAILOVER"
fi
new_primary_named() {
    [ "$(redis-cli -h 127.0.0.1 -p $((base + 10)) sentinel get-master-addr-by-name mymaster | tail -n 1)" != "$old_primary" ]
}
wait_for 30 "the sentinels name a new primary" new_primary_named
new_primary=$(redis-cli -h 127.0.0.1 -p $((base + 10)) sentinel get-master-addr-by-name mymaster | tail -n 1)
echo "ok: the primary moved from :$old_primary to :$new_primary"
rm -f "$jar"
login_on_3() { [ "$(browse 3 POST /.portcullis/api/login "$login")" = 200 ]; }
wait_for 30 "a login on instance 3 after the failover" login_on_3
echo "ok: login on instance 3 after the failover (200), $(echo "$t0 $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }') s after $how"
expect 200 "that session on instance 1" 1 GET /.portcullis/api/whoami
keys=$(data_cli "$new_primary" --no-auth-warning dbsize)
echo "ok: the new primary holds $keys keys"

say "all checks passed"
if [ "$keep" = yes ]; then
    cat <<EOF
Running (Ctrl-C stops everything):
  https://wiki.localhost:$((base + 31))/  https://wiki.localhost:$((base + 32))/  https://wiki.localhost:$((base + 33))/
  CA: $work/certs/dev-ca.crt   user: alice   password: $user_pw
  admin: $bin admin --config $work/portcullis-1/portcullis.toml health
EOF
    # A sleep in the background, so that Ctrl-C (or SIGTERM) stops everything at once.
    while :; do
        sleep 3600 &
        pids="$pids $!"
        wait $! || true
    done
fi
