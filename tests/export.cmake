# Integer export (issue 13): quantize_to_codes, pack/unpack, dequantize on
# exec::seq / simd / par against fake_quantize, golden bytes and a bit-stream
# reference. Needs xsimd (simd and par are part of every round trip).
if(STABLEQAT_WITH_XSIMD)
  stableqat_add_test(test_export SOURCES test_export.cpp LABELS export)
  target_link_libraries(test_export PRIVATE stableqat::parallel)
endif()
