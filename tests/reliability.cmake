# Reliability: consumer builds (find_package against an install, add_subdirectory).
foreach(mode find_package add_subdirectory)
  add_test(NAME consumer_${mode}
           COMMAND "${CMAKE_COMMAND}" -DMODE=${mode} "-DSOURCE_DIR=${PROJECT_SOURCE_DIR}"
                   "-DBUILD_DIR=${PROJECT_BINARY_DIR}" "-DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/consumer_${mode}"
                   -P "${CMAKE_CURRENT_SOURCE_DIR}/consumer/run_consumer.cmake")
  set_tests_properties(consumer_${mode} PROPERTIES LABELS "reliability;consumer")
endforeach()

# Golden vectors: hand-derived expectations (fake_quantize.golden) and the
# generated baselines (estimators.golden), run on every CPU backend compiled
# in (the CUDA runners are in cuda.cmake).
stableqat_add_test(test_golden SOURCES test_golden.cpp LABELS "reliability;golden")
target_link_libraries(test_golden PRIVATE stableqat::parallel)
stableqat_use_golden_file(test_golden)

# The baselines' golden vectors (golden/estimators.golden) are the output of an
# independent long-double generator that includes no library header: the
# committed file must be exactly what it prints (regenerate with
# `build/<preset>/tests/generate_estimators > tests/golden/estimators.golden`).
# Its long-double sums assume x86's 80-bit long double.
add_executable(generate_estimators golden/generate_estimators.cpp)
stableqat_project_options(generate_estimators)
add_test(NAME golden_estimators_generated
         COMMAND "${CMAKE_COMMAND}" "-DGENERATOR=$<TARGET_FILE:generate_estimators>"
                 "-DEXPECTED=${CMAKE_CURRENT_SOURCE_DIR}/golden/estimators.golden"
                 -P "${CMAKE_CURRENT_SOURCE_DIR}/golden/check_generated.cmake")
set_tests_properties(golden_estimators_generated PROPERTIES LABELS "reliability;golden")
