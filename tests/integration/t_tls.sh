# t_tls.sh — TLS verification (on by default, CA file option, explicit opt-out) and
# virtual-host-style URLs (bucket.s3.localhost), against an s3rver serving HTTPS with a
# certificate made for this run. curl resolves *.localhost to the loopback address.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T_DIR/key.pem" -out "$T_DIR/cert.pem" -days 2 \
	-subj "/CN=s3.localhost" -addext "subjectAltName=DNS:s3.localhost,DNS:drb-vh.s3.localhost" 2>/dev/null
port=$(free_port)
mkdir -p "$T_DIR/data"
node --openssl-legacy-provider tests/integration/s3rver/node_modules/s3rver/bin/s3rver.js -d "$T_DIR/data" \
	-a 127.0.0.1 -p "$port" --key "$T_DIR/key.pem" --cert "$T_DIR/cert.pem" --service-endpoint localhost \
	--configure-bucket drb-vh -s > "$T_DIR/s3rver.log" 2>&1 &
echo $! >> "$IT_DIR/pids"
wait_for curl -s --cacert "$T_DIR/cert.pem" -o /dev/null "https://s3.localhost:$port/"

conf=$T_DIR/tls.conf
write_conf "$conf" <<EOC
[global]
repo1-type=s3
repo1-path=/vh
repo1-s3-endpoint=https://s3.localhost:$port
repo1-s3-bucket=drb-vh
repo1-s3-uri-style=host
repo1-s3-key=$S3RVER_KEY
repo1-s3-key-secret=$S3RVER_SECRET
repo1-s3-ca-file=$T_DIR/cert.pem
EOC
make_file "$T_DIR/f" 12
check "virtual-host style over TLS with a CA file: repo-create" "$DRBACKUP" --config="$conf" repo-create
check "put (multipart) over TLS" "$DRBACKUP" --config="$conf" repo-put "$T_DIR/f" a/f
check "get over TLS" "$DRBACKUP" --config="$conf" repo-get a/f "$T_DIR/f.out"
check_same "TLS round trip" "$T_DIR/f" "$T_DIR/f.out"
check_true "the server stored it in bucket drb-vh (virtual-host addressing)" \
	"find '$T_DIR/data/drb-vh' -path '*vh/a/f*' | grep -q ."
check_fails "an untrusted certificate is refused by default" 3 "certificate" \
	"$DRBACKUP" --config="$conf" --repo1-s3-ca-file=/etc/ssl/certs/ca-certificates.crt repo-ls
check "repo1-s3-verify-tls=n is an explicit opt-out" \
	"$DRBACKUP" --config="$conf" --repo1-s3-ca-file=/etc/ssl/certs/ca-certificates.crt --no-repo1-s3-verify-tls repo-ls
