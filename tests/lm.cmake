# The LM QAT experiment (examples/lm/, issue 16), run with Debian's python3 (which has torch 1.13):
#  - lm_quant_reference: the eager reference quantizers against scalar transcriptions of
#    DESIGN.md §1, DESIGN's reference values and finite differences; library == reference for
#    every method and bit width when the stableqat package (python/) imports;
#  - lm_demo_quick: `lm_demo.py --quick --impl reference` end to end: corpus checksum, the tiny
#    full-precision model gets below 2.6 nats/char, runs finite with <= 2^bits values per weight
#    row, and a run killed with SIGKILL then resumed ends bit-identical to an uninterrupted run;
#    and, when the package imports, the integer export of the best 2- and 4-bit models (codes
#    unpacked by hand == the reference's fake-quantized weights, same validation loss);
#  - lm_demo_quick_library: the same with --impl library (the experiment's implementation); fails
#    if the package cannot run a method of the quick sweep.
# Python tests run once, in the build with the op library (the release preset), not per preset.
if(NOT STABLEQAT_TORCH)
  return()
endif()
set(STABLEQAT_TORCH_PYTHON "/usr/bin/python3" CACHE FILEPATH "Python interpreter with torch for the LM example")
execute_process(COMMAND "${STABLEQAT_TORCH_PYTHON}" -c "import torch"
                RESULT_VARIABLE _stableqat_torch_missing OUTPUT_QUIET ERROR_QUIET)
find_program(STABLEQAT_BIBLE_PROGRAM bible)
if(_stableqat_torch_missing OR NOT STABLEQAT_BIBLE_PROGRAM)
  message(STATUS "stableqat: ${STABLEQAT_TORCH_PYTHON} without torch or no `bible` program; skipping the LM tests "
                 "(Debian: python3-torch bible-kjv bible-kjv-text)")
else()
  set(_lm_dir "${PROJECT_SOURCE_DIR}/examples/lm")
  set(_lm_env "PYTHONPATH=${PROJECT_SOURCE_DIR}/python;PYTHONDONTWRITEBYTECODE=1")
  add_test(NAME lm_quant_reference COMMAND "${STABLEQAT_TORCH_PYTHON}" "${_lm_dir}/test_quant_reference.py")
  add_test(NAME lm_demo_quick
           COMMAND "${STABLEQAT_TORCH_PYTHON}" "${_lm_dir}/test_lm_quick.py" "${CMAKE_CURRENT_BINARY_DIR}/lm-quick"
                   --impl reference)
  add_test(NAME lm_demo_quick_library
           COMMAND "${STABLEQAT_TORCH_PYTHON}" "${_lm_dir}/test_lm_quick.py" "${CMAKE_CURRENT_BINARY_DIR}/lm-quick-library"
                   --impl library)
  # The quick tests need ~1 CPU-minute each; the timeout leaves room for a machine shared by
  # parallel builds (measured: the quick sweep alone took 5.4 min wall for 10 CPU-s at load 18).
  set_tests_properties(lm_quant_reference lm_demo_quick lm_demo_quick_library PROPERTIES
                       LABELS "lm;python" ENVIRONMENT "${_lm_env}" TIMEOUT 900)
endif()
