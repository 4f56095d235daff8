"""Tiny numba intrinsics that let micro-kernels work with raw pointers.

Why pointers: the indirection buffer points some rows at a zero vector that
is a separate array from the input, and a micro-kernel must pick either per
row without numba array structs (which would bring reference counting into
the hot loop). Why a stack allocation: an accumulator tile that lives in an
``alloca`` with constant indices is promoted to registers by LLVM's SROA, an
``np.zeros`` tile is not (checked with ``dispatcher.inspect_asm``).
"""

from __future__ import annotations

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def stack_alloc(typingctx, proto, n):
    """``stack_alloc(arr, N)``: pointer to ``N`` uninitialised elements of
    ``arr.dtype`` on the stack of the calling function; ``N`` must be a
    compile-time constant (a literal or a module-level int)."""
    if not isinstance(n, types.IntegerLiteral) or not isinstance(proto, types.Array):
        return None
    size = n.literal_value
    dtype = proto.dtype
    sig = types.CPointer(dtype)(proto, n)

    def codegen(context, builder, signature, args):
        return cgutils.alloca_once(builder, context.get_data_type(dtype), size=size)

    return sig, codegen


@intrinsic
def data_ptr(typingctx, arr):
    """``data_ptr(arr)``: typed pointer to the first element of ``arr``."""
    if not isinstance(arr, types.Array):
        return None
    sig = types.CPointer(arr.dtype)(arr)

    def codegen(context, builder, signature, args):
        return context.make_array(signature.args[0])(context, builder, args[0]).data

    return sig, codegen


@intrinsic
def ptr_add(typingctx, ptr, offset):
    """``ptr_add(p, n)``: ``p + n`` elements (C pointer arithmetic)."""
    if not isinstance(ptr, types.CPointer) or not isinstance(offset, types.Integer):
        return None
    sig = ptr(ptr, types.intp)

    def codegen(context, builder, signature, args):
        return builder.gep(args[0], [args[1]])

    return sig, codegen


@intrinsic
def vec_width(typingctx, proto):
    """``vec_width(arr)``: elements of ``arr.dtype`` in 64 bytes (two AVX2
    registers): 16 for float32, 8 for float64, as a compile-time constant so
    loops bounded by it get constant trip counts."""
    if not isinstance(proto, types.Array):
        return None
    width = 64 // proto.dtype.bitwidth * 8
    sig = types.intp(proto)

    def codegen(context, builder, signature, args):
        return context.get_constant(types.intp, width)

    return sig, codegen
