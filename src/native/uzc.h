/* Shared declarations of the uring-zc Node-API shim.
 * The shim only sets up and maps rings, enters, registers, polls the ring fd and offers the few
 * socket syscalls Node lacks. Every request is written by TypeScript into the mapped SQE array. */
#ifndef UZC_H
#define UZC_H

#include <node_api.h>

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

/* poll.c */
napi_value uzc_poll_start(napi_env env, napi_callback_info info);
napi_value uzc_poll_ref(napi_env env, napi_callback_info info);
napi_value uzc_poll_stop(napi_env env, napi_callback_info info);

/* sock.c */
napi_value uzc_dup(napi_env env, napi_callback_info info);
napi_value uzc_close(napi_env env, napi_callback_info info);
napi_value uzc_sock_info(napi_env env, napi_callback_info info);

#endif
