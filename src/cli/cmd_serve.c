/*
 * secretsfs serve: the Secrets Manager API over a store, without a mount
 * (hosts and CI runners without FUSE; systemd runs it as a service), in
 * the foreground until SIGINT or SIGTERM. And the API's start for both
 * daemons (cli_api_start): a mount with -o api= serves it too, since one
 * process owns a store. docs/api.md.
 */
#include <errno.h>
#include <pthread.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "cli/cli.h"
#include "crypto/crypto.h"
#include "secrets/policy.h"
#include "secrets/secrets.h"
#include "util/log.h"

static const char usage[] =
	"usage: secretsfs serve STORE --listen ADDR:PORT [--credentials FILE | --auth none]\n"
	"                       [--key-file F | --passphrase-file F] [OPTIONS]\n"
	"\n"
	"Serves the Secrets Manager API (AWS JSON 1.1, as the AWS CLI and SDKs speak\n"
	"it) and the Secrets Manager Agent's endpoint over STORE, in the foreground,\n"
	"until SIGINT or SIGTERM. Point clients at --endpoint-url http://ADDR:PORT.\n"
	"\n"
	"  --listen ADDR:PORT      where to listen: 127.0.0.1:PORT (PORT 0: any free\n"
	"                          port, printed on standard output); another address\n"
	"                          only when given, and then with TLS recommended\n"
	"  --credentials FILE      the access keys: ACCESS_KEY_ID SECRET_ACCESS_KEY\n"
	"                          PRINCIPAL a line, # comments; mode 0600\n"
	"  --auth none             no signatures, every caller \"anonymous\": for tests,\n"
	"                          on a loopback address only (said in the log)\n"
	"  --key-file F, --passphrase-file F\n"
	"                          unlock the store (neither: asked on the terminal)\n"
	"  --tls-cert F --tls-key F  HTTPS with this PEM certificate and key\n"
	"  --agent-listen ADDR:PORT  the Agent's endpoint on a listener of its own\n"
	"                          (loopback only); it is on --listen's too\n"
	"  --agent-token-file F    the Agent's SSRF token (X-Aws-Parameters-Secrets-Token);\n"
	"                          default: $AWS_TOKEN (a value, or file:///PATH)\n"
	"  --policy FILE           the access policy for the API's principals\n"
	"                          (docs/policy.md: Principal {\"AWS\": NAME})\n"
	"  --audit-log FILE        one JSON line per request, CloudTrail-shaped\n"
	"  --audit-required        refuse what the audit log cannot record\n"
	"  --log-file FILE         log here (default: standard error)\n"
	"  --ro                    read-only\n"
	"  --max-connections N     at most N connections at once (default 64)\n"
	"  --timeout S             close a connection idle S seconds (default 30)\n"
	"  --max-body BYTES        largest request body (default 524288)\n"
	"  --threads N             threads serving requests (default 4)\n"
	"  --debug                 a signature mismatch tells the canonical request\n";

/* The Agent's token, as the Agent reads it: a file, or the first of its
 * variables set, whose value may be file:///PATH. Trimmed; NULL: none. */
static char *agent_token(const char *file)
{
	static const char *const vars[] = { "AWS_TOKEN", "AWS_SESSION_TOKEN",
					    "AWS_CONTAINER_AUTHORIZATION_TOKEN" };
	const char *from = file;
	char *text = NULL;
	for (size_t i = 0; !from && i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i]);
		if (v && v[0] && strncmp(v, "file://", 7) == 0)
			from = v + 7;
		else if (v && v[0])
			return strdup(v);
	}
	if (!from)
		return NULL;
	FILE *f = fopen(from, "re");
	size_t cap = 0;
	ssize_t n = f ? getline(&text, &cap, f) : -1;
	if (f)
		fclose(f);
	if (n <= 0) {
		cli_error("%s: cannot read the Agent's token", from);
		free(text);
		return NULL;
	}
	text[strcspn(text, "\r\n")] = '\0';
	return text;
}

int cli_api_start(struct sm *sm, const struct cli_api *ca, struct api **out)
{
	char *token = agent_token(ca->agent_token_file);
	struct api_options o = {
		.listen = ca->listen,
		.agent_listen = ca->agent_listen,
		.credentials_file = ca->auth_none ? NULL : ca->credentials,
		.auth_none = ca->auth_none,
		.tls_cert = ca->tls_cert,
		.tls_key = ca->tls_key,
		.policy = ca->policy,
		.audit_log = ca->audit_log,
		.audit_required = ca->audit_required,
		.agent_token = token,
		.new_uid = ca->new_uid,
		.new_gid = ca->new_gid,
		.new_mode = ca->new_mode,
		.max_connections = ca->max_connections,
		.timeout_s = ca->timeout_s,
		.max_body = ca->max_body,
		.threads = ca->threads,
		.rotate = ca->rotate,
		.rotate_ctx = ca->rotate_ctx,
		.debug = ca->debug,
	};
	if (!token)
		log_info("api: the Agent's endpoint answers 403 to all but /ping: no token "
			 "(--agent-token-file, or AWS_TOKEN)");
	int rc = api_start(sm, &o, out);
	if (token) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	return rc;
}

enum {
	OPT_LISTEN = 256, OPT_CREDENTIALS, OPT_AUTH, OPT_KEY_FILE, OPT_PASSPHRASE_FILE,
	OPT_TLS_CERT, OPT_TLS_KEY, OPT_AGENT_LISTEN, OPT_AGENT_TOKEN_FILE, OPT_POLICY,
	OPT_AUDIT_LOG, OPT_AUDIT_REQUIRED, OPT_LOG_FILE, OPT_RO, OPT_MAX_CONNECTIONS, OPT_TIMEOUT,
	OPT_MAX_BODY, OPT_THREADS, OPT_DEBUG,
};

static int number(const char *opt, const char *text, long min, long max, long *out)
{
	char *end;
	long n = strtol(text, &end, 10);
	if (!text[0] || *end || n < min || n > max) {
		cli_error("%s %s: give %ld to %ld", opt, text, min, max);
		return -1;
	}
	*out = n;
	return 0;
}

/* SIGINT, SIGTERM or SIGHUP ends it; once a minute the upkeep runs. */
static void serve_until_signalled(struct sm *sm)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	for (;;) {
		struct timespec minute = { 60, 0 };
		int sig = sigtimedwait(&set, NULL, &minute);
		if (sig > 0) {
			log_info("signal %d: stopping", sig);
			return;
		}
		sm_purge_expired(sm);
		sm_flush_access(sm);
	}
}

static int serve_store(const char *store_path, const char *key_file, const char *passphrase_file,
		       const char *log_file, const char *policy_file, bool readonly,
		       struct cli_api *ca)
{
	struct sm *sm = NULL;
	struct replica *replica = NULL;
	struct policy *policy = NULL;
	struct api *api = NULL;
	sigset_t set;
	int rc, status = 1;

	/* Before any thread starts, so that only the main thread takes them. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	cli_harden_process();
	if (cli_lock_memory()) {
		cli_error("cannot lock memory for secrets (raise RLIMIT_MEMLOCK)");
		goto out;
	}
	if (log_file && (rc = log_open(LOG_TO_FILE, log_file, ca->debug))) {
		cli_error("%s: cannot open log file: %s", log_file, strerror(-rc));
		goto out;
	}
	if (policy_file) {
		char why[160];
		if (!(policy = policy_load(policy_file, why, sizeof(why)))) {
			cli_error("%s: %s", policy_file, why);
			goto out;
		}
	}
	struct sm_options so = { .recovery_window_days = SM_DEFAULT_RECOVERY_DAYS,
				 .readonly = readonly, .root_uid = getuid(), .root_gid = getgid(),
				 .root_mode = 0755 };
	struct cli_open how = { .key_file = key_file, .passphrase_file = passphrase_file,
				.options = &so, .consequence = "; nothing served",
				.busy_advice = "; serve it from that mount with -o api=ADDR:PORT" };
	if (cli_open_domain(store_path, &how, &sm) || cli_cluster_attach(sm, &replica))
		goto out;
	ca->policy = policy;
	if (cli_api_start(sm, ca, &api)) {
		cli_error("%s: cannot serve the API (the log says why); nothing served", store_path);
		goto out;
	}
	/* The port, for a caller that asked for any (port 0). */
	printf("listening on %s://%.*s:%u\n", ca->tls_cert ? "https" : "http",
	       (int)(strrchr(ca->listen, ':') - ca->listen), ca->listen, api_port(api));
	fflush(stdout);
	log_info("%s served at %s", store_path, ca->listen);
	serve_until_signalled(sm);
	status = 0;
out:
	api_stop(api);
	cli_cluster_detach(sm, replica);
	policy_free(policy);
	sm_close(sm);
	crypto_shutdown();
	log_close();
	return status;
}

int cmd_serve(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "credentials", required_argument, NULL, OPT_CREDENTIALS },
		{ "auth", required_argument, NULL, OPT_AUTH },
		{ "key-file", required_argument, NULL, OPT_KEY_FILE },
		{ "passphrase-file", required_argument, NULL, OPT_PASSPHRASE_FILE },
		{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
		{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
		{ "agent-listen", required_argument, NULL, OPT_AGENT_LISTEN },
		{ "agent-token-file", required_argument, NULL, OPT_AGENT_TOKEN_FILE },
		{ "policy", required_argument, NULL, OPT_POLICY },
		{ "audit-log", required_argument, NULL, OPT_AUDIT_LOG },
		{ "audit-required", no_argument, NULL, OPT_AUDIT_REQUIRED },
		{ "log-file", required_argument, NULL, OPT_LOG_FILE },
		{ "ro", no_argument, NULL, OPT_RO },
		{ "max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "max-body", required_argument, NULL, OPT_MAX_BODY },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "debug", no_argument, NULL, OPT_DEBUG },
		{ 0 },
	};
	struct cli_api ca = { .new_uid = getuid(), .new_gid = getgid(), .new_mode = 0600 };
	const char *key_file = NULL, *passphrase_file = NULL, *log_file = NULL, *policy_file = NULL;
	const char *auth = "sigv4";
	bool readonly = false;
	long n;
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(usage, stdout); return 0;
		case OPT_LISTEN: ca.listen = optarg; break;
		case OPT_CREDENTIALS: ca.credentials = optarg; break;
		case OPT_AUTH: auth = optarg; break;
		case OPT_KEY_FILE: key_file = optarg; break;
		case OPT_PASSPHRASE_FILE: passphrase_file = optarg; break;
		case OPT_TLS_CERT: ca.tls_cert = optarg; break;
		case OPT_TLS_KEY: ca.tls_key = optarg; break;
		case OPT_AGENT_LISTEN: ca.agent_listen = optarg; break;
		case OPT_AGENT_TOKEN_FILE: ca.agent_token_file = optarg; break;
		case OPT_POLICY: policy_file = optarg; break;
		case OPT_AUDIT_LOG: ca.audit_log = optarg; break;
		case OPT_AUDIT_REQUIRED: ca.audit_required = true; break;
		case OPT_LOG_FILE: log_file = optarg; break;
		case OPT_RO: readonly = true; break;
		case OPT_DEBUG: ca.debug = true; break;
		case OPT_MAX_CONNECTIONS:
			if (number("--max-connections", optarg, 1, 10000, &n))
				return EXIT_MISUSE;
			ca.max_connections = (unsigned)n;
			break;
		case OPT_TIMEOUT:
			if (number("--timeout", optarg, 1, 3600, &n))
				return EXIT_MISUSE;
			ca.timeout_s = (unsigned)n;
			break;
		case OPT_MAX_BODY:
			if (number("--max-body", optarg, 4096, 64L << 20, &n))
				return EXIT_MISUSE;
			ca.max_body = (size_t)n;
			break;
		case OPT_THREADS:
			if (number("--threads", optarg, 1, 256, &n))
				return EXIT_MISUSE;
			ca.threads = (unsigned)n;
			break;
		default: fputs(usage, stderr); return EXIT_MISUSE;
		}
	}
	if (optind != argc - 1 || !ca.listen) {
		fputs(usage, stderr);
		return EXIT_MISUSE;
	}
	if (strcmp(auth, "none") != 0 && strcmp(auth, "sigv4") != 0) {
		cli_error("--auth %s: give sigv4 (the default) or none", auth);
		return EXIT_MISUSE;
	}
	ca.auth_none = strcmp(auth, "none") == 0;
	if (!ca.auth_none && !ca.credentials) {
		cli_error("give --credentials FILE (or --auth none, for tests on loopback)");
		return EXIT_MISUSE;
	}
	if (ca.auth_none && ca.credentials) {
		cli_error("--auth none takes no --credentials");
		return EXIT_MISUSE;
	}
	if (key_file && passphrase_file) {
		cli_error("give --key-file or --passphrase-file, not both");
		return EXIT_MISUSE;
	}
	if (!ca.tls_cert != !ca.tls_key) {
		cli_error("--tls-cert and --tls-key go together");
		return EXIT_MISUSE;
	}
	if (ca.audit_required && !ca.audit_log) {
		cli_error("--audit-required needs --audit-log FILE");
		return EXIT_MISUSE;
	}
	return serve_store(argv[optind], key_file, passphrase_file, log_file, policy_file,
			   readonly, &ca);
}
