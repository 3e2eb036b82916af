# Foundation tests: core math, surrogates, the seq backend and argument checks.
# One executable for the area; each file instantiates only what it tests.
stableqat_add_test(test_core
  SOURCES test_rounding_grid.cpp
          test_fourier_surrogate.cpp
          test_fourier_round.cpp
          test_lsq_seq.cpp
          test_step_init.cpp
          test_bad_input.cpp
          test_estimators.cpp
  LABELS core)
