/*
 * uring-zc reference sender: the performance ceiling the Node library is
 * measured against.
 *
 * Plain C11 + libc, raw io_uring syscalls, rings mmap'ed and driven by the
 * code below (no liburing). One thread, one ring, one socket.
 *
 *   sender --mode copy|zc|zc-pool|msg-zc|sync-copy --size BYTES
 *          --dst IPv4|IPv6 --port N
 *          [--tcp] [--qd 64] [--duration-ms 3000] [--max-sends N]
 *          [--working-set BYTES] [--setup-flags N] [--warmup-ms 0]
 *   sender --self-test      (checks the MSG_ZEROCOPY id bookkeeping, wrap included)
 *
 * Modes:
 *   copy      IORING_OP_SEND
 *   zc        IORING_OP_SEND_ZC, ioprio = IORING_SEND_ZC_REPORT_USAGE
 *   zc-pool   IORING_OP_SEND_ZC from buffers registered with
 *             IORING_REGISTER_BUFFERS (IORING_RECVSEND_FIXED_BUF + buf_index),
 *             plus REPORT_USAGE
 *   msg-zc    no io_uring: SO_ZEROCOPY and non-blocking sendto(MSG_ZEROCOPY),
 *             completions read from the socket's error queue (see "MSG_ZEROCOPY
 *             and plain sendto(2)" below for the protocol); up to --qd sends
 *             whose notification is still due
 *   sync-copy no io_uring: plain non-blocking sendto(2), poll(POLLOUT) on
 *             EAGAIN; nothing is in flight once a call returns (--qd unused)
 *             (--setup-flags applies to the io_uring modes only)
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
#include <linux/errqueue.h>
#include <poll.h>
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

enum mode { MODE_COPY, MODE_ZC, MODE_ZC_POOL, MODE_MSG_ZC, MODE_SYNC_COPY };
static const char *const mode_names[] = { "copy", "zc", "zc-pool", "msg-zc", "sync-copy" };

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
		"usage: sender --mode copy|zc|zc-pool|msg-zc|sync-copy --size BYTES\n"
		"              --dst IPv4|IPv6 --port N\n"
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
	else if (!strcmp(mode, "msg-zc"))
		o->mode = MODE_MSG_ZC;
	else if (!strcmp(mode, "sync-copy"))
		o->mode = MODE_SYNC_COPY;
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

/* The one JSON line every mode prints (see the top of this file). */
static void print_result(const struct opts *o, const struct stats *st,
			 uint64_t t0, uint64_t t1, const struct rusage *ru0,
			 const struct rusage *ru1)
{
	double secs = (double)(t1 - t0) / 1e9;
	double cpu_user = tv_sec(ru1->ru_utime) - tv_sec(ru0->ru_utime);
	double cpu_sys = tv_sec(ru1->ru_stime) - tv_sec(ru0->ru_stime);
	char err[40];

	if (st->first_error)
		snprintf(err, sizeof(err), "\"%s\"", errno_name(st->first_error));
	else
		snprintf(err, sizeof(err), "null");
	printf("{\"mode\":\"%s\",\"size\":%llu,\"sends\":%llu,\"bytes\":%llu,"
	       "\"seconds\":%.6f,\"gbps\":%.4f,\"sendsPerSec\":%.0f,"
	       "\"copied\":%llu,\"notifs\":%llu,\"errors\":%llu,"
	       "\"cpuUser\":%.4f,\"cpuSys\":%.4f,\"firstError\":%s}\n",
	       mode_names[o->mode], o->size, st->sends, st->bytes, secs,
	       secs > 0 ? (double)st->bytes / secs / 1e9 : 0.0,
	       secs > 0 ? (double)st->sends / secs : 0.0,
	       st->copied, st->notifs, st->errors, cpu_user, cpu_sys, err);
}

/* ---- MSG_ZEROCOPY and plain sendto(2) ------------------------------------- */
/*
 * The socket-error-queue protocol of MSG_ZEROCOPY (sendmsg(2), recvmsg(2),
 * Documentation/networking/msg_zerocopy.rst), as this code relies on it:
 *
 * - SO_ZEROCOPY must be set first: without it the kernel ignores the flag
 *   (old programs may pass it by accident) and no notification ever comes.
 * - Every send call with MSG_ZEROCOPY that succeeds takes the next value of a
 *   32-bit counter of the socket, starting at 0 and wrapping after 2^32 - 1.
 *   A call that fails (-1, EAGAIN, ENOBUFS) gives its value back, so the
 *   values of successful calls are consecutive: the sender knows every call's
 *   id without being told. A TCP call that sent only part of the bytes
 *   succeeded: it has an id, and the rest goes in a later call with its own.
 * - When the kernel no longer needs the pages of some calls, it queues one
 *   notification on the socket's error queue: a struct sock_extended_err
 *   with ee_origin SO_EE_ORIGIN_ZEROCOPY, ee_errno 0, and the inclusive range
 *   [ee_info, ee_data] of ids it completes. Adjacent ranges are merged while
 *   they wait (one read may complete many calls), ranges may come out of
 *   order, and a range may wrap (ee_data < ee_info). recvmsg(MSG_ERRQUEUE)
 *   returns one notification per call, never blocks for it, and a non-empty
 *   error queue makes poll() report POLLERR whatever was asked for.
 * - ee_code SO_EE_CODE_ZEROCOPY_COPIED: the kernel copied the bytes after all
 *   (loopback, a device without scatter-gather). A merged range carries the
 *   code of its first part, so the count is per range, as the kernel gives it.
 * - Until its notification a call's pages may still be read by the stack: a
 *   buffer may be changed (or its send slot given to the next send) only
 *   when every id of the send that used it has completed.
 * - Notifications waiting in the error queue, and the state of calls not yet
 *   completed, are charged to the socket's option memory (net.core.optmem_max:
 *   20 KiB before Linux 6.8, 128 KiB since). When it is used up a MSG_ZEROCOPY
 *   call fails with ENOBUFS. Reading the error queue frees the first kind; if
 *   no call is outstanding either, no notification will ever come to free
 *   anything, so waiting would hang: the send goes by copying instead.
 *
 * Bookkeeping: ids [low_id, next_id) are outstanding; id_state[] (indexed by
 * id modulo ZC_ID_WINDOW) marks which of them completed, so that ranges may
 * come in any order; low_id advances over completed ids. Sends wait in a FIFO
 * in send order, each owning the consecutive ids [start_id, end_id) of its
 * calls; the oldest is retired (its slot reused) once low_id has passed its
 * end. A send that was wholly copied owns no ids and retires as soon as the
 * ones before it have. All id arithmetic is unsigned 32-bit, differences
 * taken from low_id, so the counter's wrap needs no special case.
 */
#define ZC_ID_WINDOW (1U << 16) /* outstanding ids at most (a power of 2) */
#define ZC_ID_DONE 1
#define ZC_ID_COPIED 2
#define ERRQ_BATCH 256          /* notifications read per reap, at most */
#define POLL_SLICE_MS 20        /* upper bound of one poll() */

struct zc_send {
	uint32_t start_id, end_id; /* the ids of its calls: [start_id, end_id) */
	unsigned char open;        /* bytes still to send (a TCP remainder) */
	unsigned char copied;      /* COPIED notification, or a part sent copying */
	unsigned char counted;     /* finished after the warm-up: counts in notifs/copied */
};

struct zc_state {
	uint32_t next_id; /* the id the socket gives its next successful MSG_ZEROCOPY call */
	uint32_t low_id;  /* the oldest id whose notification has not come */
	uint32_t marked;  /* ids at or after low_id already completed */
	unsigned char *id_state;
	struct zc_send *fifo;
	unsigned cap, head, len;
};

static void zc_init(struct zc_state *z, unsigned cap, uint32_t first_id)
{
	z->next_id = z->low_id = first_id;
	z->marked = 0;
	z->id_state = calloc(ZC_ID_WINDOW, 1);
	z->fifo = calloc(cap, sizeof(*z->fifo));
	if (!z->id_state || !z->fifo)
		die("calloc", ENOMEM);
	z->cap = cap;
	z->head = z->len = 0;
}

static struct zc_send *zc_tail(struct zc_state *z)
{
	return &z->fifo[(z->head + z->len - 1) % z->cap];
}

/* A new send, owning no ids yet; the caller checked len < cap. */
static struct zc_send *zc_push(struct zc_state *z)
{
	struct zc_send *e;

	z->len++;
	e = zc_tail(z);
	*e = (struct zc_send){ .start_id = z->next_id, .end_id = z->next_id, .open = 1 };
	return e;
}

/* Frees the slots of the oldest sends whose every id has completed. */
static void zc_retire(struct zc_state *z, struct stats *st)
{
	while (z->len) {
		struct zc_send *e = &z->fifo[z->head];

		/* low_id - end_id as a signed difference: wrap-safe while
		 * fewer than 2^31 ids are outstanding (at most ZC_ID_WINDOW). */
		if (e->open || (int32_t)(z->low_id - e->end_id) < 0)
			break;
		if (e->counted) {
			if (e->end_id != e->start_id)
				st->notifs++;
			if (e->copied)
				st->copied++;
		}
		z->head = (z->head + 1) % z->cap;
		z->len--;
	}
}

/* Moves low_id over the completed ids, giving each one's COPIED bit to the
 * send that owns it, and retires the sends that are done. */
static void zc_advance(struct zc_state *z, struct stats *st)
{
	for (unsigned k = 0; k <= ZC_ID_WINDOW; k++) {
		unsigned char *p;

		zc_retire(z, st);
		if (z->low_id == z->next_id)
			break;
		p = &z->id_state[z->low_id & (ZC_ID_WINDOW - 1)];
		if (!*p)
			break;
		/* Every id before low_id has completed and every send before
		 * its owner has retired (or is a wholly copied one, retired
		 * above): the oldest send held owns low_id. */
		if (!z->len) {
			fprintf(stderr, "sender: internal error: id %u has no send\n", z->low_id);
			exit(2);
		}
		if (*p & ZC_ID_COPIED)
			z->fifo[z->head].copied = 1;
		*p = 0;
		z->low_id++;
		z->marked--;
	}
}

/* Marks the inclusive range [lo, hi] completed. -1 if it is not a range of
 * outstanding ids not yet completed (then our id accounting is wrong). */
static int zc_mark(struct zc_state *z, uint32_t lo, uint32_t hi, int copied)
{
	uint32_t outstanding = z->next_id - z->low_id;
	uint32_t off = lo - z->low_id;
	uint32_t n = hi - lo + 1; /* wraps correctly: [0xfffffffe, 1] is 4 ids */

	if (off >= outstanding || n == 0 || n > outstanding - off)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		unsigned char *p = &z->id_state[(lo + i) & (ZC_ID_WINDOW - 1)];

		if (*p)
			return -1; /* completed twice */
		*p = ZC_ID_DONE | (copied ? ZC_ID_COPIED : 0);
	}
	z->marked += n;
	return 0;
}

static void count_error(struct stats *st, int e)
{
	st->errors++;
	if (!st->first_error)
		st->first_error = e;
}

/*
 * Reads the error queue until it is empty (at most ERRQ_BATCH entries) and
 * retires what completed. Returns the number of notifications read. Never
 * blocks: MSG_DONTWAIT, and the queue is only ever filled by the kernel.
 */
static unsigned read_errqueue(int sock, struct zc_state *z, struct stats *st)
{
	unsigned got = 0;

	for (unsigned i = 0; i < ERRQ_BATCH; i++) {
		/* sock_extended_err plus the offender address the kernel
		 * appends (unused for zero copy), IPv6-sized. */
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(struct sock_extended_err) +
					    sizeof(struct sockaddr_in6))];
		} ctrl;
		struct msghdr msg;
		struct cmsghdr *cm;

		memset(&msg, 0, sizeof(msg));
		msg.msg_control = ctrl.buf;
		msg.msg_controllen = sizeof(ctrl.buf);
		if (recvmsg(sock, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				count_error(st, errno);
			break;
		}
		if (msg.msg_flags & MSG_CTRUNC) {
			fprintf(stderr, "sender: error queue entry truncated\n");
			exit(2);
		}
		for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			struct sock_extended_err ee;

			if (!((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) ||
			      (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR)))
				continue;
			memcpy(&ee, CMSG_DATA(cm), sizeof(ee));
			if (ee.ee_origin != SO_EE_ORIGIN_ZEROCOPY || ee.ee_errno != 0) {
				/* Not a completion (no IP_RECVERR is set, so
				 * none is expected): count it, go on. */
				count_error(st, ee.ee_errno ? (int)ee.ee_errno : EIO);
				continue;
			}
			if (zc_mark(z, ee.ee_info, ee.ee_data,
				    (ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED) != 0) < 0) {
				fprintf(stderr, "sender: notification [%u, %u] is not a range of outstanding ids [%u, %u)\n",
					ee.ee_info, ee.ee_data, z->low_id, z->next_id);
				exit(2);
			}
			got++;
		}
		/* Every outstanding id has completed: the queue holds no
		 * more completions, spare the call that would say EAGAIN. */
		if (z->next_id - z->low_id == z->marked)
			break;
	}
	if (got)
		zc_advance(z, st);
	return got;
}

/* --self-test: the bookkeeping above, fed by hand across the counter's wrap:
 * out-of-order and merged ranges, a send of several calls, a wholly copied
 * send, and ranges that must be refused. Exit status 0 when all hold. */
static int zc_self_test(void)
{
	struct zc_state z;
	struct stats st;
	struct zc_send *e;
	int bad = 0;

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "self-test: %s:%d: %s\n", __FILE__, __LINE__, #c); bad = 1; } } while (0)
	memset(&st, 0, sizeof(st));
	zc_init(&z, 8, 0xfffffffcU);
	/* Sends A..D, one call each: ids 0xfffffffc..0xffffffff. E: three
	 * calls (a TCP send continued twice): ids 0, 1, 2. F: copied, no id. */
	for (int i = 0; i < 4; i++) {
		e = zc_push(&z);
		z.next_id++;
		e->end_id = z.next_id;
		e->open = 0;
		e->counted = 1;
	}
	e = zc_push(&z);
	for (int i = 0; i < 3; i++) {
		z.next_id++;
		e->end_id = z.next_id;
	}
	e->open = 0;
	e->counted = 1;
	e = zc_push(&z);
	e->open = 0;
	e->counted = 1;
	e->copied = 1;
	CHECK(z.next_id == 3 && z.len == 6);
	/* Refused: not issued yet, and a range reaching past next_id. */
	CHECK(zc_mark(&z, 3, 3, 0) < 0);
	CHECK(zc_mark(&z, 0xffffffffU, 3, 0) < 0);
	/* Out of order, across the wrap: [0xfffffffe, 1] first (C, D and
	 * E's first two calls): nothing retires, A is still due. */
	CHECK(zc_mark(&z, 0xfffffffeU, 1, 1) == 0);
	zc_advance(&z, &st);
	CHECK(z.len == 6 && z.low_id == 0xfffffffcU);
	CHECK(zc_mark(&z, 0xffffffffU, 0xffffffffU, 0) < 0); /* completed twice */
	CHECK(zc_mark(&z, 0xfffffffcU, 0xfffffffdU, 0) == 0);
	zc_advance(&z, &st);
	/* A, B (not copied), C, D (copied) retired; E waits for id 2. */
	CHECK(z.low_id == 2 && z.len == 2);
	CHECK(st.notifs == 4 && st.copied == 2);
	CHECK(zc_mark(&z, 2, 2, 0) == 0);
	zc_advance(&z, &st);
	/* E (copied: its id 0 and 1 said so) and F (sent copying) retired. */
	CHECK(z.low_id == 3 && z.len == 0);
	CHECK(st.notifs == 5 && st.copied == 4);
#undef CHECK
	printf(bad ? "self-test failed\n" : "self-test ok\n");
	return bad;
}

/* What one send call did. */
enum part_result { PART_SENT, PART_BLOCKED_OUT, PART_BLOCKED_NOTIF, PART_FAILED };

/*
 * msg-zc and sync-copy: one socket, no io_uring. Same timing as the ring
 * modes: the clock runs from the first send (or the end of --warmup-ms) until
 * the call that finishes the last send begun before the deadline returns;
 * notifications still due then are drained (at most 5 s) and counted, not
 * timed. A send is counted in "sends" when its last byte was accepted.
 */
static int run_socket_mode(const struct opts *o)
{
	const int zc = o->mode == MODE_MSG_ZC;
	struct zc_state z;
	struct stats st;
	struct walker wk;
	struct rusage ru0, ru1;
	unsigned char *buf;
	size_t buf_len;
	unsigned long long started = 0, fallbacks = 0;
	int sock, stopping = 0, timing_done = 0, warming;
	uint64_t t0, t1 = 0, deadline, stop_at = 0, drain_deadline = 0, warm_end;
	/* The send in progress (a TCP send may take several calls). */
	int cur_active = 0, cur_copy = 0;
	unsigned char *cur_ptr = NULL;
	unsigned long long cur_rem = 0;
	struct zc_send *cur = NULL;
	const struct sockaddr *to = o->tcp ? NULL : (const struct sockaddr *)&o->dst;
	socklen_t to_len = o->tcp ? 0 : o->dst_len;

	memset(&st, 0, sizeof(st));
	sock = socket(o->dst.ss_family, o->tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
	if (sock < 0)
		die("socket", errno);
	if (zc) {
		int one = 1;

		if (setsockopt(sock, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)) < 0) {
			fprintf(stderr, "sender: setsockopt SO_ZEROCOPY: %s (needs Linux 4.14 for TCP, 5.0 for UDP)\n",
				strerror(errno));
			exit(2);
		}
	}
	if (o->tcp && connect(sock, (struct sockaddr *)&o->dst, o->dst_len) < 0)
		die("connect", errno);
	/* Blocking socket, every call MSG_DONTWAIT: waits happen in poll(),
	 * bounded, never inside a send. */

	buf = alloc_filled(o->working_set ? o->working_set : o->size, &buf_len);
	wk.base = buf;
	wk.ws = o->working_set;
	wk.size = o->size;
	wk.off = 0;
	zc_init(&z, o->qd, 0);

	getrusage(RUSAGE_SELF, &ru0);
	t0 = now_ns();
	warming = o->warmup_ms > 0;
	warm_end = t0 + o->warmup_ms * 1000000ULL;
	deadline = warm_end + o->duration_ms * 1000000ULL;

	for (;;) {
		uint64_t now = now_ns();
		enum part_result last = PART_SENT;
		unsigned progress = 0;

		if (warming && now >= warm_end) {
			/* As the ring modes: counters start over, sends whose
			 * notification is due go on and count when they finish. */
			warming = 0;
			st.sends = st.bytes = st.copied = st.notifs = 0;
			started = 0;
			t0 = now;
			getrusage(RUSAGE_SELF, &ru0);
		}
		if (!stopping && !warming && (now >= deadline || started >= o->max_sends))
			stopping = 1;
		if (stopping && !stop_at)
			stop_at = now;

		/* ---- send: up to qd calls, then look at the clock again */
		for (unsigned n = 0; n < o->qd; n++) {
			int flags = MSG_DONTWAIT | MSG_NOSIGNAL;
			ssize_t ret;
			int e;
			unsigned bi;

			if (!cur_active) {
				if (stopping || z.len >= o->qd ||
				    (!warming && started >= o->max_sends))
					break;
				cur_ptr = walk_next(&wk, &bi);
				cur_rem = o->size;
				cur_active = 1;
				cur_copy = 0;
				cur = zc_push(&z);
				started++;
			}
			if (zc && !cur_copy) {
				/* More ids outstanding than id_state can tell
				 * apart: wait for notifications first. */
				if (z.next_id - z.low_id >= ZC_ID_WINDOW) {
					last = PART_BLOCKED_NOTIF;
					break;
				}
				flags |= MSG_ZEROCOPY;
			}
			/* TCP: sendto without an address is send(2). */
			ret = sendto(sock, cur_ptr, cur_rem, flags, to, to_len);
			if (ret >= 0) {
				if (flags & MSG_ZEROCOPY) {
					/* Succeeded: it took the next id. */
					z.next_id++;
					cur->end_id = z.next_id;
				} else {
					cur->copied = 1;
				}
				st.bytes += (unsigned long long)ret;
				progress++;
				if (ret == 0) {
					fprintf(stderr, "sender: send returned 0, stopping\n");
					cur_rem = 0;
					stopping = 1;
				} else if (!o->tcp || (unsigned long long)ret >= cur_rem) {
					/* A datagram goes whole or not at all. */
					cur_rem = 0;
					st.sends++;
					cur->counted = !warming;
				} else {
					/* TCP short send: the rest goes next,
					 * before anything else on the stream. */
					cur_ptr += ret;
					cur_rem -= (unsigned long long)ret;
				}
				if (!cur_rem) {
					cur->open = 0;
					cur_active = 0;
					zc_retire(&z, &st); /* frees it now if it owns no ids */
				}
				continue;
			}
			e = errno;
			if (e == EINTR)
				continue;
			if (e == EAGAIN || e == EWOULDBLOCK) {
				/* Socket buffer full: wait for POLLOUT. */
				last = PART_BLOCKED_OUT;
				break;
			}
			if (e == ENOBUFS && (flags & MSG_ZEROCOPY)) {
				/* Option memory used up (the call gave its id
				 * back). Unread notifications hold some of it:
				 * read them, and try again. */
				if (read_errqueue(sock, &z, &st)) {
					progress++;
					continue;
				}
				/* Calls still outstanding: their
				 * notifications will come and free it. */
				if (z.next_id != z.low_id) {
					last = PART_BLOCKED_NOTIF;
					break;
				}
				/* Nothing outstanding: no notification can
				 * come, waiting would hang. Copy this one. */
				cur_copy = 1;
				fallbacks++;
				continue;
			}
			/* A failed call takes no id: the datagram is lost
			 * (counted), a stream is broken (stop). */
			count_error(&st, e);
			progress++;
			if (o->tcp)
				stopping = 1;
			cur_rem = 0;
			cur->open = 0;
			cur->counted = 0;
			cur_active = 0;
			zc_retire(&z, &st);
			last = PART_FAILED;
			if (o->tcp)
				break;
		}

		/* ---- completions: once per batch of sends, not per send */
		if (zc && z.next_id != z.low_id)
			progress += read_errqueue(sock, &z, &st);

		if (stopping && !timing_done && !cur_active) {
			t1 = now_ns();
			getrusage(RUSAGE_SELF, &ru1);
			timing_done = 1;
			drain_deadline = t1 + DRAIN_NS;
		}
		if (timing_done) {
			if (z.len == 0)
				break;
			if (now_ns() > drain_deadline) {
				fprintf(stderr, "sender: drain timed out with %u sends awaiting notification\n",
					z.len);
				break;
			}
		} else if (stop_at && now > stop_at + DRAIN_NS) {
			/* A stream send that cannot finish (stuck peer). */
			fprintf(stderr, "sender: a send never completed\n");
			t1 = now_ns();
			getrusage(RUSAGE_SELF, &ru1);
			timing_done = 1;
			break;
		}

		/* ---- wait, bounded, only when nothing could be done */
		if (!progress || last == PART_BLOCKED_OUT || last == PART_BLOCKED_NOTIF) {
			struct pollfd pfd;
			int pr;

			/* POLLERR (a notification queued) is reported
			 * whatever is asked; POLLOUT only when a send waits
			 * for buffer space. */
			pfd.fd = sock;
			pfd.events = last == PART_BLOCKED_OUT ? POLLOUT : 0;
			pfd.revents = 0;
			pr = poll(&pfd, 1, POLL_SLICE_MS);
			if (pr < 0 && errno != EINTR)
				die("poll", errno);
			if (pr > 0 && (pfd.revents & POLLERR) &&
			    !(zc && read_errqueue(sock, &z, &st))) {
				/* POLLERR with an empty error queue: a
				 * pending socket error (TCP reset). Read it
				 * (that clears it) and stop. */
				int soerr = 0;
				socklen_t sl = sizeof(soerr);

				if (getsockopt(sock, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr) {
					count_error(&st, soerr);
					if (o->tcp) {
						stopping = 1;
						if (cur_active) {
							cur->open = 0;
							cur->counted = 0;
							cur_active = 0;
							zc_retire(&z, &st);
						}
					}
				}
			}
			if (pr > 0 && (pfd.revents & (POLLHUP | POLLNVAL)) && o->tcp && !stopping) {
				count_error(&st, EPIPE);
				stopping = 1;
			}
		}
	}

	if (fallbacks)
		fprintf(stderr, "sender: %llu sends copied after ENOBUFS with nothing outstanding\n",
			fallbacks);
	print_result(o, &st, t0, t1, &ru0, &ru1);
	close(sock);
	munmap(buf, buf_len);
	return 0;
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

	if (argc == 2 && !strcmp(argv[1], "--self-test"))
		return zc_self_test();
	parse_args(argc, argv, &o);
	signal(SIGPIPE, SIG_IGN);
	if (o.mode == MODE_MSG_ZC || o.mode == MODE_SYNC_COPY)
		return run_socket_mode(&o);
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

	print_result(&o, &st, t0, t1, &ru0, &ru1);
	close(sock);
	close(r.fd); /* unregisters the buffers */
	munmap(buf, buf_len);
	return 0;
}
