/* File to socket (src/file.ts): the pipe a socket's IORING_OP_SPLICE requests go through, and
 * sendfile(2) for the backends without io_uring, run on the libuv threadpool.
 *
 * Why the threadpool for sendfile: the socket is non-blocking (it is Node's, O_NONBLOCK is shared
 * by every dup), so the send side never waits; but the read side does when a page is not in the
 * page cache (the kernel reads it from disk inside the call, milliseconds for a cold file, far
 * more on a network filesystem). On the event loop thread that would stall every other socket and
 * timer. A threadpool call costs ~10 us more than a direct one, nothing next to the megabytes one
 * call moves. Nothing here touches JS memory: the kernel moves page-cache pages only. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <unistd.h>
#include "uzc.h"

/* pipeOpen(size) -> [readFd, writeFd, capacity] or -errno: a pipe (O_CLOEXEC) raised to `size`
 * bytes with F_SETPIPE_SZ. Without CAP_SYS_RESOURCE the kernel refuses more than
 * /proc/sys/fs/pipe-max-size (EPERM) or more than the user's pipe quota: then the size is halved
 * until it is accepted, down to the default (64 KiB), which is kept as it is. */
napi_value uzc_pipe_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int64_t size;
  UZC_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  UZC_CHECK(env, argc == 1 && !uzc_arg_int(env, argv[0], &size) && size > 0 && size <= (1 << 30), "pipeOpen(size)");
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return uzc_int(env, -errno);
  for (int64_t s = size; s > 65536; s /= 2)
    if (fcntl(p[1], F_SETPIPE_SZ, (int)s) >= 0) break;
  int cap = fcntl(p[1], F_GETPIPE_SZ);
  if (cap < 0) {
    int e = -errno;
    close(p[0]);
    close(p[1]);
    return uzc_int(env, e);
  }
  napi_value out;
  UZC_CALL(env, napi_create_array_with_length(env, 3, &out));
  UZC_CALL(env, napi_set_element(env, out, 0, uzc_int(env, p[0])));
  UZC_CALL(env, napi_set_element(env, out, 1, uzc_int(env, p[1])));
  UZC_CALL(env, napi_set_element(env, out, 2, uzc_int(env, cap)));
  return out;
}

typedef struct {
  napi_async_work work;
  napi_ref callback;
  int out_fd, in_fd;
  int64_t offset;
  int64_t count;
  int64_t result; /* bytes, 0 at end of file, or -errno */
} uzc_sendfile_job;

/* Runs on a threadpool thread: sendfile(2) from `offset` until `count` bytes went, the socket
 * buffer is full (EAGAIN: the bytes so far, or -EAGAIN when none), the file ends (what went, or 0
 * when nothing), or an error (-errno when nothing went). The explicit offset leaves the file
 * position of the descriptor alone (it may be the caller's). */
static void sendfile_execute(napi_env env, void *data) {
  uzc_sendfile_job *j = data;
  int64_t done = 0;
  off_t off = (off_t)j->offset;
  /* Bounded: at most `count` (TS passes at most 64 MiB) and 4096 calls. */
  for (int i = 0; i < 4096 && done < j->count; i++) {
    size_t want = (size_t)(j->count - done);
    if (want > 0x7ffff000) want = 0x7ffff000;
    ssize_t r = sendfile(j->out_fd, j->in_fd, &off, want);
    if (r > 0) {
      done += r;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && done == 0) done = -errno;
    break; /* 0: end of file; EAGAIN or an error after progress: report the progress */
  }
  j->result = done;
}

/* Back on the JS thread: callback(result). */
static void sendfile_complete(napi_env env, napi_status status, void *data) {
  uzc_sendfile_job *j = data;
  napi_value cb, global, arg;
  if (napi_get_reference_value(env, j->callback, &cb) == napi_ok && cb != NULL &&
      napi_get_global(env, &global) == napi_ok) {
    arg = uzc_int(env, status == napi_ok ? (double)j->result : -125.0 /* ECANCELED */);
    /* The global as receiver: napi_make_callback with undefined fails silently. */
    napi_value ignored;
    napi_status s = napi_make_callback(env, NULL, global, cb, 1, &arg, &ignored);
    if (s == napi_pending_exception) {
      napi_value e;
      napi_get_and_clear_last_exception(env, &e);
      napi_fatal_exception(env, e);
    }
  }
  napi_delete_reference(env, j->callback);
  napi_delete_async_work(env, j->work);
  free(j);
}

/* sendfileAsync(outFd, inFd, offset, count, callback) -> 0 or -errno: queues the sendfile on the
 * libuv threadpool; callback(bytes | 0 | -errno) runs on this thread once it returned. The
 * caller keeps both descriptors open until then. */
napi_value uzc_sendfile_async(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int64_t a[4];
  UZC_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype t = napi_undefined;
  UZC_CHECK(env, argc == 5 && !uzc_arg_int(env, argv[0], &a[0]) && !uzc_arg_int(env, argv[1], &a[1]) &&
                     !uzc_arg_int(env, argv[2], &a[2]) && !uzc_arg_int(env, argv[3], &a[3]) &&
                     napi_typeof(env, argv[4], &t) == napi_ok && t == napi_function && a[2] >= 0 && a[3] >= 0,
            "sendfileAsync(outFd, inFd, offset, count, callback)");
  uzc_sendfile_job *j = calloc(1, sizeof *j);
  if (j == NULL) return uzc_int(env, -ENOMEM);
  j->out_fd = (int)a[0];
  j->in_fd = (int)a[1];
  j->offset = a[2];
  j->count = a[3];
  napi_value name;
  if (napi_create_string_utf8(env, "uring-zc:sendfile", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_reference(env, argv[4], 1, &j->callback) != napi_ok) {
    free(j);
    return uzc_int(env, -ENOMEM);
  }
  if (napi_create_async_work(env, NULL, name, sendfile_execute, sendfile_complete, j, &j->work) != napi_ok ||
      napi_queue_async_work(env, j->work) != napi_ok) {
    napi_delete_reference(env, j->callback);
    free(j);
    return uzc_int(env, -ENOMEM);
  }
  return uzc_int(env, 0);
}
