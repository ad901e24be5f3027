"""The ncore compiler and runtime: ONNX model → programs and DRAM image → outputs.

:func:`ncore.compiler.onnx_import.import_model` turns an ONNX graph into the compiler's
intermediate form (:mod:`ncore.compiler.ir`), :func:`ncore.compiler.codegen.compile_net` emits
one program per core and the DRAM image, and :mod:`ncore.compiler.runtime` runs it on the golden
model or the RTL and reports outputs, cycles, utilisation and counters.
"""
