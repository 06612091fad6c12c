# libbpf is linked dynamically (libbpf1 1.1 from Debian): Debian's libbpf.a
# is compiled without -fPIC, so the linker refuses it in a shared object
# ("relocation R_X86_64_PC32 ... recompile with -fPIC").
{
  "targets": [
    {
      "target_name": "stella_bpf",
      "sources": ["src/native/bpf_loader.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "libraries": ["<!(pkg-config --libs libbpf)"]
    }
  ]
}
