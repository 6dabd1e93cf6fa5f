# genmarl's CMake package as the Python wheel ships it (genmarl.get_cmake_dir()): headers and
# sources, compiled inside the consumer's build. genmarl::torch is then built by the consumer's
# compiler against the consumer's libtorch, so no libtorch ABI is baked into the wheel.
#
#   cmake -DCMAKE_PREFIX_PATH="$(python -c 'import genmarl; print(genmarl.get_cmake_dir())');$(python -c 'import torch; print(torch.utils.cmake_prefix_path)')"
#   find_package(genmarl REQUIRED COMPONENTS torch)   # genmarl::core, genmarl::torch
include(CMakeFindDependencyMacro)
find_dependency(Threads)
get_filename_component(_genmarl_pkg "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)  # .../site-packages/genmarl
set(genmarl_INCLUDE_DIR "${_genmarl_pkg}/include")
set(_genmarl_src "${_genmarl_pkg}/share/genmarl/src")

if(NOT TARGET genmarl::core)
  add_library(genmarl_core STATIC "${_genmarl_src}/registry.cpp")
  target_include_directories(genmarl_core PUBLIC "${genmarl_INCLUDE_DIR}")
  target_compile_features(genmarl_core PUBLIC cxx_std_20)
  target_link_libraries(genmarl_core PUBLIC Threads::Threads ${CMAKE_DL_LIBS})
  set_target_properties(genmarl_core PROPERTIES POSITION_INDEPENDENT_CODE ON)
  add_library(genmarl::core ALIAS genmarl_core)
endif()
set(genmarl_core_FOUND TRUE)

include("${CMAKE_CURRENT_LIST_DIR}/genmarlEnvModule.cmake")  # genmarl_add_env_module()

set(genmarl_torch_FOUND FALSE)
if(NOT TARGET genmarl::torch)
  if(genmarl_FIND_REQUIRED_torch)
    find_package(Torch)
  else()
    find_package(Torch QUIET)
  endif()
  if(Torch_FOUND)
    add_library(genmarl_torch STATIC "${_genmarl_src}/torch/package.cpp" "${_genmarl_src}/torch/policy.cpp"
                                     "${_genmarl_src}/torch/world_model.cpp")
    target_link_libraries(genmarl_torch PUBLIC genmarl::core ${TORCH_LIBRARIES})
    target_include_directories(genmarl_torch PUBLIC ${TORCH_INCLUDE_DIRS})
    add_library(genmarl::torch ALIAS genmarl_torch)
  endif()
endif()
if(TARGET genmarl::torch)
  set(genmarl_torch_FOUND TRUE)
endif()

foreach(_comp IN LISTS genmarl_FIND_COMPONENTS)
  if(genmarl_FIND_REQUIRED_${_comp} AND NOT genmarl_${_comp}_FOUND)
    set(genmarl_FOUND FALSE)
    set(genmarl_NOT_FOUND_MESSAGE "genmarl component '${_comp}' is not available (genmarl::torch needs Torch: add torch.utils.cmake_prefix_path to CMAKE_PREFIX_PATH)")
  endif()
endforeach()
