#include "analyzer/export/pickle_writer.hpp"

#include <gtest/gtest.h>

#include <string>

namespace cudefrag::analyzer {
namespace {

std::string bytes(std::initializer_list<int> list) {
  std::string out;
  for (const int b : list) out += static_cast<char>(b);
  return out;
}

std::string integer(std::int64_t v) {
  PickleWriter w;
  w.integer(v);
  return w.buffer();
}

TEST(PickleWriter, IntegersUseTheSmallestOpcodeTheViewerReads) {
  EXPECT_EQ(integer(7), bytes({'K', 7}));
  EXPECT_EQ(integer(300), bytes({'M', 0x2c, 0x01}));
  EXPECT_EQ(integer(-1), bytes({'J', 0xff, 0xff, 0xff, 0xff}));
  EXPECT_EQ(integer(std::int64_t{1} << 31), bytes({0x8a, 5, 0, 0, 0, 0x80, 0}));
  EXPECT_EQ(integer(0x48ea000000), bytes({0x8a, 5, 0, 0, 0, 0xea, 0x48}));
  EXPECT_EQ(integer(INT64_MIN), bytes({0x8a, 8, 0, 0, 0, 0, 0, 0, 0, 0x80}));
  PickleWriter w;
  w.integer(UINT64_MAX);
  EXPECT_EQ(w.buffer(), bytes({0x8a, 9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0}));
}

TEST(PickleWriter, StringsAreValidUtf8) {
  PickleWriter w;
  w.str("a\xc3\xa9");
  EXPECT_EQ(w.buffer(), bytes({0x8c, 3, 'a', 0xc3, 0xa9}));
  w.buffer().clear();
  w.str("x\xff");  // not UTF-8: U+FFFD
  EXPECT_EQ(w.buffer(), bytes({0x8c, 4, 'x', 0xef, 0xbf, 0xbd}));
  w.buffer().clear();
  w.str(std::string(300, 'a'));
  EXPECT_EQ(w.buffer().substr(0, 5), bytes({'X', 0x2c, 0x01, 0, 0}));
  EXPECT_EQ(w.buffer().size(), 305u);
}

TEST(PickleWriter, ASmallDocument) {
  PickleWriter w;
  w.proto();
  w.empty_dict();
  w.mark();
  w.item("on", true);
  w.str("l");
  w.empty_list();
  w.mark();
  w.none();
  w.floating(1.5);
  w.appends();
  w.setitems();
  w.put(3);
  w.get(3);
  w.put(300);
  w.get(300);
  w.stop();
  // pickle.loads gives {'on': True, 'l': [None, 1.5]} (checked with Python when written).
  const std::string memo = bytes({'q', 3, 'h', 3, 'r', 0x2c, 1, 0, 0, 'j', 0x2c, 1, 0, 0});
  EXPECT_EQ(w.buffer(), bytes({0x80, 4,   '}', '(',  0x8c, 2, 'o', 'n', 0x88, 0x8c, 1, 'l', ']',
                               '(',  'N', 'G', 0x3f, 0xf8, 0, 0,   0,   0,    0,    0, 'e', 'u'}) +
                            memo + ".");
}

}  // namespace
}  // namespace cudefrag::analyzer
