# cmake -DGENERATOR=<program> -DEXPECTED=<file> -P check_generated.cmake
# Fails unless the program's standard output equals the file byte for byte.
execute_process(COMMAND "${GENERATOR}" OUTPUT_VARIABLE generated RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${GENERATOR} failed (${status})")
endif()
file(READ "${EXPECTED}" expected)
if(NOT generated STREQUAL expected)
  message(FATAL_ERROR "${EXPECTED} is not the output of ${GENERATOR}: regenerate it")
endif()
