/* The few socket syscalls Node does not expose. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "uzc.h"

static int arg_fd(napi_env env, napi_callback_info info, int64_t *fd) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1) return -1;
  return uzc_arg_int(env, argv[0], fd);
}

/* dup(fd) -> a new close-on-exec descriptor for the same socket, or -errno. Adopted sockets are
 * duplicated so that a number Node closes and reuses can never receive one of our sends. */
napi_value uzc_dup(napi_env env, napi_callback_info info) {
  int64_t fd;
  UZC_CHECK(env, !arg_fd(env, info, &fd), "dup(fd) expects an integer");
  int r = fcntl((int)fd, F_DUPFD_CLOEXEC, 0);
  return uzc_int(env, r < 0 ? -errno : r);
}

/* close(fd) -> 0 or -errno. A socket trackSocket() recorded is forgotten in the same call, so
 * that teardown never touches the number once it can be reused. */
napi_value uzc_close(napi_env env, napi_callback_info info) {
  int64_t fd;
  UZC_CHECK(env, !arg_fd(env, info, &fd), "close(fd) expects an integer");
  uzc_untrack_fd(env, (int)fd);
  return uzc_int(env, close((int)fd) < 0 ? -errno : 0);
}

/* sockInfo(fd) -> [domain, type, protocol, connected, inode] or -errno (ENOTSOCK for other
 * files). The inode names the socket itself, whichever descriptor refers to it. */
napi_value uzc_sock_info(napi_env env, napi_callback_info info) {
  int64_t fd;
  UZC_CHECK(env, !arg_fd(env, info, &fd), "sockInfo(fd) expects an integer");
  int v[3];
  int opts[3] = { SO_DOMAIN, SO_TYPE, SO_PROTOCOL };
  for (int i = 0; i < 3; i++) {
    socklen_t len = sizeof v[i];
    if (getsockopt((int)fd, SOL_SOCKET, opts[i], &v[i], &len) < 0) return uzc_int(env, -errno);
  }
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  int connected = getpeername((int)fd, (struct sockaddr *)&ss, &sl) == 0;
  napi_value arr;
  UZC_CALL(env, napi_create_array_with_length(env, 5, &arr));
  for (int i = 0; i < 3; i++) napi_set_element(env, arr, i, uzc_int(env, v[i]));
  napi_set_element(env, arr, 3, uzc_int(env, connected));
  /* statx, not fstat: glibc >= 2.33 binds fstat to fstat64@GLIBC_2.33, which would keep the
   * prebuilt addon from loading on glibc 2.28-2.32 (RHEL 8, Debian 11), where Node itself runs. */
  struct statx stx;
  int ok = statx((int)fd, "", AT_EMPTY_PATH, STATX_INO, &stx) == 0 && (stx.stx_mask & STATX_INO);
  napi_set_element(env, arr, 4, uzc_int(env, ok ? (double)stx.stx_ino : -1));
  return arr;
}
