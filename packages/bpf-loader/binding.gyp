# libbpf is linked statically from a PIC archive built from Debian's source
# package (scripts/build-libbpf.sh; Debian's own libbpf.a is not -fPIC, so a
# shared object cannot use it). libelf and zlib stay dynamic: Debian's
# libelf.a and libz.a are not PIC either. libstdc++ stays dynamic too: the
# node binary itself needs libstdc++.so.6, and a static copy would raise the
# glibc floor from 2.32 to 2.36. --exclude-libs keeps libbpf's symbols out of
# the addon's dynamic symbol table, so another addon's libbpf cannot clash.
# scripts/libbpf-flags.cjs falls back to the system libbpf (pkg-config) when
# the archive is absent, e.g. a build from source on another architecture.
{
  "targets": [
    {
      "target_name": "stella_bpf",
      "sources": ["src/native/bpf_loader.cc"],
      "include_dirs": [
        "<!(node scripts/libbpf-flags.cjs include)",
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "ldflags": ["-Wl,--exclude-libs,ALL"],
      "libraries": ["<!@(node scripts/libbpf-flags.cjs libs)"]
    }
  ]
}
