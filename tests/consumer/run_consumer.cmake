# ctest driver: configure, build and run one consumer project.
#   -DMODE=find_package|add_subdirectory -DSOURCE_DIR=<stableqat> -DBUILD_DIR=<main build> -DWORK_DIR=<scratch>
file(REMOVE_RECURSE "${WORK_DIR}")
set(consumer_args "")
if(MODE STREQUAL "find_package")
  set(prefix "${WORK_DIR}/prefix")
  execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}"
                  RESULT_VARIABLE rc OUTPUT_QUIET)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "cmake --install failed (${rc})")
  endif()
  list(APPEND consumer_args "-DCMAKE_PREFIX_PATH=${prefix}")
else()
  list(APPEND consumer_args "-DSTABLEQAT_SOURCE_DIR=${SOURCE_DIR}")
endif()
# One program per target (consumers.cmake): consumer (stableqat::stableqat),
# consumer_parallel (stableqat::parallel).
foreach(step configure build consumer consumer_parallel)
  if(step STREQUAL "configure")
    set(command "${CMAKE_COMMAND}" -S "${SOURCE_DIR}/tests/consumer/${MODE}" -B "${WORK_DIR}/build"
                -DCMAKE_BUILD_TYPE=Release ${consumer_args})
  elseif(step STREQUAL "build")
    set(command "${CMAKE_COMMAND}" --build "${WORK_DIR}/build")
  else()
    set(command "${WORK_DIR}/build/${step}")
  endif()
  execute_process(COMMAND ${command} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer (${MODE}) ${step} failed (${rc}):\n${out}")
  endif()
  if(step MATCHES "^consumer")
    message(STATUS "${out}")
  endif()
endforeach()
