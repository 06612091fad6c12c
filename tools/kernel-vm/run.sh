#!/usr/bin/env bash
# Kernel matrix runner: boots Debian's own kernels under qemu and runs the
# kernel test suites of bpf-loader, probes and signals inside each one.
#
#   npm run test:kernels                 all of 5.10, 6.1, 6.12
#   npm run test:kernels -- 5.10 6.1     the named ones
#
# For each kernel: apt-get download of the Debian kernel package (own sources
# list, lists and cache under .cache/kernel-vm/<version>: the system's apt
# configuration is never read or written), an initramfs of busybox-static plus
# the virtio/9p/overlay modules from that package, a qemu boot (TCG; KVM when
# KERNEL_VM_ACCEL=kvm), the host's root shared read-only over 9p under a tmpfs
# overlay (every write inside the VM lands in guest RAM), and tools/kernel-vm/
# guest.sh run in that root. The BPF objects and the addon are the host's
# builds, read through the share: build them first (npm run build:native).
#
# Ends with one line: `N passed, N failed` over all kernels (a kernel that did
# not boot or timed out counts as one failure). Exit status 0 only when none
# failed. Environment:
#   KERNEL_VM_TIMEOUT  seconds per kernel (default 2400, both boots together) before qemu is killed
#   KERNEL_VM_ACCEL    tcg (default) or kvm
#   KERNEL_VM_SMP      guest CPUs (default 2), KERNEL_VM_MEM (default 3G)
#   KERNEL_VM_9P_CACHE how the guest caches the host's root: mmap (default: reads go through, so
#                      edits made on the host during a run are seen whole) or loose (faster; only
#                      for a checkout nothing writes to while the VM runs, as in CI)
#   KERNEL_VM_LOCKUP_RETRIES  1 (default): a guest kernel that locks up or panics is booted once
#                      more; 0: never. A lockup is never hidden: its report ends the output and
#                      the summary says the result is from a second boot. The second boot has
#                      KERNEL_VM_LOCKUP_SMP guest CPUs (default 1: the lockups seen in CI held both
#                      CPUs of a 2-CPU TCG guest, and one CPU takes cross-CPU emulation out of play)
#   KERNEL_VM_TESTS    test paths or filters for vitest (default: the kernel suites, test/, of
#                      bpf-loader, probes and signals; the pure src/ unit tests run on the host)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache="$repo/.cache/kernel-vm"
timeout_s=${KERNEL_VM_TIMEOUT:-2400}
accel=${KERNEL_VM_ACCEL:-tcg}
smp=${KERNEL_VM_SMP:-2}
mem=${KERNEL_VM_MEM:-3G}
cache_mode=${KERNEL_VM_9P_CACHE:-mmap}
lockup_retries=${KERNEL_VM_LOCKUP_RETRIES:-1}
lockup_smp=${KERNEL_VM_LOCKUP_SMP:-1}
tests=${KERNEL_VM_TESTS:-packages/bpf-loader/test packages/probes/test packages/signals/test}

log() { printf '[kernel-vm] %s\n' "$*" >&2; }
die() {
  printf '[kernel-vm] error: %s\n' "$1" >&2
  [ -n "${2:-}" ] && printf '[kernel-vm] hint: %s\n' "$2" >&2
  exit 2
}

# Debian suite that ships each kernel line (the linux-image-amd64 metapackage there).
suite_of() {
  case "$1" in
  5.10) echo bullseye ;;
  6.1) echo bookworm ;;
  6.12) echo bookworm-backports ;;
  *) return 1 ;;
  esac
}

need_root() {
  [ "$(id -u)" = 0 ] || die "the kernel runner needs root (apt-get, BPF inside the VM)" "run it as root: sudo npm run test:kernels"
}

ensure_qemu() {
  command -v qemu-system-x86_64 >/dev/null && return
  log "installing qemu-system-x86 (Debian package)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-system-x86 >/dev/null ||
    { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-system-x86 >/dev/null; } ||
    die "could not install qemu-system-x86" "apt-get install qemu-system-x86"
}

ensure_busybox() {
  [ -x /bin/busybox ] && /bin/busybox --list | grep -qx switch_root && ! ldd /bin/busybox >/dev/null 2>&1 && return
  log "installing busybox-static (Debian package)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends busybox-static >/dev/null ||
    die "could not install busybox-static" "apt-get install busybox-static"
}

# fetch <version> <dir>: download and unpack the kernel package into <dir>/pkg.
fetch_kernel() {
  local ver=$1 dir=$2 suite
  suite=$(suite_of "$ver")
  [ -d "$dir/pkg/boot" ] && return
  local a="$dir/apt"
  mkdir -p "$a/lists/partial" "$a/cache/archives/partial" "$dir/deb"
  : >"$a/status"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" >"$a/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$a/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$a/lists"
    -o "Dir::Cache=$a/cache" -o "Dir::State::status=$a/status" -o APT::Get::List-Cleanup=0 -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  log "$ver: apt-get update ($suite)"
  apt-get "${opts[@]}" update >"$a/update.log" 2>&1 || die "apt-get update of $suite failed (see $a/update.log)" "is deb.debian.org reachable?"
  local pkg
  pkg=$(apt-cache "${opts[@]}" depends linux-image-amd64 | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
  [ -n "$pkg" ] || die "no linux-image package found in $suite" "see $a/update.log"
  log "$ver: downloading $pkg"
  (cd "$dir/deb" && apt-get "${opts[@]}" download "$pkg" >/dev/null) || die "apt-get download $pkg failed"
  rm -rf "$dir/pkg.tmp" && mkdir -p "$dir/pkg.tmp"
  dpkg-deb -x "$dir"/deb/"$pkg"_*.deb "$dir/pkg.tmp"
  mv "$dir/pkg.tmp" "$dir/pkg"
}

# The `depends=` of a module file (.ko, .ko.xz or .ko.zst), one name a line.
mod_depends() {
  case "$1" in
  *.xz) xz -dc "$1" ;;
  *.zst) zstd -qdc "$1" ;;
  *) cat "$1" ;;
  esac | tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' '\n' | sed '/^$/d'
}

# initramfs <dir>: busybox + the modules (dependencies first) + init.
build_initramfs() {
  local dir=$1 kver modroot
  kver=$(ls "$dir/pkg/lib/modules")
  modroot="$dir/pkg/lib/modules/$kver"
  [ -f "$dir/initramfs.gz" ] && [ "$dir/initramfs.gz" -nt "$here/init.sh" ] && return
  local stage="$dir/initramfs"
  rm -rf "$stage" && mkdir -p "$stage"/{bin,lib/modules,proc,sys,dev,host,scratch,newroot}
  cp /bin/busybox "$stage/bin/busybox"
  for a in sh mount umount mkdir insmod switch_root poweroff cat echo sleep ls; do ln -s busybox "$stage/bin/$a"; done
  # name -> file, then a depth-first walk so each module follows what it needs.
  declare -A file_of=()
  local f n
  while IFS= read -r f; do
    n=${f##*/}
    n=${n%%.ko*}
    file_of[$n]=$f
    file_of[${n//-/_}]=$f
  done < <(find "$modroot/kernel" -name '*.ko*')
  declare -A done_=()
  local order=()
  visit() {
    local m=${1//-/_} d
    [ -n "${done_[$m]:-}" ] && return
    done_[$m]=1
    local path=${file_of[$m]:-}
    [ -n "$path" ] || return 0 # built in
    for d in $(mod_depends "$path"); do visit "$d"; done
    order+=("$m")
  }
  for m in virtio_pci 9pnet_virtio 9p overlay; do visit "$m"; done
  : >"$stage/modules"
  for m in "${order[@]}"; do
    f=${file_of[$m]}
    case "$f" in
    *.xz) xz -dc "$f" >"$stage/lib/modules/$m.ko" ;;
    *.zst) zstd -qdc "$f" >"$stage/lib/modules/$m.ko" ;;
    *) cp "$f" "$stage/lib/modules/$m.ko" ;;
    esac
    echo "$m" >>"$stage/modules"
  done
  cp "$here/init.sh" "$stage/init"
  chmod +x "$stage/init"
  (cd "$stage" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 >"$dir/initramfs.gz.tmp")
  mv "$dir/initramfs.gz.tmp" "$dir/initramfs.gz"
  log "initramfs: ${order[*]}"
}

# locked_up <console log>: the guest kernel reported a soft lockup or panicked.
locked_up() { [ -f "$1" ] && grep -aq 'soft lockup\|Kernel panic' "$1"; }

# boot <version> <dir>: prints the VM's console; leaves results in <dir>/out.
boot() {
  local ver=$1 dir=$2 limit=${3:-$timeout_s} cpus=${4:-$smp} kernel
  kernel=$(ls "$dir"/pkg/boot/vmlinuz-*)
  rm -rf "$dir/out" && mkdir -p "$dir/out"
  local cpu=(-accel tcg -cpu max)
  [ "$accel" = kvm ] && cpu=(-accel kvm -cpu host)
  # lsm=...,bpf turns on BPF LSM where the kernel has CONFIG_BPF_LSM (Debian does).
  # tsc=unstable clocksource=hpet: the guest's clock as every passing run here had it. Under TCG
  # the kernel's TSC sync check fails on this host (it marks the TSC unstable and takes hpet) but
  # may pass on another, and a TCG guest left on the TSC clocksource is known to report soft
  # lockups; CI's two lockups came on another host of the same kind.
  # A soft lockup panics at once (panic=-1 and -no-reboot end qemu) with every CPU's stack on the
  # console (loglevel 5 lets the traces through), instead of burning the rest of the time limit.
  local append="console=ttyS0 panic=-1 quiet loglevel=5 tsc=unstable clocksource=hpet softlockup_panic=1 softlockup_all_cpu_backtrace=1 lsm=lockdown,capability,yama,apparmor,bpf stella_9p_cache=$cache_mode stella_repo=$repo stella_tests=${tests// /,}"
  timeout -k 15 "$limit" qemu-system-x86_64 "${cpu[@]}" -smp "$cpus" -m "$mem" \
    -display none -monitor none -serial stdio -no-reboot \
    -kernel "$kernel" -initrd "$dir/initramfs.gz" -append "$append" \
    -virtfs "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap" \
    -virtfs "local,path=$dir/out,mount_tag=out,security_model=none,multidevs=remap" \
    </dev/null
}

main() {
  local versions=("$@")
  [ ${#versions[@]} -gt 0 ] || versions=(5.10 6.1 6.12)
  for v in "${versions[@]}"; do
    suite_of "$v" >/dev/null || die "unknown kernel '$v'" "choose from: 5.10 6.1 6.12"
  done
  case "$cache_mode" in
  mmap | loose | none) ;;
  *) die "KERNEL_VM_9P_CACHE must be mmap, loose or none, got '$cache_mode'" "unset it for mmap" ;;
  esac
  need_root
  [ -f "$repo/packages/probes/bpf/fileexec.bpf.o" ] && [ -x "$repo/.toolchain/node/bin/node" ] ||
    die "the host build is missing (BPF objects or .toolchain/node)" "bash scripts/bootstrap.sh setup && npm run build:native"
  ensure_qemu
  ensure_busybox
  local passed=0 failed=0 summary=()
  for v in "${versions[@]}"; do
    local dir="$cache/$v" start rc=0 line p f lock
    mkdir -p "$dir"
    # One run per kernel at a time: a second one would empty this run's out/.
    exec {lock}>"$dir/lock"
    flock -n "$lock" || die "another run of $v is using $dir" "wait for it to end"
    fetch_kernel "$v" "$dir"
    build_initramfs "$dir"
    start=$(date +%s)
    rm -f "$dir/console.lockup.log"
    log "$v: booting ($accel, ${smp} CPUs, $mem, timeout ${timeout_s}s)"
    boot "$v" "$dir" | tee "$dir/console.log" || rc=$?
    # A guest kernel that locks up (the soft-lockup watchdog panics it) is booted once more, and
    # said so: its console is kept as console.lockup.log and its report is printed at the end.
    # The second boot gets what is left of the kernel's time limit.
    local left=$((timeout_s - ($(date +%s) - start)))
    if [ "$lockup_retries" -gt 0 ] && [ "$left" -gt 120 ] && locked_up "$dir/console.log"; then
      mv "$dir/console.log" "$dir/console.lockup.log"
      log "$v: the guest kernel locked up after $((timeout_s - left))s (report at the end); booting it once more with $lockup_smp CPU(s) (${left}s left)"
      rc=0
      boot "$v" "$dir" "$left" "$lockup_smp" | tee "$dir/console.log" || rc=$?
    fi
    local took=$(($(date +%s) - start))
    line=$(grep -ao 'vitest: [0-9]* passed, [0-9]* failed, [0-9]* skipped' "$dir/out/vitest.log" 2>/dev/null | tail -1 || true)
    if [ -n "$line" ]; then
      p=$(sed 's/vitest: \([0-9]*\) passed.*/\1/' <<<"$line")
      f=$(sed 's/.* \([0-9]*\) failed.*/\1/' <<<"$line")
      passed=$((passed + p))
      failed=$((failed + f))
      local note=
      [ -f "$dir/console.lockup.log" ] && note=" (on a second boot with $lockup_smp CPU(s): the first locked up, see its report)"
      summary+=("$v ($(cat "$dir/out/uname" 2>/dev/null || echo '?')): $line in ${took}s$note")
    else
      failed=$((failed + 1))
      local why="no test summary"
      [ "$rc" = 124 ] && why="timed out after ${timeout_s}s"
      locked_up "$dir/console.log" && why="the guest kernel locked up or panicked"
      summary+=("$v: $why (qemu exit $rc; console in $dir/console.log) after ${took}s")
    fi
  done
  printf '\n'
  for v in "${versions[@]}"; do
    [ -s "$cache/$v/out/hooks.txt" ] && sed "s/^/[kernel-vm] $v hook: /" "$cache/$v/out/hooks.txt"
  done
  # A guest kernel that locked up or panicked: the tests started last and the kernel's report, here
  # at the end, where a CI log's tail shows them.
  local con
  for v in "${versions[@]}"; do
    for con in "$cache/$v/console.lockup.log" "$cache/$v/console.log"; do
      locked_up "$con" || continue
      printf '[kernel-vm] %s: the guest kernel locked up or panicked (%s); the tests started last, then its report:\n' "$v" "$con"
      { grep -a '^\[test ' "$con" || echo '(no test had started)'; } | tail -4 | cut -c1-200 | sed 's/^/[kernel-vm]   /'
      { grep -a -A40 -m1 'soft lockup\|Kernel panic' "$con" || true; } | cut -c1-160 | sed 's/^/[kernel-vm]   /'
    done
  done
  for s in "${summary[@]}"; do printf '[kernel-vm] %s\n' "$s"; done
  printf '%d passed, %d failed\n' "$passed" "$failed"
  [ "$failed" = 0 ]
}

main "$@"
