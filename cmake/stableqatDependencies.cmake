# Finding stableqat's optional dependencies, shared by the build and the
# installed package config so both apply the same fixes.

# Debian's xsimd 8.1 exports a target whose INTERFACE_LINK_LIBRARIES names
# "xtl"; when no target of that name exists the linker gets "-lxtl" and fails.
# Prefer the real xtl package (header-only); otherwise stand in an empty one.
macro(stableqat_find_xsimd)
  if(NOT TARGET xsimd)
    find_package(xtl QUIET)
    if(NOT TARGET xtl)
      add_library(xtl INTERFACE IMPORTED)
    endif()
    find_package(xsimd 8.1 QUIET ${ARGN})
  else()
    set(xsimd_FOUND TRUE)
  endif()
endmacro()

# OpenMP for C++, which stableqat::parallel links (exec::par on all cores).
# Optional: without it stableqat::parallel is stableqat::stableqat and
# exec::par runs as exec::simd. Sets OpenMP_CXX_FOUND.
macro(stableqat_find_openmp)
  find_package(OpenMP QUIET COMPONENTS CXX)
endmacro()
