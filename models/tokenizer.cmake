# attnres_tokenizer: the Hugging Face byte-level BPE tokenizer (tokenizer.json). Included by
# models/CMakeLists.txt; needs the PCRE2 (pkg-config) and ICU::uc targets from the top level.
add_library(attnres_tokenizer STATIC
  ${CMAKE_CURRENT_LIST_DIR}/added_vocabulary.cc
  ${CMAKE_CURRENT_LIST_DIR}/bpe_model.cc
  ${CMAKE_CURRENT_LIST_DIR}/byte_level.cc
  ${CMAKE_CURRENT_LIST_DIR}/normalizer.cc
  ${CMAKE_CURRENT_LIST_DIR}/post_processor.cc
  ${CMAKE_CURRENT_LIST_DIR}/pretokenizer.cc
  ${CMAKE_CURRENT_LIST_DIR}/regex.cc
  ${CMAKE_CURRENT_LIST_DIR}/tokenizer.cc
  ${CMAKE_CURRENT_LIST_DIR}/utf8.cc)
target_include_directories(attnres_tokenizer PUBLIC ${CMAKE_SOURCE_DIR})
target_link_libraries(attnres_tokenizer
  PUBLIC absl::status absl::statusor
  PRIVATE absl::strings absl::flat_hash_map absl::flat_hash_set absl::function_ref
          nlohmann_json::nlohmann_json PkgConfig::PCRE2 ICU::uc)
