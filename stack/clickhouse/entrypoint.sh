#!/bin/bash
# The clickhouse service's entrypoint: installs the course user, then runs the image's own
# /entrypoint.sh (which also runs stack/clickhouse/init/*.sql on the first start).
#
# The user's name comes from CLICKHOUSE_USER; ClickHouse cannot take an element name from the
# environment, so it is filled into users.d/course-user.xml here. The password is never written
# to a file: the server reads CLICKHOUSE_PASSWORD itself (from_env in that file).
set -euo pipefail

user="${CLICKHOUSE_USER:-default}"
if [[ ! "$user" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
    echo "CLICKHOUSE_USER='$user' cannot name a ClickHouse user here: use letters, digits" \
         "and _ only (set it in .env)" >&2
    exit 1
fi

users_d=/etc/clickhouse-server/users.d
mkdir -p "$users_d"
sed "s/__CLICKHOUSE_USER__/$user/g" /course/users.d/course-user.xml > "$users_d/course-user.xml"
if [[ "$user" != default ]]; then
    # The image's own passwordless `default` user stays, for this container only.
    cp /course/users.d/default-local-only.xml "$users_d/default-local-only.xml"
else
    rm -f "$users_d/default-local-only.xml"
fi

exec /entrypoint.sh "$@"
