# Warnings for our own targets: cudefrag_warnings(target)
function(cudefrag_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                              -Wold-style-cast -Wcast-align -Wconversion -Wsign-conversion
                              -Wnull-dereference -Wformat=2 -Wno-missing-field-initializers>)
endfunction()
