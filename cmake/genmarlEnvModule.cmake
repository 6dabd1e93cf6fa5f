# genmarl_add_env_module(<name> <sources>...): a shared library of users' scenarios
# (GENMARL_ENV_MODULE in one source) that genmarl.register_module("<name>") loads at run time.
# It compiles genmarl's headers only (no second registry); the output is <name>.so next to the
# build's other outputs (set LIBRARY_OUTPUT_DIRECTORY to place it on the Python path).
function(genmarl_add_env_module name)
  add_library(${name} MODULE ${ARGN})
  target_include_directories(${name} PRIVATE "${genmarl_INCLUDE_DIR}")
  target_compile_features(${name} PRIVATE cxx_std_20)
  target_link_libraries(${name} PRIVATE Threads::Threads)
  set_target_properties(${name} PROPERTIES PREFIX "" SUFFIX ".so" CXX_VISIBILITY_PRESET hidden
                                           VISIBILITY_INLINES_HIDDEN ON POSITION_INDEPENDENT_CODE ON)
endfunction()
