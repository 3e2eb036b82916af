# Reliability: consumer builds (find_package against an install, add_subdirectory).
foreach(mode find_package add_subdirectory)
  add_test(NAME consumer_${mode}
           COMMAND "${CMAKE_COMMAND}" -DMODE=${mode} "-DSOURCE_DIR=${PROJECT_SOURCE_DIR}"
                   "-DBUILD_DIR=${PROJECT_BINARY_DIR}" "-DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/consumer_${mode}"
                   -P "${CMAKE_CURRENT_SOURCE_DIR}/consumer/run_consumer.cmake")
  set_tests_properties(consumer_${mode} PROPERTIES LABELS "reliability;consumer")
endforeach()

# Golden vectors: hand-derived expectations, run on every CPU backend compiled
# in (the CUDA runners are in cuda.cmake).
stableqat_add_test(test_golden SOURCES test_golden.cpp LABELS "reliability;golden")
target_link_libraries(test_golden PRIVATE stableqat::parallel)
stableqat_use_golden_file(test_golden)
