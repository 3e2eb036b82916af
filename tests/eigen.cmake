# Eigen adapters (include/stableqat/eigen.hpp), tested against the span front-end.
find_package(Eigen3 3.4 QUIET NO_MODULE)
if(Eigen3_FOUND)
  stableqat_add_test(test_eigen SOURCES test_eigen.cpp LABELS eigen)
  target_link_libraries(test_eigen PRIVATE Eigen3::Eigen)
else()
  message(STATUS "stableqat: Eigen3 >= 3.4 not found; skipping test_eigen (Debian: libeigen3-dev)")
endif()
