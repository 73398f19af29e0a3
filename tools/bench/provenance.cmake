# evald-bench-provenance: fingerprinting throughput from the page cache beside sha256sum and a
# numpy baseline, and the cost of comparing a model against a reference library (see README.md).
add_executable(evald-bench-provenance provenance_bench.cpp)
target_link_libraries(evald-bench-provenance PRIVATE evald_provenance_core)
target_compile_definitions(evald-bench-provenance PRIVATE
  EVALD_BENCH_PROVENANCE_NUMPY="${CMAKE_CURRENT_SOURCE_DIR}/provenance_numpy.py"
  EVALD_BENCH_BUILD_TYPE="${CMAKE_BUILD_TYPE}")
