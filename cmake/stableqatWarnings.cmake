# Warning flags (and optional -march=native) for the project's own targets;
# consumers of the INTERFACE library choose their own.
function(stableqat_project_options target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wconversion)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      # GCC 12 reports false positives inside its own AVX-512 intrinsic headers.
      target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized)
    endif()
    if(STABLEQAT_WERROR)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
    if(STABLEQAT_NATIVE)
      target_compile_options(${target} PRIVATE -march=native)
    endif()
  endif()
  target_link_libraries(${target} PRIVATE stableqat::stableqat)
endfunction()
