# CUDEFRAG_SANITIZE applies to every CPU target (presets asan-ubsan and tsan). GPU programs are
# not built under sanitizers: the CUDA runtime is not instrumented.
if(CUDEFRAG_SANITIZE)
  list(JOIN CUDEFRAG_SANITIZE "," _cudefrag_san)
  add_compile_options(-fsanitize=${_cudefrag_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_cudefrag_san})
endif()
