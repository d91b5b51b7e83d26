#include "shim/arena/size_classes.hpp"

#include <gtest/gtest.h>

#include <algorithm>

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
  for (const Bytes threshold : {MiB(1), MiB(4), MiB(16)}) {
    for (const Bytes gran : {KiB(64), MiB(2), MiB(32)}) {
      const SizeClasses classes(threshold, gran);
      ASSERT_EQ(classes.page(), classes.unit() * SizeClasses::kUnitsPerPage);
      ASSERT_TRUE(classes.page().is_aligned(gran));
      ASSERT_TRUE(classes.unit().is_aligned(Bytes{256}));
      for (std::uint32_t i = 0; i < classes.count(); ++i) {
        const SizeClass& c = classes[i];
        ASSERT_EQ(c.slab, classes.unit() * c.units);
        ASSERT_LE(c.slab, classes.page());
        ASSERT_GE(c.slots_per_slab, 1u);
        ASSERT_EQ(c.slots_per_slab, c.slab / c.slot);
        const std::uint64_t tail = c.slab.value - c.slots_per_slab * c.slot.value;
        EXPECT_LE(tail * 16, c.slab.value) << "class " << c.slot.value << " gran " << gran.value;
      }
    }
  }
}

// What a class in use costs: one slab sized after its slots, carved from pages shared by every
// class (one slab of each of the 80 classes used to be 190 MiB of 2-8 MiB handles).
TEST(SizeClasses, SlabsFollowTheirClassSize) {
  const SizeClasses classes(MiB(1), MiB(2));
  EXPECT_EQ(classes.page(), MiB(2));
  EXPECT_EQ(classes.unit(), KiB(32));
  Bytes one_of_each;
  for (std::uint32_t i = 0; i < classes.count(); ++i) {
    const SizeClass& c = classes[i];
    one_of_each += c.slab;
    EXPECT_LE(c.slots_per_slab, classes.unit() / SizeClasses::kMinSlot) << c.slot.value;
    // A slab follows its class: at most 8 times the larger of its slot and a unit.
    EXPECT_LE(c.slab, std::max(classes.unit(), c.slot) * 8) << c.slot.value;
  }
  EXPECT_EQ(classes.count(), 80u);
  EXPECT_LE(one_of_each, MiB(17));
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
