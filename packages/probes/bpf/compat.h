/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kernel quirks, in one place. Each entry says which kernels and why.
 * Probe sources include this after vmlinux.h and never test kernel versions:
 * CO-RE field checks and load-time feature probes (see src/probeset.ts) decide.
 */
#ifndef STELLA_COMPAT_H
#define STELLA_COMPAT_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>

/*
 * Syscall numbers. The generic sys_enter/sys_exit tracepoints report the
 * native syscall number; 32-bit compat (ia32) syscalls use another table and
 * are not traced by this object (documented limitation).
 * x86_64: arch/x86/entry/syscalls/syscall_64.tbl.
 * arm64 has no open(2)/creat(2): include/uapi/asm-generic/unistd.h.
 */
#if defined(__TARGET_ARCH_x86)
#define NR_open 2
#define NR_creat 85
#define NR_open_by_handle_at 304
#define NR_openat 257
#define NR_openat2 437
/*
 * User-space syscall arguments in the pt_regs seen by raw sys_enter.
 * SYSCALL_*(regs) read through bpf_probe_read_kernel (any program type);
 * SYSCALL_*_REG(regs, direct) load directly when `direct` (a compile-time
 * constant) says regs is a BTF pointer, as in tp_btf: no helper call.
 */
#define STELLA_REG(regs, field, direct) ((direct) ? (regs)->field : BPF_CORE_READ((regs), field))
#define SYSCALL_ARG1(regs) BPF_CORE_READ((regs), di)
#define SYSCALL_ARG1_REG(regs, direct) STELLA_REG(regs, di, direct)
#define SYSCALL_ARG2(regs) BPF_CORE_READ((regs), si)
#define SYSCALL_ARG2_REG(regs, direct) STELLA_REG(regs, si, direct)
#define SYSCALL_ARG3(regs) BPF_CORE_READ((regs), dx)
#define SYSCALL_ARG3_REG(regs, direct) STELLA_REG(regs, dx, direct)
#define SYSCALL_ARG4(regs) BPF_CORE_READ((regs), r10)
#define SYSCALL_ARG4_REG(regs, direct) STELLA_REG(regs, r10, direct)
/* At sys_exit the syscall number is only in orig_ax. */
#define SYSCALL_NR(regs) BPF_CORE_READ((regs), orig_ax)
#define SYSCALL_NR_REG(regs, direct) STELLA_REG(regs, orig_ax, direct)
#elif defined(__TARGET_ARCH_arm64)
#define NR_open (-1)
#define NR_creat (-1)
#define NR_open_by_handle_at 265
#define NR_openat 56
#define NR_openat2 437
#define SYSCALL_ARG1(regs) BPF_CORE_READ((regs), orig_x0)
#define SYSCALL_ARG1_REG(regs, direct) STELLA_REG(regs, orig_x0, direct)
#define SYSCALL_ARG2(regs) BPF_CORE_READ((regs), regs[1])
#define SYSCALL_ARG2_REG(regs, direct) STELLA_REG(regs, regs[1], direct)
#define SYSCALL_ARG3(regs) BPF_CORE_READ((regs), regs[2])
#define SYSCALL_ARG3_REG(regs, direct) STELLA_REG(regs, regs[2], direct)
#define SYSCALL_ARG4(regs) BPF_CORE_READ((regs), regs[3])
#define SYSCALL_ARG4_REG(regs, direct) STELLA_REG(regs, regs[3], direct)
#define SYSCALL_NR(regs) BPF_CORE_READ((regs), syscallno)
#define SYSCALL_NR_REG(regs, direct) STELLA_REG(regs, syscallno, direct)
#else
#error "unsupported architecture: define __TARGET_ARCH_x86 or __TARGET_ARCH_arm64"
#endif

/*
 * struct mount is private to fs/ (fs/mount.h) but present in BTF; the walk
 * from a vfsmount to its struct mount is container_of, done with the CO-RE
 * offset of the embedded `mnt` so a layout change relocates.
 */
static __always_inline struct mount *real_mount(struct vfsmount *mnt)
{
	return (struct mount *)((char *)mnt - bpf_core_field_offset(struct mount, mnt));
}

/*
 * The exit status of a process whose last thread exits. When the group is
 * killed or calls exit_group(2), signal->group_exit_code holds the status the
 * parent will see (kernel/exit.c do_group_exit); otherwise task->exit_code.
 * SIGNAL_GROUP_EXIT is 0x4 in include/linux/sched/signal.h since 2.6.
 */
#define STELLA_SIGNAL_GROUP_EXIT 0x00000004

/*
 * Minimum kernel 5.17: bpf_loop (the cwd/dirfd path walk; an unrolled walk
 * of 64 components with mount crossings exceeds the verifier's budget),
 * plus ring buffers (5.8) and bpf_get_current_task_btf (5.11). Older kernels
 * fail at load with code 'LOAD' and the verifier log names the helper. lsm/file_open needs CONFIG_BPF_LSM with "bpf" in the
 * lsm= list; fentry needs CONFIG_FUNCTION_TRACER with direct calls: both are
 * optional and feature-probed before load.
 */

/*
 * Hide a value's known range from the compiler so a following `&= mask`
 * survives optimisation: the verifier (any kernel) needs the mask to bound a
 * variable size or offset, while clang drops it when it can prove the value
 * already fits.
 */
#define STELLA_OPAQUE(v) asm volatile("" : "+r"(v))

#endif /* STELLA_COMPAT_H */
