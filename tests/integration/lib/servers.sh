# servers.sh — start and stop the real servers drbackup's integration tests run against,
# all on 127.0.0.1, all under $IT_DIR, all stopped by servers_stop_all (call it from a trap).
#
#   OpenStack Swift + s3api   the reference S3 server (verifies SigV4, Content-MD5, multipart)
#   s3rver                    a lenient second S3 implementation, used as a second region
#   PostgreSQL 15             a scratch cluster initialised as the postgres OS user
#
# Source this file; every function returns non-zero with a message on stderr on failure.

IT_DIR=${IT_DIR:-/tmp/drbackup-it}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
AWS_CLI=${AWS_CLI:-/usr/bin/aws}
SWIFT_KEY=test:tester
SWIFT_SECRET=testing
SWIFT_REGION=us-east-1
S3RVER_KEY=S3RVER
S3RVER_SECRET=S3RVER

_it_pids=()

# A TCP port on 127.0.0.1 that nothing listens on (checked by connecting), below the
# kernel's ephemeral range: a port inside it can be taken by any outgoing connection's
# local end between this check and the server's bind (seen once: a test cluster failed
# to start with "Address already in use" on such a port).
free_port() {
	local p lo=32768 span
	[ -r /proc/sys/net/ipv4/ip_local_port_range ] &&
		read -r lo _ < /proc/sys/net/ipv4/ip_local_port_range
	span=$(( lo - 20000 ))
	[ "$span" -ge 1000 ] || span=20000
	for _ in $(seq 1 200); do
		p=$(( (RANDOM % span) + 20000 ))
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
			echo "$p"; return 0
		fi
	done
	echo "free_port: no free port found" >&2; return 1
}

# wait_for CMD... : retry a command for up to 60 s.
wait_for() {
	for _ in $(seq 1 120); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	echo "timed out waiting for: $*" >&2; return 1
}

_it_track() { _it_pids+=("$1"); echo "$1" >> "$IT_DIR/pids"; disown "$1" 2>/dev/null; }

swift_start() {
	local S=$IT_DIR/swift base
	SWIFT_PORT=$(free_port) || return 1
	SWIFT_GCS_PORT=$(free_port) || return 1
	base=$(free_port) || return 1
	local ports=("$base" "$((base + 1))" "$((base + 2))")
	local mc_port=$((base + 3))
	mkdir -p "$S/etc" "$S/srv/d1"
	(
		cd "$S/etc" || exit 1
		printf '[swift-hash]\nswift_hash_path_suffix = t\nswift_hash_path_prefix = t\n[storage-policy:0]\nname = Policy-0\ndefault = yes\n' > swift.conf
		local i=0 n p
		for n in object container account; do
			p=${ports[$i]}; i=$((i + 1))
			printf "[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = $p\nworkers = 1\nuser = root\nswift_dir = $S/etc\ndevices = $S/srv\nmount_check = false\nlog_name = $n\nlog_facility = LOG_LOCAL0\nlog_level = WARNING\n[pipeline:main]\npipeline = $n-server\n[app:$n-server]\nuse = egg:swift#$n\n" > $n-server.conf
			swift-ring-builder $n.builder create 6 1 1 >/dev/null
			swift-ring-builder $n.builder add r1z1-127.0.0.1:$p/d1 100 >/dev/null
			swift-ring-builder $n.builder rebalance >/dev/null
		done
		{
			printf "[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = $SWIFT_PORT\nworkers = 1\nuser = root\nswift_dir = $S/etc\nlog_level = WARNING\n"
			printf '[pipeline:main]\npipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo proxy-logging proxy-server\n'
			printf '[app:proxy-server]\nuse = egg:swift#proxy\nallow_account_management = true\naccount_autocreate = true\n'
			printf "[filter:s3api]\nuse = egg:swift#s3api\nlocation = $SWIFT_REGION\ndns_compliant_bucket_names = false\n"
			printf '[filter:tempauth]\nuse = egg:swift#tempauth\nuser_test_tester = testing .admin\n'
			printf "[filter:cache]\nuse = egg:swift#memcache\nmemcache_servers = 127.0.0.1:$mc_port\n"
			for f in catch_errors gatekeeper healthcheck proxy-logging listing_formats bulk copy slo dlo; do
				printf "[filter:$f]\nuse = egg:swift#${f/-/_}\n"
			done
		} > proxy-server.conf
		# a second proxy on the same backend whose s3api answers for region "auto", as
		# Google Cloud Storage's XML API does: the GCS HMAC mode is verified against it
		sed -e "s/^bind_port = $SWIFT_PORT/bind_port = $SWIFT_GCS_PORT/" \
			-e 's/^location = .*/location = auto/' proxy-server.conf > proxy-server-auto.conf
	) || return 1
	memcached -l 127.0.0.1 -p "$mc_port" -U 0 -u root > "$S/memcached.log" 2>&1 &
	_it_track $!
	local n
	for n in account container object proxy; do
		swift-$n-server "$S/etc/$n-server.conf" > "$S/$n.log" 2>&1 &
		_it_track $!
	done
	swift-proxy-server "$S/etc/proxy-server-auto.conf" > "$S/proxy-auto.log" 2>&1 &
	_it_track $!
	SWIFT_ENDPOINT=http://127.0.0.1:$SWIFT_PORT
	SWIFT_GCS_ENDPOINT=http://127.0.0.1:$SWIFT_GCS_PORT
	# the proxy answers its health check before the backends listen: wait for each of them
	local port
	for port in "${ports[@]}"; do
		wait_for curl -s -o /dev/null "http://127.0.0.1:$port/" || { tail -20 "$S"/*.log >&2; return 1; }
	done
	wait_for curl -sf "$SWIFT_ENDPOINT/healthcheck" || { tail -20 "$S"/*.log >&2; return 1; }
	wait_for curl -sf "$SWIFT_GCS_ENDPOINT/healthcheck" || { tail -20 "$S"/*.log >&2; return 1; }
	export SWIFT_PORT SWIFT_ENDPOINT SWIFT_GCS_PORT SWIFT_GCS_ENDPOINT
}

s3rver_start() {
	local dir=$IT_DIR/s3rver
	local src
	src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../s3rver" && pwd)
	mkdir -p "$dir/data"
	if [ ! -d "$src/node_modules/s3rver" ]; then
		(cd "$src" && npm ci --no-audit --no-fund >/dev/null 2>&1) || { echo "npm ci for s3rver failed" >&2; return 1; }
	fi
	S3RVER_PORT=$(free_port) || return 1
	S3RVER_DATA=$dir/data
	node --openssl-legacy-provider "$src/node_modules/s3rver/bin/s3rver.js" -d "$S3RVER_DATA" \
		-a 127.0.0.1 -p "$S3RVER_PORT" --no-vhost-buckets -s > "$dir/s3rver.log" 2>&1 &
	_it_track $!
	S3RVER_ENDPOINT=http://127.0.0.1:$S3RVER_PORT
	wait_for curl -s -o /dev/null "$S3RVER_ENDPOINT/" || { tail -20 "$dir/s3rver.log" >&2; return 1; }
	export S3RVER_PORT S3RVER_ENDPOINT S3RVER_DATA
}

# swift_repo N PATH: config lines for a repository N in the Swift bucket drb-swift.
swift_repo() {
	printf 'repo%s-type=s3\nrepo%s-path=%s\nrepo%s-s3-endpoint=%s\nrepo%s-s3-bucket=drb-swift\n' \
		"$1" "$1" "$2" "$1" "$SWIFT_ENDPOINT" "$1"
	printf 'repo%s-s3-region=%s\nrepo%s-s3-uri-style=path\nrepo%s-s3-key=%s\nrepo%s-s3-key-secret=%s\n' \
		"$1" "$SWIFT_REGION" "$1" "$1" "$SWIFT_KEY" "$1" "$SWIFT_SECRET"
}

# aws_swift ARGS / aws_s3rver ARGS: the independent awscli client against each server.
aws_swift() {
	AWS_ACCESS_KEY_ID=$SWIFT_KEY AWS_SECRET_ACCESS_KEY=$SWIFT_SECRET AWS_DEFAULT_REGION=$SWIFT_REGION \
	AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
		"$AWS_CLI" --endpoint-url "$SWIFT_ENDPOINT" "$@"
}
aws_s3rver() {
	AWS_ACCESS_KEY_ID=$S3RVER_KEY AWS_SECRET_ACCESS_KEY=$S3RVER_SECRET AWS_DEFAULT_REGION=us-east-1 \
	AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
		"$AWS_CLI" --endpoint-url "$S3RVER_ENDPOINT" "$@"
}

# make_bucket CLIENT NAME: create a bucket (retrying while a server warms up).
make_bucket() {
	local client=$1 name=$2
	_mb() { "$client" s3 mb "s3://$name" >/dev/null 2>&1 || "$client" s3api head-bucket --bucket "$name" >/dev/null 2>&1; }
	wait_for _mb
}

# pg_start NAME: a PostgreSQL 15 cluster under $IT_DIR/pg-NAME, run by the postgres OS user,
# with trust auth on its own socket directory and a free port. Sets PG_<NAME>_{DATA,PORT,SOCK}.
pg_start() {
	local name=$1 dir=$IT_DIR/pg-$1 port
	port=$(free_port) || return 1
	mkdir -p "$dir/sock"
	chown -R postgres:postgres "$dir"
	chmod 755 "$IT_DIR"
	su postgres -s /bin/sh -c "$PG_BIN/initdb -D '$dir/data' --auth=trust --data-checksums -U postgres >'$dir/initdb.log' 2>&1" \
		|| { cat "$dir/initdb.log" >&2; return 1; }
	cat >> "$dir/data/postgresql.conf" <<EOC
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/sock'
fsync = off
shared_buffers = 64MB
EOC
	su postgres -s /bin/sh -c "$PG_BIN/pg_ctl -D '$dir/data' -l '$dir/server.log' -w -t 60 start >/dev/null" \
		|| { tail -20 "$dir/server.log" >&2; return 1; }
	echo "pg:$dir/data" >> "$IT_DIR/pids"
	local up=${name^^}
	printf -v "PG_${up}_DATA" '%s' "$dir/data"
	printf -v "PG_${up}_PORT" '%s' "$port"
	printf -v "PG_${up}_SOCK" '%s' "$dir/sock"
	export "PG_${up}_DATA" "PG_${up}_PORT" "PG_${up}_SOCK"
}

pg_stop() {
	local data=$1
	[ -f "$data/postmaster.pid" ] && su postgres -s /bin/sh -c "$PG_BIN/pg_ctl -D '$data' -m fast -w stop >/dev/null 2>&1"
	return 0
}

# Stop everything this harness started (also what an earlier, killed run left in $IT_DIR).
servers_stop_all() {
	[ -f "$IT_DIR/pids" ] || return 0
	local line
	while read -r line; do
		case $line in
			pg:*) pg_stop "${line#pg:}" ;;
			*) kill "$line" 2>/dev/null ;;
		esac
	done < "$IT_DIR/pids"
	sleep 0.5
	while read -r line; do
		case $line in pg:*) ;; *) kill -9 "$line" 2>/dev/null ;; esac
	done < "$IT_DIR/pids"
	rm -f "$IT_DIR/pids"
}
