// SPDX-License-Identifier: Apache-2.0
/*
 * Network and TLS evidence: TCP state transitions, libc connect/accept and
 * OpenSSL session calls, with the in-kernel filters, dedup and exact
 * counters of common.h.
 *
 * No kprobes: TCP state comes from the inet_sock_set_state tracepoint
 * (tp_btf, no tracefs needed; raw_tp and the classic tracepoint are '?'
 * fallbacks user space enables when tp_btf is missing). Many transitions run
 * in softirq context where `current` is not the socket's owner, so owners
 * are remembered per `struct sock *` at SYN_SENT (process context of
 * connect(2)) and at the libc accept return (fd -> socket); a transition of
 * a socket with no remembered owner says "attribution unknown".
 *
 * TLS sessions are tied to their TCP socket exactly, not by guessing: while
 * a thread is inside an SSL_* call, the socket it sends or receives on
 * (sock_send_length / sock_recv_length tracepoints) is the session's. A
 * session whose I/O runs outside SSL calls (memory BIOs, as in Node.js)
 * keeps an unknown tuple.
 *
 * SSL_read/SSL_write buffers are never read.
 */
#include "net.h"
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

/*
 * Which records carry up to NET_STACK_MAX user frames: bit 0 (NET_STACK_SOCK)
 * connect/accept, bit 1 (NET_STACK_TLS) TLS calls. A family that is off costs
 * no unwind at all.
 */
#define NET_STACK_SOCK 1
#define NET_STACK_TLS 2
const volatile __u8 cfg_user_stack = NET_STACK_SOCK | NET_STACK_TLS;
/*
 * Where connect/accept records come from. 1 (default): the connect, accept
 * and accept4 syscalls at sys_enter/sys_exit: no uprobe traps (a uprobe hit
 * costs ~16 us on this class of VM, a third of a loopback connect), exact
 * errno, and programs that bypass libc (Go, static binaries) are covered.
 * 0: libc uprobes (entry + return) on each libc file, errno still taken at
 * sys_exit.
 */
const volatile __u8 cfg_sock_syscalls = 1;
/*
 * 1: TLS sessions take their role and server name from the first handshake
 * message the process writes (write, writev or sendto at sys_enter): a
 * ClientHello makes it the client and carries the server name, a
 * ServerHello makes it the server. This replaces three uprobes, each a trap
 * per call: SSL_ctrl (OpenSSL's catch-all setter and getter, which
 * `openssl s_server -www` calls 15 times per session) for the name, and
 * SSL_set_connect_state / SSL_set_accept_state for the role. Only the
 * host_name bytes of the server_name extension are copied.
 */
const volatile __u8 cfg_tls_wire = 0;

/* Owner of a socket, remembered in process context. */
struct net_owner {
	__u64 cgroup_id;
	__u64 start_ns;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u8 direction;
	__u8 filtered; /* the owner is excluded by pid/cgroup filters */
	__u16 lport;   /* local port once bound: a closing socket is unhashed and reads 0 */
	char comm[STELLA_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* struct sock * */
	__type(value, struct net_owner);
} sk_owner SEC(".maps");

/* Arguments of an in-flight libc connect/accept, per thread. */
struct net_sock_args {
	__u64 start_ns;
	__u64 addr_ptr;    /* struct sockaddr * */
	__u64 addrlen_ptr; /* accept: socklen_t * */
	__u32 addrlen;     /* connect: the argument */
	__s32 fd;
	__u32 flags;
	__u8 call;
	__u8 errno_known;
	__u8 pad[2];
	__s64 sys_ret;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct net_sock_args);
} sock_args SEC(".maps");

/* An in-flight SSL_* call, per thread. */
struct net_tls_args {
	__u64 ssl;
	__u64 start_ns;
	__s64 num;
	__u64 out_ptr; /* _ex: size_t *readbytes / *written */
	struct net_tuple t;
	__u8 op;
	__u8 tuple_known;
	__u8 pad[2];
	__s32 fd; /* the socket's descriptor, once socket I/O in the call named it */
};

/*
 * A session driven through memory BIOs (Node.js, Python asyncio) writes no
 * socket inside its SSL calls: the application sends the ClientHello (or
 * ServerHello) itself right after the handshake call returns, from the same
 * thread. Such a thread keeps a tls_args entry with this op between calls:
 * the session whose hello is still to be written. One map, so a write by
 * any other thread costs one lookup. LRU: a thread that exits while waiting
 * leaves an entry that must not fill the map.
 */
#define NET_TLS_HELLO_PENDING 0xff

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct net_tls_args);
} tls_args SEC(".maps");

struct net_session_key {
	__u64 ssl;
	__u32 tgid;
	__u32 pad;
};

struct net_session {
	__u64 start_ns;
	struct net_tuple t;
	__s32 fd;
	__u32 attempts;
	__u32 sni_len;
	__u8 flags;          /* NET_TLS_SNI_SET, NET_TLS_SNI_TRUNCATED, NET_TLS_TUPLE_KNOWN, NET_TLS_SERVER */
	__u8 handshake_done;
	__u8 pad[2];
	char sni[NET_SNI_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct net_session_key);
	__type(value, struct net_session);
} tls_sessions SEC(".maps");

/* Per-CPU scratch: records and a zeroed session template are too big for the stack. */
struct net_scratch {
	struct net_session zero_session;
	struct net_tls_event tls;
	struct net_sock_event sock;
	struct net_tcp_state_event tcp;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct net_scratch);
} net_scratch SEC(".maps");

static __always_inline struct net_scratch *scratch(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&net_scratch, &zero);
}

/* FNV-1a over 8-byte words: enough to key dedup facts of fixed-size data. */
static __always_inline __u64 hash_words(__u64 h, const __u64 *w, int n)
{
#pragma unroll
	for (int i = 0; i < 16; i++) {
		if (i >= n)
			break;
		h ^= w[i];
		h *= STELLA_FNV_PRIME;
	}
	return h;
}

/* ---- sockets ---- */

/* Local and remote endpoint of a socket (IPv4/IPv6), ports in host order. */
static __always_inline void read_tuple(const struct sock *sk, struct net_tuple *t)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	t->family = family;
	t->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	t->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == NET_AF_INET) {
		__u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(t->laddr, &l, 4);
		__builtin_memcpy(t->raddr, &r, 4);
	} else if (family == NET_AF_INET6) {
		bpf_core_read(t->laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(t->raddr, 16, &sk->__sk_common.skc_v6_daddr);
	} else {
		t->family = 0;
	}
}

/* struct sock behind a descriptor of the current task, or NULL. */
static __always_inline struct sock *sock_of_fd(int fd)
{
	if (fd < 0)
		return NULL;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return NULL;
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	if ((unsigned int)fd >= max)
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) < 0 || !f)
		return NULL;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & 00170000) != 0140000) /* S_IFSOCK */
		return NULL;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	if (!sock)
		return NULL;
	return BPF_CORE_READ(sock, sk);
}

static __always_inline void owner_from_current(struct net_owner *o, __u64 now, __u8 dir)
{
	struct stella_event_header h = {};
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 cg = bpf_get_current_cgroup_id();
	stella_fill_header(&h, 0, pid_tgid, cg, now);
	o->cgroup_id = cg;
	o->start_ns = now;
	o->pid = h.pid;
	o->tid = h.tid;
	o->ppid = h.ppid;
	o->uid = h.uid;
	o->gid = h.gid;
	o->direction = dir;
	o->filtered = stella_task_filtered(h.pid, cg);
	__builtin_memcpy(o->comm, h.comm, STELLA_COMM_LEN);
}

/* ---- exec hints ---- */

/*
 * A new program image: user space re-scans that process's mappings so a
 * libc or libssl file never seen before is probed without waiting for the
 * periodic scan. Pids only, on their own small ring (never in the evidence
 * stream); a full ring drops hints, which the periodic scan covers.
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} exec_hints SEC(".maps");

static __always_inline int on_exec_hint(void)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	bpf_ringbuf_output(&exec_hints, &pid, sizeof(pid), 0);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(net_exec_hint_btf, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return on_exec_hint();
}

SEC("?raw_tp/sched_process_exec")
int BPF_PROG(net_exec_hint_raw, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return on_exec_hint();
}

/* ---- TCP state ---- */

static __always_inline int on_state(const struct sock *sk, int oldstate, int newstate)
{
	__u8 ev;
	if (newstate == NET_TCP_SYN_SENT && oldstate == NET_TCP_CLOSE)
		ev = NET_TCP_EV_CONNECT;
	else if (newstate == NET_TCP_ESTABLISHED && oldstate == NET_TCP_SYN_SENT)
		ev = NET_TCP_EV_ESTABLISHED;
	else if (newstate == NET_TCP_ESTABLISHED && oldstate == NET_TCP_SYN_RECV)
		ev = NET_TCP_EV_ACCEPTED;
	else if (newstate == NET_TCP_CLOSE && oldstate == NET_TCP_SYN_SENT)
		ev = NET_TCP_EV_REFUSED;
	else if (newstate == NET_TCP_CLOSE && oldstate == NET_TCP_SYN_RECV)
		ev = NET_TCP_EV_FAILED;
	else if (newstate == NET_TCP_CLOSE && (oldstate == NET_TCP_ESTABLISHED || oldstate == NET_TCP_CLOSE_WAIT))
		ev = NET_TCP_EV_RESET;
	else if (newstate == NET_TCP_CLOSE && oldstate != NET_TCP_LISTEN)
		ev = NET_TCP_EV_CLOSED;
	else
		return 0; /* intermediate transition: collapsed, not a record */
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	stella_seen(NET_PROBE_TCP_STATE);

	__u64 now = bpf_ktime_get_ns();
	__u64 key = (__u64)sk;
	struct net_owner fresh = {};
	struct net_owner *o = NULL;
	__u8 attribution = 0;
	if (ev == NET_TCP_EV_CONNECT) {
		/* tcp_v4_connect / tcp_v6_connect: process context of the owner. */
		owner_from_current(&fresh, now, NET_DIR_ACTIVE);
		bpf_map_update_elem(&sk_owner, &key, &fresh, BPF_ANY);
		o = &fresh;
		attribution = NET_ATTR_OWNER | NET_ATTR_CURRENT;
	} else {
		o = bpf_map_lookup_elem(&sk_owner, &key);
		if (o)
			attribution = NET_ATTR_OWNER;
	}
	if (ev == NET_TCP_EV_ACCEPTED && !o) {
		/* Softirq: the owner is whoever accept()s it later. Remember the start. */
		fresh.start_ns = now;
		fresh.lport = BPF_CORE_READ(sk, __sk_common.skc_num);
		fresh.direction = NET_DIR_PASSIVE;
		bpf_map_update_elem(&sk_owner, &key, &fresh, BPF_NOEXIST);
	}

	struct net_scratch *s = scratch();
	if (!s) {
		stella_count(NET_PROBE_TCP_STATE, STELLA_C_LOST);
		return 0;
	}
	struct net_tcp_state_event *e = &s->tcp;
	__builtin_memset(e, 0, sizeof(*e));
	e->hdr.mono_ns = now;
	e->hdr.kind = NET_KIND_TCP_STATE;
	if (o && o->pid != 0) {
		e->hdr.cgroup_id = o->cgroup_id;
		e->hdr.pid = o->pid;
		e->hdr.tid = o->tid;
		e->hdr.ppid = o->ppid;
		e->hdr.uid = o->uid;
		e->hdr.gid = o->gid;
		__builtin_memcpy(e->hdr.comm, o->comm, STELLA_COMM_LEN);
	} else {
		attribution = 0;
	}
	e->oldstate = oldstate;
	e->newstate = newstate;
	e->event = ev;
	e->attribution = attribution;
	e->direction = o ? o->direction : (ev == NET_TCP_EV_ACCEPTED ? NET_DIR_PASSIVE : NET_DIR_UNKNOWN);
	read_tuple(sk, &e->t);
	if (o && ev == NET_TCP_EV_ESTABLISHED)
		o->lport = e->t.lport;
	if (newstate == NET_TCP_CLOSE) {
		if (o && e->t.lport == 0)
			e->t.lport = o->lport;
		if (o && o->start_ns)
			e->duration_ns = now - o->start_ns;
		const struct tcp_sock *tp = (const struct tcp_sock *)sk;
		e->bytes_acked = BPF_CORE_READ(tp, bytes_acked);
		e->bytes_received = BPF_CORE_READ(tp, bytes_received);
		bpf_map_delete_elem(&sk_owner, &key);
	}

	/* Filters: decided in process context for the owner; an unknown owner
	 * cannot pass an allow-list. */
	if ((o && o->filtered) || (!attribution && cfg_cgroup_filter)) {
		stella_count(NET_PROBE_TCP_STATE, STELLA_C_FILTERED);
		return 0;
	}
	struct stella_dedup_key dk = {};
	if (cfg_dedup) {
		/* Fact: (cgroup, remote endpoint for active / local port + peer address for passive, event). */
		__u64 w[3] = {};
		__builtin_memcpy(w, e->t.raddr, 16);
		w[2] = ((__u64)e->t.family << 32) |
		       (e->direction == NET_DIR_PASSIVE ? e->t.lport : e->t.rport);
		dk.cgroup_id = e->hdr.cgroup_id;
		dk.hash = hash_words(STELLA_FNV_OFFSET, w, 3);
		dk.kind = NET_KIND_TCP_STATE;
		dk.fclass = ((__u32)ev << 8) | e->direction;
		if (stella_dedup_seen(&dk, now)) {
			stella_count(NET_PROBE_TCP_STATE, STELLA_C_DEDUPLICATED);
			return 0;
		}
	}
	if (stella_output(NET_PROBE_TCP_STATE, e, sizeof(*e)) != 0)
		stella_dedup_forget(&dk);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(net_tcp_state_btf, const struct sock *sk, const int oldstate, const int newstate)
{
	return on_state(sk, oldstate, newstate);
}

SEC("?raw_tp/inet_sock_set_state")
int BPF_PROG(net_tcp_state_raw, const struct sock *sk, const int oldstate, const int newstate)
{
	return on_state(sk, oldstate, newstate);
}

/* Classic tracepoint: needs tracefs mounted; used only where tp_btf and raw_tp fail. */
SEC("?tracepoint/sock/inet_sock_set_state")
int net_tcp_state_tp(struct trace_event_raw_inet_sock_set_state *ctx)
{
	return on_state((const struct sock *)ctx->skaddr, ctx->oldstate, ctx->newstate);
}

/* ---- libc connect / accept ---- */

static __always_inline int sock_enter(__u8 call, int fd, __u64 addr, __u64 addrlen, __u64 addrlen_ptr, __u32 flags)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct net_sock_args a = {};
	a.start_ns = bpf_ktime_get_ns();
	a.addr_ptr = addr;
	a.addrlen = (__u32)addrlen;
	a.addrlen_ptr = addrlen_ptr;
	a.fd = fd;
	a.flags = flags;
	a.call = call;
	bpf_map_update_elem(&sock_args, &pid_tgid, &a, BPF_ANY);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(net_connect_enter, int fd, const void *addr, __u32 addrlen)
{
	return sock_enter(NET_CALL_CONNECT, fd, (__u64)addr, addrlen, 0, 0);
}

SEC("uprobe")
int BPF_KPROBE(net_accept_enter, int fd, void *addr, __u32 *addrlen)
{
	return sock_enter(NET_CALL_ACCEPT, fd, (__u64)addr, 0, (__u64)addrlen, 0);
}

SEC("uprobe")
int BPF_KPROBE(net_accept4_enter, int fd, void *addr, __u32 *addrlen, int flags)
{
	return sock_enter(NET_CALL_ACCEPT4, fd, (__u64)addr, 0, (__u64)addrlen, flags);
}

static __always_inline int emit_sock(void *ctx, struct net_sock_args *ap, int ret, __s32 err, bool err_known);

/* Syscall source (cfg_sock_syscalls): arguments kept per thread at sys_enter. */
static __always_inline int on_tls_write(__u64 buf, __u64 count, bool vector);

static __always_inline int on_sys_enter(struct pt_regs *regs, long id)
{
	if (cfg_tls_wire && (id == NET_NR_write || id == NET_NR_sendto || id == NET_NR_writev))
		return on_tls_write(SYSCALL_ARG2(regs), SYSCALL_ARG3(regs), id == NET_NR_writev);
	if (!cfg_sock_syscalls)
		return 0;
	if (id == NET_NR_connect)
		return sock_enter(NET_CALL_CONNECT, SYSCALL_ARG1(regs), SYSCALL_ARG2(regs), SYSCALL_ARG3(regs), 0, 0);
	if (id == NET_NR_accept)
		return sock_enter(NET_CALL_ACCEPT, SYSCALL_ARG1(regs), SYSCALL_ARG2(regs), 0, SYSCALL_ARG3(regs), 0);
	if (id == NET_NR_accept4)
		return sock_enter(NET_CALL_ACCEPT4, SYSCALL_ARG1(regs), SYSCALL_ARG2(regs), 0, SYSCALL_ARG3(regs),
				  SYSCALL_ARG4(regs));
	return 0;
}

/*
 * Syscall source: the record is built at sys_exit. libc source: libc turns
 * the syscall's -errno into -1 + errno, so errno is taken here for the
 * uretprobe to report.
 */
static __always_inline int on_sys_exit(void *ctx, struct pt_regs *regs, long nr, long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (cfg_sock_syscalls) {
		if (nr != NET_NR_connect && nr != NET_NR_accept && nr != NET_NR_accept4)
			return 0;
		struct net_sock_args *a = bpf_map_lookup_elem(&sock_args, &pid_tgid);
		if (!a)
			return 0;
		struct net_sock_args args = *a;
		bpf_map_delete_elem(&sock_args, &pid_tgid);
		return emit_sock(ctx, &args, ret < 0 ? -1 : (int)ret, ret < 0 ? (__s32)-ret : 0, true);
	}
	struct net_sock_args *a = bpf_map_lookup_elem(&sock_args, &pid_tgid);
	if (!a)
		return 0;
	if (nr == NET_NR_connect || nr == NET_NR_accept || nr == NET_NR_accept4) {
		a->sys_ret = ret;
		a->errno_known = 1;
	}
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(net_sys_enter_btf, struct pt_regs *regs, long id)
{
	return on_sys_enter(regs, id);
}

SEC("?raw_tp/sys_enter")
int BPF_PROG(net_sys_enter_raw, struct pt_regs *regs, long id)
{
	return on_sys_enter(regs, id);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(net_sys_exit_btf, struct pt_regs *regs, long ret)
{
	/* A BTF-typed pointer: a plain load, no probe-read helper on every syscall. */
	return on_sys_exit(ctx, regs, NET_SYSCALL_NR_BTF(regs), ret);
}

SEC("?raw_tp/sys_exit")
int BPF_PROG(net_sys_exit_raw, struct pt_regs *regs, long ret)
{
	return on_sys_exit(ctx, regs, SYSCALL_NR(regs), ret);
}

/* Build and submit a connect/accept record. ret/err are libc-style: -1 and errno on failure. */
static __always_inline int emit_sock(void *ctx, struct net_sock_args *ap, int ret, __s32 err, bool err_known)
{
	struct net_sock_args args = *ap;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 probe = args.call == NET_CALL_CONNECT ? NET_PROBE_CONNECT : NET_PROBE_ACCEPT;
	stella_seen(probe);
	__u64 now = bpf_ktime_get_ns();
	__u64 cg = bpf_get_current_cgroup_id();
	if (stella_task_filtered(pid_tgid >> 32, cg)) {
		stella_count(probe, STELLA_C_FILTERED);
		return 0;
	}
	struct net_scratch *s = scratch();
	if (!s) {
		stella_count(probe, STELLA_C_LOST);
		return 0;
	}
	struct net_sock_event *e = &s->sock;
	__builtin_memset(e, 0, sizeof(*e));
	stella_fill_header(&e->hdr, args.call == NET_CALL_CONNECT ? NET_KIND_CONNECT : NET_KIND_ACCEPT, pid_tgid,
			   cg, now);
	e->duration_ns = now - args.start_ns;
	e->ret = ret;
	e->call = args.call;
	e->accept_flags = args.flags;
	if (err_known) {
		e->sock_flags |= NET_ERRNO_KNOWN;
		e->err = err;
	}

	/* The address: connect's argument, or the peer address accept wrote. */
	__u32 len = args.addrlen;
	if (args.call != NET_CALL_CONNECT) {
		len = 0;
		if (args.addrlen_ptr && ret >= 0)
			bpf_probe_read_user(&len, sizeof(len), (void *)args.addrlen_ptr);
		if (!args.addr_ptr)
			len = 0;
	}
	if (len > NET_SOCKADDR_MAX) {
		e->sock_flags |= NET_SA_TRUNCATED;
		len = NET_SOCKADDR_MAX;
	}
	if (len > 0) {
		__u32 n = len & 0xff;
		if (n > NET_SOCKADDR_MAX)
			n = NET_SOCKADDR_MAX;
		if (bpf_probe_read_user(e->sockaddr, n, (void *)args.addr_ptr) < 0) {
			e->sock_flags |= NET_SA_FAULT;
			len = 0;
		}
	}
	e->addrlen = len;

	/* The socket behind the fd: its 4-tuple, and (accept) its owner from now on. */
	int fd = args.call == NET_CALL_CONNECT ? args.fd : ret;
	e->fd = args.call == NET_CALL_CONNECT ? args.fd : (ret >= 0 ? ret : -1);
	struct sock *sk = sock_of_fd(fd);
	if (sk) {
		read_tuple(sk, &e->t);
		if (e->t.family)
			e->sock_flags |= NET_TUPLE_FROM_FD;
		if (args.call != NET_CALL_CONNECT && e->t.family) {
			__u64 key = (__u64)sk;
			struct net_owner o = {};
			struct net_owner *prev = bpf_map_lookup_elem(&sk_owner, &key);
			owner_from_current(&o, now, NET_DIR_PASSIVE);
			o.lport = e->t.lport;
			if (prev && prev->start_ns)
				o.start_ns = prev->start_ns;
			bpf_map_update_elem(&sk_owner, &key, &o, BPF_ANY);
		}
	}
	struct stella_dedup_key dk = {};
	if (cfg_dedup) {
		/* Fact: (cgroup, remote endpoint, call, outcome). connect: the
		 * destination; accept: the local port and the peer's address, not
		 * its ephemeral port. */
		dk.cgroup_id = cg;
		if (args.call == NET_CALL_CONNECT || !e->t.family) {
			dk.hash = hash_words(STELLA_FNV_OFFSET, (const __u64 *)e->sockaddr, 16);
		} else {
			__u64 w[3] = {};
			__builtin_memcpy(w, e->t.raddr, 16);
			w[2] = ((__u64)e->t.family << 32) | e->t.lport;
			dk.hash = hash_words(STELLA_FNV_OFFSET, w, 3);
		}
		dk.kind = e->hdr.kind;
		dk.fclass = ((__u32)e->call << 16) | (ret < 0 ? (e->err & 0xffff) | 0x8000 : 0);
		if (stella_dedup_seen(&dk, now)) {
			stella_count(probe, STELLA_C_DEDUPLICATED);
			return 0;
		}
	}
	/* Unwinding is the costliest step: only for records that are sent. */
	if (cfg_user_stack & NET_STACK_SOCK) {
		long n = bpf_get_stack(ctx, e->stack, sizeof(e->stack), BPF_F_USER_STACK);
		e->stack_len = n > 0 ? (__u64)n / 8 : 0;
	}
	if (stella_output(probe, e, sizeof(*e)) != 0)
		stella_dedup_forget(&dk);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(net_sock_exit, int ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct net_sock_args *a = bpf_map_lookup_elem(&sock_args, &pid_tgid);
	if (!a)
		return 0;
	struct net_sock_args args = *a;
	bpf_map_delete_elem(&sock_args, &pid_tgid);
	__s32 err = args.sys_ret < 0 ? (__s32)-args.sys_ret : 0;
	return emit_sock(ctx, &args, ret, err, args.errno_known);
}

/* ---- OpenSSL ---- */

static __always_inline struct net_session *session(__u32 tgid, __u64 ssl, __u64 now)
{
	struct net_session_key k = {.ssl = ssl, .tgid = tgid};
	struct net_session *v = bpf_map_lookup_elem(&tls_sessions, &k);
	if (v)
		return v;
	struct net_scratch *s = scratch();
	if (!s)
		return NULL;
	__builtin_memset(&s->zero_session, 0, sizeof(s->zero_session));
	s->zero_session.start_ns = now;
	s->zero_session.fd = -1;
	bpf_map_update_elem(&tls_sessions, &k, &s->zero_session, BPF_NOEXIST);
	return bpf_map_lookup_elem(&tls_sessions, &k);
}

/*
 * ClientHello layout (RFC 8446 4.1.2, the same in TLS 1.0-1.2): record
 * header (type 22, version 3.x, length: 5 bytes), handshake header (type 1,
 * length: 4), client_version (2), random (32), then session_id<0..32>,
 * cipher_suites<2..2^16-2>, compression_methods<1..2^8-1> and
 * extensions<8..2^16-1>. server_name (RFC 6066 3) is extension 0:
 * ServerNameList length (2), name_type 0 = host_name (1), length (2), name.
 */
#define NET_HELLO_SID_OFF 43
#define NET_HELLO_MAX_EXT 32

static __always_inline int read_be16(__u64 at, __u32 *v)
{
	__u8 b[2];
	if (bpf_probe_read_user(b, 2, (void *)at) < 0)
		return -1;
	*v = ((__u32)b[0] << 8) | b[1];
	return 0;
}

#define NET_HS_CLIENT_HELLO 1
#define NET_HS_SERVER_HELLO 2

/*
 * The first handshake message of a TLS record at buf (count bytes written):
 * its type, or -1 when buf is no TLS handshake record. A ClientHello's host
 * name goes into the session.
 */
static __always_inline int hello_sni(__u64 buf, __u64 count, struct net_session *sess)
{
	__u8 h[6];
	if (count < 6 || bpf_probe_read_user(h, sizeof(h), (void *)buf) < 0)
		return -1;
	if (h[0] != 0x16 || h[1] != 0x03)
		return -1;
	if (h[5] != NET_HS_CLIENT_HELLO || count < NET_HELLO_SID_OFF + 1)
		return h[5];
	__u64 end = 5 + (((__u32)h[3] << 8) | h[4]);
	if (end > count)
		end = count;
	__u8 b1 = 0;
	__u32 b2 = 0;
	__u64 pos = NET_HELLO_SID_OFF;
	if (bpf_probe_read_user(&b1, 1, (void *)(buf + pos)) < 0)
		return 1;
	pos += 1 + b1;
	if (read_be16(buf + pos, &b2) < 0)
		return 1;
	pos += 2 + b2;
	if (bpf_probe_read_user(&b1, 1, (void *)(buf + pos)) < 0)
		return 1;
	pos += 1 + b1 + 2; /* and the extensions' total length */
	for (int i = 0; i < NET_HELLO_MAX_EXT; i++) {
		__u8 e[4];
		if (pos + 4 > end || bpf_probe_read_user(e, 4, (void *)(buf + pos)) < 0)
			return 1;
		__u32 len = ((__u32)e[2] << 8) | e[3];
		if (e[0] != 0 || e[1] != 0) {
			pos += 4 + len;
			continue;
		}
		__u8 sn[5];
		if (pos + 9 > end || bpf_probe_read_user(sn, 5, (void *)(buf + pos + 4)) < 0 || sn[2] != 0)
			return 1;
		__u32 n = ((__u32)sn[3] << 8) | sn[4];
		if (n == 0 || pos + 9 + n > end)
			return 1;
		__u8 truncated = n > NET_SNI_MAX - 1;
		if (n > NET_SNI_MAX - 1)
			n = NET_SNI_MAX - 1;
		if (bpf_probe_read_user(sess->sni, n, (void *)(buf + pos + 9)) < 0)
			return 1;
		sess->sni[n & (NET_SNI_MAX - 1)] = 0;
		sess->sni_len = n;
		sess->flags |= NET_TLS_SNI_SET | (truncated ? NET_TLS_SNI_TRUNCATED : 0);
		return 1;
	}
	return 1;
}

/*
 * A write by a thread inside an SSL call (socket BIO), or by a thread whose
 * memory-BIO session still owes its ClientHello: if the bytes are that
 * ClientHello, the session gets its server name.
 */
static __always_inline int on_tls_write(__u64 buf, __u64 count, bool vector)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct net_tls_args *a = bpf_map_lookup_elem(&tls_args, &pid_tgid);
	if (!a)
		return 0;
	__u64 ssl = a->ssl;
	__u64 start_ns = a->start_ns;
	bool pending = a->op == NET_TLS_HELLO_PENDING;
	if (vector) {
		/* writev(fd, iov, iovcnt): the record starts in the first buffer. */
		struct iovec iov = {};
		if (count < 1 || bpf_probe_read_user(&iov, sizeof(iov), (void *)buf) < 0)
			return 0;
		buf = (__u64)iov.iov_base;
		count = iov.iov_len;
	}
	struct net_session_key k = {.ssl = ssl, .tgid = pid_tgid >> 32};
	struct net_session *sess =
		pending ? bpf_map_lookup_elem(&tls_sessions, &k) : session(pid_tgid >> 32, ssl, start_ns);
	if (!sess || (sess->flags & (NET_TLS_CLIENT | NET_TLS_SERVER)) || sess->handshake_done) {
		if (pending)
			bpf_map_delete_elem(&tls_args, &pid_tgid);
		return 0;
	}
	int type = hello_sni(buf, count, sess);
	if (type < 0)
		return 0; /* not a handshake record: the hello may still come */
	/* RFC 8446 4.1: the client speaks first, the server answers with a ServerHello (or a HelloRetryRequest, also type 2). */
	if (type == NET_HS_CLIENT_HELLO)
		sess->flags |= NET_TLS_CLIENT;
	else if (type == NET_HS_SERVER_HELLO)
		sess->flags |= NET_TLS_SERVER;
	if (pending)
		bpf_map_delete_elem(&tls_args, &pid_tgid);
	return 0;
}

static __always_inline int tls_enter(__u8 op, __u64 ssl, __s64 num, __u64 out_ptr)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct net_tls_args *outer = bpf_map_lookup_elem(&tls_args, &pid_tgid);
	/* SSL_connect/SSL_accept call SSL_do_handshake on the same session: the
	 * outermost call names the record (and the role); the inner return emits it. */
	if (outer && outer->op != NET_TLS_HELLO_PENDING && outer->ssl == ssl)
		return 0;
	struct net_tls_args a = {};
	a.ssl = ssl;
	a.start_ns = bpf_ktime_get_ns();
	a.num = num;
	a.out_ptr = out_ptr;
	a.fd = -1;
	a.op = op;
	bpf_map_update_elem(&tls_args, &pid_tgid, &a, BPF_ANY);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(net_ssl_read_enter, void *ssl, void *buf, int num)
{
	return tls_enter(NET_TLS_READ, (__u64)ssl, num, 0);
}

SEC("uprobe")
int BPF_KPROBE(net_ssl_write_enter, void *ssl, const void *buf, int num)
{
	return tls_enter(NET_TLS_WRITE, (__u64)ssl, num, 0);
}

SEC("uprobe")
int BPF_KPROBE(net_ssl_read_ex_enter, void *ssl, void *buf, __u64 num, __u64 *readbytes)
{
	return tls_enter(NET_TLS_READ_EX, (__u64)ssl, (__s64)num, (__u64)readbytes);
}

SEC("uprobe")
int BPF_KPROBE(net_ssl_write_ex_enter, void *ssl, const void *buf, __u64 num, __u64 *written)
{
	return tls_enter(NET_TLS_WRITE_EX, (__u64)ssl, (__s64)num, (__u64)written);
}

SEC("uprobe")
int BPF_KPROBE(net_ssl_do_handshake_enter, void *ssl)
{
	return tls_enter(NET_TLS_DO_HANDSHAKE, (__u64)ssl, 0, 0);
}

SEC("uprobe")
int BPF_KPROBE(net_ssl_connect_enter, void *ssl)
{
	return tls_enter(NET_TLS_CONNECT, (__u64)ssl, 0, 0);
}

SEC("uprobe")
int BPF_KPROBE(net_ssl_accept_enter, void *ssl)
{
	return tls_enter(NET_TLS_ACCEPT, (__u64)ssl, 0, 0);
}

/* The socket a thread inside an SSL call talks on is that session's socket. */
/*
 * The descriptor of sk in the current task, or -1: the first argument of the
 * syscall being served, which is the descriptor for read, write, send*,
 * recv* and their vector forms, checked against the task's fd table (any
 * other syscall, or io_uring, fails the check). This is what an SSL_set_fd
 * uprobe (a trap per session) used to give. bpf_task_pt_regs is 5.15 and
 * bpf_get_current_task_btf 5.11: libbpf resolves the enum checks at load,
 * and user space keeps the SSL_set_fd uprobe on kernels without them.
 */
static __always_inline int fd_of_current_syscall(const struct sock *sk)
{
	if (!bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs) ||
	    !bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf))
		return -1;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	int fd = (int)SYSCALL_ARG1(regs);
	return sock_of_fd(fd) == sk ? fd : -1;
}

static __always_inline int on_sock_io(const struct sock *sk)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct net_tls_args *a = bpf_map_lookup_elem(&tls_args, &pid_tgid);
	if (!a || a->tuple_known || a->op == NET_TLS_HELLO_PENDING)
		return 0;
	read_tuple(sk, &a->t);
	if (a->t.family) {
		a->tuple_known = 1;
		a->fd = fd_of_current_syscall(sk);
	}
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(net_sock_send_btf, struct sock *sk, int ret, int flags)
{
	return on_sock_io(sk);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(net_sock_recv_btf, struct sock *sk, int ret, int flags)
{
	return on_sock_io(sk);
}

SEC("?raw_tp/sock_send_length")
int BPF_PROG(net_sock_send_raw, struct sock *sk, int ret, int flags)
{
	return on_sock_io(sk);
}

SEC("?raw_tp/sock_recv_length")
int BPF_PROG(net_sock_recv_raw, struct sock *sk, int ret, int flags)
{
	return on_sock_io(sk);
}

SEC("uprobe")
int BPF_KPROBE(net_ssl_set_fd_enter, void *ssl, int fd)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct net_session *sess = session(pid_tgid >> 32, (__u64)ssl, bpf_ktime_get_ns());
	if (!sess)
		return 0;
	sess->fd = fd;
	struct sock *sk = sock_of_fd(fd);
	if (sk) {
		read_tuple(sk, &sess->t);
		if (sess->t.family)
			sess->flags |= NET_TLS_TUPLE_KNOWN;
	}
	return 0;
}

static __always_inline void emit_tls(void *ctx, struct net_session *sess, __u64 ssl, __u8 op, __u8 result,
				     __s64 requested, __s64 ret, __u64 bytes, __u64 start_ns)
{
	__u32 probe = result == NET_TLS_RES_NONE ? NET_PROBE_TLS_IO : NET_PROBE_TLS_HANDSHAKE;
	stella_seen(probe);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 cg = bpf_get_current_cgroup_id();
	__u64 now = bpf_ktime_get_ns();
	if (stella_task_filtered(pid_tgid >> 32, cg)) {
		stella_count(probe, STELLA_C_FILTERED);
		return;
	}
	struct net_scratch *s = scratch();
	if (!s) {
		stella_count(probe, STELLA_C_LOST);
		return;
	}
	struct net_tls_event *e = &s->tls;
	__builtin_memset(e, 0, sizeof(*e));
	stella_fill_header(&e->hdr, result == NET_TLS_RES_NONE ? NET_KIND_TLS_IO : NET_KIND_TLS_HANDSHAKE, pid_tgid,
			   cg, now);
	e->ssl = ssl;
	e->duration_ns = start_ns ? now - start_ns : 0;
	e->requested = requested;
	e->ret = ret;
	e->bytes = bytes;
	e->op = op;
	e->result = result;
	e->fd = sess->fd;
	e->attempts = sess->attempts;
	e->t = sess->t;
	e->tls_flags = sess->flags;
	if (result != NET_TLS_RES_NONE && (sess->flags & NET_TLS_SNI_SET)) {
		e->sni_len = sess->sni_len;
		__builtin_memcpy(e->sni, sess->sni, NET_SNI_MAX);
	}
	struct stella_dedup_key dk = {};
	if (cfg_dedup) {
		/* io fact: (cgroup, session, direction); handshake fact: (cgroup, server name + peer, result). */
		dk.cgroup_id = cg;
		dk.kind = e->hdr.kind;
		if (result == NET_TLS_RES_NONE) {
			__u64 w[3] = {ssl, pid_tgid >> 32, sess->start_ns};
			dk.hash = hash_words(STELLA_FNV_OFFSET, w, 3);
			/* A failed (want-read) call and one that moved bytes are distinct facts. */
			dk.fclass = ((op == NET_TLS_READ || op == NET_TLS_READ_EX) ? 1 : 2) | (ret > 0 ? 4 : 0);
		} else {
			dk.hash = hash_words(STELLA_FNV_OFFSET, (const __u64 *)e->sni, 16);
			dk.hash = hash_words(dk.hash, (const __u64 *)&e->t.raddr, 2);
			dk.hash ^= ((__u64)e->t.rport << 16) | e->t.family;
			dk.fclass = result;
		}
		if (stella_dedup_seen(&dk, now)) {
			stella_count(probe, STELLA_C_DEDUPLICATED);
			return;
		}
	}
	if ((cfg_user_stack & NET_STACK_TLS) && op != NET_TLS_FREE) {
		long n = bpf_get_stack(ctx, e->stack, sizeof(e->stack), BPF_F_USER_STACK);
		e->stack_len = n > 0 ? (__u64)n / 8 : 0;
	}
	if (stella_output(probe, e, sizeof(*e)) != 0)
		stella_dedup_forget(&dk);
}

SEC("uretprobe")
int BPF_KRETPROBE(net_ssl_exit, long rax)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct net_tls_args *ap = bpf_map_lookup_elem(&tls_args, &pid_tgid);
	if (!ap || ap->op == NET_TLS_HELLO_PENDING)
		return 0;
	struct net_tls_args a = *ap;
	bpf_map_delete_elem(&tls_args, &pid_tgid);
	int ret = (int)rax; /* every probed SSL_* returns int */
	struct net_session *sess = session(pid_tgid >> 32, a.ssl, a.start_ns);
	if (!sess)
		return 0;
	if (a.tuple_known && !(sess->flags & NET_TLS_TUPLE_KNOWN)) {
		sess->t = a.t;
		sess->flags |= NET_TLS_TUPLE_KNOWN;
	}
	if (sess->fd < 0 && a.fd >= 0)
		sess->fd = a.fd;
	/* No socket used inside the call: memory BIOs, whose hello the application sends next. */
	if (cfg_tls_wire && !a.tuple_known && !sess->handshake_done &&
	    !(sess->flags & (NET_TLS_CLIENT | NET_TLS_SERVER))) {
		struct net_tls_args p = {.ssl = a.ssl, .start_ns = a.start_ns, .fd = -1, .op = NET_TLS_HELLO_PENDING};
		bpf_map_update_elem(&tls_args, &pid_tgid, &p, BPF_ANY);
	}
	if (a.op == NET_TLS_DO_HANDSHAKE || a.op == NET_TLS_CONNECT || a.op == NET_TLS_ACCEPT) {
		sess->attempts++;
		if (a.op == NET_TLS_ACCEPT)
			sess->flags = (sess->flags & ~NET_TLS_CLIENT) | NET_TLS_SERVER;
		else if (a.op == NET_TLS_CONNECT)
			sess->flags = (sess->flags & ~NET_TLS_SERVER) | NET_TLS_CLIENT;
		if (ret == 1) {
			if (sess->handshake_done)
				return 0; /* renegotiation or a repeated call: not a new fact */
			sess->handshake_done = 1;
			emit_tls(ctx, sess, a.ssl, a.op, NET_TLS_RES_OK, 0, ret, 0, a.start_ns);
		} else if (ret == 0) {
			emit_tls(ctx, sess, a.ssl, a.op, NET_TLS_RES_FAILED, 0, ret, 0, a.start_ns);
		}
		/* ret < 0: want read/write on a non-blocking socket, or an error
		 * SSL_free will report if the session never succeeds. */
		return 0;
	}
	__u64 bytes = 0;
	if (a.op == NET_TLS_READ_EX || a.op == NET_TLS_WRITE_EX) {
		if (ret == 1 && a.out_ptr)
			bpf_probe_read_user(&bytes, sizeof(bytes), (void *)a.out_ptr);
	} else if (ret > 0) {
		bytes = ret;
	}
	if (ret > 0 && !sess->handshake_done) {
		/* The handshake ran inside this read/write (SSL_set_connect_state + I/O). */
		sess->handshake_done = 1;
		emit_tls(ctx, sess, a.ssl, a.op, NET_TLS_RES_IMPLICIT, 0, ret, 0, 0);
	}
	emit_tls(ctx, sess, a.ssl, a.op, NET_TLS_RES_NONE, a.num, ret, bytes, a.start_ns);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(net_ssl_free_enter, void *ssl)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct net_session_key k = {.ssl = (__u64)ssl, .tgid = pid_tgid >> 32};
	struct net_session *sess = bpf_map_lookup_elem(&tls_sessions, &k);
	if (!sess)
		return 0;
	if (!sess->handshake_done && sess->attempts > 0)
		emit_tls(ctx, sess, (__u64)ssl, NET_TLS_FREE, NET_TLS_RES_FAILED, 0, -1, 0, 0);
	bpf_map_delete_elem(&tls_sessions, &k);
	return 0;
}
