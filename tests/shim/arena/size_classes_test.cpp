#include "shim/arena/size_classes.hpp"

#include <gtest/gtest.h>

namespace cudefrag::arena {
namespace {

TEST(SizeClasses, IndexIsTheSmallestClassThatHolds) {
  const SizeClasses classes(MiB(1), MiB(2));
  ASSERT_EQ(classes.threshold(), MiB(1));
  for (std::uint64_t r = 1; r <= MiB(1).value; r += (r < 65536 ? 1 : 97)) {
    const std::uint32_t i = SizeClasses::index_for(Bytes{r});
    ASSERT_LT(i, classes.count()) << r;
    ASSERT_GE(classes[i].slot.value, r) << r;
    if (i > 0) {
      ASSERT_LT(classes[i - 1].slot.value, r) << r;
    }
  }
}

TEST(SizeClasses, SlotsAreAlignedAndIncreasing) {
  const SizeClasses classes(MiB(16), MiB(2));
  for (std::uint32_t i = 0; i < classes.count(); ++i) {
    EXPECT_TRUE(classes[i].slot.is_aligned(Bytes{256})) << i;
    EXPECT_EQ(SizeClasses::slot_of(i), classes[i].slot);
    if (i > 0) {
      EXPECT_GT(classes[i].slot, classes[i - 1].slot);
    }
  }
}

// The documented bound: waste < 256 B up to 2 KiB, at most 1/9 of the slot above.
TEST(SizeClasses, InternalWasteIsBounded) {
  const SizeClasses classes(MiB(16), MiB(2));
  double worst = 0;
  for (std::uint64_t r = 1; r <= MiB(16).value; r += (r < 100000 ? 1 : 1021)) {
    const Bytes slot = classes[SizeClasses::index_for(Bytes{r})].slot;
    const std::uint64_t waste = slot.value - r;
    if (r <= 2048) {
      ASSERT_LT(waste, 256u) << r;
    } else {
      const double fraction = static_cast<double>(waste) / static_cast<double>(slot.value);
      ASSERT_LE(fraction, 1.0 / 9.0) << r;
      worst = std::max(worst, fraction);
    }
  }
  EXPECT_GT(worst, 0.11);  // the bound is tight
}

TEST(SizeClasses, SlabTailIsSmall) {
  for (const Bytes gran : {KiB(64), MiB(2)}) {
    const SizeClasses classes(MiB(4), gran);
    for (std::uint32_t i = 0; i < classes.count(); ++i) {
      const SizeClass& c = classes[i];
      ASSERT_TRUE(c.slab.is_aligned(gran));
      ASSERT_GE(c.slots_per_slab, 1u);
      ASSERT_EQ(c.slots_per_slab, c.slab / c.slot);
      const std::uint64_t tail = c.slab.value - c.slots_per_slab * c.slot.value;
      EXPECT_LE(tail * 16, c.slab.value) << "class " << c.slot.value << " gran " << gran.value;
    }
  }
}

TEST(SizeClasses, ZeroThresholdHasNoClasses) {
  const SizeClasses classes(Bytes{0}, MiB(2));
  EXPECT_EQ(classes.count(), 0u);
  EXPECT_EQ(classes.threshold(), Bytes{0});
}

TEST(SizeClasses, ThresholdRoundsUpToAClass) {
  const SizeClasses classes(Bytes{1000000}, MiB(2));
  EXPECT_EQ(classes.threshold(), classes[classes.count() - 1].slot);
  EXPECT_GE(classes.threshold().value, 1000000u);
}

}  // namespace
}  // namespace cudefrag::arena
