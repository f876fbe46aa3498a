#!/bin/sh
# Starts one node of the example's Redis: a data node (primary or replica) or
# a sentinel, from the files next to this script, with the passwords read
# from files (never on a command line, where `ps` would show them).
#
#   start.sh primary  DIR
#   start.sh replica  DIR     (PRIMARY_HOST, PRIMARY_PORT)
#   start.sh sentinel DIR     (PRIMARY_HOST, PRIMARY_PORT, QUORUM)
#
# Environment:
#   PORT                      6379 (data) / 26379 (sentinel)
#   BIND                      addresses to listen on (default "* -::*": all)
#   ANNOUNCE                  the name or address the others should use for this node
#                             (replica-announce-ip / sentinel announce-ip); default: none
#   ADMIN_PASSWORD_FILE       the `default` user's password: replication and the sentinels
#   PORTCULLIS_PASSWORD_FILE  the `portcullis` ACL user's password (data nodes)
#   KEY_PREFIX                portcullis's [redis] key_prefix (default "portcullis:")
#   RESOLVE_HOSTNAMES         sentinel: yes when nodes are named by host name (compose)
#
# DIR holds the node's generated config (mode 0600: it has the passwords) and
# its data. An existing config is kept: a sentinel rewrites its file as it
# learns the topology, and Sentinel rewrites a data node's after a failover.
set -eu

role=${1:?usage: start.sh primary|replica|sentinel DIR}
dir=${2:?usage: start.sh primary|replica|sentinel DIR}
here=$(cd "$(dirname "$0")" && pwd)
bind=${BIND:-* -::*}
prefix=${KEY_PREFIX:-portcullis:}

# A password goes into a config line and an ACL rule: letters, digits, - and _ only
# (e.g. `openssl rand -hex 32`), so no quoting can go wrong.
password() {
    p=$(cat "${1:?a password file is required}")
    case $p in
        "" | *[!A-Za-z0-9_-]*) echo "start.sh: $1 must hold one word of letters, digits, - or _" >&2; exit 2 ;;
    esac
    printf %s "$p"
}

umask 077
mkdir -p "$dir"
conf=$dir/$role.conf
if [ ! -e "$conf" ]; then
    admin=$(password "${ADMIN_PASSWORD_FILE:-}")
    case $role in
    primary | replica)
        portcullis=$(password "${PORTCULLIS_PASSWORD_FILE:-}")
        {
            echo "port ${PORT:-6379}"
            echo "bind $bind"
            echo "dir $dir"
            cat "$here/redis.conf"
            echo "requirepass $admin"
            echo "masterauth $admin"
            echo "user portcullis on >$portcullis ~$prefix* &$prefix* +@all -@dangerous +role"
            [ -n "${ANNOUNCE:-}" ] && echo "replica-announce-ip $ANNOUNCE"
            if [ "$role" = replica ]; then
                echo "replicaof ${PRIMARY_HOST:?} ${PRIMARY_PORT:-6379}"
            fi
        } >"$conf.tmp"
        ;;
    sentinel)
        {
            echo "port ${PORT:-26379}"
            echo "bind $bind"
            # No password on the sentinels (portcullis asks them without one), so
            # protected mode would refuse every client that is not on loopback.
            echo "protected-mode no"
            echo "dir $dir"
            if [ "${RESOLVE_HOSTNAMES:-no}" = yes ]; then
                echo "sentinel resolve-hostnames yes"
                echo "sentinel announce-hostnames yes"
            fi
            [ -n "${ANNOUNCE:-}" ] && echo "sentinel announce-ip $ANNOUNCE"
            echo "sentinel monitor mymaster ${PRIMARY_HOST:?} ${PRIMARY_PORT:-6379} ${QUORUM:-2}"
            echo "sentinel auth-pass mymaster $admin"
            cat "$here/sentinel.conf"
        } >"$conf.tmp"
        ;;
    *)
        echo "start.sh: the role is primary, replica or sentinel, not \`$role\`" >&2
        exit 2
        ;;
    esac
    mv "$conf.tmp" "$conf"
fi

cd "$dir"
if [ "$role" = sentinel ]; then
    exec redis-server "$conf" --sentinel
fi
exec redis-server "$conf"
