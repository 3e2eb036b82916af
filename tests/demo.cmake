# The Fashion-MNIST demo (examples/qat_fashion_mnist.cpp, examples/qat/):
#  - test_demo: its building blocks (IDX reader on good and broken files, MLP
#    gradients against finite differences, quantized weights on the 2-bit grid,
#    SGD/Adam/AdamW updates against closed forms, the method table);
#  - demo_quick: the demo's --quick mode on the real dataset; it exits non-zero
#    unless 60000/10000 images load, FP32 reaches >= 0.80 test accuracy, the
#    2-bit runs stay finite and every weight row holds <= 4 distinct values;
#  - demo_quick_adamw: the same with --optimizer adamw.
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
  endif()
else()
  message(STATUS "stableqat: Eigen3 >= 3.4 or zlib not found; skipping the demo tests (Debian: libeigen3-dev zlib1g-dev)")
endif()
