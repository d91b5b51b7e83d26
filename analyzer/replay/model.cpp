#include "analyzer/replay/model.hpp"

#include "analyzer/replay/arena_model.hpp"
#include "analyzer/replay/caching_model.hpp"
#include "analyzer/replay/expandable_model.hpp"
#include "shim/config/options.hpp"

namespace cudefrag::analyzer::replay {

std::string_view model_name(ModelKind kind) {
  switch (kind) {
    case ModelKind::kNative:
      return "native";
    case ModelKind::kExpandable:
      return "expandable";
    case ModelKind::kAsyncPool:
      return "async";
    case ModelKind::kArena:
      return "cudefrag";
  }
  return "?";
}

std::optional<ModelKind> model_from_name(std::string_view name) {
  for (const ModelKind kind : kAllModels) {
    if (model_name(kind) == name) return kind;
  }
  return std::nullopt;
}

std::unique_ptr<Model> make_model(ModelKind kind, Bytes cap, std::uint32_t arena_grow_percent) {
  switch (kind) {
    case ModelKind::kNative:
      return std::make_unique<CachingModel>(CachingFlavor::kPyTorchNative, cap);
    case ModelKind::kExpandable:
      return std::make_unique<ExpandableModel>(cap);
    case ModelKind::kAsyncPool:
      return std::make_unique<CachingModel>(CachingFlavor::kAsyncPool, cap);
    case ModelKind::kArena: {
      // What `cudefrag run` gives a program: the shim's small-request threshold, not the arena
      // library's own default, and the growth budget asked for (the shim's by default).
      arena::ArenaOptions options;
      options.small_threshold = config::kDefaultSmallMax;
      options.grow_percent = arena_grow_percent;
      return std::make_unique<ArenaModel>(cap, options);
    }
  }
  return nullptr;
}

}  // namespace cudefrag::analyzer::replay
