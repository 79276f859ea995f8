"""C99 export of integer graphs: network.c/.h, reference kernels (PULP-NN layout), host harness."""

from jaxbp.export.c.emit import CExport, emit
from jaxbp.export.c.host import CFLAGS, build, find_compiler, flatten_inputs, run_c, run_exe, split_outputs
from jaxbp.export.c.pack import pack, packed_size, unpack
