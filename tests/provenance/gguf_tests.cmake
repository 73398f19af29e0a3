# The GGUF reader's tests (included from tests/provenance/CMakeLists.txt).
add_executable(evald_provenance_gguf_tests ${CMAKE_CURRENT_LIST_DIR}/gguf_test.cpp)
target_link_libraries(evald_provenance_gguf_tests PRIVATE evald_provenance_core GTest::gtest_main)
gtest_discover_tests(evald_provenance_gguf_tests DISCOVERY_TIMEOUT 60)
