/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Network and TLS records of net.bpf.o: TCP state transitions
 * (inet_sock_set_state), libc connect/accept uprobes and OpenSSL uprobes.
 * Shared with the TypeScript decoder (src/net/layout.ts mirrors these;
 * test/net-layout.test.ts compares the mirror with the object's BTF, so an
 * unmirrored change fails). Fixed-width types and explicit padding only.
 *
 * Payload buffers of SSL_read/SSL_write are never read: only the SSL
 * pointer, byte counts and return values cross into the ring.
 */
#ifndef STELLA_NET_H
#define STELLA_NET_H

#include "common.h"

/*
 * Record kinds of this object. Disjoint from enum stella_kind in common.h
 * (1..15 are reserved there) so one decoder can dispatch on any ring.
 */
enum net_kind {
	NET_KIND_TCP_STATE = 16,
	NET_KIND_CONNECT = 17,
	NET_KIND_ACCEPT = 18,
	NET_KIND_TLS_IO = 19,
	NET_KIND_TLS_HANDSHAKE = 20,
};

/* Counter slots (index into the `counters` map). */
enum net_probe {
	NET_PROBE_TCP_STATE = 0,
	NET_PROBE_CONNECT = 1,
	NET_PROBE_ACCEPT = 2,
	NET_PROBE_TLS_HANDSHAKE = 3,
	NET_PROBE_TLS_IO = 4,
};

#define NET_STACK_MAX 16   /* user stack frames kept (bpf_get_stack, BPF_F_USER_STACK) */
#define NET_SOCKADDR_MAX 128 /* sizeof(struct sockaddr_storage) */
#define NET_SNI_MAX 256    /* RFC 6066 host_name is at most 255 bytes, plus NUL */

/* Address families (include/linux/socket.h). */
#define NET_AF_UNIX 1
#define NET_AF_INET 2
#define NET_AF_INET6 10

/* Syscall numbers of the calls whose errno is taken at sys_exit.
 * x86_64: arch/x86/entry/syscalls/syscall_64.tbl; arm64: asm-generic/unistd.h. */
#if defined(__TARGET_ARCH_x86)
#define NET_NR_connect 42
#define NET_NR_accept 43
#define NET_NR_accept4 288
/* The writes a TLS ClientHello leaves a process by (SNI from the wire). */
#define NET_NR_write 1
#define NET_NR_writev 20
#define NET_NR_sendto 44
/* Syscall number from a BTF-typed pt_regs (tp_btf): a plain load. */
#define NET_SYSCALL_NR_BTF(regs) ((regs)->orig_ax)
#elif defined(__TARGET_ARCH_arm64)
#define NET_NR_connect 203
#define NET_NR_accept 202
#define NET_NR_accept4 242
#define NET_NR_write 64
#define NET_NR_writev 66
#define NET_NR_sendto 206
#define NET_SYSCALL_NR_BTF(regs) ((regs)->syscallno)
#endif

/* TCP states (include/net/tcp_states.h). */
#define NET_TCP_ESTABLISHED 1
#define NET_TCP_SYN_SENT 2
#define NET_TCP_SYN_RECV 3
#define NET_TCP_CLOSE 7
#define NET_TCP_CLOSE_WAIT 8
#define NET_TCP_LISTEN 10

/* What a tcp_state record says happened (transitions collapsed). */
enum net_tcp_event {
	NET_TCP_EV_CONNECT = 1,     /* CLOSE -> SYN_SENT: active open attempted */
	NET_TCP_EV_ESTABLISHED = 2, /* SYN_SENT -> ESTABLISHED */
	NET_TCP_EV_ACCEPTED = 3,    /* SYN_RECV -> ESTABLISHED: passive open completed */
	NET_TCP_EV_CLOSED = 4,      /* orderly close (any other state -> CLOSE) */
	NET_TCP_EV_REFUSED = 5,     /* SYN_SENT -> CLOSE: refused, unreachable or timed out */
	NET_TCP_EV_RESET = 6,       /* ESTABLISHED/CLOSE_WAIT -> CLOSE: reset or aborted */
	NET_TCP_EV_FAILED = 7,      /* SYN_RECV -> CLOSE: passive open failed */
};

enum net_direction {
	NET_DIR_UNKNOWN = 0,
	NET_DIR_ACTIVE = 1,  /* this host connected */
	NET_DIR_PASSIVE = 2, /* this host accepted */
};

/* IPv4 addresses use the first 4 bytes. Local = this host's side. */
struct net_tuple {
	__u8 laddr[16];
	__u8 raddr[16];
	__u16 lport;  /* host byte order */
	__u16 rport;  /* host byte order */
	__u16 family; /* 0: unknown (no socket seen) */
	__u16 pad;
};

/* tuple_flags / attribution bits */
#define NET_ATTR_OWNER 0x1   /* pid..comm, cgroup_id are the socket owner's */
#define NET_ATTR_CURRENT 0x2 /* taken from the current task at the transition (process context) */

struct net_tcp_state_event {
	struct stella_event_header hdr; /* owner when attributed, else zero pid/ids and empty comm */
	__u64 duration_ns;    /* closes: since the connect/accept transition; 0 if not seen */
	__u64 bytes_acked;    /* closes: tcp_sock.bytes_acked (sent and acknowledged) */
	__u64 bytes_received; /* closes: tcp_sock.bytes_received */
	struct net_tuple t;
	__s32 oldstate;
	__s32 newstate;
	__u8 event;       /* enum net_tcp_event */
	__u8 direction;   /* enum net_direction */
	__u8 attribution; /* NET_ATTR_* ; 0: owner unknown */
	__u8 pad[5];
};

/* Which libc call produced a connect/accept record. */
enum net_call {
	NET_CALL_CONNECT = 1,
	NET_CALL_ACCEPT = 2,
	NET_CALL_ACCEPT4 = 3,
};

/* sock_flags bits */
#define NET_SA_TRUNCATED 0x1  /* addrlen exceeded NET_SOCKADDR_MAX */
#define NET_SA_FAULT 0x2      /* the sockaddr could not be read */
#define NET_ERRNO_KNOWN 0x4   /* err holds the syscall's errno (seen at sys_exit) */
#define NET_TUPLE_FROM_FD 0x8 /* t was read from the socket behind fd */

struct net_sock_event {
	struct stella_event_header hdr;
	__u64 duration_ns; /* libc call duration */
	struct net_tuple t; /* from the socket behind fd after the call (inet only) */
	__s32 fd;           /* connect: the argument; accept: the returned fd, or -1 */
	__s32 ret;          /* libc return value */
	__s32 err;          /* errno when NET_ERRNO_KNOWN, else 0 */
	__u32 addrlen;      /* bytes of sockaddr[] that are valid */
	__u32 accept_flags; /* accept4 flags */
	__u32 stack_len;    /* frames in stack[] */
	__u8 call;          /* enum net_call */
	__u8 sock_flags;    /* NET_SA_*, NET_ERRNO_KNOWN, NET_TUPLE_FROM_FD */
	__u8 pad[6];
	__u8 sockaddr[NET_SOCKADDR_MAX]; /* connect: destination; accept: peer, as the kernel wrote it */
	__u64 stack[NET_STACK_MAX];
};

/* Which OpenSSL call produced a tls record. */
enum net_tls_op {
	NET_TLS_READ = 1,
	NET_TLS_WRITE = 2,
	NET_TLS_READ_EX = 3,
	NET_TLS_WRITE_EX = 4,
	NET_TLS_DO_HANDSHAKE = 5,
	NET_TLS_CONNECT = 6,
	NET_TLS_ACCEPT = 7,
	NET_TLS_FREE = 8, /* SSL_free of a session whose handshake never succeeded */
};

enum net_tls_result {
	NET_TLS_RES_NONE = 0,     /* io records */
	NET_TLS_RES_OK = 1,       /* handshake call returned 1 */
	NET_TLS_RES_FAILED = 2,   /* returned 0 (controlled failure), or freed without success */
	NET_TLS_RES_IMPLICIT = 3, /* first successful read/write on a session: handshake done inside it */
};

/* tls_flags bits */
#define NET_TLS_SNI_SET 0x1       /* sni[] holds the client's server name */
#define NET_TLS_SNI_TRUNCATED 0x2
#define NET_TLS_TUPLE_KNOWN 0x4   /* t was read from a socket used during this session */
#define NET_TLS_SERVER 0x8        /* this side wrote the session's ServerHello */
#define NET_TLS_CLIENT 0x10       /* this side wrote the session's ClientHello */

struct net_tls_event {
	struct stella_event_header hdr;
	__u64 ssl;         /* SSL* in the process: session id within pid */
	__u64 duration_ns; /* call duration */
	__s64 requested;   /* SSL_read/SSL_write num argument; 0 for handshakes */
	__s64 ret;         /* the call's int return value */
	__u64 bytes;       /* bytes moved: ret > 0 for read/write, the size_t out-parameter for _ex */
	struct net_tuple t;
	__s32 fd;          /* from SSL_set_fd, or -1 */
	__u32 stack_len;
	__u32 attempts;    /* handshake calls on this session so far (non-blocking: several) */
	__u8 op;           /* enum net_tls_op */
	__u8 result;       /* enum net_tls_result */
	__u8 tls_flags;    /* NET_TLS_* */
	__u8 pad;
	__u32 sni_len;
	char sni[NET_SNI_MAX];
	__u64 stack[NET_STACK_MAX];
};

#endif /* STELLA_NET_H */
