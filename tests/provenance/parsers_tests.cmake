# The safetensors, JSON and model-directory readers' tests (included from tests/provenance/CMakeLists.txt).
add_executable(evald_provenance_parser_tests
  ${CMAKE_CURRENT_LIST_DIR}/safetensors_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/json_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/model_dir_test.cpp)
target_link_libraries(evald_provenance_parser_tests PRIVATE evald_provenance_core GTest::gtest_main)
gtest_discover_tests(evald_provenance_parser_tests DISCOVERY_TIMEOUT 60)
