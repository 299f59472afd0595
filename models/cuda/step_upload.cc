// Packing and validation of one step's batch.
#include "models/cuda/step_upload.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace attnres::cuda {

absl::StatusOr<DeviceBatch> StepUpload::Upload(const StepBatch& b,
                                               const std::vector<int>& logit_rows,
                                               const std::vector<kernels::SampleParams>& samples,
                                               const ModelConfig& c, const KvPool& pool,
                                               cudaStream_t stream, int dense_min_rows,
                                               int dense_max_context) {
  const int T = b.num_tokens(), S = b.num_seqs();
  if (static_cast<int>(b.query_indptr.size()) != S + 1 ||
      static_cast<int>(b.kv_page_indptr.size()) != S + 1 || b.query_indptr[S] != T ||
      static_cast<int>(b.positions.size()) != T) {
    return absl::InternalError("malformed StepBatch: indptr sizes do not match");
  }
  std::vector<int32_t> row_seq(T), tiles, dense_tiles, dense_lens, record_row(T, -1);
  std::vector<DeviceBatch::DenseChunk> dense;
  int max_tile_rows = 1, max_context = 0;
  for (int s = 0; s < S; ++s) {
    const int begin = b.query_indptr[s], end = b.query_indptr[s + 1];
    const int pages = b.kv_page_indptr[s + 1] - b.kv_page_indptr[s];
    for (int r = begin; r < end; ++r) {
      row_seq[r] = s;
      if (b.token_ids[r] < 0 || b.token_ids[r] >= c.vocab_size) {
        return absl::InternalError(absl::StrCat("token id ", b.token_ids[r], " out of range"));
      }
      if (b.positions[r] < 0 || b.positions[r] / pool.page_size >= pages ||
          (r > begin && b.positions[r] != b.positions[r - 1] + 1)) {
        return absl::InternalError(absl::StrCat("page table of sequence ", s,
                                                " does not cover position ", b.positions[r],
                                                " (or positions are not consecutive)"));
      }
    }
    const int context = end > begin ? b.positions[end - 1] + 1 : 0;
    max_context = std::max(max_context, context);
    const bool is_dense = dense_min_rows > 0 && end - begin >= dense_min_rows &&
                          context <= dense_max_context;
    if (is_dense) {
      dense.push_back({begin, end - begin, context, b.kv_page_indptr[s]});
      dense_lens.insert(dense_lens.end(), {end - begin, 0, 0, 0, context, 0, 0, 0});
    }
    // Dense chunks keep tiles too (last), for the attention kernel should cuDNN fail.
    std::vector<int32_t>& to = is_dense ? dense_tiles : tiles;
    const int tile_rows = kernels::AttentionTileRows(c.num_heads / c.num_kv_heads);
    for (int r = begin; r < end; r += tile_rows) {
      const int n = std::min(tile_rows, end - r);
      to.insert(to.end(), {s, r, n});
      max_tile_rows = std::max(max_tile_rows, n);
    }
  }
  const int num_sparse_tiles = static_cast<int>(tiles.size() / 3);
  tiles.insert(tiles.end(), dense_tiles.begin(), dense_tiles.end());
  for (int32_t page : b.kv_page_indices) {
    if (page < 0 || page >= pool.num_pages) {
      return absl::InternalError(absl::StrCat("page index ", page, " out of range"));
    }
  }
  for (size_t k = 0; k < logit_rows.size(); ++k) record_row[logit_rows[k]] = static_cast<int>(k);

  // Layout: the dense lengths (16-byte aligned scalars), int32 arrays, then the sampling
  // parameters (8-byte aligned).
  const std::vector<int32_t>* arrays[] = {&dense_lens, &b.token_ids, &b.positions,
                                          &row_seq, &b.kv_page_indptr, &b.kv_page_indices,
                                          &tiles, &record_row};
  constexpr int kArrays = 8;
  std::vector<int32_t> rows32(logit_rows.begin(), logit_rows.end());
  size_t ints = rows32.size();
  for (const auto* a : arrays) ints += a->size();
  const size_t params_at = (ints * 4 + 15) / 16 * 16;
  const size_t bytes = params_at + samples.size() * sizeof(kernels::SampleParams);
  if (auto st = staging_.Reserve(bytes); !st.ok()) return st;
  int32_t* h = reinterpret_cast<int32_t*>(staging_.host());
  const int32_t* d = reinterpret_cast<const int32_t*>(staging_.device());
  const int32_t* views[kArrays + 1];
  size_t at = 0;
  for (int i = 0; i < kArrays; ++i) {
    std::memcpy(h + at, arrays[i]->data(), 4 * arrays[i]->size());
    views[i] = d + at;
    at += arrays[i]->size();
  }
  std::memcpy(h + at, rows32.data(), 4 * rows32.size());
  views[kArrays] = d + at;
  std::memcpy(staging_.host() + params_at, samples.data(),
              samples.size() * sizeof(kernels::SampleParams));
  device_samples_ = reinterpret_cast<const kernels::SampleParams*>(staging_.device() + params_at);
  ATTNRES_CUDA_RETURN(
      cudaMemcpyAsync(staging_.device(), staging_.host(), bytes, cudaMemcpyHostToDevice, stream));

  DeviceBatch db;
  db.T = T;
  db.num_seqs = S;
  db.num_tiles = static_cast<int>(tiles.size() / 3);
  db.num_sparse_tiles = num_sparse_tiles;
  db.max_tile_rows = max_tile_rows;
  db.max_context = max_context;
  db.R = static_cast<int>(logit_rows.size());
  db.dense_lens = views[0];
  db.token_ids = views[1];
  db.positions = views[2];
  db.row_seq = views[3];
  db.kv_page_indptr = views[4];
  db.kv_page_indices = views[5];
  db.tiles = views[6];
  db.record_row = views[7];
  db.logit_rows = views[kArrays];
  db.dense = std::move(dense);
  return db;
}

absl::StatusOr<DeviceBatch> StepUpload::UploadDecode(
    const StepBatch& b, const std::vector<kernels::SampleParams>& samples, int bucket,
    int max_rows, int32_t dummy_page, const ModelConfig& c, const KvPool& pool,
    cudaStream_t stream) {
  const int n = b.num_seqs();
  if (b.num_tokens() != n || n > bucket || bucket > max_rows ||
      static_cast<int>(samples.size()) != n || static_cast<int>(b.kv_page_indptr.size()) != n + 1 ||
      static_cast<int>(b.positions.size()) != n) {
    return absl::InternalError("UploadDecode: not a pure-decode batch that fits its bucket");
  }
  int max_context = 0;
  for (int s = 0; s < n; ++s) {
    const int pages = b.kv_page_indptr[s + 1] - b.kv_page_indptr[s];
    if (b.query_indptr[s] != s || b.token_ids[s] < 0 || b.token_ids[s] >= c.vocab_size) {
      return absl::InternalError(absl::StrCat("decode row ", s, ": bad query or token id"));
    }
    if (b.positions[s] < 0 || b.positions[s] / pool.page_size >= pages) {
      return absl::InternalError(absl::StrCat("page table of sequence ", s,
                                              " does not cover position ", b.positions[s]));
    }
    max_context = std::max(max_context, b.positions[s] + 1);
  }
  for (int32_t page : b.kv_page_indices) {
    if (page < 0 || page >= pool.num_pages) {
      return absl::InternalError(absl::StrCat("page index ", page, " out of range"));
    }
  }
  // Layout (int32 units, R = max_rows): ids, positions, row_seq, record_row, logit_rows [R]
  // each, indptr [R + 1], tiles [3R], sampling parameters (16-byte aligned) [R], pages.
  const size_t R = max_rows, ints = 9 * R + 1, params_at = (ints * 4 + 15) / 16 * 16;
  const size_t pages_at = params_at + R * sizeof(kernels::SampleParams);
  const size_t pages_needed = b.kv_page_indices.size() + bucket;
  if (fixed_rows_ != max_rows || pages_needed > page_room_) {
    const size_t room = std::max(pages_needed, 2 * page_room_);
    auto h = PinnedAlloc(pages_at + 4 * room);
    if (!h.ok()) return h.status();
    auto d = DeviceAlloc(pages_at + 4 * room);
    if (!d.ok()) return d.status();
    fixed_host_ = std::move(*h);
    fixed_device_ = std::move(*d);
    fixed_rows_ = max_rows;
    page_room_ = room;
    ++generation_;
  }
  int32_t* h = static_cast<int32_t*>(fixed_host_.get());
  int32_t *ids = h, *pos = h + R, *row_seq = h + 2 * R, *record = h + 3 * R, *logit = h + 4 * R,
          *indptr = h + 5 * R, *tiles = h + 6 * R + 1;
  int32_t* pages = reinterpret_cast<int32_t*>(static_cast<char*>(fixed_host_.get()) + pages_at);
  std::memcpy(pages, b.kv_page_indices.data(), 4 * b.kv_page_indices.size());
  for (int r = 0; r <= bucket; ++r) {
    indptr[r] = r <= n ? b.kv_page_indptr[r] : indptr[r - 1] + 1;
  }
  for (int r = 0; r < bucket; ++r) {
    const bool real = r < n;
    ids[r] = real ? b.token_ids[r] : 0;
    pos[r] = real ? b.positions[r] : 0;
    if (!real) pages[indptr[r]] = dummy_page;
    row_seq[r] = record[r] = logit[r] = r;
    tiles[3 * r] = tiles[3 * r + 1] = r;
    tiles[3 * r + 2] = 1;
  }
  std::memcpy(static_cast<char*>(fixed_host_.get()) + params_at, samples.data(),
              samples.size() * sizeof(kernels::SampleParams));
  const size_t bytes = pages_at + 4 * static_cast<size_t>(indptr[bucket]);
  ATTNRES_CUDA_RETURN(cudaMemcpyAsync(fixed_device_.get(), fixed_host_.get(), bytes,
                                      cudaMemcpyHostToDevice, stream));
  const int32_t* d = static_cast<const int32_t*>(fixed_device_.get());
  device_samples_ = reinterpret_cast<const kernels::SampleParams*>(
      static_cast<const char*>(fixed_device_.get()) + params_at);
  DeviceBatch db;
  db.T = db.num_seqs = db.num_tiles = db.num_sparse_tiles = db.R = bucket;
  db.max_tile_rows = 1;
  db.max_context = max_context;
  db.token_ids = d;
  db.positions = d + R;
  db.row_seq = d + 2 * R;
  db.record_row = d + 3 * R;
  db.logit_rows = d + 4 * R;
  db.kv_page_indptr = d + 5 * R;
  db.tiles = d + 6 * R + 1;
  db.kv_page_indices = reinterpret_cast<const int32_t*>(
      static_cast<const char*>(fixed_device_.get()) + pages_at);
  return db;
}

}  // namespace attnres::cuda
