# Runs one libFuzzer binary for a bounded time over a working copy of its seed corpus.
#   cmake -DFUZZER=<exe> -DSEEDS=<dir> -DWORK=<dir> -DSECONDS=<n> [-DRSS_LIMIT_MB=<n>] [-DDICT=<file>]
#         -P run_fuzzer.cmake
# The seeds are copied into WORK/corpus (which keeps what earlier runs found); crashes, leaks,
# timeouts and OOMs land in WORK/artifacts/. Fails when the fuzzer exits non-zero.
foreach(v FUZZER SEEDS WORK SECONDS)
  if(NOT DEFINED ${v} OR "${${v}}" STREQUAL "")
    message(FATAL_ERROR "run_fuzzer.cmake: -D${v}=... is required")
  endif()
endforeach()
if(NOT DEFINED RSS_LIMIT_MB OR "${RSS_LIMIT_MB}" STREQUAL "")
  set(RSS_LIMIT_MB 2048)
endif()

file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/artifacts)
if(IS_DIRECTORY ${SEEDS})
  file(GLOB _seeds ${SEEDS}/*)
  if(_seeds)
    file(COPY ${_seeds} DESTINATION ${WORK}/corpus)
  endif()
endif()

set(_args -max_total_time=${SECONDS} -rss_limit_mb=${RSS_LIMIT_MB} -malloc_limit_mb=${RSS_LIMIT_MB}
          -timeout=10 -print_final_stats=1 -artifact_prefix=${WORK}/artifacts/)
if(DEFINED DICT AND NOT "${DICT}" STREQUAL "")
  list(APPEND _args -dict=${DICT})
endif()
message(STATUS "running ${FUZZER} ${_args} ${WORK}/corpus")
execute_process(COMMAND ${FUZZER} ${_args} ${WORK}/corpus RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(GLOB _found ${WORK}/artifacts/*)
  message(FATAL_ERROR "${FUZZER} exited with ${rc}; artifacts: ${_found}")
endif()
