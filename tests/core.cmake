# Foundation tests: core math, surrogates, the seq backend and argument checks.
