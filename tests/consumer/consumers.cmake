# The two consumer programs, one per target a user can choose:
#   consumer           stableqat::stableqat  (exec::seq, exec::simd; must not get -fopenmp)
#   consumer_parallel  stableqat::parallel   (exec::par; OpenMP when this machine has it)
add_executable(consumer ${CMAKE_CURRENT_LIST_DIR}/main.cpp)
target_link_libraries(consumer PRIVATE stableqat::stableqat)

add_executable(consumer_parallel ${CMAKE_CURRENT_LIST_DIR}/parallel.cpp)
target_link_libraries(consumer_parallel PRIVATE stableqat::parallel)
# Whether exec::par must really run on OpenMP threads: asked independently of stableqat.
find_package(OpenMP QUIET COMPONENTS CXX)
if(OpenMP_CXX_FOUND)
  target_compile_definitions(consumer_parallel PRIVATE STABLEQAT_CONSUMER_EXPECT_OPENMP)
endif()
