/*
 * test_sigv4.c — AWS Signature V4 signing (sigv4.c) and the HTTP layer under it (http.c:
 * http_uri_encode, http_retryable, http_backoff, and http_execute against a one-shot
 * HTTP server in a thread of this process: headers sent and captured, Expect suppressed,
 * bodies streamed to the sink only for 2xx / sink_status, error bodies kept, a body cut
 * short reported with the bytes already delivered, connection refused).
 *
 * Vectors, each asserting the exact signature and Authorization value:
 * - the AWS Signature Version 4 test suite (service "service", region us-east-1, key
 *   AKIDEXAMPLE, date 20150830T123600Z), from
 *   https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html as kept in
 *   github.com/bazelbuild/bazel third_party/aws-sig-v4-test-suite/ (<name>.req, .sreq,
 *   .creq, .sts, .authz). The raw requests are reproduced below in .req form and parsed
 *   by this test; canonical requests and strings to sign are asserted where the suite
 *   publishes them. Left out: the normalize-path group except get-space (S3 does not normalise
 *   paths, and drbackup signs for S3).
 * - Amazon S3's worked examples in "Signature Calculations for the Authorization Header:
 *   Transferring Payload in a Single Chunk" (docs.aws.amazon.com/AmazonS3/latest/API/
 *   sig-v4-header-based-auth.html): GET Object with Range, PUT Object, GET Bucket
 *   Lifecycle, Get Bucket (List Objects); bucket examplebucket, key AKIAIOSFODNN7EXAMPLE,
 *   date 20130524T000000Z. (The page prints the Authorization header without spaces
 *   after the commas; sigv4 emits the ", " form used by the test suite; both parse.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "error.h"
#include "http.h"
#include "mem.h"
#include "sigv4.h"

#define SUITE_KEY "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_DATE "20150830T123600Z"
#define SUITE_SCOPE "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"
#define STS_TOKEN "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

#define AUTHZ(signed_headers, sig) \
	"AWS4-HMAC-SHA256 Credential=" SUITE_SCOPE ", SignedHeaders=" signed_headers ", Signature=" sig

typedef struct suite_vector
{
	const char *name;
	const char *req;			/* the suite's .req file */
	const char *authz;			/* the suite's .authz (or the Authorization line of .sreq) */
	const char *creq;			/* .creq where published, else NULL */
	const char *sts;			/* .sts where published, else NULL */
} suite_vector;

static const suite_vector suite[] = {
	{"get-vanilla",
		"GET / HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z",
		AUTHZ("host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
		"GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
		SIGV4_EMPTY_SHA256,
		"AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
	"bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"},
	{"get-vanilla-query",
		"GET / HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z",
		AUTHZ("host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
	NULL, NULL},
	{"get-vanilla-empty-query-key",
		"GET /?Param1=value1 HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z",
		AUTHZ("host;x-amz-date", "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"),
	NULL, NULL},
	{"get-vanilla-query-order-key-case",
		"GET /?Param2=value2&Param1=value1 HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z",
		AUTHZ("host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
		"GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
	"host;x-amz-date\n" SIGV4_EMPTY_SHA256, NULL},
	{"get-vanilla-query-order-key",
		"GET /?Param1=value2&Param1=Value1 HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z",
		AUTHZ("host;x-amz-date", "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"),
		"GET\n/\nParam1=Value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
		"host;x-amz-date\n" SIGV4_EMPTY_SHA256,
		"AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
	"704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89"},
	{"get-vanilla-query-order-value",
		"GET /?Param1=value2&Param1=value1 HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z",
		AUTHZ("host;x-amz-date", "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"),
		"GET\n/\nParam1=value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
		"host;x-amz-date\n" SIGV4_EMPTY_SHA256,
		"AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
	"c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606"},
	{"get-vanilla-query-unreserved",
		"GET /?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz="
		"-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz HTTP/1.1\n"
		"Host:example.amazonaws.com\nX-Amz-Date:20150830T123600Z",
		AUTHZ("host;x-amz-date", "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"),
	NULL, NULL},
	{"get-vanilla-utf8-query",
		"GET /?\xe1\x88\xb4=bar HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z",
		AUTHZ("host;x-amz-date", "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
	NULL, NULL},
	{"get-unreserved",
		"GET /-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz HTTP/1.1\n"
		"Host:example.amazonaws.com\nX-Amz-Date:20150830T123600Z",
		AUTHZ("host;x-amz-date", "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
	NULL, NULL},
	{"get-utf8",
		"GET /\xe1\x88\xb4 HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z",
		AUTHZ("host;x-amz-date", "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
	NULL, NULL},
	{"get-space (normalize-path)",
		"GET /example space/ HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z",
		AUTHZ("host;x-amz-date", "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"),
	NULL, NULL},
	{"get-header-key-duplicate",
		"GET / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1:value2\nMy-Header1:value2\n"
		"My-Header1:value1\nX-Amz-Date:20150830T123600Z",
		AUTHZ("host;my-header1;x-amz-date", "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"),
	NULL, NULL},
	{"get-header-value-order",
		"GET / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1:value4\nMy-Header1:value1\n"
		"My-Header1:value3\nMy-Header1:value2\nX-Amz-Date:20150830T123600Z",
		AUTHZ("host;my-header1;x-amz-date", "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"),
	NULL, NULL},
	{"get-header-value-trim",
		"GET / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1: value1\nMy-Header2: \"a   b   c\"\n"
		"X-Amz-Date:20150830T123600Z",
		AUTHZ("host;my-header1;my-header2;x-amz-date",
			  "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
	NULL, NULL},
	{"get-header-value-multiline",
		"GET / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1:value1\n  value2\n     value3\n"
		"X-Amz-Date:20150830T123600Z",
		AUTHZ("host;my-header1;x-amz-date", "ba17b383a53190154eb5fa66a1b836cc297cc0a3d70a5d00705980573d8ff790"),
		"GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1,value2,value3\nx-amz-date:20150830T123600Z\n\n"
		"host;my-header1;x-amz-date\n" SIGV4_EMPTY_SHA256,
		"AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
	"b7b6cbfd8a0430b78891e986784da2630c8a135a8595cec25b26ea94f926ee55"},
	{"post-vanilla",
		"POST / HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z",
		AUTHZ("host;x-amz-date", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
	NULL, NULL},
	{"post-vanilla-empty-query-value",
		"POST /?Param1=value1 HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z",
		AUTHZ("host;x-amz-date", "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"),
	NULL, NULL},
	{"post-header-key-sort",
		"POST / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1:value1\nX-Amz-Date:20150830T123600Z",
		AUTHZ("host;my-header1;x-amz-date", "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"),
	NULL, NULL},
	{"post-header-value-case",
		"POST / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1:VALUE1\nX-Amz-Date:20150830T123600Z",
		AUTHZ("host;my-header1;x-amz-date", "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"),
	NULL, NULL},
	{"post-x-www-form-urlencoded",
		"POST / HTTP/1.1\nContent-Type:application/x-www-form-urlencoded\nHost:example.amazonaws.com\n"
		"X-Amz-Date:20150830T123600Z\n\nParam1=value1",
		AUTHZ("content-type;host;x-amz-date", "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
		"POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n"
		"x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
		"9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
		"AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
	"42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281"},
	{"post-x-www-form-urlencoded-parameters",
		"POST / HTTP/1.1\nContent-Type:application/x-www-form-urlencoded; charset=utf8\n"
		"Host:example.amazonaws.com\nX-Amz-Date:20150830T123600Z\n\nParam1=value1",
		AUTHZ("content-type;host;x-amz-date", "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"),
		"POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf8\nhost:example.amazonaws.com\n"
		"x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
		"9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
		"AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
	"2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c"},
	{"post-sts-header-before",
		"POST / HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z\n"
		"X-Amz-Security-Token:" STS_TOKEN,
		AUTHZ("host;x-amz-date;x-amz-security-token",
			  "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"),
	NULL, NULL},
	/* post-sts-header-after: the token is added after signing, so the signed request is post-vanilla */
	{"post-sts-header-after",
		"POST / HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z",
		AUTHZ("host;x-amz-date", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
	NULL, NULL},
};

/* A request parsed from the suite's .req format. */
typedef struct parsed_req
{
	char	   *method;
	char	   *path;
	sigv4_pair params[8];
	size_t		nparams;
	sigv4_pair	headers[16];
	size_t		nheaders;
	char		payload_hash[65];
	char	   *copy;			/* owns every string above */
} parsed_req;

static char *
trim(char *s)
{
	char	   *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

/*
 * "METHOD PATH[?QUERY] HTTP/1.1", header lines ("Name:value"; a line starting with white
 * space continues the previous header as another value), a blank line, the body.
 */
static void
parse_req(const char *text, parsed_req *r)
{
	char	   *line;
	char	   *next;
	char	   *body = NULL;
	char	   *sep;
	char	   *target;
	char	   *q;
	const char *last_name = NULL;

	memset(r, 0, sizeof(*r));
	r->copy = xstrdup(text);
	sep = strstr(r->copy, "\n\n");
	if (sep)
	{
		*sep = '\0';
		body = sep + 2;
	}
	sigv4_sha256_hex(body ? body : "", body ? strlen(body) : 0, r->payload_hash);

	line = r->copy;
	next = strchr(line, '\n');
	if (next)
		*next++ = '\0';
	/* request line: the target may contain spaces (get-space) */
	sep = strrchr(line, ' ');
	assert_non_null(sep);
	*sep = '\0';
	target = strchr(line, ' ');
	assert_non_null(target);
	*target++ = '\0';
	r->method = line;
	q = strchr(target, '?');
	if (q)
	{
		char	   *p = q + 1;

		*q = '\0';
		while (p && *p)
		{
			char	   *amp = strchr(p, '&');
			char	   *eq;

			if (amp)
				*amp++ = '\0';
			eq = strchr(p, '=');
			if (eq)
				*eq++ = '\0';
			assert_true(r->nparams < 8);
			r->params[r->nparams].name = p;
			r->params[r->nparams++].value = eq ? eq : "";
			p = amp;
		}
	}
	r->path = target;

	for (line = next; line && *line; line = next)
	{
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		assert_true(r->nheaders < 16);
		if (line[0] == ' ' || line[0] == '\t')
		{
			assert_non_null(last_name);
			r->headers[r->nheaders].name = last_name;
			r->headers[r->nheaders++].value = trim(line);
			continue;
		}
		sep = strchr(line, ':');
		assert_non_null(sep);
		*sep = '\0';
		last_name = line;
		r->headers[r->nheaders].name = line;
		r->headers[r->nheaders++].value = sep + 1;
	}
}

static void
test_suite_vectors(void **state)
{
	sigv4_credentials cred = {SUITE_KEY, SUITE_SECRET, "us-east-1", "service"};

	(void) state;
	for (size_t i = 0; i < sizeof(suite) / sizeof(suite[0]); i++)
	{
		const suite_vector *v = &suite[i];
		parsed_req	p;
		sigv4_request req;
		sigv4_result res;

		parse_req(v->req, &p);
		req.method = p.method;
		req.path = p.path;
		req.params = p.params;
		req.nparams = p.nparams;
		req.headers = p.headers;
		req.nheaders = p.nheaders;
		req.payload_hash = p.payload_hash;
		print_message("vector %s\n", v->name);
		assert_int_equal(sigv4_sign(&cred, &req, SUITE_DATE, &res), 0);
		if (v->creq)
			assert_string_equal(res.canonical_request, v->creq);
		if (v->sts)
			assert_string_equal(res.string_to_sign, v->sts);
		assert_string_equal(res.authorization, v->authz);
		assert_non_null(strstr(v->authz, res.signature));
		sigv4_result_free(&res);
		free(p.copy);
	}
}

/* S3 documentation examples. */
#define S3_KEY "AKIAIOSFODNN7EXAMPLE"
#define S3_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define S3_DATE "20130524T000000Z"
#define S3_HOST "examplebucket.s3.amazonaws.com"
#define S3_AUTHZ(signed_headers, sig) \
	"AWS4-HMAC-SHA256 Credential=" S3_KEY "/20130524/us-east-1/s3/aws4_request, SignedHeaders=" \
	signed_headers ", Signature=" sig

static const sigv4_credentials s3_cred = {S3_KEY, S3_SECRET, "us-east-1", "s3"};

static void
test_s3_get_object(void **state)
{
	sigv4_pair	h[] = {
		{"Host", S3_HOST}, {"Range", "bytes=0-9"},
		{"x-amz-content-sha256", SIGV4_EMPTY_SHA256}, {"x-amz-date", S3_DATE},
	};
	sigv4_request req = {"GET", "/test.txt", NULL, 0, h, 4, SIGV4_EMPTY_SHA256};
	sigv4_result res;

	(void) state;
	assert_int_equal(sigv4_sign(&s3_cred, &req, S3_DATE, &res), 0);
	assert_string_equal(res.canonical_request,
						"GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
						"x-amz-content-sha256:" SIGV4_EMPTY_SHA256 "\nx-amz-date:20130524T000000Z\n\n"
						"host;range;x-amz-content-sha256;x-amz-date\n" SIGV4_EMPTY_SHA256);
	assert_string_equal(res.string_to_sign,
						"AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
						"7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
	assert_string_equal(res.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	assert_string_equal(res.authorization,
						S3_AUTHZ("host;range;x-amz-content-sha256;x-amz-date",
								 "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"));
	sigv4_result_free(&res);
}

static void
test_s3_put_object(void **state)
{
	const char *body = "Welcome to Amazon S3.";
	char		hash[65];
	sigv4_pair	h[5] = {
		{"Date", "Fri, 24 May 2013 00:00:00 GMT"}, {"Host", S3_HOST},
		{"x-amz-date", S3_DATE}, {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
		{"x-amz-content-sha256", NULL},
	};
	sigv4_request req = {"PUT", "/test$file.text", NULL, 0, h, 5, hash};
	sigv4_result res;
	char	   *uri;

	(void) state;
	sigv4_sha256_hex(body, strlen(body), hash);
	assert_string_equal(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	h[4].value = hash;
	uri = sigv4_canonical_uri("/test$file.text");
	assert_string_equal(uri, "/test%24file.text");
	free(uri);
	assert_int_equal(sigv4_sign(&s3_cred, &req, S3_DATE, &res), 0);
	assert_string_equal(res.canonical_request,
						"PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\n"
						"host:examplebucket.s3.amazonaws.com\n"
						"x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
						"x-amz-date:20130524T000000Z\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
						"date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
						"44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	assert_string_equal(res.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
	assert_string_equal(res.authorization,
						S3_AUTHZ("date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
								 "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"));
	sigv4_result_free(&res);
}

static void
test_s3_get_bucket_lifecycle(void **state)
{
	sigv4_pair	q[] = {{"lifecycle", NULL}};
	sigv4_pair	h[] = {
		{"Host", S3_HOST}, {"x-amz-content-sha256", SIGV4_EMPTY_SHA256}, {"x-amz-date", S3_DATE},
	};
	sigv4_request req = {"GET", "/", q, 1, h, 3, SIGV4_EMPTY_SHA256};
	sigv4_result res;

	(void) state;
	assert_int_equal(sigv4_sign(&s3_cred, &req, S3_DATE, &res), 0);
	assert_string_equal(res.canonical_request,
						"GET\n/\nlifecycle=\nhost:examplebucket.s3.amazonaws.com\n"
						"x-amz-content-sha256:" SIGV4_EMPTY_SHA256 "\nx-amz-date:20130524T000000Z\n\n"
						"host;x-amz-content-sha256;x-amz-date\n" SIGV4_EMPTY_SHA256);
	assert_string_equal(res.signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
	assert_string_equal(res.authorization,
						S3_AUTHZ("host;x-amz-content-sha256;x-amz-date",
								 "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"));
	sigv4_result_free(&res);
}

static void
test_s3_list_objects(void **state)
{
	/* given out of order: the canonical query must sort them */
	sigv4_pair	q[] = {{"prefix", "J"}, {"max-keys", "2"}};
	sigv4_pair	h[] = {
		{"x-amz-date", S3_DATE}, {"x-amz-content-sha256", SIGV4_EMPTY_SHA256}, {"Host", S3_HOST},
	};
	sigv4_request req = {"GET", "/", q, 2, h, 3, SIGV4_EMPTY_SHA256};
	sigv4_result res;
	char	   *query = sigv4_canonical_query(q, 2);

	(void) state;
	assert_string_equal(query, "max-keys=2&prefix=J");
	free(query);
	assert_int_equal(sigv4_sign(&s3_cred, &req, S3_DATE, &res), 0);
	assert_string_equal(res.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
	assert_string_equal(res.authorization,
						S3_AUTHZ("host;x-amz-content-sha256;x-amz-date",
								 "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"));
	sigv4_result_free(&res);
}

/* A different secret, date or payload hash must change the signature. */
static void
test_signature_depends_on_inputs(void **state)
{
	sigv4_pair	h[] = {{"Host", S3_HOST}, {"x-amz-date", S3_DATE}};
	sigv4_request req = {"GET", "/test.txt", NULL, 0, h, 2, SIGV4_EMPTY_SHA256};
	sigv4_credentials other = s3_cred;
	sigv4_result a;
	sigv4_result b;

	(void) state;
	assert_int_equal(sigv4_sign(&s3_cred, &req, S3_DATE, &a), 0);
	other.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ";
	assert_int_equal(sigv4_sign(&other, &req, S3_DATE, &b), 0);
	assert_string_not_equal(a.signature, b.signature);
	sigv4_result_free(&b);
	assert_int_equal(sigv4_sign(&s3_cred, &req, "20130524T000001Z", &b), 0);
	assert_string_not_equal(a.signature, b.signature);
	sigv4_result_free(&b);
	req.payload_hash = SIGV4_UNSIGNED_PAYLOAD;
	assert_int_equal(sigv4_sign(&s3_cred, &req, S3_DATE, &b), 0);
	assert_string_not_equal(a.signature, b.signature);
	assert_non_null(strstr(b.canonical_request, "\nUNSIGNED-PAYLOAD"));
	sigv4_result_free(&b);
	sigv4_result_free(&a);
}

static void
test_bad_date_rejected(void **state)
{
	sigv4_pair	h[] = {{"Host", S3_HOST}};
	sigv4_request req = {"GET", "/", NULL, 0, h, 1, SIGV4_EMPTY_SHA256};
	sigv4_result res;

	(void) state;
	assert_int_equal(sigv4_sign(&s3_cred, &req, "2013-05-24", &res), -1);
	assert_int_equal(err_kind(), DRB_ERR_USAGE);
	assert_null(res.authorization);
	err_clear();
}

static void
test_amz_date(void **state)
{
	char		d[17];

	(void) state;
	sigv4_amz_date((time_t) 1440938160, d);	/* 2015-08-30T12:36:00Z */
	assert_string_equal(d, SUITE_DATE);
	sigv4_amz_date((time_t) 1369353600, d);	/* 2013-05-24T00:00:00Z */
	assert_string_equal(d, S3_DATE);
}

static void
test_uri_encode(void **state)
{
	char	   *s;

	(void) state;
	s = http_uri_encode("AZaz09-_.~", false);
	assert_string_equal(s, "AZaz09-_.~");
	free(s);
	s = http_uri_encode("a b/c+d=e&f%g*h", false);
	assert_string_equal(s, "a%20b%2Fc%2Bd%3De%26f%25g%2Ah");
	free(s);
	s = http_uri_encode("dir/a b/\xe1\x88\xb4", true);
	assert_string_equal(s, "dir/a%20b/%E1%88%B4");
	free(s);
	s = sigv4_canonical_uri("");
	assert_string_equal(s, "/");
	free(s);
	{
		sigv4_pair	q[] = {{"continuation-token", "1/a+b="}, {"list-type", "2"}, {"uploads", NULL}};

		s = sigv4_canonical_query(q, 3);
		assert_string_equal(s, "continuation-token=1%2Fa%2Bb%3D&list-type=2&uploads=");
		free(s);
	}
}

static void
test_retryable(void **state)
{
	(void) state;
	assert_true(http_retryable(500));
	assert_true(http_retryable(503));
	assert_true(http_retryable(429));
	assert_true(http_retryable(408));
	assert_true(http_retryable(504));
	assert_false(http_retryable(200));
	assert_false(http_retryable(403));
	assert_false(http_retryable(404));
	assert_false(http_retryable(400));
	assert_false(http_retryable(501));
	assert_false(http_retryable(505));
}

static double
elapsed(const struct timespec *a, const struct timespec *b)
{
	return (double) (b->tv_sec - a->tv_sec) + (double) (b->tv_nsec - a->tv_nsec) / 1e9;
}

/* Full jitter: never longer than the cap of the attempt (100 ms for the first). */
static void
test_backoff_bounded(void **state)
{
	struct timespec t0;
	struct timespec t1;

	(void) state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 5; i++)
		http_backoff(1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(elapsed(&t0, &t1) < 5 * 0.1 + 0.2);
}


/* --- http_execute against a one-shot server ------------------------------------------ */

typedef struct fake_server
{
	int			listen_fd;
	int			port;
	pthread_t	thread;
	const char *response;		/* sent verbatim, then the connection is closed */
	buf_t		request;		/* what the client sent: head and body */
} fake_server;

static void *
fake_server_run(void *arg)
{
	fake_server *fs = arg;
	int			fd = accept(fs->listen_fd, NULL, NULL);
	char		chunk[4096];
	size_t		body_len = 0;
	char	   *end;

	if (fd < 0)
		return NULL;
	/* read the head, then Content-Length bytes of body */
	while ((end = strstr(buf_cstr(&fs->request), "\r\n\r\n")) == NULL)
	{
		ssize_t		n = read(fd, chunk, sizeof(chunk));

		if (n <= 0)
			break;
		buf_append(&fs->request, chunk, (size_t) n);
	}
	if (end)
	{
		const char *cl = strcasestr(buf_cstr(&fs->request), "\r\ncontent-length:");
		size_t		head_len = (size_t) (end - (char *) fs->request.data) + 4;

		body_len = cl ? strtoul(cl + 17, NULL, 10) : 0;
		while (fs->request.len < head_len + body_len)
		{
			ssize_t		n = read(fd, chunk, sizeof(chunk));

			if (n <= 0)
				break;
			buf_append(&fs->request, chunk, (size_t) n);
		}
	}
	if (write(fd, fs->response, strlen(fs->response)) < 0)
		perror("fake server write");
	close(fd);
	return NULL;
}

static void
fake_server_start(fake_server *fs, const char *response)
{
	struct sockaddr_in addr = {0};
	socklen_t	len = sizeof(addr);

	memset(fs, 0, sizeof(*fs));
	buf_init(&fs->request);
	fs->response = response;
	fs->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fs->listen_fd >= 0);
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fs->listen_fd, (struct sockaddr *) &addr, sizeof(addr)), 0);
	assert_int_equal(listen(fs->listen_fd, 1), 0);
	assert_int_equal(getsockname(fs->listen_fd, (struct sockaddr *) &addr, &len), 0);
	fs->port = ntohs(addr.sin_port);
	assert_int_equal(pthread_create(&fs->thread, NULL, fake_server_run, fs), 0);
}

static void
fake_server_stop(fake_server *fs)
{
	pthread_join(fs->thread, NULL);
	close(fs->listen_fd);
	buf_free(&fs->request);
}

static char *
fake_url(const fake_server *fs, const char *path)
{
	return xasprintf("http://127.0.0.1:%d%s", fs->port, path);
}

static void
test_http_put_headers(void **state)
{
	fake_server fs;
	http_client *c = http_client_new(NULL);
	const char *hdrs[] = {"X-Amz-Date: 20150830T123600Z", "Content-MD5: XUFAKrxLKna5cZ2REBfFkg=="};
	http_request req = {0};
	http_response resp = {0};
	char	   *url;

	(void) state;
	fake_server_start(&fs, "HTTP/1.1 200 OK\r\nETag: \"abc\"\r\nX-Mixed-CASE:   spaced value  \r\n"
					  "Content-Length: 0\r\nConnection: close\r\n\r\n");
	url = fake_url(&fs, "/bkt/a%20b?partNumber=1&uploadId=x");
	req.method = "PUT";
	req.url = url;
	req.headers = hdrs;
	req.nheaders = 2;
	req.body = (const uint8_t *) "hello";
	req.body_len = 5;
	assert_int_equal(http_execute(c, &req, &resp), 0);
	pthread_join(fs.thread, NULL);
	{
		const char *sent = buf_cstr(&fs.request);

		assert_true(strncmp(sent, "PUT /bkt/a%20b?partNumber=1&uploadId=x HTTP/1.1\r\n", 49) == 0);
		assert_non_null(strstr(sent, "\r\nX-Amz-Date: 20150830T123600Z\r\n"));
		assert_non_null(strstr(sent, "\r\nContent-MD5: XUFAKrxLKna5cZ2REBfFkg==\r\n"));
		assert_non_null(strstr(sent, "\r\nContent-Length: 5\r\n"));
		assert_null(strcasestr(sent, "\r\nExpect:"));
		assert_null(strcasestr(sent, "\r\nTransfer-Encoding:"));
		assert_null(strcasestr(sent, "\r\nAuthorization: Basic"));
		assert_string_equal(strstr(sent, "\r\n\r\n") + 4, "hello");
	}
	assert_int_equal(resp.status, 200);
	assert_string_equal(http_response_header(&resp, "etag"), "\"abc\"");
	assert_string_equal(http_response_header(&resp, "x-mixed-case"), "spaced value");
	assert_null(http_response_header(&resp, "X-Mixed-CASE"));
	close(fs.listen_fd);
	buf_free(&fs.request);
	http_response_free(&resp);
	assert_int_equal(resp.nheaders, 0);
	free(url);
	http_client_free(c);
}

static void
test_http_post_and_head(void **state)
{
	fake_server fs;
	http_client *c = http_client_new(NULL);
	http_request req = {0};
	http_response resp = {0};
	char	   *url;

	(void) state;
	fake_server_start(&fs, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\n<ok>");
	url = fake_url(&fs, "/bkt/k?uploads=");
	req.method = "POST";
	req.url = url;
	assert_int_equal(http_execute(c, &req, &resp), 0);
	fake_server_stop(&fs);
	free(url);
	assert_int_equal(resp.status, 200);
	assert_string_equal(buf_cstr(&resp.body), "<ok>");

	fake_server_start(&fs, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nLast-Modified: Wed, 12 Oct 2009 "
					  "17:50:00 GMT\r\nConnection: close\r\n\r\n");
	url = fake_url(&fs, "/bkt/k");
	req.method = "HEAD";
	req.url = url;
	assert_int_equal(http_execute(c, &req, &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(http_response_header(&resp, "content-length"), "1234");
	assert_int_equal(resp.body.len, 0);
	pthread_join(fs.thread, NULL);
	assert_true(strncmp(buf_cstr(&fs.request), "HEAD /bkt/k HTTP/1.1\r\n", 22) == 0);
	close(fs.listen_fd);
	buf_free(&fs.request);
	free(url);
	http_response_free(&resp);
	http_client_free(c);
}

static void
test_http_sink_only_for_success(void **state)
{
	fake_server fs;
	http_client *c = http_client_new(NULL);
	buf_t		got;
	filter_t   *sink;
	http_request req = {0};
	http_response resp = {0};
	char	   *url;

	(void) state;
	buf_init(&got);
	sink = filter_sink_buf_new(&got);

	/* 2xx: streamed into the sink, not kept in resp.body */
	fake_server_start(&fs, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\npayload");
	url = fake_url(&fs, "/o");
	req.url = url;
	req.sink = sink;
	assert_int_equal(http_execute(c, &req, &resp), 0);
	fake_server_stop(&fs);
	free(url);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.sink_bytes, 7);
	assert_int_equal(got.len, 7);
	assert_memory_equal(got.data, "payload", 7);
	assert_int_equal(resp.body.len, 0);

	/* error status: the body is captured, the sink untouched */
	fake_server_start(&fs, "HTTP/1.1 404 Not Found\r\nContent-Length: 32\r\nConnection: close\r\n\r\n"
					  "<Error><Code>NoSuchKey</Code>...");
	url = fake_url(&fs, "/o");
	req.url = url;
	assert_int_equal(http_execute(c, &req, &resp), 0);
	fake_server_stop(&fs);
	free(url);
	assert_int_equal(resp.status, 404);
	assert_int_equal(resp.sink_bytes, 0);
	assert_int_equal(got.len, 7);
	assert_string_equal(buf_cstr(&resp.body), "<Error><Code>NoSuchKey</Code>...");

	/* sink_status 206: a 200 (a server ignoring Range) must not reach the sink */
	fake_server_start(&fs, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nwhole");
	url = fake_url(&fs, "/o");
	req.url = url;
	req.sink_status = 206;
	assert_int_equal(http_execute(c, &req, &resp), 0);
	fake_server_stop(&fs);
	free(url);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.sink_bytes, 0);
	assert_int_equal(got.len, 7);
	assert_string_equal(buf_cstr(&resp.body), "whole");

	http_response_free(&resp);
	filter_chain_free(sink);
	buf_free(&got);
	http_client_free(c);
}

/* A body cut short is a transport error; the bytes already delivered are counted. */
static void
test_http_body_cut_short(void **state)
{
	fake_server fs;
	http_client *c = http_client_new(NULL);
	buf_t		got;
	filter_t   *sink;
	http_request req = {0};
	http_response resp = {0};
	char	   *url;

	(void) state;
	buf_init(&got);
	sink = filter_sink_buf_new(&got);
	fake_server_start(&fs, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
	url = fake_url(&fs, "/o");
	req.url = url;
	req.sink = sink;
	assert_int_equal(http_execute(c, &req, &resp), -1);
	fake_server_stop(&fs);
	assert_int_equal(err_kind(), DRB_ERR_STORAGE);
	assert_false(resp.sink_failed);
	assert_int_equal(resp.sink_bytes, 10);
	assert_int_equal(got.len, 10);
	err_clear();
	http_response_free(&resp);
	filter_chain_free(sink);
	buf_free(&got);
	free(url);
	http_client_free(c);
}

static void
test_http_connection_refused(void **state)
{
	http_client *c = http_client_new(NULL);
	http_request req = {0};
	http_response resp = {0};
	struct sockaddr_in addr = {0};
	socklen_t	len = sizeof(addr);
	int			fd = socket(AF_INET, SOCK_STREAM, 0);
	char	   *url;

	(void) state;
	/* a port that was just free: bind, note the port, close without ever listening */
	assert_true(fd >= 0);
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *) &addr, sizeof(addr)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *) &addr, &len), 0);
	close(fd);
	url = xasprintf("http://127.0.0.1:%d/o", ntohs(addr.sin_port));
	req.url = url;
	assert_int_equal(http_execute(c, &req, &resp), -1);
	assert_int_equal(err_kind(), DRB_ERR_STORAGE);
	assert_non_null(strstr(err_msg(), "connection refused"));
	err_clear();
	http_response_free(&resp);
	free(url);
	http_client_free(c);
}

/* --- HTTP helpers shared by the drivers: time parsing, client pool ------------------- */

static void
test_http_time_parsing(void **state)
{
	(void) state;
	/* 2009-10-12 17:50:30 UTC = 1255369830 */
	assert_int_equal(http_parse_iso8601("2009-10-12T17:50:30.000Z"), 1255369830);
	assert_int_equal(http_parse_iso8601("2009-10-12T17:50:30Z"), 1255369830);
	assert_int_equal(http_parse_date("Mon, 12 Oct 2009 17:50:30 GMT"), 1255369830);
	assert_int_equal(http_parse_date("12 Oct 2009 17:50:30 GMT"), 1255369830);
	assert_int_equal(http_parse_iso8601("yesterday"), 0);
	assert_int_equal(http_parse_iso8601(NULL), 0);
	assert_int_equal(http_parse_date("Mon, 12 Foo 2009 17:50:30 GMT"), 0);
	assert_int_equal(http_parse_date(NULL), 0);
}

/* Clients seen by the threaded pool test, each with an "in use" flag. */
#define POOL_SEEN_MAX 64
static http_client *pool_seen[POOL_SEEN_MAX];
static int	pool_in_use[POOL_SEEN_MAX];
static int	pool_clashes;
static pthread_mutex_t pool_seen_lock = PTHREAD_MUTEX_INITIALIZER;

static int
pool_slot(http_client *c)
{
	int			slot = -1;

	pthread_mutex_lock(&pool_seen_lock);
	for (int i = 0; i < POOL_SEEN_MAX && slot < 0; i++)
		if (pool_seen[i] == c || pool_seen[i] == NULL)
		{
			pool_seen[i] = c;
			slot = i;
		}
	pthread_mutex_unlock(&pool_seen_lock);
	return slot;
}

static void
test_http_pool_reuse(void **state)
{
	http_pool  *pool = http_pool_new(NULL, 2);
	http_client *a,
			   *b,
			   *c;

	(void) state;
	a = http_pool_get(pool);
	b = http_pool_get(pool);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);		/* a client is never handed out twice */
	http_pool_put(pool, a);
	c = http_pool_get(pool);
	assert_ptr_equal(c, a);			/* the idle client is reused (its connection too) */
	http_pool_put(pool, b);
	http_pool_put(pool, c);
	c = http_pool_get(pool);
	assert_ptr_equal(c, a);			/* most recently returned first */
	http_pool_put(pool, c);
	http_pool_free(pool);
}

static void *
pool_hammer(void *arg)
{
	http_pool  *pool = arg;

	for (int i = 0; i < 2000; i++)
	{
		http_client *c = http_pool_get(pool);
		int			slot = pool_slot(c);

		/* a client handed to two threads at once would find its flag already set */
		if (slot < 0 || __atomic_exchange_n(&pool_in_use[slot], 1, __ATOMIC_SEQ_CST) != 0)
			__atomic_add_fetch(&pool_clashes, 1, __ATOMIC_SEQ_CST);
		else
		{
			usleep(20);			/* hold it a while, as a request would */
			__atomic_store_n(&pool_in_use[slot], 0, __ATOMIC_SEQ_CST);
		}
		http_pool_put(pool, c);
	}
	return NULL;
}

static void
test_http_pool_threads(void **state)
{
	http_pool  *pool = http_pool_new(NULL, 4);
	pthread_t	t[4];
	int			distinct = 0;

	(void) state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, pool_hammer, pool), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < POOL_SEEN_MAX; i++)
		distinct += pool_seen[i] != NULL;
	assert_int_equal(pool_clashes, 0);
	assert_true(distinct >= 1 && distinct <= 4);	/* clients are reused, never more than threads */
	http_pool_free(pool);		/* frees every idle client: LeakSanitizer checks none is lost */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_suite_vectors),
		cmocka_unit_test(test_s3_get_object),
		cmocka_unit_test(test_s3_put_object),
		cmocka_unit_test(test_s3_get_bucket_lifecycle),
		cmocka_unit_test(test_s3_list_objects),
		cmocka_unit_test(test_signature_depends_on_inputs),
		cmocka_unit_test(test_bad_date_rejected),
		cmocka_unit_test(test_amz_date),
		cmocka_unit_test(test_uri_encode),
		cmocka_unit_test(test_retryable),
		cmocka_unit_test(test_backoff_bounded),
		cmocka_unit_test(test_http_put_headers),
		cmocka_unit_test(test_http_post_and_head),
		cmocka_unit_test(test_http_sink_only_for_success),
		cmocka_unit_test(test_http_body_cut_short),
		cmocka_unit_test(test_http_connection_refused),
		cmocka_unit_test(test_http_time_parsing),
		cmocka_unit_test(test_http_pool_reuse),
		cmocka_unit_test(test_http_pool_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
