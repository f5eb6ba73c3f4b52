// Native bridge from Node to libostree: one Sysroot class whose long calls run on
// worker threads (Napi::AsyncWorker), so the event loop never blocks on disk or network.
// Every GError becomes a JS Error carrying the GError domain and code.
// The JS side (ostree-bridge/sysroot.ts) serializes calls on one Sysroot object.
#include <napi.h>
#include <ostree.h>
#include <string>
#include <vector>
#include <memory>
#include <mutex>
#include <cstdio>
#include <fcntl.h>
#include <utility>

namespace {

struct GErrorInfo {
  std::string message;
  std::string domain;
  int code = 0;
  bool set = false;
  void Take(GError* e) {
    if (!e) return;
    set = true;
    message = e->message ? e->message : "unknown error";
    domain = g_quark_to_string(e->domain);
    code = e->code;
    g_error_free(e);
  }
};

Napi::Error MakeError(Napi::Env env, const GErrorInfo& info) {
  Napi::Error err = Napi::Error::New(env, info.message);
  err.Set("domain", Napi::String::New(env, info.domain));
  err.Set("gcode", Napi::Number::New(env, info.code));
  err.Set("cancelled", Napi::Boolean::New(env, info.domain == "g-io-error-quark" && info.code == G_IO_ERROR_CANCELLED));
  return err;
}

std::vector<std::string> SplitArgs(const char* s) {
  std::vector<std::string> out;
  if (!s) return out;
  gchar** parts = g_strsplit(s, " ", -1);
  for (gchar** p = parts; *p; p++) {
    if (**p == '\0') continue;
    if (g_str_has_prefix(*p, "ostree=")) continue;  // ostree's own, not a user karg
    out.emplace_back(*p);
  }
  g_strfreev(parts);
  return out;
}

struct DeploymentData {
  int index;
  std::string osname, checksum, bootcsum, origin, path;
  bool hasOrigin;
  int deploySerial, bootSerial;
  std::vector<std::string> kargs;
  bool pinned, staged, booted;
};

std::vector<DeploymentData> CollectDeployments(OstreeSysroot* sysroot) {
  std::vector<DeploymentData> out;
  g_autoptr(GPtrArray) deps = ostree_sysroot_get_deployments(sysroot);
  OstreeDeployment* booted = ostree_sysroot_get_booted_deployment(sysroot);
  for (guint i = 0; i < deps->len; i++) {
    auto* d = static_cast<OstreeDeployment*>(deps->pdata[i]);
    DeploymentData dd;
    dd.index = static_cast<int>(i);
    dd.osname = ostree_deployment_get_osname(d);
    dd.checksum = ostree_deployment_get_csum(d);
    const char* bc = ostree_deployment_get_bootcsum(d);
    dd.bootcsum = bc ? bc : "";
    dd.deploySerial = ostree_deployment_get_deployserial(d);
    dd.bootSerial = ostree_deployment_get_bootserial(d);
    GKeyFile* origin = ostree_deployment_get_origin(d);
    dd.hasOrigin = origin != nullptr;
    if (origin) {
      gsize len = 0;
      g_autofree char* data = g_key_file_to_data(origin, &len, nullptr);
      dd.origin = data ? data : "";
    }
    OstreeBootconfigParser* bcp = ostree_deployment_get_bootconfig(d);
    if (bcp) dd.kargs = SplitArgs(ostree_bootconfig_parser_get(bcp, "options"));
    dd.pinned = ostree_deployment_is_pinned(d);
    dd.staged = ostree_deployment_is_staged(d);
    dd.booted = booted != nullptr && ostree_deployment_equal(d, booted);
    g_autoptr(GFile) dir = ostree_sysroot_get_deployment_directory(sysroot, d);
    g_autofree char* p = g_file_get_path(dir);
    dd.path = p ? p : "";
    out.push_back(std::move(dd));
  }
  return out;
}

// Loads the sysroot and returns its deployment at `index` (a new reference), or sets error.
OstreeDeployment* LoadDeploymentAt(OstreeSysroot* sysroot, int index, GError** error) {
  if (!ostree_sysroot_load(sysroot, nullptr, error)) return nullptr;
  g_autoptr(GPtrArray) cur = ostree_sysroot_get_deployments(sysroot);
  if (index < 0 || static_cast<guint>(index) >= cur->len) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "no deployment at index %d", index);
    return nullptr;
  }
  return OSTREE_DEPLOYMENT(g_object_ref(cur->pdata[index]));
}

Napi::Value DeploymentsToJs(Napi::Env env, const std::vector<DeploymentData>& deps) {
  Napi::Array arr = Napi::Array::New(env, deps.size());
  for (size_t i = 0; i < deps.size(); i++) {
    const auto& d = deps[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", d.index);
    o.Set("osname", d.osname);
    o.Set("checksum", d.checksum);
    o.Set("bootcsum", d.bootcsum);
    o.Set("deploySerial", d.deploySerial);
    o.Set("bootSerial", d.bootSerial);
    Napi::Array k = Napi::Array::New(env, d.kargs.size());
    for (size_t j = 0; j < d.kargs.size(); j++) k.Set(j, d.kargs[j]);
    o.Set("kargs", k);
    o.Set("origin", d.hasOrigin ? Napi::Value(Napi::String::New(env, d.origin)) : env.Null());
    o.Set("pinned", d.pinned);
    o.Set("staged", d.staged);
    o.Set("booted", d.booted);
    o.Set("path", d.path);
    arr.Set(i, o);
  }
  return arr;
}

std::vector<std::string> StringArray(const Napi::Value& v) {
  std::vector<std::string> out;
  if (!v.IsArray()) return out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(a.Get(i).ToString().Utf8Value());
  return out;
}

// A worker that runs fn() off the event loop and resolves a promise with make(env).
class GWorker : public Napi::AsyncWorker {
 public:
  GWorker(Napi::Env env, OstreeSysroot* sysroot)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), sysroot_(OSTREE_SYSROOT(g_object_ref(sysroot))) {}
  ~GWorker() override { g_object_unref(sysroot_); }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  virtual bool Run(GError** error) = 0;
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }
  void Execute() override {
    GError* e = nullptr;
    if (!Run(&e)) {
      if (!e) g_set_error_literal(&e, G_IO_ERROR, G_IO_ERROR_FAILED, "operation failed");
      err_.Take(e);
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (err_.set) deferred_.Reject(MakeError(env, err_).Value());
    else deferred_.Resolve(Result(env));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

  Napi::Promise::Deferred deferred_;
  OstreeSysroot* sysroot_;
  GErrorInfo err_;
};

class LoadWorker : public GWorker {
 public:
  using GWorker::GWorker;
 protected:
  bool Run(GError** error) override {
    if (!ostree_sysroot_load(sysroot_, nullptr, error)) return false;
    deps_ = CollectDeployments(sysroot_);
    return true;
  }
  Napi::Value Result(Napi::Env env) override { return DeploymentsToJs(env, deps_); }
  std::vector<DeploymentData> deps_;
};

struct ProgressData {
  guint64 bytes = 0;
  guint fetched = 0, requested = 0, metadataFetched = 0, outstanding = 0, scanned = 0;
  std::string status;
};

class PullWorker : public Napi::AsyncProgressQueueWorker<ProgressData> {
 public:
  PullWorker(Napi::Env env, OstreeSysroot* sysroot, std::string remote, std::vector<std::string> refs, bool commitOnly,
             int depth, Napi::Function onProgress, GCancellable* cancellable, bool noSignVerify = false,
             bool noSignVerifySummary = false)
      : Napi::AsyncProgressQueueWorker<ProgressData>(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        sysroot_(OSTREE_SYSROOT(g_object_ref(sysroot))),
        remote_(std::move(remote)),
        refs_(std::move(refs)),
        commitOnly_(commitOnly),
        depth_(depth),
        cancellable_(G_CANCELLABLE(g_object_ref(cancellable))),
        noSignVerify_(noSignVerify),
        noSignVerifySummary_(noSignVerifySummary) {
    if (!onProgress.IsEmpty()) progressCb_ = Napi::Persistent(onProgress);
  }
  ~PullWorker() override {
    g_object_unref(sysroot_);
    g_object_unref(cancellable_);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute(const ExecutionProgress& progress) override {
    // libostree emits progress from idle sources of the thread-default main context
    // that the pull iterates; give this worker thread its own context.
    GMainContext* ctx = g_main_context_new();
    g_main_context_push_thread_default(ctx);
    progress_ = &progress;
    OstreeAsyncProgress* ap = ostree_async_progress_new_and_connect(&PullWorker::OnChanged, this);
    GError* e = nullptr;
    OstreeRepo* repo = ostree_sysroot_repo(sysroot_);
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
    std::vector<const char*> refv;
    for (auto& r : refs_) refv.push_back(r.c_str());
    refv.push_back(nullptr);
    g_variant_builder_add(&b, "{s@v}", "refs", g_variant_new_variant(g_variant_new_strv(refv.data(), -1)));
    int flags = commitOnly_ ? OSTREE_REPO_PULL_FLAGS_COMMIT_ONLY : OSTREE_REPO_PULL_FLAGS_NONE;
    g_variant_builder_add(&b, "{s@v}", "flags", g_variant_new_variant(g_variant_new_int32(flags)));
    if (depth_ != 0) g_variant_builder_add(&b, "{s@v}", "depth", g_variant_new_variant(g_variant_new_int32(depth_)));
    // The caller verifies the remote's sign-verify signatures itself (atomhost's ed25519 check,
    // for a libostree built without sign-ed25519): libostree must not try and fail.
    if (noSignVerify_) g_variant_builder_add(&b, "{s@v}", "disable-sign-verify", g_variant_new_variant(g_variant_new_boolean(TRUE)));
    if (noSignVerifySummary_)
      g_variant_builder_add(&b, "{s@v}", "disable-sign-verify-summary", g_variant_new_variant(g_variant_new_boolean(TRUE)));
    g_autoptr(GVariant) opts = g_variant_ref_sink(g_variant_builder_end(&b));
    gboolean ok = ostree_repo_pull_with_options(repo, remote_.c_str(), opts, ap, cancellable_, &e);
    ostree_async_progress_finish(ap);
    // Drain idle sources still queued for this context before dropping it.
    while (g_main_context_iteration(ctx, FALSE)) {}
    g_object_unref(ap);
    g_main_context_pop_thread_default(ctx);
    g_main_context_unref(ctx);
    progress_ = nullptr;
    if (!ok) err_.Take(e);
  }

  static void OnChanged(OstreeAsyncProgress* ap, gpointer user) {
    auto* self = static_cast<PullWorker*>(user);
    if (!self->progress_) return;
    ProgressData d;
    ostree_async_progress_get(ap, "bytes-transferred", "t", &d.bytes, "fetched", "u", &d.fetched, "requested", "u",
                              &d.requested, "metadata-fetched", "u", &d.metadataFetched, "outstanding-fetches", "u",
                              &d.outstanding, "scanned-metadata", "u", &d.scanned, nullptr);
    g_autofree char* status = ostree_async_progress_get_status(ap);
    if (status) d.status = status;
    self->progress_->Send(&d, 1);
  }

  void OnProgress(const ProgressData* data, size_t count) override {
    if (progressCb_.IsEmpty() || count == 0) return;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    const ProgressData& d = data[count - 1];
    Napi::Object o = Napi::Object::New(env);
    o.Set("bytesTransferred", Napi::Number::New(env, static_cast<double>(d.bytes)));
    o.Set("fetched", d.fetched);
    o.Set("requested", d.requested);
    o.Set("metadataFetched", d.metadataFetched);
    o.Set("outstandingFetches", d.outstanding);
    o.Set("scannedMetadata", d.scanned);
    o.Set("status", d.status);
    progressCb_.Call({o});
  }

  void OnOK() override {
    if (err_.set) deferred_.Reject(MakeError(Env(), err_).Value());
    else deferred_.Resolve(Env().Undefined());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  OstreeSysroot* sysroot_;
  std::string remote_;
  std::vector<std::string> refs_;
  bool commitOnly_;
  int depth_;
  GCancellable* cancellable_;
  bool noSignVerify_;
  bool noSignVerifySummary_;
  Napi::FunctionReference progressCb_;
  const ExecutionProgress* progress_ = nullptr;
  GErrorInfo err_;
};

class DeployWorker : public GWorker {
 public:
  DeployWorker(Napi::Env env, OstreeSysroot* s, std::string osname, std::string checksum, std::string origin,
               std::vector<std::string> kargs, int mergeIndex, bool retain, bool stage)
      : GWorker(env, s), osname_(std::move(osname)), checksum_(std::move(checksum)), origin_(std::move(origin)),
        kargs_(std::move(kargs)), mergeIndex_(mergeIndex), retain_(retain), stage_(stage) {}
 protected:
  bool Run(GError** error) override {
    if (!ostree_sysroot_load(sysroot_, nullptr, error)) return false;
    g_autoptr(GKeyFile) origin = g_key_file_new();
    if (!g_key_file_load_from_data(origin, origin_.c_str(), origin_.size(), G_KEY_FILE_KEEP_COMMENTS, error)) return false;
    g_autoptr(OstreeDeployment) merge = nullptr;
    if (mergeIndex_ >= 0) {
      merge = LoadDeploymentAt(sysroot_, mergeIndex_, error);
      if (!merge) return false;
    } else {
      merge = ostree_sysroot_get_merge_deployment(sysroot_, osname_.c_str());
    }
    std::vector<char*> argv;
    for (auto& k : kargs_) argv.push_back(const_cast<char*>(k.c_str()));
    argv.push_back(nullptr);
    OstreeSysrootDeployTreeOpts opts = {};
    opts.override_kernel_argv = argv.data();
    g_autoptr(OstreeDeployment) nd = nullptr;
    if (stage_) {
      // Staged: the deployment is written now and finalized at shutdown by
      // ostree-finalize-staged.service, which merges /etc as it is then.
      if (!ostree_sysroot_stage_tree_with_options(sysroot_, osname_.c_str(), checksum_.c_str(), origin, merge, &opts, &nd,
                                                  nullptr, error))
        return false;
      if (!ostree_sysroot_load(sysroot_, nullptr, error)) return false;
      deps_ = CollectDeployments(sysroot_);
      return true;
    }
    if (!ostree_sysroot_deploy_tree_with_options(sysroot_, osname_.c_str(), checksum_.c_str(), origin, merge, &opts, &nd,
                                                 nullptr, error))
      return false;
    auto flags = retain_ ? OSTREE_SYSROOT_SIMPLE_WRITE_DEPLOYMENT_FLAGS_RETAIN : OSTREE_SYSROOT_SIMPLE_WRITE_DEPLOYMENT_FLAGS_NONE;
    if (!ostree_sysroot_simple_write_deployment(sysroot_, osname_.c_str(), nd, merge, flags, nullptr, error)) return false;
    if (!ostree_sysroot_load(sysroot_, nullptr, error)) return false;
    deps_ = CollectDeployments(sysroot_);
    return true;
  }
  Napi::Value Result(Napi::Env env) override { return DeploymentsToJs(env, deps_); }
 private:
  std::string osname_, checksum_, origin_;
  std::vector<std::string> kargs_;
  int mergeIndex_;
  bool retain_;
  bool stage_;
  std::vector<DeploymentData> deps_;
};

class WriteDeploymentsWorker : public GWorker {
 public:
  WriteDeploymentsWorker(Napi::Env env, OstreeSysroot* s, std::vector<int> order) : GWorker(env, s), order_(std::move(order)) {}
 protected:
  bool Run(GError** error) override {
    if (!ostree_sysroot_load(sysroot_, nullptr, error)) return false;
    g_autoptr(GPtrArray) cur = ostree_sysroot_get_deployments(sysroot_);
    g_autoptr(GPtrArray) next = g_ptr_array_new_with_free_func(g_object_unref);
    for (int idx : order_) {
      if (idx < 0 || static_cast<guint>(idx) >= cur->len) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "no deployment at index %d", idx);
        return false;
      }
      g_ptr_array_add(next, g_object_ref(cur->pdata[idx]));
    }
    // write_deployments reloads the sysroot itself once written ("Reloading deployments after
    // commit"): no second load here. The load above is the freshness check of the indices; it
    // returns at once when ostree/deploy's mtime says nothing changed since the last load.
    if (!ostree_sysroot_write_deployments(sysroot_, next, nullptr, error)) return false;
    deps_ = CollectDeployments(sysroot_);
    return true;
  }
  Napi::Value Result(Napi::Env env) override { return DeploymentsToJs(env, deps_); }
 private:
  std::vector<int> order_;
  std::vector<DeploymentData> deps_;
};

class CleanupWorker : public GWorker {
 public:
  using GWorker::GWorker;
 protected:
  bool Run(GError** error) override {
    if (!ostree_sysroot_load(sysroot_, nullptr, error)) return false;
    return ostree_sysroot_cleanup(sysroot_, nullptr, error);
  }
};

class PinWorker : public GWorker {
 public:
  PinWorker(Napi::Env env, OstreeSysroot* s, int index, bool pin) : GWorker(env, s), index_(index), pin_(pin) {}
 protected:
  bool Run(GError** error) override {
    g_autoptr(OstreeDeployment) d = LoadDeploymentAt(sysroot_, index_, error);
    return d && ostree_sysroot_deployment_set_pinned(sysroot_, d, pin_, error);
  }
 private:
  int index_;
  bool pin_;
};

class WriteOriginWorker : public GWorker {
 public:
  WriteOriginWorker(Napi::Env env, OstreeSysroot* s, int index, std::string origin)
      : GWorker(env, s), index_(index), origin_(std::move(origin)) {}
 protected:
  bool Run(GError** error) override {
    g_autoptr(OstreeDeployment) d = LoadDeploymentAt(sysroot_, index_, error);
    if (!d) return false;
    g_autoptr(GKeyFile) kf = g_key_file_new();
    if (!g_key_file_load_from_data(kf, origin_.c_str(), origin_.size(), G_KEY_FILE_KEEP_COMMENTS, error)) return false;
    return ostree_sysroot_write_origin_file(sysroot_, d, kf, nullptr, error);
  }
 private:
  int index_;
  std::string origin_;
};

class DiffWorker : public GWorker {
 public:
  DiffWorker(Napi::Env env, OstreeSysroot* s, std::string a, std::string b) : GWorker(env, s), a_(std::move(a)), b_(std::move(b)) {}
 protected:
  static std::string Rel(GFile* root, GFile* f) {
    g_autofree char* r = g_file_get_relative_path(root, f);
    return std::string("/") + (r ? r : "");
  }
  bool Run(GError** error) override {
    OstreeRepo* repo = ostree_sysroot_repo(sysroot_);
    g_autoptr(GFile) ra = nullptr;
    g_autoptr(GFile) rb = nullptr;
    if (!ostree_repo_read_commit(repo, a_.c_str(), &ra, nullptr, nullptr, error)) return false;
    if (!ostree_repo_read_commit(repo, b_.c_str(), &rb, nullptr, nullptr, error)) return false;
    g_autoptr(GPtrArray) modified = g_ptr_array_new_with_free_func((GDestroyNotify)ostree_diff_item_unref);
    g_autoptr(GPtrArray) removed = g_ptr_array_new_with_free_func(g_object_unref);
    g_autoptr(GPtrArray) added = g_ptr_array_new_with_free_func(g_object_unref);
    if (!ostree_diff_dirs(OSTREE_DIFF_FLAGS_NONE, ra, rb, modified, removed, added, nullptr, error)) return false;
    for (guint i = 0; i < modified->len; i++) mod_.push_back(Rel(ra, static_cast<OstreeDiffItem*>(modified->pdata[i])->src));
    for (guint i = 0; i < removed->len; i++) rem_.push_back(Rel(ra, static_cast<GFile*>(removed->pdata[i])));
    for (guint i = 0; i < added->len; i++) add_.push_back(Rel(rb, static_cast<GFile*>(added->pdata[i])));
    return true;
  }
  Napi::Value Result(Napi::Env env) override {
    auto arr = [&](const std::vector<std::string>& v) {
      Napi::Array a = Napi::Array::New(env, v.size());
      for (size_t i = 0; i < v.size(); i++) a.Set(i, v[i]);
      return a;
    };
    Napi::Object o = Napi::Object::New(env);
    o.Set("added", arr(add_));
    o.Set("removed", arr(rem_));
    o.Set("modified", arr(mod_));
    return o;
  }
 private:
  std::string a_, b_;
  std::vector<std::string> add_, rem_, mod_;
};

// ---- The image store's calls (containers/store.ts): commit a directory, set refs in one
// transaction, check a commit out over a directory, read a file of a commit. They replace
// one `ostree` process each; all run off the event loop.

// Commits a directory (no ref: the caller sets refs once everything it needs is stored).
// With consume, files of a bare repo are renamed into the object store instead of copied.
class CommitDirWorker : public GWorker {
 public:
  CommitDirWorker(Napi::Env env, OstreeSysroot* s, std::string dir, std::string subject,
                  std::vector<std::pair<std::string, std::string>> meta, bool consume)
      : GWorker(env, s), dir_(std::move(dir)), subject_(std::move(subject)), meta_(std::move(meta)), consume_(consume) {}
 protected:
  bool Run(GError** error) override {
    OstreeRepo* repo = ostree_sysroot_repo(sysroot_);
    if (!ostree_repo_prepare_transaction(repo, nullptr, nullptr, error)) return false;
    if (Write(repo, error) && ostree_repo_commit_transaction(repo, nullptr, nullptr, error)) return true;
    ostree_repo_abort_transaction(repo, nullptr, nullptr);
    return false;
  }
  bool Write(OstreeRepo* repo, GError** error) {
    g_autoptr(OstreeMutableTree) mtree = ostree_mutable_tree_new();
    g_autoptr(OstreeRepoDevInoCache) devino = ostree_repo_devino_cache_new();
    auto flags = consume_ ? OSTREE_REPO_COMMIT_MODIFIER_FLAGS_CONSUME : OSTREE_REPO_COMMIT_MODIFIER_FLAGS_NONE;
    g_autoptr(OstreeRepoCommitModifier) mod = ostree_repo_commit_modifier_new(flags, nullptr, nullptr, nullptr);
    ostree_repo_commit_modifier_set_devino_cache(mod, devino);
    if (!ostree_repo_write_dfd_to_mtree(repo, AT_FDCWD, dir_.c_str(), mtree, mod, nullptr, error)) return false;
    g_autoptr(GFile) root = nullptr;
    if (!ostree_repo_write_mtree(repo, mtree, &root, nullptr, error)) return false;
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
    for (auto& kv : meta_) g_variant_builder_add(&b, "{sv}", kv.first.c_str(), g_variant_new_string(kv.second.c_str()));
    g_autoptr(GVariant) md = g_variant_ref_sink(g_variant_builder_end(&b));
    g_autofree char* csum = nullptr;
    if (!ostree_repo_write_commit(repo, nullptr, subject_.c_str(), nullptr, md, OSTREE_REPO_FILE(root), &csum, nullptr, error)) return false;
    checksum_ = csum;
    return true;
  }
  Napi::Value Result(Napi::Env env) override { return Napi::String::New(env, checksum_); }
 private:
  std::string dir_, subject_;
  std::vector<std::pair<std::string, std::string>> meta_;
  bool consume_;
  std::string checksum_;
};

// Sets (checksum) or deletes (empty checksum) refs, all in one transaction.
class SetRefsWorker : public GWorker {
 public:
  SetRefsWorker(Napi::Env env, OstreeSysroot* s, std::vector<std::pair<std::string, std::string>> refs)
      : GWorker(env, s), refs_(std::move(refs)) {}
 protected:
  bool Run(GError** error) override {
    OstreeRepo* repo = ostree_sysroot_repo(sysroot_);
    if (!ostree_repo_prepare_transaction(repo, nullptr, nullptr, error)) return false;
    for (auto& r : refs_) ostree_repo_transaction_set_ref(repo, nullptr, r.first.c_str(), r.second.empty() ? nullptr : r.second.c_str());
    if (ostree_repo_commit_transaction(repo, nullptr, nullptr, error)) return true;
    ostree_repo_abort_transaction(repo, nullptr, nullptr);
    return false;
  }
 private:
  std::vector<std::pair<std::string, std::string>> refs_;
};

// `ostree checkout --union -H COMMIT DEST`: files hardlinked to the objects (no copy
// fallback), merged over what DEST holds.
class CheckoutWorker : public GWorker {
 public:
  CheckoutWorker(Napi::Env env, OstreeSysroot* s, std::string commit, std::string dest)
      : GWorker(env, s), commit_(std::move(commit)), dest_(std::move(dest)) {}
 protected:
  bool Run(GError** error) override {
    OstreeRepoCheckoutAtOptions opts = {};
    opts.mode = OSTREE_REPO_CHECKOUT_MODE_NONE;
    opts.overwrite_mode = OSTREE_REPO_CHECKOUT_OVERWRITE_UNION_FILES;
    opts.no_copy_fallback = TRUE;
    return ostree_repo_checkout_at(ostree_sysroot_repo(sysroot_), &opts, AT_FDCWD, dest_.c_str(), commit_.c_str(), nullptr, error);
  }
 private:
  std::string commit_, dest_;
};

// The content of one file of a commit (`ostree cat REV PATH`).
class ReadFileWorker : public GWorker {
 public:
  ReadFileWorker(Napi::Env env, OstreeSysroot* s, std::string rev, std::string path)
      : GWorker(env, s), rev_(std::move(rev)), path_(std::move(path)) {}
 protected:
  bool Run(GError** error) override {
    OstreeRepo* repo = ostree_sysroot_repo(sysroot_);
    g_autoptr(GFile) root = nullptr;
    if (!ostree_repo_read_commit(repo, rev_.c_str(), &root, nullptr, nullptr, error)) return false;
    g_autoptr(GFile) f = g_file_resolve_relative_path(root, path_.c_str());
    g_autofree char* data = nullptr;
    gsize len = 0;
    if (!g_file_load_contents(f, nullptr, &data, &len, nullptr, error)) return false;
    data_.assign(data, len);
    return true;
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Buffer<char>::Copy(env, data_.data(), data_.size()); }
 private:
  std::string rev_, path_;
  std::string data_;
};

// One directory of a commit (`ostree ls -C REV PATH`): each entry's name, type, size and
// object checksum (a file's content object; a directory's dirtree). Reads only the commit's
// metadata objects and, for sizes, the file objects' headers.
struct DirEntryData {
  std::string name, type, checksum;
  guint64 size = 0;
};

class ListDirWorker : public GWorker {
 public:
  ListDirWorker(Napi::Env env, OstreeSysroot* s, std::string rev, std::string path)
      : GWorker(env, s), rev_(std::move(rev)), path_(std::move(path)) {}
 protected:
  bool Run(GError** error) override {
    OstreeRepo* repo = ostree_sysroot_repo(sysroot_);
    g_autoptr(GFile) root = nullptr;
    if (!ostree_repo_read_commit(repo, rev_.c_str(), &root, nullptr, nullptr, error)) return false;
    g_autoptr(GFile) dir = g_file_resolve_relative_path(root, path_.c_str());
    // No such directory in this commit: null, not an error (the commit itself was read).
    // Resolved first: libostree asserts (aborts) when asked about a path it did not resolve.
    GError* local = nullptr;
    if (!ostree_repo_file_ensure_resolved(OSTREE_REPO_FILE(dir), &local)) {
      missing_ = g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
      if (missing_) {
        g_error_free(local);
        return true;
      }
      g_propagate_error(error, local);
      return false;
    }
    g_autoptr(GFileInfo) self = g_file_query_info(dir, "standard::type", G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, nullptr, error);
    if (!self) return false;
    if (g_file_info_get_file_type(self) != G_FILE_TYPE_DIRECTORY) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_DIRECTORY, "%s is not a directory", path_.c_str());
      return false;
    }
    g_autoptr(GFileEnumerator) en =
        g_file_enumerate_children(dir, "standard::name,standard::type,standard::size", G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, nullptr, error);
    if (!en) return false;
    while (true) {
      GFileInfo* info = nullptr;
      GFile* child = nullptr;
      if (!g_file_enumerator_iterate(en, &info, &child, nullptr, error)) return false;
      if (!info) break;
      DirEntryData d;
      d.name = g_file_info_get_name(info);
      GFileType t = g_file_info_get_file_type(info);
      d.type = t == G_FILE_TYPE_DIRECTORY ? "dir" : t == G_FILE_TYPE_SYMBOLIC_LINK ? "symlink" : t == G_FILE_TYPE_REGULAR ? "file" : "other";
      if (t == G_FILE_TYPE_REGULAR) d.size = static_cast<guint64>(g_file_info_get_size(info));
      if (t == G_FILE_TYPE_DIRECTORY) {
        if (!ostree_repo_file_ensure_resolved(OSTREE_REPO_FILE(child), error)) return false;
        const char* c = ostree_repo_file_tree_get_contents_checksum(OSTREE_REPO_FILE(child));
        d.checksum = c ? c : "";
      } else {
        const char* c = ostree_repo_file_get_checksum(OSTREE_REPO_FILE(child));
        d.checksum = c ? c : "";
      }
      entries_.push_back(std::move(d));
    }
    return true;
  }
  Napi::Value Result(Napi::Env env) override {
    if (missing_) return env.Null();
    Napi::Array arr = Napi::Array::New(env, entries_.size());
    for (size_t i = 0; i < entries_.size(); i++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", entries_[i].name);
      o.Set("type", entries_[i].type);
      o.Set("size", Napi::Number::New(env, static_cast<double>(entries_[i].size)));
      o.Set("checksum", entries_[i].checksum);
      arr.Set(i, o);
    }
    return arr;
  }
 private:
  std::string rev_, path_;
  std::vector<DirEntryData> entries_;
  bool missing_ = false;
};

std::vector<std::pair<std::string, std::string>> StringPairs(const Napi::Value& v) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!v.IsArray()) return out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Array kv = a.Get(i).As<Napi::Array>();
    Napi::Value val = kv.Get(1u);
    out.emplace_back(kv.Get(0u).ToString().Utf8Value(), val.IsString() ? val.ToString().Utf8Value() : std::string());
  }
  return out;
}

// Queues a worker off the event loop and hands JavaScript its promise.
template <class W>
static Napi::Value Queued(W* w) {
  w->Queue();
  return w->Promise();
}

class Sysroot : public Napi::ObjectWrap<Sysroot> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Sysroot",
                       {
                           InstanceMethod("load", &Sysroot::Load),
                           InstanceMethod("tryLock", &Sysroot::TryLock),
                           InstanceMethod("unlock", &Sysroot::Unlock),
                           InstanceMethod("unload", &Sysroot::Unload),
                           InstanceMethod("deployments", &Sysroot::Deployments),
                           InstanceMethod("repoPath", &Sysroot::RepoPath),
                           InstanceMethod("resolveRev", &Sysroot::ResolveRev),
                           InstanceMethod("readCommit", &Sysroot::ReadCommit),
                           InstanceMethod("verifyCommit", &Sysroot::VerifyCommit),
                           InstanceMethod("pull", &Sysroot::Pull),
                           InstanceMethod("cancel", &Sysroot::Cancel),
                           InstanceMethod("deploy", &Sysroot::Deploy),
                           InstanceMethod("writeDeployments", &Sysroot::WriteDeployments),
                           InstanceMethod("cleanup", &Sysroot::Cleanup),
                           InstanceMethod("setPinned", &Sysroot::SetPinned),
                           InstanceMethod("writeOrigin", &Sysroot::WriteOrigin),
                           InstanceMethod("diff", &Sysroot::Diff),
                           InstanceMethod("commitDir", &Sysroot::CommitDir),
                           InstanceMethod("setRefs", &Sysroot::SetRefs),
                           InstanceMethod("checkout", &Sysroot::Checkout),
                           InstanceMethod("readFile", &Sysroot::ReadFile),
                           InstanceMethod("listDir", &Sysroot::ListDir),
                           InstanceMethod("listRefs", &Sysroot::ListRefs),
                       });
  }

  explicit Sysroot(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Sysroot>(info) {
    std::string path = info[0].ToString().Utf8Value();
    g_autoptr(GFile) f = g_file_new_for_path(path.c_str());
    sysroot_ = ostree_sysroot_new(f);
    cancellable_ = g_cancellable_new();
  }
  ~Sysroot() override {
    g_object_unref(sysroot_);
    g_object_unref(cancellable_);
  }

 private:
  Napi::Value Load(const Napi::CallbackInfo& info) {
    return Queued(new LoadWorker(info.Env(), sysroot_));
  }
  Napi::Value TryLock(const Napi::CallbackInfo& info) {
    gboolean acquired = FALSE;
    GError* e = nullptr;
    if (!ostree_sysroot_try_lock(sysroot_, &acquired, &e)) {
      GErrorInfo i;
      i.Take(e);
      MakeError(info.Env(), i).ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    return Napi::Boolean::New(info.Env(), acquired);
  }
  Napi::Value Unlock(const Napi::CallbackInfo& info) {
    ostree_sysroot_unlock(sysroot_);
    return info.Env().Undefined();
  }
  // Releases every file descriptor on the sysroot and its repo (so that a provisioned
  // file system can be unmounted): the object is replaced by a fresh, unloaded one.
  Napi::Value Unload(const Napi::CallbackInfo& info) {
    g_autoptr(GFile) f = G_FILE(g_object_ref(ostree_sysroot_get_path(sysroot_)));
    ostree_sysroot_unload(sysroot_);
    g_object_unref(sysroot_);
    sysroot_ = ostree_sysroot_new(f);
    return info.Env().Undefined();
  }
  Napi::Value Deployments(const Napi::CallbackInfo& info) { return DeploymentsToJs(info.Env(), CollectDeployments(sysroot_)); }
  Napi::Value RepoPath(const Napi::CallbackInfo& info) {
    OstreeRepo* repo = ostree_sysroot_repo(sysroot_);
    GFile* p = ostree_repo_get_path(repo);
    g_autofree char* s = g_file_get_path(p);
    return Napi::String::New(info.Env(), s ? s : "");
  }
  Napi::Value ResolveRev(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string rev = info[0].ToString().Utf8Value();
    g_autofree char* out = nullptr;
    GError* e = nullptr;
    if (!ostree_repo_resolve_rev(ostree_sysroot_repo(sysroot_), rev.c_str(), TRUE, &out, &e)) {
      GErrorInfo i;
      i.Take(e);
      MakeError(env, i).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!out) return env.Null();
    return Napi::String::New(env, out);
  }
  // The GPG signatures on a commit, checked against the keys of one remote (its
  // NAME.trustedkeys.gpg and the system keyrings), one object per signature. A commit
  // with no signature throws (libostree's "No signatures found").
  Napi::Value VerifyCommit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string csum = info[0].ToString().Utf8Value();
    std::string remote = info[1].ToString().Utf8Value();
    GError* e = nullptr;
    g_autoptr(OstreeGpgVerifyResult) res =
        ostree_repo_verify_commit_for_remote(ostree_sysroot_repo(sysroot_), csum.c_str(), remote.c_str(), nullptr, &e);
    if (!res) {
      GErrorInfo i;
      i.Take(e);
      MakeError(env, i).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    OstreeGpgSignatureAttr attrs[] = {OSTREE_GPG_SIGNATURE_ATTR_VALID,       OSTREE_GPG_SIGNATURE_ATTR_SIG_EXPIRED,
                                      OSTREE_GPG_SIGNATURE_ATTR_KEY_EXPIRED, OSTREE_GPG_SIGNATURE_ATTR_KEY_REVOKED,
                                      OSTREE_GPG_SIGNATURE_ATTR_KEY_MISSING, OSTREE_GPG_SIGNATURE_ATTR_FINGERPRINT,
                                      OSTREE_GPG_SIGNATURE_ATTR_TIMESTAMP,   OSTREE_GPG_SIGNATURE_ATTR_USER_NAME,
                                      OSTREE_GPG_SIGNATURE_ATTR_USER_EMAIL};
    guint n = ostree_gpg_verify_result_count_all(res);
    Napi::Array out = Napi::Array::New(env, n);
    for (guint k = 0; k < n; k++) {
      g_autoptr(GVariant) v = ostree_gpg_verify_result_get(res, k, attrs, G_N_ELEMENTS(attrs));
      gboolean valid, sigExp, keyExp, revoked, missing;
      const char *fpr, *name, *email;
      gint64 ts;
      g_variant_get(v, "(bbbbb&sx&s&s)", &valid, &sigExp, &keyExp, &revoked, &missing, &fpr, &ts, &name, &email);
      Napi::Object o = Napi::Object::New(env);
      o.Set("valid", Napi::Boolean::New(env, valid));
      o.Set("sigExpired", Napi::Boolean::New(env, sigExp));
      o.Set("keyExpired", Napi::Boolean::New(env, keyExp));
      o.Set("keyRevoked", Napi::Boolean::New(env, revoked));
      o.Set("keyMissing", Napi::Boolean::New(env, missing));
      o.Set("fingerprint", fpr);
      o.Set("timestamp", Napi::Number::New(env, static_cast<double>(ts)));
      o.Set("userName", name);
      o.Set("userEmail", email);
      out.Set(k, o);
    }
    return out;
  }
  Napi::Value ReadCommit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string csum = info[0].ToString().Utf8Value();
    g_autoptr(GVariant) commit = nullptr;
    GError* e = nullptr;
    if (!ostree_repo_load_variant(ostree_sysroot_repo(sysroot_), OSTREE_OBJECT_TYPE_COMMIT, csum.c_str(), &commit, &e)) {
      GErrorInfo i;
      i.Take(e);
      MakeError(env, i).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("checksum", csum);
    g_autofree char* parent = ostree_commit_get_parent(commit);
    o.Set("parent", parent ? Napi::Value(Napi::String::New(env, parent)) : env.Null());
    const char* subject = nullptr;
    const char* body = nullptr;
    g_variant_get_child(commit, 3, "&s", &subject);
    g_variant_get_child(commit, 4, "&s", &body);
    o.Set("subject", subject ? subject : "");
    o.Set("body", body ? body : "");
    o.Set("timestamp", Napi::Number::New(env, static_cast<double>(ostree_commit_get_timestamp(commit))));
    g_autoptr(GVariant) meta = g_variant_get_child_value(commit, 0);
    Napi::Object md = Napi::Object::New(env);
    GVariantIter it;
    g_variant_iter_init(&it, meta);
    const char* key;
    GVariant* val;
    o.Set("version", env.Null());
    while (g_variant_iter_next(&it, "{&sv}", &key, &val)) {
      if (g_variant_is_of_type(val, G_VARIANT_TYPE_STRING)) {
        md.Set(key, g_variant_get_string(val, nullptr));
        if (g_str_equal(key, "version")) o.Set("version", g_variant_get_string(val, nullptr));
      } else {
        g_autofree char* printed = g_variant_print(val, FALSE);
        md.Set(key, printed);
      }
      g_variant_unref(val);
    }
    o.Set("metadata", md);
    return o;
  }
  Napi::Value Pull(const Napi::CallbackInfo& info) {
    // A new cancellable per pull: a cancel only reaches the pull it was meant for.
    g_object_unref(cancellable_);
    cancellable_ = g_cancellable_new();
    std::string remote = info[0].ToString().Utf8Value();
    auto refs = StringArray(info[1]);
    bool commitOnly = info[2].ToBoolean().Value();
    int depth = info[3].IsNumber() ? info[3].ToNumber().Int32Value() : 0;
    Napi::Function cb = info[4].IsFunction() ? info[4].As<Napi::Function>() : Napi::Function();
    bool noSignVerify = info.Length() > 5 && info[5].ToBoolean().Value();
    bool noSignVerifySummary = info.Length() > 6 && info[6].ToBoolean().Value();
    return Queued(new PullWorker(info.Env(), sysroot_, remote, refs, commitOnly, depth, cb, cancellable_, noSignVerify,
                                 noSignVerifySummary));
  }
  Napi::Value Cancel(const Napi::CallbackInfo& info) {
    g_cancellable_cancel(cancellable_);
    return info.Env().Undefined();
  }
  Napi::Value Deploy(const Napi::CallbackInfo& info) {
    Napi::Object o = info[0].As<Napi::Object>();
    return Queued(new DeployWorker(info.Env(), sysroot_, o.Get("osname").ToString().Utf8Value(),
                               o.Get("checksum").ToString().Utf8Value(), o.Get("origin").ToString().Utf8Value(),
                               StringArray(o.Get("kargs")),
                               o.Has("mergeIndex") && o.Get("mergeIndex").IsNumber() ? o.Get("mergeIndex").ToNumber().Int32Value() : -1,
                               o.Has("retain") && o.Get("retain").ToBoolean().Value(),
                               o.Has("stage") && o.Get("stage").ToBoolean().Value()));
  }
  Napi::Value WriteDeployments(const Napi::CallbackInfo& info) {
    std::vector<int> order;
    Napi::Array a = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) order.push_back(a.Get(i).ToNumber().Int32Value());
    return Queued(new WriteDeploymentsWorker(info.Env(), sysroot_, order));
  }
  Napi::Value Cleanup(const Napi::CallbackInfo& info) {
    return Queued(new CleanupWorker(info.Env(), sysroot_));
  }
  Napi::Value SetPinned(const Napi::CallbackInfo& info) {
    return Queued(new PinWorker(info.Env(), sysroot_, info[0].ToNumber().Int32Value(), info[1].ToBoolean().Value()));
  }
  Napi::Value WriteOrigin(const Napi::CallbackInfo& info) {
    return Queued(new WriteOriginWorker(info.Env(), sysroot_, info[0].ToNumber().Int32Value(), info[1].ToString().Utf8Value()));
  }
  Napi::Value Diff(const Napi::CallbackInfo& info) {
    return Queued(new DiffWorker(info.Env(), sysroot_, info[0].ToString().Utf8Value(), info[1].ToString().Utf8Value()));
  }

  Napi::Value CommitDir(const Napi::CallbackInfo& info) {
    return Queued(new CommitDirWorker(info.Env(), sysroot_, info[0].ToString().Utf8Value(), info[1].ToString().Utf8Value(),
                                  StringPairs(info[2]), info[3].ToBoolean().Value()));
  }
  Napi::Value SetRefs(const Napi::CallbackInfo& info) {
    return Queued(new SetRefsWorker(info.Env(), sysroot_, StringPairs(info[0])));
  }
  Napi::Value Checkout(const Napi::CallbackInfo& info) {
    return Queued(new CheckoutWorker(info.Env(), sysroot_, info[0].ToString().Utf8Value(), info[1].ToString().Utf8Value()));
  }
  Napi::Value ReadFile(const Napi::CallbackInfo& info) {
    return Queued(new ReadFileWorker(info.Env(), sysroot_, info[0].ToString().Utf8Value(), info[1].ToString().Utf8Value()));
  }
  Napi::Value ListDir(const Napi::CallbackInfo& info) {
    return Queued(new ListDirWorker(info.Env(), sysroot_, info[0].ToString().Utf8Value(), info[1].ToString().Utf8Value()));
  }
  // Refs under a prefix, full names (a cheap directory read: stays synchronous).
  Napi::Value ListRefs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string prefix = info[0].ToString().Utf8Value();
    g_autoptr(GHashTable) refs = nullptr;
    GError* e = nullptr;
    if (!ostree_repo_list_refs_ext(ostree_sysroot_repo(sysroot_), prefix.c_str(), &refs, OSTREE_REPO_LIST_REFS_EXT_NONE, nullptr, &e)) {
      GErrorInfo i;
      i.Take(e);
      MakeError(env, i).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Array out = Napi::Array::New(env);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, refs);
    uint32_t n = 0;
    while (g_hash_table_iter_next(&it, &k, &v)) out.Set(n++, static_cast<const char*>(k));
    return out;
  }

  OstreeSysroot* sysroot_;
  GCancellable* cancellable_;
};

// ---- a commit's bytes and detached signatures, on any repo by path (ostree-bridge/detached-metadata.ts) ----

void ThrowG(Napi::Env env, GError* e) {
  GErrorInfo i;
  i.Take(e);
  MakeError(env, i).ThrowAsJavaScriptException();
}

// Opens the repo at `path` (a new reference), or throws into JS and returns null.
OstreeRepo* OpenRepoAt(Napi::Env env, const std::string& path) {
  g_autoptr(GFile) f = g_file_new_for_path(path.c_str());
  g_autoptr(OstreeRepo) repo = ostree_repo_new(f);
  GError* e = nullptr;
  if (!ostree_repo_open(repo, nullptr, &e)) {
    ThrowG(env, e);
    return nullptr;
  }
  return static_cast<OstreeRepo*>(g_steal_pointer(&repo));
}

// commitBytes(repoPath, checksum): the commit object as stored, the serialized GVariant that
// ostree's sign API signs and verifies.
Napi::Value CommitBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  g_autoptr(OstreeRepo) repo = OpenRepoAt(env, info[0].ToString().Utf8Value());
  if (!repo) return env.Undefined();
  std::string csum = info[1].ToString().Utf8Value();
  g_autoptr(GVariant) commit = nullptr;
  GError* e = nullptr;
  if (!ostree_repo_load_variant(repo, OSTREE_OBJECT_TYPE_COMMIT, csum.c_str(), &commit, &e)) {
    ThrowG(env, e);
    return env.Undefined();
  }
  return Napi::Buffer<char>::Copy(env, static_cast<const char*>(g_variant_get_data(commit)), g_variant_get_size(commit));
}

// detachedSignatures(repoPath, checksum, key): the `aay` entry `key` of the commit's detached
// metadata as buffers; null when there is no detached metadata, no such key, or another type.
Napi::Value DetachedSignatures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  g_autoptr(OstreeRepo) repo = OpenRepoAt(env, info[0].ToString().Utf8Value());
  if (!repo) return env.Undefined();
  std::string csum = info[1].ToString().Utf8Value();
  std::string key = info[2].ToString().Utf8Value();
  g_autoptr(GVariant) meta = nullptr;
  GError* e = nullptr;
  if (!ostree_repo_read_commit_detached_metadata(repo, csum.c_str(), &meta, nullptr, &e)) {
    ThrowG(env, e);
    return env.Undefined();
  }
  if (!meta) return env.Null();
  g_autoptr(GVariant) sigs = g_variant_lookup_value(meta, key.c_str(), G_VARIANT_TYPE("aay"));
  if (!sigs) return env.Null();
  gsize n = g_variant_n_children(sigs);
  Napi::Array out = Napi::Array::New(env, n);
  for (gsize k = 0; k < n; k++) {
    g_autoptr(GVariant) one = g_variant_get_child_value(sigs, k);
    gsize len = 0;
    const void* data = g_variant_get_fixed_array(one, &len, 1);
    out.Set(static_cast<uint32_t>(k), Napi::Buffer<char>::Copy(env, static_cast<const char*>(data), len));
  }
  return out;
}

// writeDetachedSignatures(repoPath, checksum, key, buffers[]): sets the `aay` entry `key` of the
// commit's detached metadata (its other entries kept); an empty list removes the entry.
Napi::Value WriteDetachedSignatures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  g_autoptr(OstreeRepo) repo = OpenRepoAt(env, info[0].ToString().Utf8Value());
  if (!repo) return env.Undefined();
  std::string csum = info[1].ToString().Utf8Value();
  std::string key = info[2].ToString().Utf8Value();
  Napi::Array list = info[3].As<Napi::Array>();
  g_autoptr(GVariant) old = nullptr;
  GError* e = nullptr;
  if (!ostree_repo_read_commit_detached_metadata(repo, csum.c_str(), &old, nullptr, &e)) {
    ThrowG(env, e);
    return env.Undefined();
  }
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
  if (old) {
    GVariantIter it;
    g_variant_iter_init(&it, old);
    const char* k;
    GVariant* v;
    while (g_variant_iter_next(&it, "{&s@v}", &k, &v)) {
      if (key != k) g_variant_builder_add(&b, "{s@v}", k, v);
      g_variant_unref(v);
    }
  }
  if (list.Length() > 0) {
    GVariantBuilder sb;
    g_variant_builder_init(&sb, G_VARIANT_TYPE("aay"));
    for (uint32_t k = 0; k < list.Length(); k++) {
      Napi::Buffer<char> buf = list.Get(k).As<Napi::Buffer<char>>();
      g_variant_builder_add_value(&sb, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, buf.Data(), buf.Length(), 1));
    }
    g_variant_builder_add(&b, "{s@v}", key.c_str(), g_variant_new_variant(g_variant_builder_end(&sb)));
  }
  g_autoptr(GVariant) meta = g_variant_ref_sink(g_variant_builder_end(&b));
  if (!ostree_repo_write_commit_detached_metadata(repo, csum.c_str(), meta, nullptr, &e)) {
    ThrowG(env, e);
    return env.Undefined();
  }
  return env.Undefined();
}

// libostree prints a few notes with g_print ("Freed objects: …"); stdout belongs to the
// caller (JSON output), so they go to stderr.
void PrintToStderr(const gchar* text) { fputs(text, stderr); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  g_set_print_handler(PrintToStderr);
  exports.Set("Sysroot", Sysroot::Init(env));
  exports.Set("commitBytes", Napi::Function::New(env, CommitBytes));
  exports.Set("detachedSignatures", Napi::Function::New(env, DetachedSignatures));
  exports.Set("writeDetachedSignatures", Napi::Function::New(env, WriteDetachedSignatures));
  return exports;
}

}  // namespace

NODE_API_MODULE(ostree_bridge, Init)
