/*
 * uzc_no_uring: runs a command with io_uring refused, the way container
 * runtimes refuse it (Docker's default seccomp profile since 25.0 has no
 * io_uring_* in its allow list, so they fail with EPERM). Lets the tests and
 * users see what uring-zc does where io_uring is blocked, without a container.
 *
 *   uzc_no_uring [--errno EPERM|ENOSYS | --kill] [--] COMMAND [ARG...]
 *
 *   --errno EPERM   io_uring_setup/enter/register fail with EPERM (default:
 *                   Docker's default profile)
 *   --errno ENOSYS  ... fail with ENOSYS (a kernel built without io_uring,
 *                   some other sandboxes)
 *   --kill          the process is killed with SIGSYS at its first io_uring
 *                   call (SECCOMP_RET_KILL_PROCESS; some sandboxes do this)
 *
 * The filter is installed in this process and then COMMAND is exec'd, so it
 * holds for COMMAND and everything it starts (seccomp filters are inherited
 * across fork, clone and execve, and cannot be removed). Every other system
 * call is allowed.
 *
 * Exit status (as env(1)): COMMAND's own; 125 when the launcher failed (bad
 * usage, the filter could not be installed); 126 when COMMAND could not be
 * run; 127 when it was not found.
 *
 * Written from seccomp(2), prctl(2) and the uapi headers <linux/seccomp.h>,
 * <linux/filter.h> and <linux/audit.h>. libc and kernel headers only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

/*
 * Since Linux 5.1 new system calls have one number on every architecture
 * (except alpha, ia64 and mips, which add an offset): io_uring_setup is 425
 * on x86_64, i386, aarch64 and arm alike. Defined here rather than taken from
 * <sys/syscall.h>, because the filter also matches the compat ABIs (i386
 * under x86_64, arm under aarch64), whose numbers the native header does not
 * give.
 */
#define NR_IO_URING_SETUP 425
#define NR_IO_URING_ENTER 426
#define NR_IO_URING_REGISTER 427

/* x32 system calls arrive with AUDIT_ARCH_X86_64 and this bit set in nr. */
#define X32_SYSCALL_BIT 0x40000000U

#ifndef SECCOMP_RET_KILL_PROCESS
#define SECCOMP_RET_KILL_PROCESS 0x80000000U
#endif

#ifndef AUDIT_ARCH_ARM
#define AUDIT_ARCH_ARM (EM_ARM | __AUDIT_ARCH_LE)
#endif

/* The architecture this launcher was built for: the filter must pass its own calls. */
#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__) && !defined(__AARCH64EB__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#else
#define NATIVE_ARCH 0
#endif

#define PROG "uzc_no_uring"

static void usage(const char *why, const char *arg)
{
	if (arg != NULL)
		fprintf(stderr, PROG ": %s: %s\n", why, arg);
	else
		fprintf(stderr, PROG ": %s\n", why);
	fprintf(stderr, "usage: " PROG " [--errno EPERM|ENOSYS | --kill] [--] COMMAND [ARG...]\n");
}

/*
 * The filter. seccomp(2): system call numbers differ between ABIs and a
 * process may use several (x86_64 runs i386 code), so the arch field is
 * checked first. An arch we know the numbers for goes on to the number
 * checks; any other arch is killed, since we cannot tell which of its calls
 * are io_uring (failing closed rather than letting io_uring through). A deny
 * list is right here, unlike for a sandbox: the point is to refuse exactly
 * these three calls and let the program run otherwise.
 *
 * BPF jump offsets count instructions after the jump: "[1] jt 4" goes to [6].
 */
static int install_filter(unsigned int refuse)
{
	struct sock_filter prog[] = {
		/* [0] */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		/* [1] */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 4, 0),
		/* [2] */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_AARCH64, 3, 0),
		/* [3] */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_I386, 2, 0),
		/* [4] */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_ARM, 1, 0),
		/* [5] */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		/* [6] */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		/*
		 * [7] x32 calls are x86_64 calls with X32_SYSCALL_BIT set in nr: fold
		 * them onto the native numbers. No call of the other ABIs has that bit
		 * (their numbers are far below it), so the fold changes nothing there.
		 */
		/* [7] */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, ~X32_SYSCALL_BIT),
		/* [8] */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_IO_URING_SETUP, 3, 0),
		/* [9] */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_IO_URING_ENTER, 2, 0),
		/* [10] */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_IO_URING_REGISTER, 1, 0),
		/* [11] */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		/* [12] */ BPF_STMT(BPF_RET | BPF_K, refuse),
	};
	struct sock_fprog fprog = { .len = sizeof(prog) / sizeof(prog[0]), .filter = prog };

	/*
	 * Without CAP_SYS_ADMIN the kernel accepts a filter only with no_new_privs
	 * set (so that a filter cannot trick a set-user-ID program); set it always,
	 * so that root and others run COMMAND alike.
	 */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		fprintf(stderr, PROG ": prctl(PR_SET_NO_NEW_PRIVS): %s\n", strerror(errno));
		return -1;
	}
	/*
	 * seccomp(2) rather than prctl(PR_SET_SECCOMP): TSYNC applies the filter to
	 * every thread (there is one here; this documents that none escapes).
	 * The libc wrapper may be missing, the system call never is (3.17+).
	 */
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fprog) != 0) {
		fprintf(stderr, PROG ": seccomp(SECCOMP_SET_MODE_FILTER): %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned int refuse = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "--kill") == 0) {
			refuse = SECCOMP_RET_KILL_PROCESS;
		} else if (strcmp(a, "--errno") == 0 || strncmp(a, "--errno=", 8) == 0) {
			const char *v = a[7] == '=' ? a + 8 : (i + 1 < argc ? argv[++i] : NULL);
			if (v != NULL && strcmp(v, "EPERM") == 0)
				refuse = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);
			else if (v != NULL && strcmp(v, "ENOSYS") == 0)
				refuse = SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA);
			else {
				usage("--errno takes EPERM or ENOSYS", v);
				return 125;
			}
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage("runs COMMAND with io_uring_setup, io_uring_enter and io_uring_register refused", NULL);
			return 0;
		} else {
			usage("unknown option", a);
			return 125;
		}
	}
	if (i >= argc) {
		usage("no command given", NULL);
		return 125;
	}
	if (NATIVE_ARCH == 0) {
		/* The filter would kill this very process at its next call. */
		fprintf(stderr, PROG ": built for an architecture whose system call numbers this launcher does not know (x86_64 and aarch64 only)\n");
		return 125;
	}
	if (install_filter(refuse) != 0)
		return 125;
	execvp(argv[i], &argv[i]);
	/* Only reached when execvp failed. */
	fprintf(stderr, PROG ": %s: %s\n", argv[i], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
