# The Fashion-MNIST demo (examples/qat_fashion_mnist.cpp, examples/qat/):
#  - test_demo: its building blocks (IDX reader on good and broken files, MLP
#    gradients against finite differences, quantized weights on the 2-bit grid,
#    SGD/Adam/AdamW updates against closed forms, the method table);
#  - demo_quick: the demo's --quick mode on the real dataset; it exits non-zero
#    unless 60000/10000 images load, FP32 reaches >= 0.80 test accuracy, the
#    2-bit runs stay finite and every weight row holds <= 4 distinct values;
#  - demo_quick_adamw: the same with --optimizer adamw;
#  - demo_quick_baselines: --quick --methods dsq,paretoq,ewgs (the same checks),
#    then demo_quick_baselines_csv reads its runs.csv (this file in script mode, below).
# Script mode (cmake -DCSV=runs.csv -DMETHODS=a,b -P demo.cmake): the check of
# demo_quick_baselines_csv. Every method of METHODS has a row in runs.csv that did
# not diverge, with a finite last-epoch training loss below ln 10 (the uniform
# guess) and a test accuracy of at least 0.70 (chance: 0.10; the quick run's
# 2-bit STE reaches ~0.84).
if(CMAKE_SCRIPT_MODE_FILE)
  file(STRINGS "${CSV}" lines)
  list(GET lines 0 header)
  if(NOT header MATCHES "^method,lr,seed,test_accuracy,last_epoch_train_loss,diverged,")
    message(FATAL_ERROR "${CSV}: unexpected header '${header}'")
  endif()
  string(REPLACE "," ";" wanted "${METHODS}")
  foreach(method IN LISTS wanted)
    set(found FALSE)
    foreach(line IN LISTS lines)
      string(REPLACE "," ";" fields "${line}")
      list(GET fields 0 name)
      if(NOT name STREQUAL method)
        continue()
      endif()
      set(found TRUE)
      list(GET fields 3 accuracy)
      list(GET fields 4 loss)
      list(GET fields 5 diverged)
      if(NOT diverged STREQUAL "0")
        message(FATAL_ERROR "${method}: diverged (${line})")
      endif()
      if(NOT loss MATCHES "^[0-9]+\\.[0-9]+$" OR loss GREATER_EQUAL 2.302585)
        message(FATAL_ERROR "${method}: last-epoch training loss '${loss}' is not finite and below ln 10")
      endif()
      if(NOT accuracy MATCHES "^[0-9]\\.[0-9]+$" OR accuracy LESS 0.70)
        message(FATAL_ERROR "${method}: test accuracy '${accuracy}' is below 0.70")
      endif()
      message(STATUS "${method}: test accuracy ${accuracy}, last-epoch loss ${loss}")
    endforeach()
    if(NOT found)
      message(FATAL_ERROR "${CSV}: no run of '${method}'")
    endif()
  endforeach()
  return()
endif()

find_package(Eigen3 3.4 QUIET NO_MODULE)
find_package(ZLIB QUIET)
if(Eigen3_FOUND AND ZLIB_FOUND)
  stableqat_add_test(test_demo SOURCES test_demo.cpp LABELS demo)
  target_include_directories(test_demo PRIVATE "${PROJECT_SOURCE_DIR}/examples")
  target_link_libraries(test_demo PRIVATE Eigen3::Eigen ZLIB::ZLIB)
  if(STABLEQAT_WITH_XSIMD)
    target_compile_definitions(test_demo PRIVATE STABLEQAT_DEMO_POLICY_SIMD)
  endif()
  if(STABLEQAT_BUILD_EXAMPLES)
    # The executable target is defined in examples/CMakeLists.txt (added after tests/).
    add_test(NAME demo_quick COMMAND qat_fashion_mnist --quick --out "${CMAKE_CURRENT_BINARY_DIR}/demo-quick")
    set_tests_properties(demo_quick PROPERTIES LABELS demo TIMEOUT 600)
    # The same checks with AdamW at lr 1e-3 (the middle of its sweep).
    add_test(NAME demo_quick_adamw COMMAND qat_fashion_mnist --quick --optimizer adamw --no-plot
                                           --out "${CMAKE_CURRENT_BINARY_DIR}/demo-quick-adamw")
    set_tests_properties(demo_quick_adamw PROPERTIES LABELS demo TIMEOUT 600)
    # The paper's baselines (issue 12), then their accuracy and loss from runs.csv.
    set(baselines_out "${CMAKE_CURRENT_BINARY_DIR}/demo-quick-baselines")
    add_test(NAME demo_quick_baselines COMMAND qat_fashion_mnist --quick --methods dsq,paretoq,ewgs --no-plot
                                               --out "${baselines_out}")
    set_tests_properties(demo_quick_baselines PROPERTIES LABELS demo TIMEOUT 600 FIXTURES_SETUP demo_baselines_csv)
    add_test(NAME demo_quick_baselines_csv
             COMMAND "${CMAKE_COMMAND}" "-DCSV=${baselines_out}/runs.csv" -DMETHODS=dsq,paretoq,ewgs
                     -P "${CMAKE_CURRENT_LIST_FILE}")
    set_tests_properties(demo_quick_baselines_csv PROPERTIES LABELS demo FIXTURES_REQUIRED demo_baselines_csv)
  endif()
else()
  message(STATUS "stableqat: Eigen3 >= 3.4 or zlib not found; skipping the demo tests (Debian: libeigen3-dev zlib1g-dev)")
endif()
