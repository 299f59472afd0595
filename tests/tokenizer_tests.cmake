# tokenizer_test: the tokenizer against golden ids from HF `tokenizers` (tests/data/tokenizer).
# Included by tests/CMakeLists.txt; runs from the source root so the data paths resolve.
add_executable(tokenizer_test ${CMAKE_CURRENT_LIST_DIR}/tokenizer_test.cc)
target_link_libraries(tokenizer_test PRIVATE attnres_tokenizer nlohmann_json::nlohmann_json
                      GTest::gtest_main)
add_test(NAME tokenizer_test COMMAND tokenizer_test WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(tokenizer_test PROPERTIES LABELS cpu)
