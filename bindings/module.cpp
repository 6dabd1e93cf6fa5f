// genmarl._core: the pybind11 module. One file per area binds into it.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void bind_envs(py::module_& m);
void bind_buffers(py::module_& m);
void bind_sampling(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "genmarl C++ core: batched multi-agent environments, experience buffers and sampling kernels";
  bind_envs(m);
  bind_buffers(m);
  bind_sampling(m);
}
