// safetensors: round trips in every dtype, shards with an index, the K3 prefix, and errors that
// name the file and tensor for truncated or inconsistent files.
#include <cstring>
#include <fstream>
#include <span>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/half.h"
#include "models/weight_spec.h"
#include "tests/test_models.h"

namespace attnres {
namespace {

using ::testing::HasSubstr;

std::vector<uint8_t> Bytes(const std::vector<float>& v, DType dt) {
  std::vector<uint8_t> b(v.size() * DTypeSize(dt));
  for (size_t i = 0; i < v.size(); ++i) {
    if (dt == DType::kF32) {
      std::memcpy(&b[4 * i], &v[i], 4);
    } else {
      uint16_t h = dt == DType::kBF16 ? F32ToBf16(v[i]) : F32ToF16(v[i]);
      std::memcpy(&b[2 * i], &h, 2);
    }
  }
  return b;
}

TEST(Safetensors, RoundTripsEveryDtypeAndStripsPrefix) {
  auto dir = testing::TempDir("st_roundtrip");
  const std::vector<float> v = {1.5f, -2.25f, 0.0f, 3.0f, -0.125f, 1024.0f};
  ASSERT_TRUE(WriteSafetensors(dir / "a.safetensors",
                               {{"language_model.x", DType::kF32, {2, 3}, Bytes(v, DType::kF32)},
                                {"y", DType::kBF16, {6}, Bytes(v, DType::kBF16)},
                                {"z", DType::kF16, {3, 2}, Bytes(v, DType::kF16)}})
                  .ok());
  auto store = SafetensorsStore::Open(dir);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->Contains("x"));
  for (const char* name : {"x", "y", "z"}) {
    const auto* t = *(*store)->Get(name);
    auto f = LoadF32(**store, name, t->shape);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(*f, v) << name;  // all values are exact in bf16 and f16
  }
}

TEST(Safetensors, ShardedWithIndex) {
  RandomModelOptions o;
  o.num_shards = 3;
  o.dtype = DType::kBF16;
  auto dir = testing::MakeModel("st_sharded", *RandomModelPreset("tiny-block"), o);
  ASSERT_TRUE(std::filesystem::exists(dir / "model.safetensors.index.json"));
  ASSERT_TRUE(std::filesystem::exists(dir / "model-00003-of-00003.safetensors"));
  auto model = testing::LoadCpuModel(dir);
  EXPECT_GT(model.weights.num_parameters, 100000);

  // An index may only name shards beside it.
  for (const char* shard :
       {"../model-00001-of-00003.safetensors", "/etc/hostname", "sub/x", ".."}) {
    const auto bad = testing::TempDir("st_bad_index");
    std::ofstream(bad / "model.safetensors.index.json")
        << R"({"weight_map": {"w": ")" << shard << R"("}})";
    auto r = SafetensorsStore::Open(bad);
    ASSERT_FALSE(r.ok()) << shard;
    EXPECT_THAT(std::string(r.status().message()),
                HasSubstr("weight_map[\"w\"] must be the file name of a shard in the same "
                          "directory"))
        << shard;
  }
  // An index that is not JSON with a weight_map, or not a readable file, is named.
  const auto not_json = testing::TempDir("st_index_not_json");
  std::ofstream(not_json / "model.safetensors.index.json") << "{\"weight_map\": [";
  auto r = SafetensorsStore::Open(not_json);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("needs a \"weight_map\" object"));
  const auto unreadable = testing::TempDir("st_index_dir");
  std::filesystem::create_directory(unreadable / "model.safetensors.index.json");
  r = SafetensorsStore::Open(unreadable);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("model.safetensors.index.json"));
}

TEST(Safetensors, TruncatedAndCorruptFilesAreNamedErrors) {
  auto dir = testing::TempDir("st_bad");
  const std::vector<float> v(100, 1.0f);
  ASSERT_TRUE(WriteSafetensors(dir / "m.safetensors",
                               {{"w", DType::kF32, {10, 10}, Bytes(v, DType::kF32)}}).ok());
  const auto full = std::filesystem::file_size(dir / "m.safetensors");
  std::filesystem::resize_file(dir / "m.safetensors", full - 8);
  auto r = SafetensorsStore::Open(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("m.safetensors"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("tensor \"w\""));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("truncated"));

  std::ofstream(dir / "m.safetensors", std::ios::trunc) << "abc";
  r = SafetensorsStore::Open(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("truncated"));

  {
    std::ofstream out(dir / "m.safetensors", std::ios::binary | std::ios::trunc);
    const std::string h = R"({"w":{"dtype":"I8","shape":[1],"data_offsets":[0,1]}})";
    uint64_t n = h.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << h << 'x';
  }
  r = SafetensorsStore::Open(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("dtype \"I8\""));
}

// A shape whose element count wraps 64 bits (2^32 x 2^32 = 0 mod 2^64) must not pass as an empty
// tensor; neither may one whose byte count does (2^62 x 4 bf16 elements x 2 bytes).
TEST(Safetensors, ShapesWhoseSizeOverflowsAreErrors) {
  for (const std::string h : {R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],)"
                              R"("data_offsets":[0,0]}})",
                              R"({"w":{"dtype":"BF16","shape":[4611686018427387904,4],)"
                              R"("data_offsets":[0,0]}})"}) {
    std::string file(8, '\0');
    const uint64_t n = h.size();
    std::memcpy(file.data(), &n, 8);
    file += h;
    auto r = ParseSafetensors(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(file.data()), file.size()),
        "x.safetensors");
    ASSERT_FALSE(r.ok()) << h;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("x.safetensors: tensor \"w\""));
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("overflows"));
  }
}

TEST(Safetensors, MissingTensorAndDirectory) {
  auto r = SafetensorsStore::Open(testing::TempDir("st_empty"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("no *.safetensors"));
  RandomModelOptions o;
  auto dir = testing::MakeModel("st_missing", *RandomModelPreset("tiny-std"), o);
  auto store = SafetensorsStore::Open(dir);
  auto t = LoadF32(**store, "model.nope.weight", {3});
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()),
              HasSubstr("missing tensor \"model.nope.weight\" (expected shape [3])"));
}

TEST(Half, ConversionsRoundToNearestEven) {
  EXPECT_EQ(F32ToBf16(1.0f), 0x3F80);
  EXPECT_EQ(Bf16ToF32(F32ToBf16(1.00390625f)), 1.0f);  // tie -> even
  EXPECT_EQ(F16ToF32(F32ToF16(65504.0f)), 65504.0f);
  EXPECT_EQ(F16ToF32(F32ToF16(5.96046448e-08f)), 5.96046448e-08f);  // smallest subnormal
  EXPECT_TRUE(std::isinf(F16ToF32(F32ToF16(1e6f))));
  for (float x : {0.1f, -3.7f, 1234.5f, 1e-3f}) {
    EXPECT_NEAR(F16ToF32(F32ToF16(x)), x, std::abs(x) * 1e-3);
    EXPECT_NEAR(Bf16ToF32(F32ToBf16(x)), x, std::abs(x) * 8e-3);
  }
}

}  // namespace
}  // namespace attnres
