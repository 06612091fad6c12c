// Thin N-API layer over libbpf 1.1. Validation, option defaults, hints and
// privilege diagnosis live in the TypeScript wrapper (src/*.ts); this file
// only maps libbpf calls to JS and throws the TS-defined BpfError class that
// the wrapper hands over in init().
//
// Every call runs on the JS thread that owns the environment. libbpf's print
// callback is process-global, so the per-operation log sink is thread_local.

#include <napi.h>
#include <uv.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace {

// ---------------------------------------------------------------------------
// libbpf log capture

thread_local std::string* g_capture = nullptr;
bool g_debug = false;

int PrintCallback(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (g_debug) {
    va_list copy;
    va_copy(copy, args);
    vfprintf(stderr, fmt, copy);
    va_end(copy);
  }
  if (g_capture == nullptr || level == LIBBPF_DEBUG) return 0;
  // libbpf prints the whole verifier log in one call: size it first, then
  // append, so nothing is truncated whatever its length.
  va_list sizing;
  va_copy(sizing, args);
  int n = vsnprintf(nullptr, 0, fmt, sizing);
  va_end(sizing);
  if (n <= 0) return 0;
  size_t old = g_capture->size();
  g_capture->resize(old + static_cast<size_t>(n) + 1);
  vsnprintf(&(*g_capture)[old], static_cast<size_t>(n) + 1, fmt, args);
  g_capture->resize(old + static_cast<size_t>(n));
  return 0;
}

// Collects libbpf's messages for one operation; nests.
struct LogCapture {
  std::string log;
  std::string* prev;
  LogCapture() : prev(g_capture) { g_capture = &log; }
  ~LogCapture() { g_capture = prev; }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
};

// ---------------------------------------------------------------------------
// Per-environment state

class NativeObject;

struct Registry {
  std::set<NativeObject*> objects;
};

struct AddonData {
  Napi::FunctionReference errorClass;
  Napi::FunctionReference notSupportedClass;
  Napi::FunctionReference objectCtor;
  Napi::FunctionReference ringCtor;
  std::shared_ptr<Registry> registry = std::make_shared<Registry>();
};

Napi::Error MakeError(Napi::Env env, const char* code, const std::string& operation, int err,
                      const std::string& message, const std::string& log) {
  AddonData* data = env.GetInstanceData<AddonData>();
  std::string text = operation + ": " + message;
  if (err > 0) text += " (" + std::string(strerror(err)) + ")";
  if (data == nullptr || data->errorClass.IsEmpty()) return Napi::Error::New(env, text);
  Napi::Object details = Napi::Object::New(env);
  details.Set("code", code);
  details.Set("operation", operation);
  if (err > 0) details.Set("errno", err);
  details.Set("libbpfLog", log);
  Napi::Value e = data->errorClass.New({Napi::String::New(env, text), details});
  return Napi::Error(env, e);
}

[[noreturn]] void Throw(Napi::Env env, const char* code, const std::string& operation, int err,
                        const std::string& message, const std::string& log = "") {
  throw MakeError(env, code, operation, err, message, log);
}

// libbpf 1.x returns -errno from int APIs, NULL + errno from pointer APIs.
int ErrOf(int ret) { return ret < 0 ? -ret : (errno != 0 ? errno : EINVAL); }

std::string StringArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsString()) throw Napi::TypeError::New(info.Env(), "expected a string");
  return info[i].As<Napi::String>().Utf8Value();
}

Napi::Buffer<uint8_t> BufferArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsBuffer()) throw Napi::TypeError::New(info.Env(), "expected a Buffer");
  return info[i].As<Napi::Buffer<uint8_t>>();
}

uint32_t RoundUp8(uint32_t n) { return (n + 7u) & ~7u; }

bool IsPerCpu(enum bpf_map_type t) {
  return t == BPF_MAP_TYPE_PERCPU_ARRAY || t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
         t == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

// ---------------------------------------------------------------------------
// Ring buffer reader: drains on a uv timer (latency), on epoll readiness, and
// on uv idle while batches come back full, making one JS call per batch.

constexpr int kBatchFull = -ECANCELED;  // returned by the sample callback to end a batch
constexpr size_t kMaxBatchBytes = 8u << 20;

class NativeRing;

struct RingHandles {
  uv_timer_t timer;
  uv_poll_t poll;
  uv_idle_t idle;
  int pendingCloses = 0;
  NativeRing* owner = nullptr;
};

class NativeRing : public Napi::ObjectWrap<NativeRing> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeRing",
                       {InstanceMethod<&NativeRing::Pause>("pause"), InstanceMethod<&NativeRing::Resume>("resume"),
                        InstanceMethod<&NativeRing::CloseJs>("close"),
                        InstanceMethod<&NativeRing::DrainJs>("drain")});
  }

  explicit NativeRing(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeRing>(info) {}
  ~NativeRing() override { Close(); }

  // Called by NativeObject::OpenRing right after construction.
  void Setup(Napi::Env env, NativeObject* owner, int mapFd, uint32_t latencyMs, uint32_t maxBatch,
             Napi::Function onBatch, const std::string& mapName);

  void Close();
  bool closed() const { return closed_; }

 private:
  static int OnSample(void* ctx, void* data, size_t size) {
    auto* self = static_cast<NativeRing*>(ctx);
    size_t old = self->data_.size();
    self->data_.resize(old + size);
    memcpy(self->data_.data() + old, data, size);
    self->offsets_.push_back(static_cast<uint32_t>(self->data_.size()));
    self->count_++;
    // The consumer position is already past this record when the callback
    // returns, so ending the batch early loses nothing (libbpf 1.1 has no
    // ring_buffer__consume_n).
    if (self->count_ >= self->maxBatch_ || self->data_.size() >= kMaxBatchBytes) return kBatchFull;
    return 0;
  }

  static void OnTimer(uv_timer_t* h) {
    auto* hs = static_cast<RingHandles*>(h->data);
    if (hs->owner != nullptr) hs->owner->Drain(false);
  }
  static void OnPoll(uv_poll_t* h, int status, int) {
    auto* hs = static_cast<RingHandles*>(h->data);
    if (hs->owner != nullptr && status >= 0) hs->owner->Drain(false);
  }
  static void OnIdle(uv_idle_t* h) {
    auto* hs = static_cast<RingHandles*>(h->data);
    if (hs->owner != nullptr) hs->owner->Drain(false);
  }
  static void OnClosed(uv_handle_t* h) {
    auto* hs = static_cast<RingHandles*>(h->data);
    if (--hs->pendingCloses == 0) delete hs;
  }

  void Start() {
    if (closed_ || paused_) return;
    uv_timer_start(&handles_->timer, OnTimer, latencyMs_, latencyMs_);
    uv_poll_start(&handles_->poll, UV_READABLE, OnPoll);
  }
  void Stop() {
    uv_timer_stop(&handles_->timer);
    uv_poll_stop(&handles_->poll);
    uv_idle_stop(&handles_->idle);
  }

  // One batch: consume up to maxBatch records, hand them to JS in one call.
  // Returns the number of records delivered.
  uint32_t Drain(bool sync) {
    if (closed_ || (paused_ && !sync)) return 0;
    data_.clear();
    offsets_.assign(1, 0);
    count_ = 0;
    int r = ring_buffer__consume(rb_);
    bool full = r == kBatchFull;
    uint32_t n = count_;
    if (n > 0) Deliver();
    if (closed_ || paused_) return n;
    // Keep draining on the next loop turn while the ring has more than one
    // batch's worth; go back to timer/epoll pacing once it is drained.
    if (full) {
      uv_idle_start(&handles_->idle, OnIdle);
    } else {
      uv_idle_stop(&handles_->idle);
    }
    return n;
  }

  void Deliver() {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::Copy(env, data_.data(), data_.size());
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, offsets_.size() * sizeof(uint32_t));
    memcpy(ab.Data(), offsets_.data(), offsets_.size() * sizeof(uint32_t));
    Napi::Uint32Array offs = Napi::Uint32Array::New(env, offsets_.size(), ab, 0);
    // JS may close this reader from inside the callback (a for-await that
    // breaks runs in the microtasks MakeCallback drains): keep the callback
    // and its async context alive until the call has returned.
    delivering_ = true;
    try {
      onBatch_.MakeCallback(Value(), {buf, offs, Napi::Number::New(env, count_)}, *asyncContext_);
    } catch (const Napi::Error& e) {
      // An exception thrown by the JS batch handler surfaces as an uncaught
      // exception, exactly as from any other event-loop callback.
      napi_fatal_exception(env, e.Value());
    }
    delivering_ = false;
    if (closed_) ReleaseCallback();
  }

  void ReleaseCallback() {
    if (!onBatch_.IsEmpty()) onBatch_.Reset();
    asyncContext_.reset();
  }

  Napi::Value Pause(const Napi::CallbackInfo& info) {
    if (!closed_ && !paused_) {
      paused_ = true;
      Stop();
    }
    return info.Env().Undefined();
  }
  Napi::Value Resume(const Napi::CallbackInfo& info) {
    if (!closed_ && paused_) {
      paused_ = false;
      Start();
      uv_idle_start(&handles_->idle, OnIdle);  // drain what piled up, without waiting a timer tick
    }
    return info.Env().Undefined();
  }
  Napi::Value CloseJs(const Napi::CallbackInfo& info) {
    Close();
    return info.Env().Undefined();
  }
  // Synchronous drain (used by tests and by close() to flush): returns records delivered.
  Napi::Value DrainJs(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), closed_ ? 0 : Drain(true));
  }

  NativeObject* owner_ = nullptr;
  ring_buffer* rb_ = nullptr;
  RingHandles* handles_ = nullptr;
  std::unique_ptr<Napi::AsyncContext> asyncContext_;
  Napi::FunctionReference onBatch_;
  std::vector<uint8_t> data_;
  std::vector<uint32_t> offsets_;
  uint32_t count_ = 0;
  uint32_t maxBatch_ = 4096;
  uint32_t latencyMs_ = 10;
  bool paused_ = false;
  bool closed_ = true;
  bool delivering_ = false;
};

// ---------------------------------------------------------------------------
// One bpf_object and everything hanging off it.

class NativeObject : public Napi::ObjectWrap<NativeObject> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(
        env, "NativeObject",
        {InstanceMethod<&NativeObject::Programs>("programs"), InstanceMethod<&NativeObject::Maps>("maps"),
         InstanceMethod<&NativeObject::Globals>("globals"), InstanceMethod<&NativeObject::SetGlobal>("setGlobal"),
         InstanceMethod<&NativeObject::ResizeMap>("resizeMap"),
         InstanceMethod<&NativeObject::SetAutoload>("setAutoload"), InstanceMethod<&NativeObject::Load>("load"),
         InstanceMethod<&NativeObject::Attach>("attach"), InstanceMethod<&NativeObject::Detach>("detach"),
         InstanceMethod<&NativeObject::MapLookup>("mapLookup"),
         InstanceMethod<&NativeObject::MapUpdate>("mapUpdate"),
         InstanceMethod<&NativeObject::MapDelete>("mapDelete"),
         InstanceMethod<&NativeObject::MapNextKey>("mapNextKey"),
         InstanceMethod<&NativeObject::MapLookupBatch>("mapLookupBatch"),
         InstanceMethod<&NativeObject::MapUpdateBatch>("mapUpdateBatch"),
         InstanceMethod<&NativeObject::MapDeleteBatch>("mapDeleteBatch"),
         InstanceMethod<&NativeObject::OpenRing>("openRing"), InstanceMethod<&NativeObject::CloseJs>("close")});
  }

  // new NativeObject(pathOrBuffer, name?, btfCustomPath?)
  explicit NativeObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeObject>(info) {
    Napi::Env env = info.Env();
    AddonData* data = env.GetInstanceData<AddonData>();
    registry_ = data->registry;
    std::string name;
    std::string btfPath;
    bpf_object_open_opts opts;
    memset(&opts, 0, sizeof(opts));
    opts.sz = sizeof(opts);
    if (info.Length() > 1 && info[1].IsString()) {
      name = info[1].As<Napi::String>().Utf8Value();
      opts.object_name = name.c_str();
    }
    // Kernel BTF from a file, for CO-RE relocations where /sys/kernel/btf/vmlinux is missing
    // (libbpf copies the path at open and parses the file at load).
    if (info.Length() > 2 && info[2].IsString()) {
      btfPath = info[2].As<Napi::String>().Utf8Value();
      opts.btf_custom_path = btfPath.c_str();
    }
    LogCapture cap;
    errno = 0;
    if (info.Length() > 0 && info[0].IsBuffer()) {
      auto buf = info[0].As<Napi::Buffer<uint8_t>>();
      // libbpf reads the ELF image from this memory until load: keep a copy.
      image_.assign(buf.Data(), buf.Data() + buf.Length());
      if (opts.object_name == nullptr) opts.object_name = "memory";
      obj_ = bpf_object__open_mem(image_.data(), image_.size(), &opts);
    } else {
      std::string path = StringArg(info, 0);
      obj_ = bpf_object__open_file(path.c_str(), &opts);
    }
    if (obj_ == nullptr) {
      int err = errno != 0 ? errno : EINVAL;
      Throw(env, "OPEN", "bpf_object__open", err, "cannot open BPF object", cap.log);
    }
    registry_->objects.insert(this);
  }

  ~NativeObject() override { Close(); }

  void Close() {
    if (obj_ == nullptr) return;
    for (NativeRing* r : std::set<NativeRing*>(rings_)) r->Close();
    rings_.clear();
    for (auto& [id, link] : links_) bpf_link__destroy(link);
    links_.clear();
    bpf_object__close(obj_);
    obj_ = nullptr;
    image_.clear();
    image_.shrink_to_fit();
    registry_->objects.erase(this);
  }

  void ForgetRing(NativeRing* r) { rings_.erase(r); }

 private:
  bpf_object* Obj(Napi::Env env, const char* operation) {
    if (obj_ == nullptr) Throw(env, "CLOSED", operation, 0, "the BPF object is closed");
    return obj_;
  }

  bpf_program* Prog(Napi::Env env, const std::string& name, const char* code, const char* operation) {
    bpf_program* p = bpf_object__find_program_by_name(Obj(env, operation), name.c_str());
    if (p == nullptr) Throw(env, code, operation, ENOENT, "no program named '" + name + "' in the object");
    return p;
  }

  bpf_map* Map(Napi::Env env, const std::string& name, const char* code, const char* operation) {
    bpf_map* m = bpf_object__find_map_by_name(Obj(env, operation), name.c_str());
    if (m == nullptr) Throw(env, code, operation, ENOENT, "no map named '" + name + "' in the object");
    return m;
  }

  bpf_map* LoadedMap(Napi::Env env, const std::string& name, const char* operation) {
    bpf_map* m = Map(env, name, "MAP", operation);
    if (!loaded_) Throw(env, "MAP", operation, 0, "map '" + name + "' has no kernel object before load()");
    return m;
  }

  Napi::Value Programs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    bpf_program* p;
    uint32_t i = 0;
    bpf_object__for_each_program(p, Obj(env, "programs")) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", bpf_program__name(p));
      o.Set("section", bpf_program__section_name(p));
      const char* pt = libbpf_bpf_prog_type_str(bpf_program__type(p));
      o.Set("progType", pt ? pt : "unknown");
      const char* at = libbpf_bpf_attach_type_str(bpf_program__expected_attach_type(p));
      o.Set("attachType", at ? at : "unknown");
      o.Set("autoload", bpf_program__autoload(p));
      out.Set(i++, o);
    }
    return out;
  }

  Napi::Value Maps(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    bpf_map* m;
    uint32_t i = 0;
    bpf_object__for_each_map(m, Obj(env, "maps")) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", bpf_map__name(m));
      const char* t = libbpf_bpf_map_type_str(bpf_map__type(m));
      o.Set("type", t ? t : "unknown");
      o.Set("keySize", bpf_map__key_size(m));
      o.Set("valueSize", bpf_map__value_size(m));
      o.Set("maxEntries", bpf_map__max_entries(m));
      o.Set("internal", bpf_map__is_internal(m));
      out.Set(i++, o);
    }
    return out;
  }

  struct GlobalVar {
    std::string name;
    std::string section;
    uint32_t offset;
    uint32_t size;
    bool readonly;
  };

  // Variables of the .rodata/.data/.bss data sections, read from the object's BTF.
  std::vector<GlobalVar> ListGlobals(Napi::Env env) {
    std::vector<GlobalVar> out;
    const btf* b = bpf_object__btf(Obj(env, "globals"));
    if (b == nullptr) return out;
    uint32_t n = btf__type_cnt(b);
    for (uint32_t id = 1; id < n; id++) {
      const btf_type* t = btf__type_by_id(b, id);
      if (t == nullptr || !btf_is_datasec(t)) continue;
      const char* sec = btf__name_by_offset(b, t->name_off);
      if (sec == nullptr) continue;
      std::string s(sec);
      bool ro = s == ".rodata" || s.rfind(".rodata.", 0) == 0;
      bool rw = s == ".data" || s == ".bss" || s.rfind(".data.", 0) == 0;
      if (!ro && !rw) continue;
      const btf_var_secinfo* vsi = btf_var_secinfos(t);
      for (uint16_t k = 0; k < btf_vlen(t); k++, vsi++) {
        const btf_type* v = btf__type_by_id(b, vsi->type);
        if (v == nullptr || !btf_is_var(v)) continue;
        const char* vn = btf__name_by_offset(b, v->name_off);
        out.push_back({vn ? vn : "", s, vsi->offset, vsi->size, ro});
      }
    }
    return out;
  }

  bpf_map* SectionMap(const std::string& section) {
    bpf_map* m;
    bpf_object__for_each_map(m, obj_) {
      if (!bpf_map__is_internal(m)) continue;
      std::string name = bpf_map__name(m);
      if (name.size() >= section.size() && name.compare(name.size() - section.size(), section.size(), section) == 0)
        return m;
    }
    return nullptr;
  }

  Napi::Value Globals(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    uint32_t i = 0;
    for (const GlobalVar& g : ListGlobals(env)) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", g.name);
      o.Set("section", g.section);
      o.Set("offset", g.offset);
      o.Set("size", g.size);
      o.Set("readonly", g.readonly);
      out.Set(i++, o);
    }
    return out;
  }

  // setGlobal(name, buffer): the buffer is already encoded to the variable's size by the wrapper.
  Napi::Value SetGlobal(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = StringArg(info, 0);
    auto value = BufferArg(info, 1);
    const char* op = "setGlobal";
    Obj(env, op);
    if (loaded_ || loadFailed_)
      Throw(env, "CONFIGURE", op, EBUSY, "cannot set '" + name + "' after load(): globals are frozen at load");
    for (const GlobalVar& g : ListGlobals(env)) {
      if (g.name != name) continue;
      if (value.Length() != g.size)
        Throw(env, "CONFIGURE", op, EINVAL,
              "'" + name + "' is " + std::to_string(g.size) + " bytes, got " + std::to_string(value.Length()));
      bpf_map* m = SectionMap(g.section);
      if (m == nullptr) Throw(env, "CONFIGURE", op, ENOENT, "no map backs section " + g.section);
      size_t sz = 0;
      // Before load, the initial value is libbpf's writable image of the section.
      auto* base = static_cast<uint8_t*>(const_cast<void*>(bpf_map__initial_value(m, &sz)));
      if (base == nullptr || static_cast<size_t>(g.offset) + g.size > sz)
        Throw(env, "CONFIGURE", op, EINVAL, "section " + g.section + " image is too small for '" + name + "'");
      memcpy(base + g.offset, value.Data(), g.size);
      return env.Undefined();
    }
    Throw(env, "CONFIGURE", op, ENOENT, "no global variable named '" + name + "' in .rodata/.data/.bss");
  }

  Napi::Value ResizeMap(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = StringArg(info, 0);
    uint32_t n = info[1].As<Napi::Number>().Uint32Value();
    const char* op = "resizeMap";
    bpf_map* m = Map(env, name, "CONFIGURE", op);
    if (loaded_ || loadFailed_) Throw(env, "CONFIGURE", op, EBUSY, "cannot resize '" + name + "' after load()");
    LogCapture cap;
    int r = bpf_map__set_max_entries(m, n);
    if (r != 0) Throw(env, "CONFIGURE", op, ErrOf(r), "cannot resize '" + name + "'", cap.log);
    return env.Undefined();
  }

  Napi::Value SetAutoload(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = StringArg(info, 0);
    bool on = info[1].As<Napi::Boolean>().Value();
    const char* op = "setAutoload";
    bpf_program* p = Prog(env, name, "CONFIGURE", op);
    if (loaded_ || loadFailed_) Throw(env, "CONFIGURE", op, EBUSY, "cannot change autoload after load()");
    int r = bpf_program__set_autoload(p, on);
    if (r != 0) Throw(env, "CONFIGURE", op, ErrOf(r), "cannot set autoload of '" + name + "'");
    return env.Undefined();
  }

  Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_object* o = Obj(env, "load");
    if (loaded_) Throw(env, "LOAD", "bpf_object__load", EALREADY, "the object is already loaded");
    if (loadFailed_)
      Throw(env, "LOAD", "bpf_object__load", EINVAL, "an earlier load() failed; open the object again");
    LogCapture cap;
    int r = bpf_object__load(o);
    if (r != 0) {
      loadFailed_ = true;
      Throw(env, "LOAD", "bpf_object__load", ErrOf(r), "cannot load BPF object", cap.log);
    }
    loaded_ = true;
    image_.clear();
    image_.shrink_to_fit();
    return env.Undefined();
  }

  // attach(program, spec|undefined) -> link id
  Napi::Value Attach(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = StringArg(info, 0);
    bpf_program* p = Prog(env, name, "ATTACH", "attach");
    if (!loaded_) Throw(env, "ATTACH", "attach", EINVAL, "call load() before attach()");
    if (!bpf_program__autoload(p))
      Throw(env, "ATTACH", "attach", EINVAL, "program '" + name + "' was not loaded (autoload is off)");
    LogCapture cap;
    errno = 0;
    bpf_link* link = nullptr;
    std::string op;
    if (info.Length() < 2 || !info[1].IsObject()) {
      op = "bpf_program__attach";
      link = bpf_program__attach(p);
    } else {
      Napi::Object spec = info[1].As<Napi::Object>();
      std::string kind = spec.Get("kind").As<Napi::String>().Utf8Value();
      if (kind == "tracepoint") {
        op = "bpf_program__attach_tracepoint";
        std::string cat = spec.Get("category").As<Napi::String>().Utf8Value();
        std::string tp = spec.Get("name").As<Napi::String>().Utf8Value();
        link = bpf_program__attach_tracepoint(p, cat.c_str(), tp.c_str());
      } else if (kind == "tp_btf") {
        op = "bpf_program__attach_trace";
        link = bpf_program__attach_trace(p);
      } else if (kind == "raw_tp") {
        op = "bpf_program__attach_raw_tracepoint";
        std::string tp = spec.Get("name").As<Napi::String>().Utf8Value();
        link = bpf_program__attach_raw_tracepoint(p, tp.c_str());
      } else if (kind == "uprobe" || kind == "uretprobe") {
        op = "bpf_program__attach_uprobe_opts";
        std::string path = spec.Get("binaryPath").As<Napi::String>().Utf8Value();
        std::string symbol;
        Napi::Value sym = spec.Get("symbol");
        if (sym.IsString()) symbol = sym.As<Napi::String>().Utf8Value();
        Napi::Value off = spec.Get("offset");
        size_t offset = off.IsNumber() ? static_cast<size_t>(off.As<Napi::Number>().Int64Value()) : 0;
        Napi::Value pidv = spec.Get("pid");
        pid_t pid = pidv.IsNumber() ? pidv.As<Napi::Number>().Int32Value() : -1;
        bpf_uprobe_opts opts;
        memset(&opts, 0, sizeof(opts));
        opts.sz = sizeof(opts);
        opts.retprobe = kind == "uretprobe";
        opts.func_name = symbol.empty() ? nullptr : symbol.c_str();
        link = bpf_program__attach_uprobe_opts(p, pid, path.c_str(), offset, &opts);
      } else {
        Throw(env, "ATTACH", "attach", EINVAL, "unknown attach kind '" + kind + "'");
      }
    }
    if (link == nullptr) {
      int err = errno != 0 ? errno : EINVAL;
      Throw(env, "ATTACH", op, err, "cannot attach program '" + name + "'", cap.log);
    }
    uint32_t id = ++nextLink_;
    links_[id] = link;
    return Napi::Number::New(env, id);
  }

  Napi::Value Detach(const Napi::CallbackInfo& info) {
    uint32_t id = info[0].As<Napi::Number>().Uint32Value();
    auto it = links_.find(id);
    if (it == links_.end()) return Napi::Boolean::New(info.Env(), false);
    bpf_link__destroy(it->second);
    links_.erase(it);
    return Napi::Boolean::New(info.Env(), true);
  }

  uint32_t ValueBytes(bpf_map* m) {
    uint32_t vs = bpf_map__value_size(m);
    if (!IsPerCpu(bpf_map__type(m))) return vs;
    int cpus = libbpf_num_possible_cpus();
    return RoundUp8(vs) * static_cast<uint32_t>(cpus > 0 ? cpus : 1);
  }

  void CheckKey(Napi::Env env, bpf_map* m, size_t len, const char* op) {
    if (len != bpf_map__key_size(m))
      Throw(env, "MAP", op, EINVAL,
            "key is " + std::to_string(len) + " bytes, map '" + bpf_map__name(m) + "' keys are " +
                std::to_string(bpf_map__key_size(m)));
  }

  Napi::Value MapLookup(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const char* op = "bpf_map_lookup_elem";
    bpf_map* m = LoadedMap(env, StringArg(info, 0), op);
    auto key = BufferArg(info, 1);
    CheckKey(env, m, key.Length(), op);
    std::vector<uint8_t> val(ValueBytes(m));
    int r = bpf_map_lookup_elem(bpf_map__fd(m), key.Data(), val.data());
    if (r != 0) {
      int err = ErrOf(r);
      if (err == ENOENT) return env.Undefined();
      Throw(env, "MAP", op, err, std::string("lookup in '") + bpf_map__name(m) + "' failed");
    }
    return Napi::Buffer<uint8_t>::Copy(env, val.data(), val.size());
  }

  Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const char* op = "bpf_map_update_elem";
    bpf_map* m = LoadedMap(env, StringArg(info, 0), op);
    auto key = BufferArg(info, 1);
    auto value = BufferArg(info, 2);
    uint32_t flags = info[3].As<Napi::Number>().Uint32Value();
    CheckKey(env, m, key.Length(), op);
    if (value.Length() != ValueBytes(m))
      Throw(env, "MAP", op, EINVAL,
            "value is " + std::to_string(value.Length()) + " bytes, map '" + bpf_map__name(m) + "' needs " +
                std::to_string(ValueBytes(m)));
    int r = bpf_map_update_elem(bpf_map__fd(m), key.Data(), value.Data(), flags);
    if (r != 0) Throw(env, "MAP", op, ErrOf(r), std::string("update of '") + bpf_map__name(m) + "' failed");
    return env.Undefined();
  }

  Napi::Value MapDelete(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const char* op = "bpf_map_delete_elem";
    bpf_map* m = LoadedMap(env, StringArg(info, 0), op);
    auto key = BufferArg(info, 1);
    CheckKey(env, m, key.Length(), op);
    int r = bpf_map_delete_elem(bpf_map__fd(m), key.Data());
    if (r != 0) {
      int err = ErrOf(r);
      if (err == ENOENT) return Napi::Boolean::New(env, false);
      Throw(env, "MAP", op, err, std::string("delete in '") + bpf_map__name(m) + "' failed");
    }
    return Napi::Boolean::New(env, true);
  }

  // mapNextKey(name, key|null) -> next key Buffer, or null at the end
  Napi::Value MapNextKey(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const char* op = "bpf_map_get_next_key";
    bpf_map* m = LoadedMap(env, StringArg(info, 0), op);
    std::vector<uint8_t> next(bpf_map__key_size(m));
    const void* cur = nullptr;
    if (info.Length() > 1 && info[1].IsBuffer()) {
      auto key = info[1].As<Napi::Buffer<uint8_t>>();
      CheckKey(env, m, key.Length(), op);
      cur = key.Data();
    }
    int r = bpf_map_get_next_key(bpf_map__fd(m), cur, next.data());
    if (r != 0) {
      int err = ErrOf(r);
      if (err == ENOENT) return env.Null();
      Throw(env, "MAP", op, err, std::string("iteration of '") + bpf_map__name(m) + "' failed");
    }
    return Napi::Buffer<uint8_t>::Copy(env, next.data(), next.size());
  }

  // mapLookupBatch(name) -> { keys: Buffer, values: Buffer, count }: the whole map, in kernel batches.
  Napi::Value MapLookupBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const char* op = "bpf_map_lookup_batch";
    bpf_map* m = LoadedMap(env, StringArg(info, 0), op);
    uint32_t ks = bpf_map__key_size(m);
    uint32_t vs = ValueBytes(m);
    uint32_t chunk = bpf_map__max_entries(m);
    if (chunk == 0) chunk = 1;
    if (chunk > 4096) chunk = 4096;
    std::vector<uint8_t> keys, values;
    std::vector<uint8_t> kbuf(static_cast<size_t>(chunk) * ks), vbuf(static_cast<size_t>(chunk) * vs);
    // The batch cursor is opaque: a hash map uses a u32 bucket, an array its key.
    std::vector<uint8_t> inTok(ks < 8 ? 8 : ks), outTok(ks < 8 ? 8 : ks);
    bool first = true;
    uint32_t total = 0;
    bpf_map_batch_opts opts;
    memset(&opts, 0, sizeof(opts));
    opts.sz = sizeof(opts);
    for (;;) {
      __u32 count = chunk;
      int r = bpf_map_lookup_batch(bpf_map__fd(m), first ? nullptr : inTok.data(), outTok.data(), kbuf.data(),
                                   vbuf.data(), &count, &opts);
      int err = r != 0 ? ErrOf(r) : 0;
      if (err != 0 && err != ENOENT) Throw(env, "MAP", op, err, std::string("batch lookup of '") + bpf_map__name(m) + "' failed");
      keys.insert(keys.end(), kbuf.begin(), kbuf.begin() + static_cast<size_t>(count) * ks);
      values.insert(values.end(), vbuf.begin(), vbuf.begin() + static_cast<size_t>(count) * vs);
      total += count;
      if (err == ENOENT) break;
      inTok.swap(outTok);
      first = false;
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("keys", Napi::Buffer<uint8_t>::Copy(env, keys.data(), keys.size()));
    out.Set("values", Napi::Buffer<uint8_t>::Copy(env, values.data(), values.size()));
    out.Set("count", total);
    return out;
  }

  // mapUpdateBatch(name, keys, values, count, flags) -> entries written
  Napi::Value MapUpdateBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const char* op = "bpf_map_update_batch";
    bpf_map* m = LoadedMap(env, StringArg(info, 0), op);
    auto keys = BufferArg(info, 1);
    auto values = BufferArg(info, 2);
    __u32 count = info[3].As<Napi::Number>().Uint32Value();
    if (keys.Length() != static_cast<size_t>(count) * bpf_map__key_size(m) ||
        values.Length() != static_cast<size_t>(count) * ValueBytes(m))
      Throw(env, "MAP", op, EINVAL, "keys/values length does not match count and the map's sizes");
    bpf_map_batch_opts opts;
    memset(&opts, 0, sizeof(opts));
    opts.sz = sizeof(opts);
    opts.elem_flags = info[4].As<Napi::Number>().Uint32Value();
    int r = bpf_map_update_batch(bpf_map__fd(m), keys.Data(), values.Data(), &count, &opts);
    if (r != 0)
      Throw(env, "MAP", op, ErrOf(r),
            std::string("batch update of '") + bpf_map__name(m) + "' failed after " + std::to_string(count) +
                " entries");
    return Napi::Number::New(env, count);
  }

  // mapDeleteBatch(name, keys, count) -> entries deleted
  Napi::Value MapDeleteBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const char* op = "bpf_map_delete_batch";
    bpf_map* m = LoadedMap(env, StringArg(info, 0), op);
    auto keys = BufferArg(info, 1);
    __u32 count = info[2].As<Napi::Number>().Uint32Value();
    if (keys.Length() != static_cast<size_t>(count) * bpf_map__key_size(m))
      Throw(env, "MAP", op, EINVAL, "keys length does not match count and the key size");
    bpf_map_batch_opts opts;
    memset(&opts, 0, sizeof(opts));
    opts.sz = sizeof(opts);
    int r = bpf_map_delete_batch(bpf_map__fd(m), keys.Data(), &count, &opts);
    if (r != 0)
      Throw(env, "MAP", op, ErrOf(r),
            std::string("batch delete in '") + bpf_map__name(m) + "' failed after " + std::to_string(count) +
                " entries");
    return Napi::Number::New(env, count);
  }

  // openRing(mapName, latencyMs, maxBatch, onBatch) -> NativeRing
  Napi::Value OpenRing(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = StringArg(info, 0);
    const char* op = "ring_buffer__new";
    bpf_map* m = Map(env, name, "RINGBUF", op);
    if (!loaded_) Throw(env, "RINGBUF", op, EINVAL, "call load() before opening a ring buffer");
    if (bpf_map__type(m) != BPF_MAP_TYPE_RINGBUF)
      Throw(env, "RINGBUF", op, EINVAL, "map '" + name + "' is not a ring buffer");
    uint32_t latency = info[1].As<Napi::Number>().Uint32Value();
    uint32_t maxBatch = info[2].As<Napi::Number>().Uint32Value();
    AddonData* data = env.GetInstanceData<AddonData>();
    Napi::Object ringObj = data->ringCtor.New({});
    NativeRing* ring = NativeRing::Unwrap(ringObj);
    ring->Setup(env, this, bpf_map__fd(m), latency, maxBatch, info[3].As<Napi::Function>(), name);
    rings_.insert(ring);
    return ringObj;
  }

  Napi::Value CloseJs(const Napi::CallbackInfo& info) {
    Close();
    return info.Env().Undefined();
  }

  bpf_object* obj_ = nullptr;
  bool loaded_ = false;
  bool loadFailed_ = false;
  std::vector<uint8_t> image_;
  std::map<uint32_t, bpf_link*> links_;
  uint32_t nextLink_ = 0;
  std::set<NativeRing*> rings_;
  std::shared_ptr<Registry> registry_;
};

void NativeRing::Setup(Napi::Env env, NativeObject* owner, int mapFd, uint32_t latencyMs, uint32_t maxBatch,
                       Napi::Function onBatch, const std::string& mapName) {
  LogCapture cap;
  errno = 0;
  rb_ = ring_buffer__new(mapFd, OnSample, this, nullptr);
  if (rb_ == nullptr) {
    int err = errno != 0 ? errno : EINVAL;
    Throw(env, "RINGBUF", "ring_buffer__new", err, "cannot open ring buffer '" + mapName + "'", cap.log);
  }
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  handles_ = new RingHandles();
  handles_->owner = this;
  uv_timer_init(loop, &handles_->timer);
  uv_idle_init(loop, &handles_->idle);
  int pr = uv_poll_init(loop, &handles_->poll, ring_buffer__epoll_fd(rb_));
  handles_->timer.data = handles_;
  handles_->idle.data = handles_;
  handles_->poll.data = handles_;
  if (pr != 0) {
    // Unwind: the timer and idle handles exist and must be closed.
    handles_->owner = nullptr;
    handles_->pendingCloses = 2;
    uv_close(reinterpret_cast<uv_handle_t*>(&handles_->timer), OnClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&handles_->idle), OnClosed);
    handles_ = nullptr;
    ring_buffer__free(rb_);
    rb_ = nullptr;
    Throw(env, "RINGBUF", "uv_poll_init", -pr, "cannot watch ring buffer '" + mapName + "'");
  }
  owner_ = owner;
  asyncContext_ = std::make_unique<Napi::AsyncContext>(env, "StellaBpfRingBuffer");
  onBatch_ = Napi::Persistent(onBatch);
  latencyMs_ = latencyMs == 0 ? 1 : latencyMs;
  maxBatch_ = maxBatch == 0 ? 1 : maxBatch;
  data_.reserve(64 * 1024);
  offsets_.reserve(static_cast<size_t>(maxBatch_) + 1);
  closed_ = false;
  Start();
}

void NativeRing::Close() {
  if (closed_) return;
  closed_ = true;
  if (handles_ != nullptr) {
    Stop();
    handles_->owner = nullptr;
    handles_->pendingCloses = 3;
    uv_close(reinterpret_cast<uv_handle_t*>(&handles_->timer), OnClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&handles_->poll), OnClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&handles_->idle), OnClosed);
    handles_ = nullptr;
  }
  // uv_close on the poll handle has already removed the epoll fd from the loop.
  if (rb_ != nullptr) ring_buffer__free(rb_);
  rb_ = nullptr;
  if (!delivering_) ReleaseCallback();
  if (owner_ != nullptr) owner_->ForgetRing(this);
  owner_ = nullptr;
}

// ---------------------------------------------------------------------------
// Feature probes: load (and where harmless, attach) a two-instruction program.

int LoadTiny(enum bpf_prog_type type, enum bpf_attach_type attach, uint32_t btfId, std::string* log) {
  bpf_insn insns[2];
  memset(insns, 0, sizeof(insns));
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r0 = 0
  insns[0].dst_reg = BPF_REG_0;
  insns[1].code = BPF_JMP | BPF_EXIT;
  bpf_prog_load_opts opts;
  memset(&opts, 0, sizeof(opts));
  opts.sz = sizeof(opts);
  opts.expected_attach_type = attach;
  opts.attach_btf_id = btfId;
  int fd = bpf_prog_load(type, "stella_probe", "GPL", insns, 2, &opts);
  if (fd >= 0) return fd;
  int err = -fd;
  std::vector<char> buf(4096, 0);
  opts.log_buf = buf.data();
  opts.log_size = static_cast<uint32_t>(buf.size());
  opts.log_level = 1;
  int fd2 = bpf_prog_load(type, "stella_probe", "GPL", insns, 2, &opts);
  if (fd2 >= 0) return fd2;
  *log = buf.data();
  return -err;
}

int VmlinuxId(const char* name, uint32_t kind, std::string* log) {
  btf* vm = btf__load_vmlinux_btf();
  if (vm == nullptr) {
    *log = "kernel BTF (/sys/kernel/btf/vmlinux) is not available";
    return -ENOENT;
  }
  int id = btf__find_by_name_kind(vm, name, kind);
  btf__free(vm);
  if (id < 0) *log = std::string("kernel BTF has no ") + name;
  return id;
}

Napi::Value ProbeProgram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string kind = StringArg(info, 0);
  std::string log;
  LogCapture cap;
  int fd = -EINVAL;
  bool attachRaw = false;
  const char* rawName = nullptr;
  if (kind == "tracepoint") {
    fd = LoadTiny(BPF_PROG_TYPE_TRACEPOINT, static_cast<bpf_attach_type>(0), 0, &log);
  } else if (kind == "raw_tp") {
    fd = LoadTiny(BPF_PROG_TYPE_RAW_TRACEPOINT, static_cast<bpf_attach_type>(0), 0, &log);
    attachRaw = true;
    rawName = "sys_enter";
  } else if (kind == "uprobe") {
    fd = LoadTiny(BPF_PROG_TYPE_KPROBE, static_cast<bpf_attach_type>(0), 0, &log);
  } else if (kind == "tp_btf") {
    int id = VmlinuxId("btf_trace_sched_process_exec", BTF_KIND_TYPEDEF, &log);
    fd = id < 0 ? id : LoadTiny(BPF_PROG_TYPE_TRACING, BPF_TRACE_RAW_TP, static_cast<uint32_t>(id), &log);
    attachRaw = true;
  } else if (kind == "fentry" || kind == "fexit") {
    int id = VmlinuxId("bpf_fentry_test1", BTF_KIND_FUNC, &log);
    if (id < 0) id = VmlinuxId("vfs_read", BTF_KIND_FUNC, &log);
    fd = id < 0 ? id
                : LoadTiny(BPF_PROG_TYPE_TRACING, kind == "fentry" ? BPF_TRACE_FENTRY : BPF_TRACE_FEXIT,
                           static_cast<uint32_t>(id), &log);
    attachRaw = true;
  } else if (kind == "lsm") {
    int id = VmlinuxId("bpf_lsm_file_open", BTF_KIND_FUNC, &log);
    fd = id < 0 ? id : LoadTiny(BPF_PROG_TYPE_LSM, BPF_LSM_MAC, static_cast<uint32_t>(id), &log);
    attachRaw = true;
  } else if (kind == "ringbuf") {
    fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "stella_probe", 0, 0, 4096, nullptr);
  } else {
    throw Napi::TypeError::New(env, "unknown feature " + kind);
  }
  Napi::Object out = Napi::Object::New(env);
  std::string stage = "load";
  if (fd >= 0 && attachRaw) {
    // The program returns 0: attached for an instant, it changes nothing.
    int lfd = bpf_raw_tracepoint_open(rawName, fd);
    if (lfd < 0) {
      close(fd);
      fd = lfd;
      stage = "attach";
    } else {
      close(lfd);
    }
  }
  if (fd >= 0) {
    close(fd);
    out.Set("supported", true);
  } else {
    out.Set("supported", false);
    out.Set("errno", -fd);
    out.Set("stage", stage);
    out.Set("message", std::string(strerror(-fd)));
    out.Set("log", log + cap.log);
  }
  return out;
}

Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  int n = libbpf_num_possible_cpus();
  if (n < 0) Throw(info.Env(), "BINDING", "libbpf_num_possible_cpus", -n, "cannot read possible CPUs");
  return Napi::Number::New(info.Env(), n);
}

// init({ BpfError, NotSupportedError, debug }): the TS wrapper hands over its error classes.
Napi::Value InitJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddonData* data = env.GetInstanceData<AddonData>();
  Napi::Object o = info[0].As<Napi::Object>();
  data->errorClass = Napi::Persistent(o.Get("BpfError").As<Napi::Function>());
  if (o.Get("NotSupportedError").IsFunction())
    data->notSupportedClass = Napi::Persistent(o.Get("NotSupportedError").As<Napi::Function>());
  g_debug = o.Get("debug").ToBoolean().Value();
  return env.Undefined();
}

// capget(): this thread's effective capability set as a BigInt. A process that
// gained capabilities at exec is non-dumpable and cannot read its own
// /proc/self/status; capget(2) answers regardless. Version 3 = 64-bit sets.
Napi::Value CapGet(const Napi::CallbackInfo& info) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) != 0) {
    int err = errno;
    Throw(info.Env(), "BINDING", "capget", err, std::string("capget failed: ") + strerror(err));
  }
  uint64_t eff = (static_cast<uint64_t>(data[1].effective) << 32) | data[0].effective;
  return Napi::BigInt::New(info.Env(), eff);
}

Napi::Value LiveCounts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddonData* data = env.GetInstanceData<AddonData>();
  return Napi::Number::New(env, static_cast<double>(data->registry->objects.size()));
}

void CleanupEnv(void* arg) {
  // Node is tearing the environment down: close every ring, link and object
  // so no program stays attached and no fd leaks past the environment.
  auto* registry = static_cast<std::shared_ptr<Registry>*>(arg);
  for (NativeObject* o : std::set<NativeObject*>((*registry)->objects)) o->Close();
  delete registry;
}

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  libbpf_set_print(PrintCallback);
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  data->objectCtor = Napi::Persistent(NativeObject::Init(env));
  data->ringCtor = Napi::Persistent(NativeRing::Init(env));
  napi_add_env_cleanup_hook(env, CleanupEnv, new std::shared_ptr<Registry>(data->registry));
  exports.Set("NativeObject", data->objectCtor.Value());
  exports.Set("init", Napi::Function::New(env, InitJs));
  exports.Set("probeProgram", Napi::Function::New(env, ProbeProgram));
  exports.Set("numPossibleCpus", Napi::Function::New(env, NumPossibleCpus));
  exports.Set("capget", Napi::Function::New(env, CapGet));
  exports.Set("liveObjects", Napi::Function::New(env, LiveCounts));
  exports.Set("libbpfVersion", Napi::String::New(env, std::to_string(libbpf_major_version()) + "." +
                                                          std::to_string(libbpf_minor_version())));
  return exports;
}

}  // namespace

NODE_API_MODULE(stella_bpf, InitModule)
