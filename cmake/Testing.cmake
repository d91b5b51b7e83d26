# cudefrag_add_test(NAME name SOURCES a.cpp ... [LIBS lib ...] [LABELS l ...])
# One GoogleTest executable per unit under test; tests mirror the source tree.
# Labels: "concurrent" (also run under ThreadSanitizer), "gpu" (skips without a GPU),
# "nosan" (not run under sanitizers, e.g. tests that preload the shim into a child process).
# Every test labelled "concurrent" is a dependency of this target, so the tsan preset builds only
# what it runs (ctest --preset tsan runs that label).
add_custom_target(cudefrag_concurrent_tests)

function(cudefrag_add_test)
  cmake_parse_arguments(T "" "NAME" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main cudefrag_common)
  cudefrag_warnings(${T_NAME})
  # A hung test fails after 5 minutes instead of holding CI until its own limit. LABELS goes in
  # only when there are labels: an empty value would make TIMEOUT the label.
  set(properties TIMEOUT 300)
  if(T_LABELS)
    list(APPEND properties LABELS "${T_LABELS}")
  endif()
  gtest_discover_tests(${T_NAME} DISCOVERY_TIMEOUT 60 PROPERTIES ${properties})
  if("concurrent" IN_LIST T_LABELS)
    add_dependencies(cudefrag_concurrent_tests ${T_NAME})
  endif()
endfunction()
