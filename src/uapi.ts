/**
 * Kernel ABI constants from <linux/io_uring.h> (uapi), spelled as in the header so they can be
 * grepped there. The distro header is the 6.1 version; newer values are from later kernels and
 * are probed before use, never assumed from `uname`.
 */

// Opcodes (enum io_uring_op).
export const IORING_OP_NOP = 0;
export const IORING_OP_POLL_ADD = 6;
export const IORING_OP_SENDMSG = 9;
export const IORING_OP_ASYNC_CANCEL = 14;
export const IORING_OP_SEND = 26;
export const IORING_OP_SPLICE = 30; // 5.7
export const IORING_OP_SEND_ZC = 47; // 6.0
export const IORING_OP_SENDMSG_ZC = 48; // 6.1

// io_uring_setup flags.
export const IORING_SETUP_CQSIZE = 1 << 3;
export const IORING_SETUP_SUBMIT_ALL = 1 << 7;
export const IORING_SETUP_COOP_TASKRUN = 1 << 8;
export const IORING_SETUP_TASKRUN_FLAG = 1 << 9;
export const IORING_SETUP_SINGLE_ISSUER = 1 << 12;
export const IORING_SETUP_DEFER_TASKRUN = 1 << 13;

// Features reported by io_uring_setup.
export const IORING_FEAT_SINGLE_MMAP = 1 << 0;
export const IORING_FEAT_NODROP = 1 << 1;
export const IORING_FEAT_SUBMIT_STABLE = 1 << 2;
export const IORING_FEAT_EXT_ARG = 1 << 8;

// io_uring_enter flags.
export const IORING_ENTER_GETEVENTS = 1 << 0;

// SQ ring flags.
export const IORING_SQ_CQ_OVERFLOW = 1 << 1;
export const IORING_SQ_TASKRUN = 1 << 2;

// SQE flags.
export const IOSQE_IO_LINK = 1 << 2;
export const IOSQE_ASYNC = 1 << 4;

// send/recv flags carried in sqe->ioprio.
export const IORING_RECVSEND_POLL_FIRST = 1 << 0;
export const IORING_RECVSEND_FIXED_BUF = 1 << 2;
export const IORING_SEND_ZC_REPORT_USAGE = 1 << 3; // 6.2
/** SEND/SEND_ZC: sqe.addr is an iovec array and sqe.len its length (no msghdr). 6.17. */
export const IORING_SEND_VECTORIZED = 1 << 5;

// Async cancel flags (sqe->cancel_flags, the msg_flags word).
export const IORING_ASYNC_CANCEL_ALL = 1 << 0;
export const IORING_ASYNC_CANCEL_FD = 1 << 1;
export const IORING_ASYNC_CANCEL_ANY = 1 << 2;

// splice(2) flags (sqe->splice_flags), <fcntl.h>.
export const SPLICE_F_MOVE = 1;
export const SPLICE_F_NONBLOCK = 2;
export const SPLICE_F_MORE = 4;
// poll(2) events (sqe->poll32_events).
export const POLLOUT = 0x004;

// CQE flags.
export const IORING_CQE_F_MORE = 1 << 1;
export const IORING_CQE_F_NOTIF = 1 << 3;
// In a notification's res: the kernel had to copy after all (REPORT_USAGE).
export const IORING_NOTIF_USAGE_ZC_COPIED = 0x80000000;

// io_uring_register opcodes.
export const IORING_REGISTER_BUFFERS = 0;
export const IORING_UNREGISTER_BUFFERS = 1;
export const IORING_REGISTER_PROBE = 8;
export const IORING_REGISTER_BUFFERS2 = 15;
export const IORING_REGISTER_BUFFERS_UPDATE = 16;
export const IO_URING_OP_SUPPORTED = 1 << 0;

// Sockets (linux/socket.h, linux/in.h).
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const MSG_WAITALL = 0x100;
export const SOL_UDP = 17;
export const UDP_SEGMENT = 103;

/** Sizes of kernel structs, in bytes. */
export const SQE_SIZE = 64;
export const CQE_SIZE = 16;
