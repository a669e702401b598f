/* Thread teardown with requests in flight.
 *
 * When a worker terminates or exits, V8 frees the thread's ArrayBuffers once the environment's
 * cleanup hooks are done. A zero-copy send reads its Buffer until its notification CQE: freed
 * before that, the pages are reused by malloc and their new contents go on the wire. So this file
 * keeps, per Node-API environment, a record of every ring (fd, mappings, and a small region of
 * ours where JS keeps its SQ tail and how far it consumed the CQ) and of every adopted socket,
 * and registers an async cleanup hook. Node keeps running the thread's loop (no JS) until every
 * async cleanup hook has been removed, so the hook can wait. For every ring still open it:
 *  1. publishes the SQEs JS wrote but did not submit, adds an IORING_OP_ASYNC_CANCEL of every
 *     request (ANY | ALL, user_data 0xffffffff) and submits;
 *  2. while requests are in flight, resets each adopted stream socket that still holds data
 *     (SIOCOUTQ > 0): connect() to AF_UNSPEC is tcp_disconnect(), which frees the write and
 *     retransmit queues, so the notifications of the sends they held come, and sends an RST
 *     (checked on 6.18: SO_MEMINFO wmem_queued 4 MB -> 0, state CLOSE, the peer reads its queue,
 *     then ECONNRESET);
 *  3. reaps CQEs in C, from a uv_poll on the ring fd and a 10 ms uv_timer (which also enters with
 *     GETEVENTS: task work, overflowed CQEs, DEFER_TASKRUN), until every request the kernel
 *     consumed has had its last CQE, the one without IORING_CQE_F_MORE;
 *  4. then unmaps the ring and closes its fd; once no ring is left, closes the adopted sockets
 *     and removes the hook (after libuv has closed our handles).
 * The bound (URING_ZC_TEARDOWN_TIMEOUT_MS, default 10000) is for reporting only: past it the hook
 * prints one line to stderr and goes on waiting. Memory the kernel may still read must not be
 * freed, and with Node-API alone the only way to keep V8 from freeing it is to keep the
 * environment from finishing.
 *
 * Counting: the kernel's SQ head counts every SQE it consumed since setup (our SQ array is the
 * identity, so none is dropped); each is one request and ends with exactly one CQE without
 * IORING_CQE_F_MORE (a zero-copy result with F_MORE is followed by its F_NOTIF CQE). So the
 * requests still able to post CQEs are sq_head - (CQEs without F_MORE consumed), JS's count plus
 * ours. JS stores its count and CQ position together for each CQE, before dispatching it, with no
 * call in between (ring.ts RingMemory.reap): wherever a worker is stopped, the two agree, and C
 * goes on from that position. (A count of occupied slots kept in Ring.place() and at slot free
 * could not be kept in step with the SQ tail and the CQ head that way.) */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>
#include "uzc.h"

#define UD_INTERNAL 0xffffffffULL /* ring.ts UD_INTERNAL: a CQE that carries nothing for anyone */
#define TICK_MS 10
#define DEFAULT_BOUND_MS 10000

typedef struct uzc_sock {
  struct uzc_sock *next;
  int fd;
  int stream;
  int reset;
  /* A stream socket's inode while it is this process's writer of that socket (see claim()). */
  uint64_t ino;
  int claimed;
  struct uzc_sock *wnext;
} uzc_sock;

/* Every stream socket adopted in this process, on any thread: a byte stream has one writer, as
 * two rings' (or two ZeroCopySockets') sends would interleave in it. Keyed by inode, which names
 * the socket whatever descriptor refers to it. */
static pthread_mutex_t writers_mu = PTHREAD_MUTEX_INITIALIZER;
static uzc_sock *writers;

/* 0, or -EBUSY when another descriptor of the same socket is adopted already. */
static int claim(uzc_sock *s) {
  int ret = 0;
  pthread_mutex_lock(&writers_mu);
  for (uzc_sock *w = writers; w; w = w->wnext)
    if (w->ino == s->ino) ret = -EBUSY;
  if (ret == 0) {
    s->wnext = writers;
    writers = s;
    s->claimed = 1;
  }
  pthread_mutex_unlock(&writers_mu);
  return ret;
}

/* MSG_ZEROCOPY completions come on the socket's error queue, numbered by a counter of the
 * socket's: one reader must see them all and know where the counter stands. Per inode, which
 * descriptor (of which thread) reads them now, and the number the socket's next zero-copy send
 * gets, kept across adoptions (socket inode numbers are not reused within a process's life:
 * get_next_ino() counts up). Under writers_mu. */
typedef struct {
  uint64_t ino;
  uint32_t next_id;
  uzc_sock *owner;
} uzc_errq;
static uzc_errq *errqs;
static size_t n_errqs, cap_errqs;

static uzc_errq *errq_of(uint64_t ino) {
  for (size_t i = 0; i < n_errqs; i++)
    if (errqs[i].ino == ino) return &errqs[i];
  return NULL;
}

static void unclaim_errq(uzc_sock *s) {
  pthread_mutex_lock(&writers_mu);
  uzc_errq *q = errq_of(s->ino);
  if (q && q->owner == s) q->owner = NULL;
  pthread_mutex_unlock(&writers_mu);
}

static void unclaim(uzc_sock *s) {
  if (s->ino) unclaim_errq(s);
  if (!s->claimed) return;
  pthread_mutex_lock(&writers_mu);
  for (uzc_sock **pp = &writers; *pp; pp = &(*pp)->wnext) {
    if (*pp == s) {
      *pp = s->wnext;
      break;
    }
  }
  s->claimed = 0;
  pthread_mutex_unlock(&writers_mu);
}

typedef struct {
  uv_timer_t timer; /* first: the timer callback finds the record from the handle */
  napi_env env;
  uv_loop_t *loop;
  uzc_ring *rings;
  uzc_sock *socks;
  napi_async_cleanup_hook_handle hook;
  int tearing;  /* the cleanup hook has started */
  int timer_on; /* the timer is initialized and not closing */
  int closing;  /* our libuv handles whose close callback has not run yet */
  uint64_t started, bound_ms;
  int warned;
  /* MSG_ZEROCOPY sends (syscall backends) whose completion has not been read yet. */
  int64_t zc_outstanding;
  /* Polls of descriptors that are not rings (the syscall backends' epoll sets). */
  uzc_poll *polls;
} uzc_env;

static void on_cleanup(napi_async_cleanup_hook_handle handle, void *arg);

/* Runs when Node-API frees the environment: after the hook was removed, so teardown is done. */
static void env_finalize(napi_env env, void *data, void *hint) {
  uzc_env *e = data;
  while (e->socks) {
    uzc_sock *s = e->socks;
    e->socks = s->next;
    unclaim(s);
    free(s);
  }
  free(e);
}

static uzc_env *env_peek(napi_env env) {
  void *d = NULL;
  return napi_get_instance_data(env, &d) == napi_ok ? d : NULL;
}

/* The environment's record, made with its cleanup hook on first use. NULL if either fails: then
 * no ring may be made, since it could not be torn down safely. */
static uzc_env *env_get(napi_env env) {
  uzc_env *e = env_peek(env);
  if (e) return e;
  e = calloc(1, sizeof *e);
  if (!e) return NULL;
  e->env = env;
  if (napi_get_uv_event_loop(env, &e->loop) != napi_ok ||
      napi_add_async_cleanup_hook(env, on_cleanup, e, &e->hook) != napi_ok) {
    free(e);
    return NULL;
  }
  if (napi_set_instance_data(env, e, env_finalize, NULL) != napi_ok) {
    napi_remove_async_cleanup_hook(e->hook);
    free(e);
    return NULL;
  }
  return e;
}

uzc_ring *uzc_ring_new(napi_env env) {
  uzc_env *e = env_get(env);
  uzc_ring *r = e ? calloc(1, sizeof *r) : NULL;
  if (!r) return NULL;
  r->fd = -1;
  r->next = e->rings;
  e->rings = r;
  return r;
}

static void unlink_ring(uzc_env *e, uzc_ring *r) {
  for (uzc_ring **pp = &e->rings; *pp; pp = &(*pp)->next) {
    if (*pp == r) {
      *pp = r->next;
      return;
    }
  }
}

/* setup() failed after uzc_ring_new(): forget the record (setup closes and unmaps itself). */
void uzc_ring_drop(napi_env env, uzc_ring *r) {
  uzc_env *e = env_peek(env);
  if (e) unlink_ring(e, r);
  free(r);
}

uzc_ring *uzc_ring_of_fd(napi_env env, int fd) {
  uzc_env *e = env_peek(env);
  for (uzc_ring *r = e ? e->rings : NULL; r; r = r->next)
    if (r->fd == fd) return r;
  return NULL;
}

/* unmap() released a mapping: teardown must not touch or unmap it again. */
void uzc_ring_forget_map(napi_env env, void *addr) {
  uzc_env *e = env_peek(env);
  for (uzc_ring *r = e ? e->rings : NULL; r; r = r->next)
    for (int i = 0; i < 3; i++)
      if (r->map[i] == addr) r->map[i] = NULL;
}

int uzc_tearing_down(napi_env env) {
  uzc_env *e = env_peek(env);
  return e && e->tearing;
}

/* release(shared) -> 0 or -errno: the end of a ring JS closed itself (ring.ts RingMemory.destroy,
 * after unmapping the rings with nothing in flight). Detaches the shared region, forgets the
 * record and closes the ring fd, in one call, so that no stop of the thread can come between
 * forgetting the fd and closing it. */
napi_value uzc_release(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  bool is_ab = false;
  UZC_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  UZC_CHECK(env, argc == 1 && napi_is_arraybuffer(env, argv[0], &is_ab) == napi_ok && is_ab,
            "release(shared) expects an ArrayBuffer");
  UZC_CALL(env, napi_get_arraybuffer_info(env, argv[0], &data, NULL));
  uzc_env *e = env_peek(env);
  uzc_ring *r = e ? e->rings : NULL;
  while (r && (void *)r->shared != data) r = r->next;
  if (!r) return uzc_int(env, -EBADF); /* released already (its ArrayBuffer is detached) */
  UZC_CALL(env, napi_detach_arraybuffer(env, argv[0]));
  unlink_ring(e, r);
  /* JS stops its poll before it destroys the ring; if not, a poll on a closed fd must not stay. */
  if (r->poll) uzc_poll_close(r->poll);
  /* A mapping JS did not unmap stays mapped (leaked) rather than unmapped under a live
   * ArrayBuffer. */
  int ret = close(r->fd) < 0 ? -errno : 0;
  free(r);
  return uzc_int(env, ret);
}

/* trackSocket(fd, isStream, inode?) -> 0 or -errno: an adopted (duplicated) socket descriptor,
 * reset and closed at teardown. close() (sock.c) forgets it, in the same call that closes it.
 * With an inode, a stream socket is claimed as its process's one writer: -EBUSY when it is
 * already (by this thread or another). */
napi_value uzc_track_socket(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int64_t fd, ino = 0;
  bool stream;
  UZC_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  UZC_CHECK(env, argc >= 2 && !uzc_arg_int(env, argv[0], &fd) && napi_get_value_bool(env, argv[1], &stream) == napi_ok &&
            (argc < 3 || !uzc_arg_int(env, argv[2], &ino)),
            "trackSocket(fd, isStream, inode?) expects an integer, a boolean and an integer");
  uzc_env *e = env_get(env);
  uzc_sock *s = e ? calloc(1, sizeof *s) : NULL;
  if (!s) return uzc_int(env, -ENOMEM);
  s->fd = (int)fd;
  s->stream = stream;
  s->ino = (uint64_t)ino;
  if (stream && ino > 0) {
    int r = claim(s);
    if (r < 0) {
      free(s);
      return uzc_int(env, r);
    }
  }
  s->next = e->socks;
  e->socks = s;
  return uzc_int(env, 0);
}

static uzc_sock *sock_of(napi_env env, int64_t fd) {
  uzc_env *e = env_peek(env);
  for (uzc_sock *s = e ? e->socks : NULL; s; s = s->next)
    if (s->fd == fd) return s;
  return NULL;
}

/* claimErrqueue(fd) -> the number the socket's next MSG_ZEROCOPY send gets (>= 0), -EBUSY when
 * another descriptor (this thread's or another's) reads its completions, -ENOENT for a
 * descriptor trackSocket() did not record with its inode. */
napi_value uzc_claim_errqueue(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int64_t fd;
  UZC_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  UZC_CHECK(env, argc == 1 && !uzc_arg_int(env, argv[0], &fd), "claimErrqueue(fd) expects an integer");
  uzc_sock *s = sock_of(env, fd);
  if (!s || !s->ino) return uzc_int(env, -ENOENT);
  double ret;
  pthread_mutex_lock(&writers_mu);
  uzc_errq *q = errq_of(s->ino);
  if (!q) {
    if (n_errqs == cap_errqs) {
      size_t cap = cap_errqs ? 2 * cap_errqs : 16;
      uzc_errq *grown = realloc(errqs, cap * sizeof *grown);
      if (!grown) {
        pthread_mutex_unlock(&writers_mu);
        return uzc_int(env, -ENOMEM);
      }
      errqs = grown;
      cap_errqs = cap;
    }
    q = &errqs[n_errqs++];
    q->ino = s->ino;
    q->next_id = 0;
    q->owner = NULL;
  }
  if (q->owner && q->owner != s) {
    ret = -EBUSY;
  } else {
    q->owner = s;
    ret = q->next_id;
  }
  pthread_mutex_unlock(&writers_mu);
  return uzc_int(env, ret);
}

/* setErrqueueNext(fd, id) -> 0 or -ENOENT: where the counter stands as the reader lets go. */
napi_value uzc_set_errqueue_next(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int64_t fd, id;
  UZC_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  UZC_CHECK(env, argc == 2 && !uzc_arg_int(env, argv[0], &fd) && !uzc_arg_int(env, argv[1], &id),
            "setErrqueueNext(fd, id) expects two integers");
  uzc_sock *s = sock_of(env, fd);
  int ret = -ENOENT;
  pthread_mutex_lock(&writers_mu);
  uzc_errq *q = s && s->ino ? errq_of(s->ino) : NULL;
  if (q && q->owner == s) {
    q->next_id = (uint32_t)id;
    ret = 0;
  }
  pthread_mutex_unlock(&writers_mu);
  return uzc_int(env, ret);
}

void uzc_zc_outstanding(napi_env env, int delta) {
  uzc_env *e = env_get(env);
  if (e) e->zc_outstanding += delta;
}

void uzc_polls_add(napi_env env, uzc_poll *p) {
  uzc_env *e = env_get(env);
  if (!e) return;
  uzc_poll_set_next(p, e->polls);
  e->polls = p;
}

void uzc_polls_remove(napi_env env, uzc_poll *p) {
  uzc_env *e = env_peek(env);
  for (uzc_poll **pp = e ? &e->polls : NULL; pp && *pp; pp = uzc_poll_next_ref(*pp)) {
    if (*pp == p) {
      *pp = *uzc_poll_next_ref(p);
      return;
    }
  }
}

void uzc_untrack_fd(napi_env env, int fd) {
  uzc_env *e = env_peek(env);
  if (!e) return;
  for (uzc_sock **pp = &e->socks; *pp; pp = &(*pp)->next) {
    if ((*pp)->fd == fd) {
      uzc_sock *s = *pp;
      *pp = s->next;
      unclaim(s);
      free(s);
      return;
    }
  }
}

static int ring_usable(const uzc_ring *r) {
  return r->map[0] && r->map[2] && (r->single_mmap || r->map[1]);
}

/* Adds the cancel-all once the SQ has room, publishes our tail and enters: submits what is
 * pending and, with GETEVENTS (never waiting: min_complete 0), runs task work and flushes
 * overflowed CQEs. A failed enter (EBUSY/EAGAIN: the CQ is full) is retried at the next step;
 * only a broken ring fails otherwise, and its requests then keep the hook waiting. */
static void ring_kick(uzc_ring *r) {
  /* Acquire: pairs with the kernel's release of the head; the SQEs before it are free to reuse. */
  unsigned head = __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
  if (!r->cancelled && r->tail - head < r->sq_entries) {
    struct io_uring_sqe *sqe = &r->sqes[r->tail & r->sq_mask];
    memset(sqe, 0, sizeof *sqe);
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    sqe->fd = -1;
    sqe->cancel_flags = IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL;
    sqe->user_data = UD_INTERNAL;
    r->tail++;
    r->cancelled = 1;
  }
  /* Release: the SQE stores above (and JS's, earlier on this thread) are visible to the kernel
   * before the tail that covers them. */
  __atomic_store_n(r->sq_tail, r->tail, __ATOMIC_RELEASE);
  (void)syscall(__NR_io_uring_enter, r->fd, r->tail - head, 0, IORING_ENTER_GETEVENTS, NULL, 0);
}

/* Consumes the CQEs JS has not, counting the requests they end; returns the requests left. */
static unsigned ring_reap(uzc_ring *r) {
  unsigned head = r->shared[UZC_SH_CQ_HEAD];
  /* Acquire: the CQE fields are read only after the tail the kernel published with release. */
  unsigned tail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
  unsigned finals = r->shared[UZC_SH_FINALS];
  /* More than a CQ's worth means JS's position is not one: count nothing (keep waiting) rather
   * than count a CQE twice and free memory early. */
  if (tail - head <= r->cq_entries) {
    for (; head != tail; head++)
      if (!(r->cqes[head & r->cq_mask].flags & IORING_CQE_F_MORE)) finals++;
    r->shared[UZC_SH_FINALS] = finals;
    r->shared[UZC_SH_CQ_HEAD] = head;
    /* Release: the entries go back to the kernel only after their fields were read. */
    __atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE);
  }
  return __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE) - finals;
}

/* Nothing can read the ring's memory any more: stop its poll, unmap, close. JS never runs again
 * in this environment, so its ArrayBuffers over these regions (and over r->shared) are never
 * touched after this. */
static void ring_close(uzc_ring *r) {
  if (r->poll) uzc_poll_close(r->poll);
  for (int i = 0; i < 3; i++)
    if (r->map[i] && munmap(r->map[i], r->map_len[i]) < 0)
      fprintf(stderr, "uring-zc: munmap at thread teardown: %s\n", strerror(errno));
  if (close(r->fd) < 0) fprintf(stderr, "uring-zc: closing a ring at thread teardown: %s\n", strerror(errno));
  free(r);
}

/* A stream socket whose queues still hold data (or that cannot say) is reset; see step 2 above.
 * connect() fails for stream sockets that are not TCP (AF_UNIX: EINVAL); they never hold
 * zero-copy data, so there is nothing else to do for them. */
static void maybe_reset(uzc_sock *s) {
  int queued = 1;
  if (!s->stream || s->reset) return;
  if (ioctl(s->fd, SIOCOUTQ, &queued) == 0 && queued == 0) return;
  struct sockaddr sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_family = AF_UNSPEC;
  s->reset = 1;
  if (connect(s->fd, &sa, sizeof sa) < 0 && errno != EINVAL)
    fprintf(stderr, "uring-zc: resetting a socket at thread teardown: %s\n", strerror(errno));
}

static void maybe_finish(uzc_env *e) {
  if (!e->tearing || e->rings || e->timer_on || e->closing || !e->hook) return;
  napi_async_cleanup_hook_handle h = e->hook;
  e->hook = NULL;
  /* Lets the environment finish; it frees `e` later (env_finalize): the last use of it. */
  napi_remove_async_cleanup_hook(h);
}

void uzc_handle_closing(napi_env env, int delta) {
  uzc_env *e = env_peek(env);
  if (!e) return;
  e->closing += delta;
  if (delta < 0) maybe_finish(e);
}

static void on_timer_closed(uv_handle_t *h) {
  uzc_env *e = (uzc_env *)h;
  e->closing--;
  maybe_finish(e);
}

static void step(uzc_env *e) {
  unsigned left = 0;
  uzc_ring **pp = &e->rings;
  while (*pp) {
    uzc_ring *r = *pp;
    /* A ring JS had begun to unmap had nothing in flight (it unmaps only after its last CQE). */
    unsigned n = 0;
    if (ring_usable(r)) {
      ring_kick(r);
      n = ring_reap(r);
    }
    if (n == 0) {
      *pp = r->next;
      ring_close(r);
    } else {
      left += n;
      pp = &r->next;
    }
  }
  if (e->zc_outstanding > 0) {
    /* MSG_ZEROCOPY sends of the syscall backends: their completions are read here (JS does not
     * run any more), after the stream sockets holding their data are reset (below). */
    for (uzc_sock *s = e->socks; s; s = s->next) {
      maybe_reset(s);
      e->zc_outstanding -= uzc_zc_drain(s->fd);
    }
  }
  if (e->rings || e->zc_outstanding > 0) {
    /* Only while requests are in flight (with none, data a socket still holds is not ours to
     * wait for: it gets the normal close below), and after the cancels went in, so that no
     * request queues more data on a socket once it is reset. Checked again at every step: a
     * request the cancel could not stop may still have added some. */
    for (uzc_sock *s = e->socks; s; s = s->next) maybe_reset(s);
    if (!e->warned && uv_now(e->loop) - e->started >= e->bound_ms) {
      e->warned = 1;
      fprintf(stderr,
              "uring-zc: %u io_uring request(s) and %lld MSG_ZEROCOPY send(s) still in flight %llu ms into thread "
              "teardown; waiting for them, since freeing the memory they read would put other data on the wire\n",
              left, (long long)e->zc_outstanding, (unsigned long long)e->bound_ms);
    }
    return;
  }
  /* No ring left: no request can use the sockets any more. */
  while (e->polls) uzc_poll_close(e->polls); /* unlinks itself */
  while (e->socks) {
    uzc_sock *s = e->socks;
    e->socks = s->next;
    unclaim(s);
    if (close(s->fd) < 0) fprintf(stderr, "uring-zc: closing a socket at thread teardown: %s\n", strerror(errno));
    free(s);
  }
  if (e->timer_on) {
    e->timer_on = 0;
    e->closing++;
    uv_close((uv_handle_t *)&e->timer, on_timer_closed);
  }
  maybe_finish(e);
}

void uzc_teardown_step(napi_env env) {
  uzc_env *e = env_peek(env);
  if (e && e->tearing) step(e);
}

static void on_tick(uv_timer_t *t) {
  step((uzc_env *)t);
}

static uint64_t bound_ms(void) {
  const char *v = getenv("URING_ZC_TEARDOWN_TIMEOUT_MS");
  char *end = NULL;
  unsigned long long ms = v ? strtoull(v, &end, 10) : 0;
  return v && *v && end && *end == '\0' ? ms : DEFAULT_BOUND_MS;
}

/* The environment is being torn down (worker exit, or the main thread's environment freed). JS
 * no longer runs; the loop does, until the hook is removed (maybe_finish). */
static void on_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  uzc_env *e = arg;
  e->hook = handle;
  e->tearing = 1;
  e->bound_ms = bound_ms();
  uv_update_time(e->loop);
  e->started = uv_now(e->loop);
  /* Referenced and repeating: it keeps the loop's UV_RUN_ONCE rounds waiting instead of spinning. */
  if (uv_timer_init(e->loop, &e->timer) == 0) {
    e->timer_on = 1;
    uv_timer_start(&e->timer, on_tick, TICK_MS, TICK_MS);
  } else {
    fprintf(stderr, "uring-zc: no timer at thread teardown; waiting on the ring fds alone\n");
  }
  for (uzc_ring *r = e->rings; r; r = r->next) {
    if (!ring_usable(r)) continue;
    /* JS's tail, unless it is not one (behind the kernel's head or a whole SQ ahead). */
    unsigned head = __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
    r->tail = r->shared[UZC_SH_SQ_TAIL];
    if (r->tail - head > r->sq_entries) r->tail = *r->sq_tail;
  }
  step(e);
}
