/* Shared declarations of the uring-zc Node-API shim.
 * The shim only sets up and maps rings, enters, registers, polls the ring fd and offers the few
 * socket syscalls Node lacks. Every request is written by TypeScript into the mapped SQE array. */
#ifndef UZC_H
#define UZC_H

#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/io_uring.h>

/* Throw a plain Error and return NULL from the enclosing napi callback. Used only for programming
 * errors of our own TypeScript layer (wrong argument types): user input is validated in TS first. */
#define UZC_CHECK(env, cond, msg)                                   \
  do {                                                              \
    if (!(cond)) {                                                  \
      napi_throw_error((env), "ERR_URING_ZC_NATIVE", (msg));       \
      return NULL;                                                  \
    }                                                               \
  } while (0)

#define UZC_CALL(env, call) UZC_CHECK((env), (call) == napi_ok, #call " failed")

napi_value uzc_int(napi_env env, double v);
int uzc_arg_int(napi_env env, napi_value v, int64_t *out);

/* ring.c */
napi_value uzc_setup(napi_env env, napi_callback_info info);
napi_value uzc_enter(napi_env env, napi_callback_info info);
napi_value uzc_register(napi_env env, napi_callback_info info);
napi_value uzc_unmap(napi_env env, napi_callback_info info);
napi_value uzc_address(napi_env env, napi_callback_info info);

/* teardown.c: the C record of this environment's rings and adopted sockets, and what the
 * environment's async cleanup hook does with them (see the comment at the top of teardown.c). */

/* Words of a ring's shared region (rec->shared), written by JS (ring.ts RingMemory), read at
 * teardown. Plain stores suffice: JS and the cleanup hook run on the same thread, one after the
 * other. */
#define UZC_SH_SQ_TAIL 0 /* JS's local SQ tail: SQEs written, published or not */
#define UZC_SH_FINALS 1  /* CQEs consumed that had no IORING_CQE_F_MORE: requests ended */
#define UZC_SH_CQ_HEAD 2 /* CQ position up to which CQEs were consumed (>= the published head) */
#define UZC_SH_WORDS 4

typedef struct uzc_poll uzc_poll;

typedef struct uzc_ring {
  struct uzc_ring *next;
  int fd;
  /* The mappings, NULL once unmap() released them: [0] SQ ring (and CQ ring with
   * IORING_FEAT_SINGLE_MMAP), [1] CQ ring when separate, [2] SQE array. */
  void *map[3];
  size_t map_len[3];
  int single_mmap;
  unsigned *sq_head, *sq_tail, *cq_head, *cq_tail;
  unsigned sq_mask, sq_entries, cq_mask, cq_entries;
  struct io_uring_sqe *sqes;
  struct io_uring_cqe *cqes;
  uint32_t shared[UZC_SH_WORDS];
  uzc_poll *poll;     /* pollStart()'s handle on this ring, NULL when none */
  unsigned tail;      /* teardown: our SQ tail */
  int cancelled;      /* teardown: the cancel-all SQE is written */
} uzc_ring;

uzc_ring *uzc_ring_new(napi_env env);
void uzc_ring_drop(napi_env env, uzc_ring *r);
uzc_ring *uzc_ring_of_fd(napi_env env, int fd);
void uzc_ring_forget_map(napi_env env, void *addr);
int uzc_tearing_down(napi_env env);
void uzc_teardown_step(napi_env env);
void uzc_handle_closing(napi_env env, int delta);
void uzc_untrack_fd(napi_env env, int fd);
napi_value uzc_release(napi_env env, napi_callback_info info);
napi_value uzc_track_socket(napi_env env, napi_callback_info info);
napi_value uzc_claim_errqueue(napi_env env, napi_callback_info info);
napi_value uzc_set_errqueue_next(napi_env env, napi_callback_info info);

/* poll.c */
napi_value uzc_poll_start(napi_env env, napi_callback_info info);
napi_value uzc_poll_ref(napi_env env, napi_callback_info info);
napi_value uzc_poll_stop(napi_env env, napi_callback_info info);
void uzc_poll_close(uzc_poll *p);
void uzc_poll_set_next(uzc_poll *p, uzc_poll *next);
uzc_poll **uzc_poll_next_ref(uzc_poll *p);

/* syscall.c */
napi_value uzc_set_sock_opt(napi_env env, napi_callback_info info);
napi_value uzc_zc_completions(napi_env env, napi_callback_info info);
napi_value uzc_epoll_create(napi_env env, napi_callback_info info);
napi_value uzc_epoll_ctl(napi_env env, napi_callback_info info);
napi_value uzc_epoll_wait(napi_env env, napi_callback_info info);
napi_value uzc_probe_socket(napi_env env, napi_callback_info info);
napi_value uzc_reset_if_lingering(napi_env env, napi_callback_info info);
napi_value uzc_sqe_send(napi_env env, napi_callback_info info);
napi_value uzc_sqe_send_batch(napi_env env, napi_callback_info info);
/* Drains MSG_ZEROCOPY completions from `fd`'s error queue; returns how many sends they cover. */
int uzc_zc_drain(int fd);
/* teardown.c: MSG_ZEROCOPY sends whose completion has not been read (+1 per send, -n per range). */
void uzc_zc_outstanding(napi_env env, int delta);
/* teardown.c: a poll of a descriptor that is not a ring (the syscall backends' epoll set), closed at teardown. */
void uzc_polls_add(napi_env env, uzc_poll *p);
void uzc_polls_remove(napi_env env, uzc_poll *p);

/* file.c */
napi_value uzc_pipe_open(napi_env env, napi_callback_info info);
napi_value uzc_sendfile_async(napi_env env, napi_callback_info info);

/* sock.c */
napi_value uzc_dup(napi_env env, napi_callback_info info);
napi_value uzc_close(napi_env env, napi_callback_info info);
napi_value uzc_sock_info(napi_env env, napi_callback_info info);

#endif
