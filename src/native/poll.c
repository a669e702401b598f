/* The event-loop hook: a libuv poll on the ring fd that makes one JS call when completions are
 * ready. No thread, no busy polling: the loop sleeps in epoll until the kernel posts a CQE.
 * At thread teardown the same poll drives the C reaping of teardown.c instead (no JS then). */
#include <stdlib.h>
#include <uv.h>
#include "uzc.h"

struct uzc_poll {
  uv_poll_t handle;
  napi_env env;
  /* The JS callback; it also keeps the Ring, and so every Buffer in flight, reachable until the
   * poll stops (at teardown: once nothing is in flight). */
  napi_ref callback;
  napi_async_context async;
  uzc_ring *ring;
  int stopped;
  /* Polls of other descriptors (not rings): the environment's list, closed at teardown. */
  uzc_poll *next;
  int listed;
};

void uzc_poll_set_next(uzc_poll *p, uzc_poll *next) {
  p->next = next;
  p->listed = 1;
}

uzc_poll **uzc_poll_next_ref(uzc_poll *p) {
  return &p->next;
}

/* The handle is closed: its memory can go. At teardown, teardown.c counts the handles still
 * closing: its cleanup hook is removed only after the last one (a handle closing when the
 * environment finishes would crash the worker at exit). */
static void on_closed(uv_handle_t *h) {
  uzc_poll *p = h->data;
  napi_env env = p->env;
  free(p);
  uzc_handle_closing(env, -1);
}

/* Stops and closes the poll (JS pollStop, or teardown.c once its ring is done). */
void uzc_poll_close(uzc_poll *p) {
  if (p->stopped) return;
  p->stopped = 1;
  if (p->ring) p->ring->poll = NULL;
  p->ring = NULL;
  if (p->listed) uzc_polls_remove(p->env, p);
  p->listed = 0;
  uv_poll_stop(&p->handle);
  if (p->callback) napi_delete_reference(p->env, p->callback);
  if (p->async) napi_async_destroy(p->env, p->async);
  p->callback = NULL;
  p->async = NULL;
  uzc_handle_closing(p->env, 1);
  uv_close((uv_handle_t *)&p->handle, on_closed);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  uzc_poll *p = h->data;
  if (p->stopped) return;
  napi_env env = p->env;
  if (uzc_tearing_down(env)) {
    uzc_teardown_step(env);
    return;
  }
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, global, arg, result;
  napi_get_reference_value(env, p->callback, &cb);
  /* A callback made with an undefined receiver fails silently: pass the global object. */
  napi_get_global(env, &global);
  arg = uzc_int(env, status);
  /* napi_make_callback (not napi_call_function) so that promise reactions and nextTicks queued by
   * the completions run right after, as for any libuv callback. */
  if (napi_make_callback(env, p->async, global, cb, 1, &arg, &result) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
}

static uzc_poll *get_poll(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return p;
}

/* pollStart(fd, callback) -> handle, for a ring fd that setup() made in this environment, or
 * another descriptor (the syscall backends' epoll set), closed at teardown with the rest. The
 * handle starts unreferenced: an idle ring must not keep the process alive; the ring refs it
 * while requests are in flight. */
napi_value uzc_poll_start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name, out;
  int64_t fd;
  uv_loop_t *loop;
  UZC_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  UZC_CHECK(env, argc == 2 && !uzc_arg_int(env, argv[0], &fd), "pollStart(fd, callback) expects an fd");
  UZC_CALL(env, napi_get_uv_event_loop(env, &loop));
  uzc_ring *r = uzc_ring_of_fd(env, (int)fd);
  UZC_CHECK(env, r == NULL || r->poll == NULL, "pollStart: this ring is polled already");
  uzc_poll *p = calloc(1, sizeof *p);
  UZC_CHECK(env, p != NULL, "pollStart: out of memory");
  p->env = env;
  p->handle.data = p;
  if (uv_poll_init(loop, &p->handle, (int)fd) != 0) {
    free(p);
    UZC_CHECK(env, 0, "pollStart: uv_poll_init failed");
  }
  p->ring = r;
  if (r) r->poll = p;
  else uzc_polls_add(env, p);
  napi_create_reference(env, argv[1], 1, &p->callback);
  napi_create_string_utf8(env, "uring-zc:ring", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &p->async);
  uv_poll_start(&p->handle, UV_READABLE, on_readable);
  uv_unref((uv_handle_t *)&p->handle);
  UZC_CALL(env, napi_create_external(env, p, NULL, NULL, &out));
  return out;
}

/* pollRef(handle, on): keep the loop alive (requests in flight) or not (idle). */
napi_value uzc_poll_ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool on;
  UZC_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uzc_poll *p = argc == 2 ? get_poll(env, argv[0]) : NULL;
  UZC_CHECK(env, p && napi_get_value_bool(env, argv[1], &on) == napi_ok, "pollRef(handle, bool)");
  if (!p->stopped) {
    if (on) uv_ref((uv_handle_t *)&p->handle);
    else uv_unref((uv_handle_t *)&p->handle);
  }
  return NULL;
}

/* pollStop(handle): stop and release; the handle memory is freed by libuv's close callback. */
napi_value uzc_poll_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  UZC_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uzc_poll *p = argc == 1 ? get_poll(env, argv[0]) : NULL;
  UZC_CHECK(env, p, "pollStop(handle)");
  uzc_poll_close(p);
  return NULL;
}
