/*
 * uring-zc reference sender: the performance ceiling the Node library is
 * measured against.
 *
 * Plain C11 + libc, raw io_uring syscalls, rings mmap'ed and driven by the
 * code below (no liburing). One thread, one ring, one socket.
 *
 *   sender --mode copy|zc|zc-pool --size BYTES --dst IPv4|IPv6 --port N
 *          [--tcp] [--qd 64] [--duration-ms 3000] [--max-sends N]
 *          [--working-set BYTES] [--setup-flags N] [--warmup-ms 0]
 *
 * Modes:
 *   copy     IORING_OP_SEND
 *   zc       IORING_OP_SEND_ZC, ioprio = IORING_SEND_ZC_REPORT_USAGE
 *   zc-pool  IORING_OP_SEND_ZC from buffers registered with
 *            IORING_REGISTER_BUFFERS (IORING_RECVSEND_FIXED_BUF + buf_index),
 *            plus REPORT_USAGE
 *
 * UDP (default): one unconnected socket; every SQE carries the destination in
 * addr2/addr_len (sendto semantics), the same way the library sends.
 * TCP (--tcp): one connected socket, exactly one send in flight, MSG_WAITALL;
 * the next send is queued at the previous send's first CQE (not at its
 * notification), short sends are resubmitted from where they stopped.
 *
 * Buffers: --working-set 0 ("hot") re-sends one buffer of --size bytes.
 * --working-set N ("cold") fills N bytes of anonymous memory before the timed
 * part and walks it in order, --size bytes per send, wrapping at the end.
 * Every 8-byte word holds its own byte offset (little-endian u64), so a
 * receiver can check the content of every datagram.
 *
 * A slot (user_data) is reusable at its result CQE when that CQE has no
 * IORING_CQE_F_MORE, otherwise at its IORING_CQE_F_NOTIF CQE. Only F_MORE
 * decides, never res.
 *
 * Output: one JSON line on stdout. seconds/bytes/sends cover the timed loop:
 * from the first submit (or the end of --warmup-ms, when the loop is already
 * running: the counters start over, sends in flight count in the timed part)
 * until the result CQE of the last send started before the deadline (or
 * --max-sends, which counts timed sends). Notifications still outstanding then are
 * drained afterwards (at most 5 s) and counted in notifs/copied, but not
 * timed. cpuUser/cpuSys are getrusage(RUSAGE_SELF) deltas over the same timed
 * span (so filling a 256 MiB working set is not charged to the sends).
 * "sends" counts whole sends of --size bytes (a TCP short send and its
 * resubmission count as one).
 *
 * Exit status: 0 after a run (even with send errors, which are counted),
 * 2 on bad arguments or setup failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <linux/io_uring.h>

/* The distro header may predate these (facts from the current uapi header). */
#ifndef IORING_SETUP_COOP_TASKRUN
#define IORING_SETUP_COOP_TASKRUN (1U << 8)
#endif
#ifndef IORING_SETUP_TASKRUN_FLAG
#define IORING_SETUP_TASKRUN_FLAG (1U << 9)
#endif
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_SETUP_NO_SQARRAY
#define IORING_SETUP_NO_SQARRAY (1U << 16)
#endif
#ifndef IORING_RECVSEND_FIXED_BUF
#define IORING_RECVSEND_FIXED_BUF (1U << 2)
#endif
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif
#ifndef IORING_CQE_F_MORE
#define IORING_CQE_F_MORE (1U << 1)
#endif
#ifndef IORING_CQE_F_NOTIF
#define IORING_CQE_F_NOTIF (1U << 3)
#endif
#ifndef IORING_ENTER_EXT_ARG
#define IORING_ENTER_EXT_ARG (1U << 3)
#endif
#ifndef IORING_FEAT_EXT_ARG
#define IORING_FEAT_EXT_ARG (1U << 8)
#endif

/* Setup flags this program knows how to drive. SQPOLL/IOPOLL, big SQEs/CQEs
 * and user-provided ring memory would need code paths it does not have. */
#define ALLOWED_SETUP_FLAGS                                                   \
	(IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL |                       \
	 IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |              \
	 IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |            \
	 IORING_SETUP_NO_SQARRAY)

/* The kernel refuses registered buffers larger than 1 GiB each. */
#define REG_CHUNK (1ULL << 30)
#define DRAIN_NS (5ULL * 1000000000ULL)
/* Upper bound of one wait in io_uring_enter, so a stuck peer cannot keep
 * us past the deadline or the drain limit. */
#define WAIT_SLICE_NS (20ULL * 1000000ULL)

enum mode { MODE_COPY, MODE_ZC, MODE_ZC_POOL };
static const char *const mode_names[] = { "copy", "zc", "zc-pool" };

/* ---- small helpers ------------------------------------------------------ */

static void die(const char *what, int err)
{
	fprintf(stderr, "sender: %s: %s\n", what, strerror(err));
	exit(2);
}

static void usage_error(const char *msg, const char *arg)
{
	if (arg)
		fprintf(stderr, "sender: %s: %s\n", msg, arg);
	else
		fprintf(stderr, "sender: %s\n", msg);
	fprintf(stderr,
		"usage: sender --mode copy|zc|zc-pool --size BYTES --dst IPv4|IPv6 --port N\n"
		"              [--tcp] [--qd 64] [--duration-ms 3000] [--max-sends N]\n"
		"              [--working-set BYTES] [--setup-flags N] [--warmup-ms 0]\n");
	exit(2);
}

static unsigned long long parse_u64(const char *opt, const char *s,
				    unsigned long long min,
				    unsigned long long max)
{
	char *end;
	unsigned long long v;

	if (!s)
		usage_error("missing value for", opt);
	if (*s == '-' || *s == '\0')
		usage_error("bad number for option", opt);
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end != '\0' || v < min || v > max)
		usage_error("bad or out-of-range value for option", opt);
	return v;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static double tv_sec(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static const char *errno_name(int e)
{
	static char other[24];

	switch (e) {
	case EPERM: return "EPERM";
	case EINTR: return "EINTR";
	case EIO: return "EIO";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EINVAL: return "EINVAL";
	case ENOSPC: return "ENOSPC";
	case EPIPE: return "EPIPE";
	case ENOSYS: return "ENOSYS";
	case ENOTSOCK: return "ENOTSOCK";
	case EDESTADDRREQ: return "EDESTADDRREQ";
	case EMSGSIZE: return "EMSGSIZE";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EAFNOSUPPORT: return "EAFNOSUPPORT";
	case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
	case ENETDOWN: return "ENETDOWN";
	case ENETUNREACH: return "ENETUNREACH";
	case ECONNABORTED: return "ECONNABORTED";
	case ECONNRESET: return "ECONNRESET";
	case ENOBUFS: return "ENOBUFS";
	case EISCONN: return "EISCONN";
	case ENOTCONN: return "ENOTCONN";
	case ETIMEDOUT: return "ETIMEDOUT";
	case ECONNREFUSED: return "ECONNREFUSED";
	case EHOSTUNREACH: return "EHOSTUNREACH";
	case ECANCELED: return "ECANCELED";
	case ETIME: return "ETIME";
	default:
		snprintf(other, sizeof(other), "E%d", e);
		return other;
	}
}

/* ---- raw io_uring ---------------------------------------------------------- */

static int sys_setup(unsigned entries, struct io_uring_params *p)
{
	return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_enter(int fd, unsigned to_submit, unsigned min_complete,
		     unsigned flags, const void *arg, size_t argsz)
{
	return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete,
			    flags, arg, argsz);
}

static int sys_register(int fd, unsigned opcode, const void *arg,
			unsigned nr_args)
{
	return (int)syscall(__NR_io_uring_register, fd, opcode, arg, nr_args);
}

struct ring {
	int fd;
	unsigned features;
	/* SQ: the kernel owns *sq_khead, we own *sq_ktail and sq_tail. */
	unsigned *sq_khead, *sq_ktail, *sq_array;
	unsigned sq_mask, sq_entries;
	unsigned sq_tail; /* local tail: SQEs written, maybe not yet published */
	struct io_uring_sqe *sqes;
	/* CQ: the kernel owns *cq_ktail, we own *cq_khead. */
	unsigned *cq_khead, *cq_ktail, *cq_overflow;
	unsigned cq_mask, cq_entries;
	struct io_uring_cqe *cqes;
};

static unsigned round_pow2(unsigned v)
{
	unsigned r = 1;

	while (r < v)
		r <<= 1;
	return r;
}

static void ring_init(struct ring *r, unsigned qd, unsigned extra_flags)
{
	struct io_uring_params p;
	size_t sq_sz, cq_sz, sqes_sz;
	void *sq_ptr, *cq_ptr, *sqes;

	memset(&p, 0, sizeof(p));
	/* Two CQEs per zc send (result + notification): size the CQ for 2x. */
	p.flags = IORING_SETUP_CQSIZE | extra_flags;
	p.cq_entries = 2 * round_pow2(qd);
	r->fd = sys_setup(qd, &p);
	if (r->fd < 0) {
		int e = errno;

		if (e == EPERM || e == ENOSYS)
			fprintf(stderr, "sender: io_uring_setup: %s (io_uring blocked: seccomp or kernel.io_uring_disabled?)\n",
				strerror(e));
		else if (e == EINVAL)
			fprintf(stderr, "sender: io_uring_setup: %s (--setup-flags 0x%x not supported by this kernel, or an invalid combination: DEFER_TASKRUN needs SINGLE_ISSUER, TASKRUN_FLAG needs COOP_TASKRUN or DEFER_TASKRUN)\n",
				strerror(e), extra_flags);
		else
			fprintf(stderr, "sender: io_uring_setup: %s\n", strerror(e));
		exit(2);
	}
	if (p.cq_entries < 2 * p.sq_entries) {
		fprintf(stderr, "sender: CQ has %u entries for %u SQ entries, need 2x\n",
			p.cq_entries, p.sq_entries);
		exit(2);
	}
	r->features = p.features;

	cq_sz = p.cq_off.cqes + (size_t)p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.flags & IORING_SETUP_NO_SQARRAY)
		sq_sz = cq_sz; /* no index array; head/tail live in the shared ring area */
	else
		sq_sz = p.sq_off.array + (size_t)p.sq_entries * sizeof(unsigned);
	if (p.features & IORING_FEAT_SINGLE_MMAP) {
		if (cq_sz > sq_sz)
			sq_sz = cq_sz;
		cq_sz = sq_sz;
	}
	sq_ptr = mmap(NULL, sq_sz, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
	if (sq_ptr == MAP_FAILED)
		die("mmap SQ ring", errno);
	if (p.features & IORING_FEAT_SINGLE_MMAP) {
		cq_ptr = sq_ptr;
	} else {
		cq_ptr = mmap(NULL, cq_sz, PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
		if (cq_ptr == MAP_FAILED)
			die("mmap CQ ring", errno);
	}
	sqes_sz = (size_t)p.sq_entries * sizeof(struct io_uring_sqe);
	sqes = mmap(NULL, sqes_sz, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
	if (sqes == MAP_FAILED)
		die("mmap SQEs", errno);

	r->sq_khead = (unsigned *)((char *)sq_ptr + p.sq_off.head);
	r->sq_ktail = (unsigned *)((char *)sq_ptr + p.sq_off.tail);
	r->sq_mask = *(unsigned *)((char *)sq_ptr + p.sq_off.ring_mask);
	r->sq_entries = *(unsigned *)((char *)sq_ptr + p.sq_off.ring_entries);
	r->sqes = sqes;
	r->sq_tail = *r->sq_ktail; /* 0 on a new ring */
	r->sq_array = NULL;
	if (!(p.flags & IORING_SETUP_NO_SQARRAY)) {
		/* SQE i always goes into array slot i: fill the indirection
		 * array once, identity-mapped, and never touch it again. */
		r->sq_array = (unsigned *)((char *)sq_ptr + p.sq_off.array);
		for (unsigned i = 0; i < r->sq_entries; i++)
			r->sq_array[i] = i;
	}

	r->cq_khead = (unsigned *)((char *)cq_ptr + p.cq_off.head);
	r->cq_ktail = (unsigned *)((char *)cq_ptr + p.cq_off.tail);
	r->cq_overflow = (unsigned *)((char *)cq_ptr + p.cq_off.overflow);
	r->cq_mask = *(unsigned *)((char *)cq_ptr + p.cq_off.ring_mask);
	r->cq_entries = *(unsigned *)((char *)cq_ptr + p.cq_off.ring_entries);
	r->cqes = (struct io_uring_cqe *)((char *)cq_ptr + p.cq_off.cqes);
}

/* SQEs the kernel has not consumed yet: our tail minus the kernel's head.
 * Acquire pairs with the kernel's release store of sq head, so once we see
 * an entry as consumed we may overwrite it. */
static unsigned sq_pending(const struct ring *r)
{
	return r->sq_tail - __atomic_load_n(r->sq_khead, __ATOMIC_ACQUIRE);
}

/* Next free SQE, or NULL if the SQ is full. */
static struct io_uring_sqe *sq_get(struct ring *r)
{
	struct io_uring_sqe *sqe;

	if (sq_pending(r) >= r->sq_entries)
		return NULL;
	sqe = &r->sqes[r->sq_tail & r->sq_mask];
	r->sq_tail++;
	return sqe;
}

/* Make the SQEs written so far visible to the kernel. Release: every store
 * into those SQEs happens-before the kernel's (acquire) load of the tail
 * that covers them. */
static void sq_publish(struct ring *r)
{
	__atomic_store_n(r->sq_ktail, r->sq_tail, __ATOMIC_RELEASE);
}

/* ---- the benchmark ----------------------------------------------------------- */

enum slot_state { SLOT_FREE = 0, SLOT_BUSY };

struct slot {
	unsigned char state;
	unsigned char result_seen;
	unsigned char notif_due; /* result CQE had F_MORE */
	unsigned char notif_seen;
	/* Its result was counted after the warm-up: its notification counts
	 * too (so that copied never exceeds sends). */
	unsigned char timed;
};

struct opts {
	enum mode mode;
	unsigned long long size;
	int tcp;
	unsigned qd;
	unsigned long long duration_ms;
	/* Sent before the clock starts, like the Node rows' JIT warm-up. */
	unsigned long long warmup_ms;
	unsigned long long max_sends;
	unsigned long long working_set;
	unsigned setup_flags;
	struct sockaddr_storage dst;
	socklen_t dst_len;
};

struct stats {
	unsigned long long sends, bytes, copied, notifs, errors;
	int first_error;
};

static void parse_args(int argc, char **argv, struct opts *o)
{
	const char *mode = NULL, *dst = NULL;
	int have_size = 0, have_port = 0;
	unsigned port = 0;

	memset(o, 0, sizeof(*o));
	o->qd = 64;
	o->duration_ms = 3000;
	o->max_sends = ULLONG_MAX;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--tcp")) {
			o->tcp = 1;
			continue;
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			usage_error("help requested", NULL);
		if (!v)
			usage_error(strncmp(a, "--", 2) ? "unexpected argument" :
				    "missing value for", a);
		i++;
		if (!strcmp(a, "--mode")) {
			mode = v;
		} else if (!strcmp(a, "--size")) {
			o->size = parse_u64(a, v, 1, REG_CHUNK);
			have_size = 1;
		} else if (!strcmp(a, "--dst")) {
			dst = v;
		} else if (!strcmp(a, "--port")) {
			port = (unsigned)parse_u64(a, v, 1, 65535);
			have_port = 1;
		} else if (!strcmp(a, "--qd")) {
			o->qd = (unsigned)parse_u64(a, v, 1, 32768);
		} else if (!strcmp(a, "--duration-ms")) {
			o->duration_ms = parse_u64(a, v, 1, 86400000ULL);
		} else if (!strcmp(a, "--warmup-ms")) {
			o->warmup_ms = parse_u64(a, v, 0, 86400000ULL);
		} else if (!strcmp(a, "--max-sends")) {
			o->max_sends = parse_u64(a, v, 1, ULLONG_MAX);
		} else if (!strcmp(a, "--working-set")) {
			o->working_set = parse_u64(a, v, 0, 1ULL << 40);
		} else if (!strcmp(a, "--setup-flags")) {
			o->setup_flags = (unsigned)parse_u64(a, v, 0, UINT_MAX);
		} else {
			usage_error("unknown option", a);
		}
	}

	if (!mode || !have_size || !dst || !have_port)
		usage_error("--mode, --size, --dst and --port are required", NULL);
	if (!strcmp(mode, "copy"))
		o->mode = MODE_COPY;
	else if (!strcmp(mode, "zc"))
		o->mode = MODE_ZC;
	else if (!strcmp(mode, "zc-pool"))
		o->mode = MODE_ZC_POOL;
	else
		usage_error("unknown mode", mode);
	if (o->working_set && o->working_set < o->size)
		usage_error("--working-set must be 0 or at least --size", NULL);
	if (o->size > UINT_MAX)
		usage_error("--size too large", NULL);
	if (o->setup_flags & ~ALLOWED_SETUP_FLAGS) {
		fprintf(stderr, "sender: --setup-flags 0x%x: unsupported bits 0x%x (allowed 0x%x)\n",
			o->setup_flags, o->setup_flags & ~ALLOWED_SETUP_FLAGS,
			(unsigned)ALLOWED_SETUP_FLAGS);
		exit(2);
	}

	memset(&o->dst, 0, sizeof(o->dst));
	if (strchr(dst, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&o->dst;

		if (inet_pton(AF_INET6, dst, &s6->sin6_addr) != 1)
			usage_error("bad IPv6 address", dst);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		o->dst_len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&o->dst;

		if (inet_pton(AF_INET, dst, &s4->sin_addr) != 1)
			usage_error("bad IPv4 address", dst);
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		o->dst_len = sizeof(*s4);
	}
}

/* Anonymous memory, every 8-byte word = its byte offset (little-endian).
 * Written before the timed part, so the pages exist and hold distinct bytes. */
static unsigned char *alloc_filled(size_t len, size_t *mapped)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t sz = (len + pg - 1) / pg * pg;
	unsigned char *p = mmap(NULL, sz, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap buffer", errno);
	for (size_t off = 0; off + 8 <= sz; off += 8) {
		uint64_t w = off;
		unsigned char b[8];

		for (int k = 0; k < 8; k++)
			b[k] = (unsigned char)(w >> (8 * k));
		memcpy(p + off, b, 8);
	}
	*mapped = sz;
	return p;
}

/* Where the next send reads from. Hot: always the one buffer. Cold: the next
 * `size` bytes of the region, wrapping; a send never straddles two
 * registered 1 GiB chunks (so zc-pool can name one buf_index). */
struct walker {
	unsigned char *base;
	unsigned long long ws, size, off;
};

static unsigned char *walk_next(struct walker *w, unsigned *buf_index)
{
	unsigned long long off;

	if (!w->ws) {
		*buf_index = 0;
		return w->base;
	}
	off = w->off;
	if (off + w->size > w->ws)
		off = 0;
	if (off / REG_CHUNK != (off + w->size - 1) / REG_CHUNK) {
		off = (off / REG_CHUNK + 1) * REG_CHUNK;
		if (off + w->size > w->ws)
			off = 0;
	}
	w->off = off + w->size;
	*buf_index = (unsigned)(off / REG_CHUNK);
	return w->base + off;
}

static void register_buffers(int ring_fd, unsigned char *base, size_t len)
{
	unsigned n = (unsigned)((len + REG_CHUNK - 1) / REG_CHUNK);
	struct iovec *iov = calloc(n, sizeof(*iov));

	if (!iov)
		die("calloc", ENOMEM);
	for (unsigned i = 0; i < n; i++) {
		size_t off = (size_t)i * REG_CHUNK;

		iov[i].iov_base = base + off;
		iov[i].iov_len = len - off < REG_CHUNK ? len - off : REG_CHUNK;
	}
	if (sys_register(ring_fd, IORING_REGISTER_BUFFERS, iov, n) < 0) {
		int e = errno;

		if (e == ENOMEM)
			fprintf(stderr, "sender: IORING_REGISTER_BUFFERS: %s (RLIMIT_MEMLOCK / ulimit -l too low for %zu bytes?)\n",
				strerror(e), len);
		else
			fprintf(stderr, "sender: IORING_REGISTER_BUFFERS: %s\n",
				strerror(e));
		exit(2);
	}
	free(iov);
}

int main(int argc, char **argv)
{
	struct opts o;
	struct ring r;
	struct stats st;
	struct walker wk;
	struct slot *slots;
	unsigned *free_list, n_free;
	unsigned busy = 0;            /* slots not free */
	unsigned results_pending = 0; /* SQEs queued whose result CQE is still due */
	unsigned long long started = 0; /* whole sends begun */
	int sock, stopping = 0, timing_done = 0, warming;
	uint64_t t0, t1 = 0, deadline, stop_at = 0, drain_deadline = 0, warm_end;
	struct rusage ru0, ru1;
	unsigned char *buf;
	size_t buf_len;
	/* TCP: one send in flight; a short send leaves a remainder to resend. */
	int tcp_active = 0;
	unsigned char *tcp_ptr = NULL;
	unsigned long long tcp_rem = 0;
	unsigned tcp_bi = 0;
	unsigned short ioprio = 0;
	unsigned char opcode;
	unsigned msg_flags;
	struct io_uring_getevents_arg garg;
	struct __kernel_timespec wait_ts;

	parse_args(argc, argv, &o);
	signal(SIGPIPE, SIG_IGN);
	memset(&st, 0, sizeof(st));

	/* ---- socket */
	sock = socket(o.dst.ss_family, o.tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
	if (sock < 0)
		die("socket", errno);
	if (o.tcp && connect(sock, (struct sockaddr *)&o.dst, o.dst_len) < 0)
		die("connect", errno);
	/* UDP stays unconnected: the destination travels in each SQE. */

	/* ---- buffers */
	buf = alloc_filled(o.working_set ? o.working_set : o.size, &buf_len);
	wk.base = buf;
	wk.ws = o.working_set;
	wk.size = o.size;
	wk.off = 0;

	/* ---- ring */
	ring_init(&r, o.qd, o.setup_flags);
	if (!(r.features & IORING_FEAT_EXT_ARG)) {
		fprintf(stderr, "sender: kernel lacks IORING_FEAT_EXT_ARG (need >= 5.11)\n");
		exit(2);
	}
	if (o.mode == MODE_ZC_POOL)
		register_buffers(r.fd, buf, o.working_set ? o.working_set : o.size);

	slots = calloc(o.qd, sizeof(*slots));
	free_list = calloc(o.qd, sizeof(*free_list));
	if (!slots || !free_list)
		die("calloc", ENOMEM);
	for (unsigned i = 0; i < o.qd; i++)
		free_list[i] = o.qd - 1 - i;
	n_free = o.qd;

	opcode = o.mode == MODE_COPY ? IORING_OP_SEND : IORING_OP_SEND_ZC;
	if (o.mode != MODE_COPY)
		ioprio |= IORING_SEND_ZC_REPORT_USAGE;
	if (o.mode == MODE_ZC_POOL)
		ioprio |= IORING_RECVSEND_FIXED_BUF;
	/* SEND_ZC adds MSG_NOSIGNAL itself; plain SEND needs it for TCP. */
	msg_flags = MSG_NOSIGNAL | (o.tcp ? MSG_WAITALL : 0);

	/* Every wait is bounded (EXT_ARG timeout) so a stuck socket cannot
	 * hold us past the deadline or the drain limit. The kernel only arms
	 * the timer when it actually has to sleep. */
	memset(&garg, 0, sizeof(garg));
	wait_ts.tv_sec = 0;
	wait_ts.tv_nsec = WAIT_SLICE_NS;
	garg.ts = (uint64_t)(uintptr_t)&wait_ts;

	getrusage(RUSAGE_SELF, &ru0);
	t0 = now_ns();
	/* Warm-up: the loop runs as measured, then the counters, the clock and
	 * the CPU times start over without draining (steady state goes on). */
	warming = o.warmup_ms > 0;
	warm_end = t0 + o.warmup_ms * 1000000ULL;
	deadline = warm_end + o.duration_ms * 1000000ULL;

	for (;;) {
		uint64_t now = now_ns();
		unsigned to_submit, min_complete;
		int ret;

		if (warming && now >= warm_end) {
			/* Errors are kept: they are reported whenever they happen. */
			warming = 0;
			st.sends = st.bytes = st.copied = st.notifs = 0;
			started = 0;
			t0 = now;
			getrusage(RUSAGE_SELF, &ru0);
		}
		if (!stopping && !warming && (now >= deadline || started >= o.max_sends))
			stopping = 1;
		if (stopping && !stop_at)
			stop_at = now;

		/* ---- fill */
		if (!o.tcp) {
			while (!stopping && n_free && (warming || started < o.max_sends)) {
				struct io_uring_sqe *sqe = sq_get(&r);
				unsigned bi, s;
				unsigned char *p;

				if (!sqe)
					break;
				p = walk_next(&wk, &bi);
				s = free_list[--n_free];
				slots[s] = (struct slot){ .state = SLOT_BUSY };
				busy++;
				memset(sqe, 0, sizeof(*sqe));
				sqe->opcode = opcode;
				sqe->fd = sock;
				sqe->ioprio = ioprio;
				sqe->addr = (uint64_t)(uintptr_t)p;
				sqe->len = (unsigned)o.size;
				sqe->msg_flags = msg_flags;
				sqe->buf_index = (uint16_t)bi;
				sqe->user_data = s;
				/* sendto(): destination in addr2, its length in
				 * addr_len (overlays the high half of splice_fd_in). */
				sqe->addr2 = (uint64_t)(uintptr_t)&o.dst;
				sqe->addr_len = (uint16_t)o.dst_len;
				started++;
				results_pending++;
			}
		} else if (!tcp_active && n_free &&
			   (tcp_rem || (!stopping && (warming || started < o.max_sends)))) {
			/* One send in flight on the stream: several SEND_ZC in
			 * flight on one TCP socket corrupt the byte stream. */
			struct io_uring_sqe *sqe = sq_get(&r);

			if (sqe) {
				unsigned s = free_list[--n_free];

				if (!tcp_rem) {
					tcp_ptr = walk_next(&wk, &tcp_bi);
					tcp_rem = o.size;
					started++;
				}
				slots[s] = (struct slot){ .state = SLOT_BUSY };
				busy++;
				memset(sqe, 0, sizeof(*sqe));
				sqe->opcode = opcode;
				sqe->fd = sock;
				sqe->ioprio = ioprio;
				sqe->addr = (uint64_t)(uintptr_t)tcp_ptr;
				sqe->len = (unsigned)tcp_rem;
				sqe->msg_flags = msg_flags;
				sqe->buf_index = (uint16_t)tcp_bi;
				sqe->user_data = s;
				tcp_active = 1;
				results_pending++;
			}
		}
		sq_publish(&r);

		/* Submit count from the ring itself: our tail minus the
		 * kernel's head, re-read now (a previous enter may have taken
		 * fewer than we offered). */
		to_submit = sq_pending(&r);

		if (stopping && !timing_done && results_pending == 0 && !tcp_rem) {
			t1 = now_ns();
			getrusage(RUSAGE_SELF, &ru1);
			timing_done = 1;
			drain_deadline = t1 + DRAIN_NS;
		}
		if (timing_done) {
			if (busy == 0 && to_submit == 0)
				break;
			if (now_ns() > drain_deadline) {
				fprintf(stderr, "sender: drain timed out with %u requests in flight\n",
					busy);
				break;
			}
		} else if (stop_at && now > stop_at + DRAIN_NS) {
			/* Result CQEs that never come (stuck peer): give up. */
			fprintf(stderr, "sender: %u sends never completed\n",
				results_pending);
			t1 = now_ns();
			getrusage(RUSAGE_SELF, &ru1);
			timing_done = 1;
			break;
		}

		/* GETEVENTS always: with DEFER_TASKRUN, completions are only
		 * posted while we are in here asking for events. */
		min_complete = busy ? 1 : 0;
		ret = sys_enter(r.fd, to_submit, min_complete,
				IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
				&garg, sizeof(garg));
		if (ret < 0 && errno != EINTR && errno != ETIME &&
		    errno != EAGAIN && errno != EBUSY)
			die("io_uring_enter", errno);

		/* ---- reap every CQE available */
		{
			/* We are the only writer of the CQ head: plain load. */
			unsigned head = *r.cq_khead;
			/* Acquire pairs with the kernel's release store of the
			 * CQ tail: the CQE contents below are complete. */
			unsigned tail = __atomic_load_n(r.cq_ktail, __ATOMIC_ACQUIRE);

			for (; head != tail; head++) {
				const struct io_uring_cqe *cqe = &r.cqes[head & r.cq_mask];
				uint64_t ud = cqe->user_data;
				struct slot *sl;

				if (ud >= o.qd || slots[ud].state != SLOT_BUSY) {
					fprintf(stderr, "sender: unexpected CQE user_data=%llu res=%d flags=0x%x\n",
						(unsigned long long)ud, cqe->res, cqe->flags);
					exit(2);
				}
				sl = &slots[ud];
				if (cqe->flags & IORING_CQE_F_NOTIF) {
					if (sl->timed) {
						st.notifs++;
						if ((unsigned)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED)
							st.copied++;
					}
					sl->notif_seen = 1;
				} else {
					results_pending--;
					sl->result_seen = 1;
					sl->timed = !warming;
					/* Only F_MORE says whether a notification follows. */
					sl->notif_due = (cqe->flags & IORING_CQE_F_MORE) != 0;
					if (cqe->res < 0) {
						st.errors++;
						if (!st.first_error)
							st.first_error = -cqe->res;
						if (o.tcp) {
							/* Stream broken: stop, do not resend. */
							tcp_rem = 0;
							stopping = 1;
						}
					} else {
						st.bytes += (unsigned long long)cqe->res;
						if (!o.tcp) {
							st.sends++;
						} else if ((unsigned long long)cqe->res >= tcp_rem) {
							tcp_rem = 0;
							st.sends++;
						} else if (cqe->res == 0) {
							fprintf(stderr, "sender: TCP send returned 0, stopping\n");
							tcp_rem = 0;
							stopping = 1;
						} else {
							/* Short send: the rest goes next. */
							tcp_ptr += cqe->res;
							tcp_rem -= (unsigned long long)cqe->res;
						}
					}
					if (o.tcp)
						tcp_active = 0;
				}
				/* Reusable once the result is in and, if one was
				 * announced, the notification too. */
				if (sl->result_seen && (!sl->notif_due || sl->notif_seen)) {
					sl->state = SLOT_FREE;
					free_list[n_free++] = (unsigned)ud;
					busy--;
				}
			}
			/* Release: our reads of those CQEs are done before the
			 * kernel sees the slots as free and overwrites them. */
			__atomic_store_n(r.cq_khead, head, __ATOMIC_RELEASE);
		}
	}

	if (*r.cq_overflow)
		fprintf(stderr, "sender: warning: CQ overflow counter %u\n",
			*r.cq_overflow);

	{
		double secs = (double)(t1 - t0) / 1e9;
		double cpu_user = tv_sec(ru1.ru_utime) - tv_sec(ru0.ru_utime);
		double cpu_sys = tv_sec(ru1.ru_stime) - tv_sec(ru0.ru_stime);
		char err[40];

		if (st.first_error)
			snprintf(err, sizeof(err), "\"%s\"", errno_name(st.first_error));
		else
			snprintf(err, sizeof(err), "null");
		printf("{\"mode\":\"%s\",\"size\":%llu,\"sends\":%llu,\"bytes\":%llu,"
		       "\"seconds\":%.6f,\"gbps\":%.4f,\"sendsPerSec\":%.0f,"
		       "\"copied\":%llu,\"notifs\":%llu,\"errors\":%llu,"
		       "\"cpuUser\":%.4f,\"cpuSys\":%.4f,\"firstError\":%s}\n",
		       mode_names[o.mode], o.size, st.sends, st.bytes, secs,
		       secs > 0 ? (double)st.bytes / secs / 1e9 : 0.0,
		       secs > 0 ? (double)st.sends / secs : 0.0,
		       st.copied, st.notifs, st.errors, cpu_user, cpu_sys, err);
	}
	close(sock);
	close(r.fd); /* unregisters the buffers */
	munmap(buf, buf_len);
	return 0;
}
