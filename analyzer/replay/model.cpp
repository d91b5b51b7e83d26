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

std::unique_ptr<Model> make_model(ModelKind kind, Bytes cap, const ArenaSettings& arena) {
  switch (kind) {
    case ModelKind::kNative:
      return std::make_unique<CachingModel>(CachingFlavor::kPyTorchNative, cap);
    case ModelKind::kExpandable:
      return std::make_unique<ExpandableModel>(cap);
    case ModelKind::kAsyncPool:
      return std::make_unique<CachingModel>(CachingFlavor::kAsyncPool, cap);
    case ModelKind::kArena: {
      // What `cudefrag run` gives a program: the shim's settings (its defaults unless asked
      // otherwise), not the arena library's own defaults.
      arena::ArenaOptions options;
      options.small_threshold = arena.small_max;
      options.grow_percent = arena.grow_percent;
      return std::make_unique<ArenaModel>(cap, options);
    }
  }
  return nullptr;
}

}  // namespace cudefrag::analyzer::replay
