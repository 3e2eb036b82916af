# PyTorch adapter tests (issue 14): pytest files in tests/torch/, one ctest entry
# per file, run by Debian's interpreter (pyenv's python3 has no torch) against the
# op library just built. pytest exits 5 when it collects nothing: that is a failure too.
if(NOT TARGET stableqat_torch)
  return()
endif()

set(STABLEQAT_TORCH_PYTHON "/usr/bin/python3" CACHE FILEPATH "Python interpreter with torch and pytest for the adapter tests")
execute_process(COMMAND "${STABLEQAT_TORCH_PYTHON}" -c "import torch, pytest"
                RESULT_VARIABLE _stableqat_torch_python_ok OUTPUT_QUIET ERROR_QUIET)
if(NOT _stableqat_torch_python_ok EQUAL 0)
  message(WARNING "stableqat: ${STABLEQAT_TORCH_PYTHON} cannot import torch and pytest; "
                  "the PyTorch adapter tests are not registered (Debian: python3-torch python3-pytest)")
  return()
endif()

foreach(area ops aten bad_input nn ddp export dispatch estimators half)
  set(_name test_torch_${area})
  add_test(NAME ${_name}
           COMMAND "${STABLEQAT_TORCH_PYTHON}" -m pytest -q -p no:cacheprovider
                   "--rootdir=${CMAKE_CURRENT_SOURCE_DIR}/torch" "--confcutdir=${CMAKE_CURRENT_SOURCE_DIR}/torch"
                   "${CMAKE_CURRENT_SOURCE_DIR}/torch/test_${area}.py"
           WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}")
  set_tests_properties(${_name} PROPERTIES
                       LABELS torch
                       TIMEOUT 300
                       ENVIRONMENT "PYTHONPATH=${PROJECT_SOURCE_DIR}/python;STABLEQAT_TORCH_LIBRARY=$<TARGET_FILE:stableqat_torch>")
endforeach()
