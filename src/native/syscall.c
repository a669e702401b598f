/* The socket syscalls of the backends that do not use io_uring (src/syscall.ts): non-blocking
 * sendto/sendmsg, with or without MSG_ZEROCOPY, the socket error queue where MSG_ZEROCOPY
 * reports completions, and a private epoll set that tells when a socket is writable again or has
 * completions queued. Every function takes integers (addresses of memory the TypeScript layer
 * holds for the call) and returns a result or -errno; none blocks. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <time.h> /* struct timespec, which <linux/errqueue.h> uses */
#include <linux/errqueue.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "uzc.h"

#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY 5
#endif
#ifndef SO_EE_CODE_ZEROCOPY_COPIED
#define SO_EE_CODE_ZEROCOPY_COPIED 1
#endif

/* Reads `n` integer arguments; returns 0 when they all are. */
static int int_args(napi_env env, napi_callback_info info, size_t n, int64_t *out, napi_value *argv) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n) return -1;
  for (size_t i = 0; i < n; i++)
    if (uzc_arg_int(env, argv[i], &out[i])) return -1;
  return 0;
}

/* Reads a typed-array argument of `type` with at least `min` elements; 0 when it is one. */
static int words_arg(napi_env env, napi_value v, napi_typedarray_type type, size_t min, void **data, size_t *len) {
  napi_typedarray_type t;
  if (napi_get_typedarray_info(env, v, &t, len, data, NULL, NULL) != napi_ok) return -1;
  return t == type && *len >= min ? 0 : -1;
}

/* Reads (fd, out: typed array of `type`, at least `min` elements); 0 when they are. */
static int fd_words_args(napi_env env, napi_callback_info info, napi_typedarray_type type, size_t min, int64_t *fd,
                         void **data, size_t *len) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2) return -1;
  if (uzc_arg_int(env, argv[0], fd)) return -1;
  return words_arg(env, argv[1], type, min, data, len);
}

static void *ptr(int64_t addr) {
  return (void *)(uintptr_t)addr;
}

/* setSockOpt(fd, level, name, value) -> 0 or -errno, for int options (SO_ZEROCOPY). */
napi_value uzc_set_sock_opt(napi_env env, napi_callback_info info) {
  int64_t a[4];
  napi_value argv[4];
  UZC_CHECK(env, !int_args(env, info, 4, a, argv), "setSockOpt(fd, level, name, value) expects integers");
  int v = (int)a[3];
  return uzc_int(env, setsockopt((int)a[0], (int)a[1], (int)a[2], &v, sizeof v) < 0 ? -errno : 0);
}

/* Reads one MSG_ZEROCOPY completion from `fd`'s error queue into *lo, *hi, *copied: 1 when read,
 * 0 for an entry of another origin (skipped), -errno (EAGAIN: the queue is empty). */
static int read_zc(int fd, uint32_t *lo, uint32_t *hi, uint32_t *copied) {
  /* Room for one cmsg carrying a sock_extended_err (and the address that may follow it). */
  union {
    char buf[CMSG_SPACE(sizeof(struct sock_extended_err) + sizeof(struct sockaddr_in6))];
    struct cmsghdr align;
  } control;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  ssize_t r;
  do {
    r = recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    int ip = (c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
             (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR);
    if (!ip) continue;
    struct sock_extended_err ee;
    memcpy(&ee, CMSG_DATA(c), sizeof ee); /* CMSG_DATA need not be aligned for the struct */
    if (ee.ee_origin != SO_EE_ORIGIN_ZEROCOPY || ee.ee_errno != 0) continue;
    *lo = ee.ee_info;
    *hi = ee.ee_data;
    *copied = (ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED) ? 1 : 0;
    return 1;
  }
  return 0;
}

int uzc_zc_drain(int fd) {
  int done = 0;
  uint32_t lo, hi, copied;
  for (int i = 0; i < 4096; i++) {
    int r = read_zc(fd, &lo, &hi, &copied);
    if (r < 0) break;
    if (r > 0) done += (int)(hi - lo + 1); /* unsigned: right across the counter's wrap */
  }
  return done;
}

/* zcCompletions(fd, out: Uint32Array) -> n or -errno: drains the error queue of MSG_ZEROCOPY
 * completions into `out` as [lo, hi, copied] triples, n triples, until the queue is empty or
 * `out` is full. Each entry says that the sends numbered lo..hi (the socket's own 32-bit counter,
 * one number per send call that queued data; hi may have wrapped below lo) no longer reference
 * their memory, and copied = 1 when the kernel copied them after all
 * (SO_EE_CODE_ZEROCOPY_COPIED). Entries of another origin (ICMP errors, were IP_RECVERR set) are
 * skipped. -EAGAIN: nothing queued. With `expect` (> 0), it stops once the entries read cover that
 * many numbers. */
napi_value uzc_zc_completions(napi_env env, napi_callback_info info) {
  int64_t fd, expect = 0;
  size_t len;
  void *data;
  size_t argc = 3;
  napi_value argv[3];
  UZC_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && (argc == 2 || argc == 3) &&
                     !uzc_arg_int(env, argv[0], &fd) && !words_arg(env, argv[1], napi_uint32_array, 3, &data, &len) &&
                     (argc == 2 || !uzc_arg_int(env, argv[2], &expect)),
            "zcCompletions(fd, out: Uint32Array of 3+ words, expect?: number)");
  uint32_t *out = data;
  size_t max = len / 3, n = 0;
  /* The numbers read so far: once they cover the `expect` sends outstanding, the queue holds no
   * completion of ours and the call that would say EAGAIN is spared (one syscall per wake-up).
   * Were some of them not ours (numbers of an earlier adopter merged into a range), what stays
   * queued keeps the socket reporting, and is read at the next wake-up. */
  uint64_t covered = 0;
  while (n < max && (expect <= 0 || covered < (uint64_t)expect)) {
    int r = read_zc((int)fd, &out[3 * n], &out[3 * n + 1], &out[3 * n + 2]);
    if (r < 0) {
      if (n > 0) break;
      return uzc_int(env, r);
    }
    if (r > 0) {
      uint32_t count = out[3 * n + 1] - out[3 * n] + 1; /* unsigned: right across the wrap */
      uzc_zc_outstanding(env, -(int)count);
      covered += count;
      n++;
    }
  }
  return uzc_int(env, (double)n);
}

/* epollCreate() -> a close-on-exec epoll fd or -errno: the syscall backends' private set of
 * sockets. libuv's own poll of a socket stops for good at the first EPOLLERR, and a socket with
 * MSG_ZEROCOPY completions queued polls as EPOLLERR (only): the loop polls this set's fd
 * instead, which itself only ever becomes readable. */
napi_value uzc_epoll_create(napi_env env, napi_callback_info info) {
  int r = epoll_create1(EPOLL_CLOEXEC);
  return uzc_int(env, r < 0 ? -errno : r);
}

/* epollCtl(epfd, op, fd, events) -> 0 or -errno; `fd` is also the event's data. */
napi_value uzc_epoll_ctl(napi_env env, napi_callback_info info) {
  int64_t a[4];
  napi_value argv[4];
  UZC_CHECK(env, !int_args(env, info, 4, a, argv), "epollCtl(epfd, op, fd, events) expects integers");
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = (uint32_t)a[3];
  ev.data.fd = (int)a[2];
  return uzc_int(env, epoll_ctl((int)a[0], (int)a[1], (int)a[2], &ev) < 0 ? -errno : 0);
}

/* epollWait(epfd, out: Int32Array) -> n or -errno, never waiting: [fd, events] pairs. */
napi_value uzc_epoll_wait(napi_env env, napi_callback_info info) {
  int64_t epfd;
  size_t len;
  void *data;
  UZC_CHECK(env, !fd_words_args(env, info, napi_int32_array, 2, &epfd, &data, &len),
            "epollWait(epfd, out: Int32Array of 2+ words)");
  struct epoll_event evs[64];
  int max = (int)(len / 2) < 64 ? (int)(len / 2) : 64;
  int n;
  do {
    n = epoll_wait((int)epfd, evs, max, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return uzc_int(env, -errno);
  int32_t *out = data;
  for (int i = 0; i < n; i++) {
    out[2 * i] = evs[i].data.fd;
    out[2 * i + 1] = (int32_t)evs[i].events;
  }
  return uzc_int(env, n);
}

/* probeSocket() -> fd or -errno: a UDP socket bound to 127.0.0.1 (an ephemeral port) and
 * connected to itself, for the capability probe to try a real send on (to itself, on loopback:
 * gVisor accepts io_uring_setup but fails every send opcode, which only a real send shows). */
napi_value uzc_probe_socket(napi_env env, napi_callback_info info) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return uzc_int(env, -errno);
  struct sockaddr_in sa;
  socklen_t sl = sizeof sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || getsockname(fd, (struct sockaddr *)&sa, &sl) < 0 ||
      connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int err = errno;
    close(fd);
    return uzc_int(env, -err);
  }
  return uzc_int(env, fd);
}

/* resetIfLingering(fd) -> 1 when the socket was reset, 0 when not, -errno: a TCP socket whose
 * owner asked for a reset (SO_LINGER on with a zero timeout, as net.Socket#resetAndDestroy()
 * sets it) is reset now with connect(AF_UNSPEC) (tcp_disconnect: the write queue is dropped and
 * an RST sent), instead of when its last descriptor closes: the syscall backend keeps its
 * descriptor until the MSG_ZEROCOPY completions of the dropped data have been read. */
napi_value uzc_reset_if_lingering(napi_env env, napi_callback_info info) {
  int64_t a[1];
  napi_value argv[1];
  UZC_CHECK(env, !int_args(env, info, 1, a, argv), "resetIfLingering(fd) expects an fd");
  struct linger l;
  socklen_t len = sizeof l;
  if (getsockopt((int)a[0], SOL_SOCKET, SO_LINGER, &l, &len) < 0) return uzc_int(env, -errno);
  if (!l.l_onoff || l.l_linger != 0) return uzc_int(env, 0);
  struct sockaddr sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_family = AF_UNSPEC;
  return uzc_int(env, connect((int)a[0], &sa, sizeof sa) < 0 ? -errno : 1);
}

#ifndef IORING_SEND_VECTORIZED
#define IORING_SEND_VECTORIZED (1U << 5) /* 6.17: SEND_ZC's addr is an iovec array, len its length */
#endif

/* The flags a send SQE (`w`, 16 words) goes with: its own msg_flags without MSG_WAITALL (a partial
 * send is a short result, which the socket layer continues), never blocking, no SIGPIPE, and
 * MSG_ZEROCOPY when `zc`. */
static int sqe_flags(const uint32_t *w, bool zc) {
  return (int)(w[7] & ~(uint32_t)MSG_WAITALL) | MSG_DONTWAIT | MSG_NOSIGNAL | (zc ? MSG_ZEROCOPY : 0);
}

/* Whether the SQE is one of the sends this backend performs. */
static bool sqe_is_send(const uint32_t *w) {
  unsigned opcode = w[0] & 0xff;
  return opcode == IORING_OP_SEND || opcode == IORING_OP_SEND_ZC || opcode == IORING_OP_SENDMSG ||
         opcode == IORING_OP_SENDMSG_ZC;
}

/* The message a send SQE describes, as sendmsg(2) takes it; `iov` is room for the one iovec of a
 * plain SEND. The addresses are the ones io_uring would have read: memory the TypeScript layer
 * holds until the request's last completion. */
static void sqe_msg(const uint32_t *w, struct msghdr *m, struct iovec *iov) {
  unsigned opcode = w[0] & 0xff, ioprio = w[0] >> 16;
  uint64_t dest = w[2] | (uint64_t)w[3] << 32;
  uint64_t addr = w[4] | (uint64_t)w[5] << 32;
  if (opcode == IORING_OP_SENDMSG || opcode == IORING_OP_SENDMSG_ZC) {
    memcpy(m, ptr((int64_t)addr), sizeof *m);
    return;
  }
  memset(m, 0, sizeof *m);
  m->msg_name = dest ? ptr((int64_t)dest) : NULL;
  m->msg_namelen = dest ? (socklen_t)(w[11] & 0xffff) : 0;
  if (ioprio & IORING_SEND_VECTORIZED) {
    m->msg_iov = ptr((int64_t)addr);
    m->msg_iovlen = w[6];
  } else {
    iov->iov_base = ptr((int64_t)addr);
    iov->iov_len = w[6];
    m->msg_iov = iov;
    m->msg_iovlen = 1;
  }
}

/* Performs one send SQE as one non-blocking sendto/sendmsg; bytes or -errno. */
static ssize_t sqe_send_one(const uint32_t *w, bool zc) {
  unsigned opcode = w[0] & 0xff, ioprio = w[0] >> 16;
  int fd = (int)w[1];
  int flags = sqe_flags(w, zc);
  ssize_t r;
  if (!sqe_is_send(w)) return -EINVAL;
  do {
    if ((opcode == IORING_OP_SEND || opcode == IORING_OP_SEND_ZC) && !(ioprio & IORING_SEND_VECTORIZED)) {
      uint64_t dest = w[2] | (uint64_t)w[3] << 32;
      uint64_t addr = w[4] | (uint64_t)w[5] << 32;
      r = sendto(fd, ptr((int64_t)addr), w[6], flags, dest ? ptr((int64_t)dest) : NULL,
                 dest ? (socklen_t)(w[11] & 0xffff) : 0);
    } else if (opcode == IORING_OP_SENDMSG || opcode == IORING_OP_SENDMSG_ZC) {
      uint64_t addr = w[4] | (uint64_t)w[5] << 32;
      r = sendmsg(fd, ptr((int64_t)addr), flags);
    } else {
      struct msghdr m;
      struct iovec iov;
      sqe_msg(w, &m, &iov);
      r = sendmsg(fd, &m, flags);
    }
  } while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : r;
}

/* sqeSend(sqe: Uint32Array, zc) -> bytes or -errno: performs the send one SQE describes (as the
 * socket layer's requests write it: SEND, SEND_ZC, SENDMSG, SENDMSG_ZC, IORING_SEND_VECTORIZED),
 * as one non-blocking sendto/sendmsg, with MSG_ZEROCOPY when `zc`. MSG_WAITALL is dropped: a
 * partial send is a short result, which the socket layer continues. */
napi_value uzc_sqe_send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  UZC_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  size_t len;
  void *data;
  bool zc;
  UZC_CHECK(env, argc == 2 && !words_arg(env, argv[0], napi_uint32_array, 16, &data, &len) &&
                     napi_get_value_bool(env, argv[1], &zc) == napi_ok,
            "sqeSend(sqe: Uint32Array(16), zc: boolean)");
  ssize_t r = sqe_send_one(data, zc);
  if (r > 0 && zc) uzc_zc_outstanding(env, 1);
  return uzc_int(env, (double)r);
}

/* Most SQEs of one sqeSendBatch() call (the TypeScript layer's batch has as many). */
#define BATCH_MAX 64

/* sendmmsg(2) was refused where sendmsg is not (see sqeSendBatch): every send goes alone. Set
 * once, read by every thread; a thread that has not seen it yet only asks once more. */
static volatile int mmsg_refused;

/* Whether `fd` is a datagram socket: only those get several messages per sendmmsg(2) (a stream
 * send cut short must be continued before the next one goes, which sendmmsg would not do). */
static bool is_dgram(int fd) {
  int type = 0;
  socklen_t l = sizeof type;
  return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) == 0 && type == SOCK_DGRAM;
}

/* The MSG_ZEROCOPY decision of the TypeScript layer (src/syscall.ts sendsZeroCopy()). */
static bool sqe_zc(const uint32_t *w, bool msg_zc) {
  unsigned opcode = w[0] & 0xff;
  return msg_zc && (opcode == IORING_OP_SEND_ZC || opcode == IORING_OP_SENDMSG_ZC) && w[6] > 0;
}

/* sqeSendBatch(sqes: Uint32Array, n, msgZc: boolean, res: Int32Array) -> done: performs send SQEs
 * 0..n-1 (16 words each) in order, as sqeSend() would one by one, the result of each in res[i]
 * (bytes or -errno); MSG_ZEROCOPY for the zero-copy opcodes when `msgZc` (the msg_zerocopy
 * backend). Consecutive SQEs on one datagram socket with the same flags go as one sendmmsg(2):
 * one syscall, and one call from JavaScript for the whole batch, instead of one per send; each
 * message is still its own send in the kernel (with MSG_ZEROCOPY, its own number of the socket's
 * zero-copy counter). It stops after the first send that fails: `done` counts the SQEs performed,
 * that one included (res[done - 1] < 0), and the caller runs the rest again (an EAGAIN must hold
 * back the later sends of its socket; sendmmsg(2) reports only how many messages went, so the
 * one it stopped at is tried again alone, which gives its errno). */
napi_value uzc_sqe_send_batch(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  UZC_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  size_t len, rlen;
  void *data, *rdata;
  int64_t n;
  bool msg_zc;
  UZC_CHECK(env, argc == 4 && !words_arg(env, argv[0], napi_uint32_array, 16, &data, &len) &&
                     !uzc_arg_int(env, argv[1], &n) && napi_get_value_bool(env, argv[2], &msg_zc) == napi_ok &&
                     !words_arg(env, argv[3], napi_int32_array, 1, &rdata, &rlen) && n >= 0 && n <= BATCH_MAX &&
                     (size_t)n * 16 <= len && (size_t)n <= rlen,
            "sqeSendBatch(sqes: Uint32Array(16n), n <= 64, msgZc: boolean, res: Int32Array(n))");
  const uint32_t *sqes = data;
  int32_t *res = rdata;
  struct mmsghdr mm[BATCH_MAX];
  struct iovec iov[BATCH_MAX];
  int zc_sent = 0, done = 0, i = 0;
  while (i < (int)n) {
    const uint32_t *w = sqes + 16 * i;
    bool zc = sqe_zc(w, msg_zc);
    int flags = sqe_flags(w, zc);
    /* The run of SQEs from i on that one sendmmsg can take: same socket, same flags. */
    int run = 1;
    if (sqe_is_send(w)) {
      while (i + run < (int)n) {
        const uint32_t *v = sqes + 16 * (i + run);
        if (v[1] != w[1] || !sqe_is_send(v) || sqe_zc(v, msg_zc) != zc || sqe_flags(v, zc) != flags) break;
        run++;
      }
    }
    if (run > 1 && (mmsg_refused || !is_dgram((int)w[1]))) run = 1;
    int m = 0;
    ssize_t r = 0; /* this SQE's result where it goes alone */
    bool tried = false;
    if (run > 1) {
      for (int j = 0; j < run; j++) {
        sqe_msg(sqes + 16 * (i + j), &mm[j].msg_hdr, &iov[j]);
        mm[j].msg_len = 0;
      }
      do {
        m = sendmmsg((int)w[1], mm, (unsigned)run, flags);
      } while (m < 0 && errno == EINTR);
      if (m < 0) {
        r = -errno; /* the first message failed: its errno */
        tried = true;
      }
      if (r == -ENOSYS || r == -EPERM) {
        /* Or sendmmsg itself is refused (a seccomp profile that allows sendto/sendmsg only):
         * the message alone says which. Refused, it is not tried again in this process. */
        ssize_t alone = sqe_send_one(w, zc);
        if (alone != r) mmsg_refused = 1;
        r = alone;
      }
    }
    if (m <= 0) {
      /* A run of one (or a sendmmsg that reported 0, which it does not for vlen > 0): alone. */
      if (!tried) r = sqe_send_one(w, zc);
      res[i] = (int32_t)r;
      done = ++i;
      if (r < 0) break;
      if (r > 0 && zc) zc_sent++;
      continue;
    }
    for (int j = 0; j < m; j++) {
      res[i + j] = (int32_t)mm[j].msg_len;
      if (mm[j].msg_len > 0 && zc) zc_sent++;
    }
    i += m;
    done = i;
    /* Fewer went than asked: the next one starts a run of its own, which reports its errno. */
  }
  if (zc_sent > 0) uzc_zc_outstanding(env, zc_sent);
  return uzc_int(env, done);
}
