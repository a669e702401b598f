/* Module init and the table of native functions exported to JS; nothing else lives here. */
#include <stdint.h>
#include "uzc.h"

napi_value uzc_int(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

/* Reads a JS number that must be an integer; returns 0 on success. */
int uzc_arg_int(napi_env env, napi_value v, int64_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return -1;
  if (d != d || d < -9007199254740991.0 || d > 9007199254740991.0) return -1;
  *out = (int64_t)d;
  return (double)*out == d ? 0 : -1;
}

NAPI_MODULE_INIT() {
  static const struct { const char *name; napi_callback fn; } table[] = {
    { "setup", uzc_setup },
    { "enter", uzc_enter },
    { "register", uzc_register },
    { "unmap", uzc_unmap },
    { "address", uzc_address },
    { "pollStart", uzc_poll_start },
    { "pollRef", uzc_poll_ref },
    { "pollStop", uzc_poll_stop },
    { "dup", uzc_dup },
    { "close", uzc_close },
    { "sockInfo", uzc_sock_info },
    { "setSockOpt", uzc_set_sock_opt },
    { "zcCompletions", uzc_zc_completions },
    { "epollCreate", uzc_epoll_create },
    { "epollCtl", uzc_epoll_ctl },
    { "epollWait", uzc_epoll_wait },
    { "probeSocket", uzc_probe_socket },
    { "resetIfLingering", uzc_reset_if_lingering },
    { "sqeSend", uzc_sqe_send },
    { "sqeSendBatch", uzc_sqe_send_batch },
    { "release", uzc_release },
    { "trackSocket", uzc_track_socket },
    { "claimErrqueue", uzc_claim_errqueue },
    { "setErrqueueNext", uzc_set_errqueue_next },
    { "pipeOpen", uzc_pipe_open },
    { "sendfileAsync", uzc_sendfile_async },
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    napi_value fn;
    if (napi_create_function(env, table[i].name, NAPI_AUTO_LENGTH, table[i].fn, NULL, &fn) != napi_ok)
      return NULL;
    if (napi_set_named_property(env, exports, table[i].name, fn) != napi_ok) return NULL;
  }
  return exports;
}
