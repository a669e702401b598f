/* io_uring setup, mapping, enter and register: the only ring code in C.
 * TypeScript reads and writes the mapped rings; this file never sees a request. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "uzc.h"

/* The distro header is the 6.1 version; newer names are defined where they are used in TS. */
#ifndef IORING_ENTER_EXT_ARG
#define IORING_ENTER_EXT_ARG (1U << 3)
#endif

static int sys_setup(unsigned entries, struct io_uring_params *p) {
  return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_enter(int fd, unsigned submit, unsigned min, unsigned flags, void *arg, size_t argsz) {
  return (int)syscall(__NR_io_uring_enter, fd, submit, min, flags, arg, argsz);
}

static int sys_register(int fd, unsigned op, void *arg, unsigned nr) {
  return (int)syscall(__NR_io_uring_register, fd, op, arg, nr);
}

static void set_u32(napi_env env, napi_value obj, const char *name, double v) {
  napi_set_named_property(env, obj, name, uzc_int(env, v));
}

/* Maps one region and wraps it in an external ArrayBuffer. No finalizer: the mapping is released
 * only by unmap(), which detaches the ArrayBuffer first, so JS can never touch unmapped memory. */
static napi_value map_region(napi_env env, int fd, size_t len, off_t off, void **out) {
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, off);
  if (p == MAP_FAILED) return NULL;
  napi_value ab;
  if (napi_create_external_arraybuffer(env, p, len, NULL, NULL, &ab) != napi_ok) {
    munmap(p, len);
    return NULL;
  }
  *out = p;
  return ab;
}

/* setup(entries, flags, cqEntries) -> { fd, features, sqEntries, cqEntries, sqOff, cqOff,
 * rings, cqRing?, sqes, shared } or -errno. `shared` is the ring's region of UZC_SH_WORDS words
 * (uzc.h) that JS keeps up to date for teardown.c. */
napi_value uzc_setup(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int64_t entries, flags, cq_entries;
  UZC_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  UZC_CHECK(env, argc == 3 && !uzc_arg_int(env, argv[0], &entries) && !uzc_arg_int(env, argv[1], &flags) &&
                     !uzc_arg_int(env, argv[2], &cq_entries),
            "setup(entries, flags, cqEntries) expects integers");

  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = (unsigned)flags;
  if (cq_entries > 0) {
    p.flags |= IORING_SETUP_CQSIZE;
    p.cq_entries = (unsigned)cq_entries;
  }
  int fd = sys_setup((unsigned)entries, &p);
  if (fd < 0) return uzc_int(env, -errno);

  size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  int single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single && cq_len > sq_len) sq_len = cq_len;
  size_t sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);

  void *sq_ptr = NULL, *cq_ptr = NULL, *sqes_ptr = NULL;
  napi_value rings = map_region(env, fd, sq_len, IORING_OFF_SQ_RING, &sq_ptr);
  napi_value cq_ring = NULL;
  if (rings && !single) cq_ring = map_region(env, fd, cq_len, IORING_OFF_CQ_RING, &cq_ptr);
  napi_value sqes = (rings && (single || cq_ring)) ? map_region(env, fd, sqes_len, IORING_OFF_SQES, &sqes_ptr) : NULL;
  if (!sqes) {
    int err = errno ? errno : ENOMEM;
    if (sq_ptr) munmap(sq_ptr, sq_len);
    if (cq_ptr) munmap(cq_ptr, cq_len);
    close(fd);
    return uzc_int(env, -err);
  }

  /* The SQ index array is an indirection we never use: make it the identity once, so that JS only
   * writes SQEs at (tail & mask) and publishes the tail. (teardown.c relies on it: no SQE is
   * dropped, so the kernel's SQ head counts requests.) */
  unsigned *array = (unsigned *)((char *)sq_ptr + p.sq_off.array);
  for (unsigned i = 0; i < p.sq_entries; i++) array[i] = i;

  /* The C record of the ring, for teardown at thread exit, and its shared region as an external
   * ArrayBuffer (C-owned: it stays valid until the ring is released or torn down). */
  uzc_ring *r = uzc_ring_new(env);
  napi_value shared = NULL;
  if (r) {
    char *cq_base = single ? (char *)sq_ptr : (char *)cq_ptr;
    r->fd = fd;
    r->map[0] = sq_ptr;
    r->map_len[0] = sq_len;
    r->map[1] = cq_ptr;
    r->map_len[1] = cq_ptr ? cq_len : 0;
    r->map[2] = sqes_ptr;
    r->map_len[2] = sqes_len;
    r->single_mmap = single;
    r->sq_head = (unsigned *)((char *)sq_ptr + p.sq_off.head);
    r->sq_tail = (unsigned *)((char *)sq_ptr + p.sq_off.tail);
    r->sq_mask = *(unsigned *)((char *)sq_ptr + p.sq_off.ring_mask);
    r->sq_entries = p.sq_entries;
    r->cq_head = (unsigned *)(cq_base + p.cq_off.head);
    r->cq_tail = (unsigned *)(cq_base + p.cq_off.tail);
    r->cq_mask = *(unsigned *)(cq_base + p.cq_off.ring_mask);
    r->cq_entries = p.cq_entries;
    r->cqes = (struct io_uring_cqe *)(cq_base + p.cq_off.cqes);
    r->sqes = sqes_ptr;
    r->shared[UZC_SH_SQ_TAIL] = *r->sq_tail;
    r->shared[UZC_SH_CQ_HEAD] = *r->cq_head;
    if (napi_create_external_arraybuffer(env, r->shared, sizeof r->shared, NULL, NULL, &shared) != napi_ok) {
      uzc_ring_drop(env, r);
      shared = NULL;
    }
  }
  if (!shared) {
    munmap(sq_ptr, sq_len);
    if (cq_ptr) munmap(cq_ptr, cq_len);
    munmap(sqes_ptr, sqes_len);
    close(fd);
    return uzc_int(env, -ENOMEM);
  }

  napi_value out, sq_off, cq_off;
  UZC_CALL(env, napi_create_object(env, &out));
  UZC_CALL(env, napi_create_object(env, &sq_off));
  UZC_CALL(env, napi_create_object(env, &cq_off));
  set_u32(env, out, "fd", fd);
  set_u32(env, out, "features", p.features);
  set_u32(env, out, "flags", p.flags);
  set_u32(env, out, "sqEntries", p.sq_entries);
  set_u32(env, out, "cqEntries", p.cq_entries);
  set_u32(env, sq_off, "head", p.sq_off.head);
  set_u32(env, sq_off, "tail", p.sq_off.tail);
  set_u32(env, sq_off, "ringMask", p.sq_off.ring_mask);
  set_u32(env, sq_off, "flags", p.sq_off.flags);
  set_u32(env, sq_off, "dropped", p.sq_off.dropped);
  set_u32(env, cq_off, "head", p.cq_off.head);
  set_u32(env, cq_off, "tail", p.cq_off.tail);
  set_u32(env, cq_off, "ringMask", p.cq_off.ring_mask);
  set_u32(env, cq_off, "overflow", p.cq_off.overflow);
  set_u32(env, cq_off, "cqes", p.cq_off.cqes);
  napi_set_named_property(env, out, "sqOff", sq_off);
  napi_set_named_property(env, out, "cqOff", cq_off);
  napi_set_named_property(env, out, "rings", rings);
  if (cq_ring) napi_set_named_property(env, out, "cqRing", cq_ring);
  napi_set_named_property(env, out, "sqes", sqes);
  napi_set_named_property(env, out, "shared", shared);
  return out;
}

/* enter(fd, toSubmit, minComplete, flags, timeoutNs) -> result or -errno.
 * timeoutNs >= 0 bounds a wait through IORING_ENTER_EXT_ARG, so no call can block forever.
 * A submit-only call interrupted by a signal is retried here (it never sleeps). */
napi_value uzc_enter(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int64_t fd, submit, min, flags, timeout_ns = -1;
  UZC_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  UZC_CHECK(env, argc >= 4 && !uzc_arg_int(env, argv[0], &fd) && !uzc_arg_int(env, argv[1], &submit) &&
                     !uzc_arg_int(env, argv[2], &min) && !uzc_arg_int(env, argv[3], &flags) &&
                     (argc < 5 || !uzc_arg_int(env, argv[4], &timeout_ns)),
            "enter(fd, toSubmit, minComplete, flags, timeoutNs?) expects integers");
  struct __kernel_timespec ts;
  struct io_uring_getevents_arg arg;
  void *argp = NULL;
  size_t argsz = 0;
  if (timeout_ns >= 0) {
    memset(&arg, 0, sizeof arg);
    ts.tv_sec = timeout_ns / 1000000000;
    ts.tv_nsec = timeout_ns % 1000000000;
    arg.ts = (unsigned long long)(uintptr_t)&ts;
    argp = &arg;
    argsz = sizeof arg;
    flags |= IORING_ENTER_EXT_ARG;
  }
  int ret;
  do {
    ret = sys_enter((int)fd, (unsigned)submit, (unsigned)min, (unsigned)flags, argp, argsz);
  } while (ret < 0 && errno == EINTR && min == 0);
  return uzc_int(env, ret < 0 ? -errno : ret);
}

/* register(fd, opcode, arg: ArrayBufferView | null, nrArgs) -> result or -errno.
 * TS lays out the argument structs (iovecs, probe) in a Buffer it keeps alive for the call. */
napi_value uzc_register(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int64_t fd, op, nr;
  void *data = NULL;
  UZC_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  UZC_CHECK(env, argc == 4 && !uzc_arg_int(env, argv[0], &fd) && !uzc_arg_int(env, argv[1], &op) &&
                     !uzc_arg_int(env, argv[3], &nr),
            "register(fd, opcode, arg, nrArgs) expects integers");
  napi_valuetype t;
  UZC_CALL(env, napi_typeof(env, argv[2], &t));
  if (t != napi_null && t != napi_undefined) {
    bool is_ta;
    UZC_CALL(env, napi_is_typedarray(env, argv[2], &is_ta));
    UZC_CHECK(env, is_ta, "register: arg must be a typed array or null");
    UZC_CALL(env, napi_get_typedarray_info(env, argv[2], NULL, NULL, &data, NULL, NULL));
  }
  int ret = sys_register((int)fd, (unsigned)op, data, (unsigned)nr);
  return uzc_int(env, ret < 0 ? -errno : ret);
}

/* unmap(arrayBuffer): detach first (JS loses access), then release the mapping. */
napi_value uzc_unmap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data;
  size_t len;
  bool is_ab;
  UZC_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  UZC_CHECK(env, argc == 1 && napi_is_arraybuffer(env, argv[0], &is_ab) == napi_ok && is_ab,
            "unmap(arrayBuffer) expects an ArrayBuffer");
  UZC_CALL(env, napi_get_arraybuffer_info(env, argv[0], &data, &len));
  if (data == NULL || len == 0) return uzc_int(env, 0); /* already detached */
  UZC_CALL(env, napi_detach_arraybuffer(env, argv[0]));
  uzc_ring_forget_map(env, data); /* teardown must not unmap it again */
  return uzc_int(env, munmap(data, len) < 0 ? -errno : 0);
}

/* address(ArrayBuffer | ArrayBufferView) -> the address of its first byte, as a Number (< 2^47).
 * TS caches it per ArrayBuffer: backing stores of non-resizable ArrayBuffers do not move. */
napi_value uzc_address(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  bool yes;
  UZC_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  UZC_CHECK(env, argc == 1, "address(buffer) expects one argument");
  if (napi_is_arraybuffer(env, argv[0], &yes) == napi_ok && yes) {
    UZC_CALL(env, napi_get_arraybuffer_info(env, argv[0], &data, NULL));
  } else if (napi_is_typedarray(env, argv[0], &yes) == napi_ok && yes) {
    UZC_CALL(env, napi_get_typedarray_info(env, argv[0], NULL, NULL, &data, NULL, NULL));
  } else if (napi_is_dataview(env, argv[0], &yes) == napi_ok && yes) {
    UZC_CALL(env, napi_get_dataview_info(env, argv[0], NULL, &data, NULL, NULL));
  } else {
    UZC_CHECK(env, 0, "address(buffer) expects an ArrayBuffer or a view");
  }
  return uzc_int(env, (double)(uintptr_t)data);
}
