/*
 * test_gcs_auth.c — unit tests for gcs_auth: base64url against RFC 4648 vectors, the
 * JWT's header and claims, its RS256 signature checked with the public key alone,
 * key-file errors, and static-token mode. A fresh RSA key is generated per run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "error.h"
#include "gcs_auth.h"
#include "log.h"
#include "mem.h"

static char tmpdir[] = "/tmp/test_gcs_auth.XXXXXX";
static EVP_PKEY *test_key;		/* the private key written into key files */
static char *test_pem;			/* its PKCS#8 PEM */
static char *public_pem;		/* its public half only */

/* PEM text of key (private or public) from a memory BIO. */
static char *
pem_of(EVP_PKEY *key, int public_only)
{
	BIO		   *bio = BIO_new(BIO_s_mem());
	char	   *data;
	long		n;
	char	   *out;

	if (public_only)
		assert_int_equal(PEM_write_bio_PUBKEY(bio, key), 1);
	else
		assert_int_equal(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(bio, &data);
	out = xstrndup(data, (size_t) n);
	BIO_free(bio);
	return out;
}

static int
setup(void **state)
{
	(void) state;
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	test_key = EVP_RSA_gen(2048);
	if (test_key == NULL)
		return -1;
	test_pem = pem_of(test_key, 0);
	public_pem = pem_of(test_key, 1);
	return 0;
}

static int
teardown(void **state)
{
	char	   *cmd = xasprintf("rm -rf '%s'", tmpdir);

	(void) state;
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	free(cmd);
	EVP_PKEY_free(test_key);
	free(test_pem);
	free(public_pem);
	return 0;
}

/* Write text to a file in the temporary directory; returns its path (caller frees). */
static char *
write_file(const char *name, const char *text)
{
	char	   *path = xasprintf("%s/%s", tmpdir, name);
	FILE	   *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* A key file made of obj (released), written under name. */
static char *
write_key_json(const char *name, json_t *obj)
{
	char	   *text = json_dumps(obj, JSON_INDENT(2));
	char	   *path = write_file(name, text);

	free(text);
	json_decref(obj);
	return path;
}

/* A complete, valid service-account key object. */
static json_t *
valid_key_json(void)
{
	json_t	   *o = json_object();

	json_object_set_new(o, "type", json_string("service_account"));
	json_object_set_new(o, "project_id", json_string("test-project"));
	json_object_set_new(o, "private_key_id", json_string("kid-0123456789abcdef"));
	json_object_set_new(o, "private_key", json_string(test_pem));
	json_object_set_new(o, "client_email", json_string("backup@test-project.iam.gserviceaccount.com"));
	json_object_set_new(o, "token_uri", json_string("http://127.0.0.1:9/token"));
	return o;
}

/* Independent base64url decoder (via OpenSSL's standard base64); *len = byte count. */
static uint8_t *
b64url_decode(const char *in, size_t n, size_t *len)
{
	size_t		padded = (n + 3) / 4 * 4;
	char	   *std = xcalloc(1, padded + 1);
	uint8_t    *out = xcalloc(1, padded + 1);
	int			got;

	for (size_t i = 0; i < padded; i++)
	{
		char		c = i < n ? in[i] : '=';

		assert_true(c != '+' && c != '/' && (i >= n || c != '='));
		std[i] = c == '-' ? '+' : c == '_' ? '/' : c;
	}
	got = EVP_DecodeBlock(out, (const uint8_t *) std, (int) padded);
	assert_true(got >= 0);
	*len = (size_t) got - (padded - n);
	free(std);
	return out;
}

/* Decode one base64url JWT part into JSON. */
static json_t *
decode_part(const char *part, size_t n)
{
	size_t		len;
	uint8_t    *raw = b64url_decode(part, n, &len);
	json_t	   *obj = json_loadb((const char *) raw, len, 0, NULL);

	free(raw);
	assert_non_null(obj);
	return obj;
}

static void
test_base64url_vectors(void **state)
{
	static const struct
	{
		const char *in;
		size_t		len;
		const char *out;
	}			v[] = {
		{"", 0, ""},
		{"f", 1, "Zg"},
		{"fo", 2, "Zm8"},
		{"foo", 3, "Zm9v"},
		{"foob", 4, "Zm9vYg"},
		{"fooba", 5, "Zm9vYmE"},
		{"foobar", 6, "Zm9vYmFy"},
		{"\xfb\xff", 2, "-_8"},	/* standard base64: "+/8=" */
		{"\xff\xff\xfe", 3, "___-"},	/* standard base64: "///+" */
		{"\x00\x10\x83", 3, "ABCD"},
	};

	(void) state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
	{
		char	   *got = gcs_base64url((const uint8_t *) v[i].in, v[i].len);

		assert_string_equal(got, v[i].out);
		free(got);
	}
}

static void
test_base64url_roundtrip(void **state)
{
	uint8_t		data[257];

	(void) state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t) (i * 7 + 3);
	for (size_t n = 0; n <= sizeof(data); n += 1)
	{
		char	   *enc = gcs_base64url(data, n);
		size_t		len;
		uint8_t    *dec;

		assert_int_equal(strlen(enc), (n * 4 + 2) / 3);
		dec = b64url_decode(enc, strlen(enc), &len);
		assert_int_equal(len, n);
		assert_memory_equal(dec, data, n);
		free(dec);
		free(enc);
	}
}

/* Split a JWT into its three parts; asserts there are exactly three. */
static void
split_jwt(const char *jwt, const char *part[3], size_t len[3])
{
	const char *dot1 = strchr(jwt, '.');
	const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;

	assert_non_null(dot1);
	assert_non_null(dot2);
	assert_null(strchr(dot2 + 1, '.'));
	part[0] = jwt;
	len[0] = (size_t) (dot1 - jwt);
	part[1] = dot1 + 1;
	len[1] = (size_t) (dot2 - dot1 - 1);
	part[2] = dot2 + 1;
	len[2] = strlen(dot2 + 1);
}

static void
test_jwt_header_and_claims(void **state)
{
	char	   *path = write_key_json("valid.json", valid_key_json());
	gcs_sa_key	key;
	char	   *jwt;
	const char *part[3];
	size_t		len[3];
	json_t	   *h,
			   *c;

	(void) state;
	assert_int_equal(gcs_sa_key_load(path, &key), 0);
	assert_string_equal(key.client_email, "backup@test-project.iam.gserviceaccount.com");
	assert_string_equal(key.token_uri, "http://127.0.0.1:9/token");
	jwt = gcs_jwt_build(&key, 1700000000);
	assert_non_null(jwt);
	assert_null(strchr(jwt, '='));
	split_jwt(jwt, part, len);

	h = decode_part(part[0], len[0]);
	assert_string_equal(json_string_value(json_object_get(h, "alg")), "RS256");
	assert_string_equal(json_string_value(json_object_get(h, "typ")), "JWT");
	assert_string_equal(json_string_value(json_object_get(h, "kid")), "kid-0123456789abcdef");
	assert_int_equal(json_object_size(h), 3);

	c = decode_part(part[1], len[1]);
	assert_string_equal(json_string_value(json_object_get(c, "iss")),
						"backup@test-project.iam.gserviceaccount.com");
	assert_string_equal(json_string_value(json_object_get(c, "scope")),
						"https://www.googleapis.com/auth/devstorage.read_write");
	assert_string_equal(json_string_value(json_object_get(c, "aud")), "http://127.0.0.1:9/token");
	assert_int_equal(json_integer_value(json_object_get(c, "iat")), 1700000000);
	assert_int_equal(json_integer_value(json_object_get(c, "exp")), 1700000000 + 3600);
	assert_int_equal(json_object_size(c), 5);

	/* RS256 with a 2048-bit key: 256 signature bytes */
	{
		size_t		siglen;
		uint8_t    *sig = b64url_decode(part[2], len[2], &siglen);

		assert_int_equal(siglen, 256);
		free(sig);
	}
	json_decref(h);
	json_decref(c);
	free(jwt);
	gcs_sa_key_free(&key);
	free(path);
}

/* Verify sig over data with the public PEM only. */
static int
verify_rs256(const char *data, size_t n, const uint8_t *sig, size_t siglen)
{
	BIO		   *bio = BIO_new_mem_buf(public_pem, -1);
	EVP_PKEY   *pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int			ok;

	assert_non_null(pub);
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
	ok = EVP_DigestVerify(md, sig, siglen, (const uint8_t *) data, n);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pub);
	BIO_free(bio);
	return ok;
}

static void
test_jwt_signature_verifies(void **state)
{
	char	   *path = write_key_json("valid2.json", valid_key_json());
	gcs_sa_key	key;
	char	   *jwt;
	const char *part[3];
	size_t		len[3];
	size_t		siglen;
	uint8_t    *sig;
	char	   *tampered;

	(void) state;
	assert_int_equal(gcs_sa_key_load(path, &key), 0);
	jwt = gcs_jwt_build(&key, 1234567890);
	assert_non_null(jwt);
	split_jwt(jwt, part, len);
	sig = b64url_decode(part[2], len[2], &siglen);

	/* signing input = "header.claims" */
	assert_int_equal(verify_rs256(jwt, len[0] + 1 + len[1], sig, siglen), 1);

	/* one changed claims character must break it */
	tampered = xstrndup(jwt, len[0] + 1 + len[1]);
	tampered[len[0] + 3] = tampered[len[0] + 3] == 'A' ? 'B' : 'A';
	assert_int_not_equal(verify_rs256(tampered, strlen(tampered), sig, siglen), 1);

	/* a flipped signature bit too */
	sig[siglen / 2] ^= 0x01;
	assert_int_not_equal(verify_rs256(jwt, len[0] + 1 + len[1], sig, siglen), 1);

	free(tampered);
	free(sig);
	free(jwt);
	gcs_sa_key_free(&key);
	free(path);
}

static void
test_key_optional_fields(void **state)
{
	json_t	   *o = valid_key_json();
	char	   *path;
	gcs_sa_key	key;
	char	   *jwt;
	const char *part[3];
	size_t		len[3];
	json_t	   *h,
			   *c;

	(void) state;
	json_object_del(o, "private_key_id");
	json_object_del(o, "token_uri");
	json_object_del(o, "type");
	path = write_key_json("minimal.json", o);
	assert_int_equal(gcs_sa_key_load(path, &key), 0);
	assert_null(key.private_key_id);
	assert_string_equal(key.token_uri, "https://oauth2.googleapis.com/token");
	jwt = gcs_jwt_build(&key, 1700000000);
	split_jwt(jwt, part, len);
	h = decode_part(part[0], len[0]);
	assert_null(json_object_get(h, "kid"));
	c = decode_part(part[1], len[1]);
	assert_string_equal(json_string_value(json_object_get(c, "aud")), "https://oauth2.googleapis.com/token");
	json_decref(h);
	json_decref(c);
	free(jwt);
	gcs_sa_key_free(&key);
	free(path);
}

/* Load must fail with DRB_ERR_CONFIG and a message holding path and each fragment. */
static void
expect_load_error(const char *path, const char *fragment)
{
	gcs_sa_key	key;

	err_clear();
	assert_int_equal(gcs_sa_key_load(path, &key), -1);
	assert_int_equal(err_kind(), DRB_ERR_CONFIG);
	if (strstr(err_msg(), path) == NULL || strstr(err_msg(), fragment) == NULL)
		fail_msg("error '%s' should name '%s' and say '%s'", err_msg(), path, fragment);
	/* the private key never appears in an error */
	assert_null(strstr(err_msg(), "PRIVATE KEY"));
	assert_null(key.pkey);
}

static void
test_key_file_errors(void **state)
{
	char	   *missing = xasprintf("%s/does-not-exist.json", tmpdir);
	char	   *notjson = write_file("notjson.json", "this is { not json");
	char	   *array = write_file("array.json", "[1, 2, 3]");
	json_t	   *o;
	char	   *noemail,
			   *nokey,
			   *badpem,
			   *wrongtype,
			   *ecdsa,
			   *baduri;

	(void) state;
	o = valid_key_json();
	json_object_del(o, "client_email");
	noemail = write_key_json("noemail.json", o);

	o = valid_key_json();
	json_object_del(o, "private_key");
	nokey = write_key_json("nokey.json", o);

	o = valid_key_json();
	json_object_set_new(o, "private_key",
						json_string("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"));
	badpem = write_key_json("badpem.json", o);

	o = valid_key_json();
	json_object_set_new(o, "type", json_string("authorized_user"));
	wrongtype = write_key_json("wrongtype.json", o);

	o = valid_key_json();
	json_object_set_new(o, "token_uri", json_string("ftp://example/token"));
	baduri = write_key_json("baduri.json", o);

	{
		EVP_PKEY   *ec = EVP_EC_gen("P-256");
		char	   *ecpem = pem_of(ec, 0);

		o = valid_key_json();
		json_object_set_new(o, "private_key", json_string(ecpem));
		ecdsa = write_key_json("ecdsa.json", o);
		free(ecpem);
		EVP_PKEY_free(ec);
	}

	expect_load_error(missing, "unable to read");
	expect_load_error(missing, "No such file");
	expect_load_error(notjson, "not a JSON object");
	expect_load_error(array, "not a JSON object");
	expect_load_error(noemail, "no 'client_email'");
	expect_load_error(nokey, "no 'private_key'");
	expect_load_error(badpem, "not a PEM-encoded RSA private key");
	expect_load_error(ecdsa, "not a PEM-encoded RSA private key");
	expect_load_error(wrongtype, "type 'authorized_user'");
	expect_load_error(baduri, "token_uri");

	/* the service-account constructor reports the same error */
	err_clear();
	assert_null(gcs_auth_new_service(nokey, &(http_options) {.verify_tls = true, .timeout_seconds = 5}, 0));
	assert_int_equal(err_kind(), DRB_ERR_CONFIG);
	assert_non_null(strstr(err_msg(), nokey));

	free(missing);
	free(notjson);
	free(array);
	free(noemail);
	free(nokey);
	free(badpem);
	free(wrongtype);
	free(baduri);
	free(ecdsa);
}

static void
test_static_token(void **state)
{
	gcs_auth   *auth = gcs_auth_new_token("ya29.static-token-value");
	char	   *tok;
	char	   *redacted;

	(void) state;
	tok = gcs_auth_token(auth);
	assert_string_equal(tok, "ya29.static-token-value");
	free(tok);
	/* a 401 cannot be cured by refreshing a static token; it stays the same */
	assert_false(gcs_auth_invalidate(auth, "ya29.static-token-value"));
	tok = gcs_auth_token(auth);
	assert_string_equal(tok, "ya29.static-token-value");
	free(tok);
	/* registered as a secret */
	redacted = log_redact("Authorization: Bearer ya29.static-token-value");
	assert_null(strstr(redacted, "static-token-value"));
	free(redacted);
	gcs_auth_free(auth);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64url_vectors),
		cmocka_unit_test(test_base64url_roundtrip),
		cmocka_unit_test(test_jwt_header_and_claims),
		cmocka_unit_test(test_jwt_signature_verifies),
		cmocka_unit_test(test_key_optional_fields),
		cmocka_unit_test(test_key_file_errors),
		cmocka_unit_test(test_static_token),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
