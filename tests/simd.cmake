# exec::simd and exec::par against exec::seq (issue 3). Needs xsimd; exec::par
# uses OpenMP when found and otherwise runs as exec::simd (still tested).
if(STABLEQAT_WITH_XSIMD)
  stableqat_add_test(test_simd_par SOURCES test_simd_par.cpp LABELS simd)
  target_link_libraries(test_simd_par PRIVATE stableqat::parallel)
  # EWGS and the stretched elastic grid through the same SIMD loops (issue 12).
  stableqat_add_test(test_estimators_simd SOURCES test_estimators_simd.cpp LABELS simd)
  # bfloat16 / float16 storage computed in float on exec::seq / simd / par (issue 14).
  stableqat_add_test(test_half_storage SOURCES test_half_storage.cpp LABELS simd)
  target_link_libraries(test_half_storage PRIVATE stableqat::parallel)
endif()
