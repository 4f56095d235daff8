"""Tiny numba intrinsics that let micro-kernels work with raw pointers.

Why pointers: the indirection buffer points some rows at a zero vector that
is a separate array from the input, and a micro-kernel must pick either per
row without numba array structs (which would bring reference counting into
the hot loop). Why a stack allocation: an accumulator tile that lives in an
``alloca`` with constant indices is promoted to registers by LLVM's SROA, an
``np.zeros`` tile is not (checked with ``dispatcher.inspect_asm``).
"""

from __future__ import annotations

from llvmlite import ir
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


# -- explicit SIMD vectors -----------------------------------------------------
#
# Why explicit vectors: LLVM's cost model for Skylake-X/Cascade Lake prefers
# 256-bit vectors ("prefer-vector-width=256"), so an auto-vectorised tile
# never uses zmm registers, and a scalar loop form of a generic MR x NR tile
# was not vectorised at all (measured: 0 FMAs, 4-5 GFLOP/s). These intrinsics
# emit ``<W x float>`` loads, broadcasts and multiply-adds directly, W being
# ``vbytes`` bytes of the array's dtype; LLVM lowers them to zmm on AVX-512,
# ymm on AVX2, q registers on NEON and SSE/scalar code elsewhere (correct on
# any CPU, fast only where the width is native). ``vbytes`` must be a
# compile-time constant (a literal, module global or closure constant).


def _lanes(dtype: types.Type, vbytes: types.Type) -> int | None:
    if not isinstance(vbytes, types.IntegerLiteral):
        return None
    return vbytes.literal_value * 8 // dtype.bitwidth


def _vec_ptr(builder, ptr, lanes: int):  # type: ignore[no-untyped-def]
    return builder.bitcast(ptr, ir.VectorType(ptr.type.pointee, lanes).as_pointer())


@intrinsic
def lanes(typingctx, proto, vbytes):
    """``lanes(arr, VB)``: elements of ``arr.dtype`` in ``VB`` bytes, a constant."""
    if not isinstance(proto, types.Array):
        return None
    w = _lanes(proto.dtype, vbytes)
    if w is None:
        return None

    def codegen(context, builder, signature, args):
        return context.get_constant(types.intp, w)

    return types.intp(proto, vbytes), codegen


@intrinsic
def stack_vectors(typingctx, proto, n, vbytes):
    """``stack_vectors(arr, N, VB)``: pointer to ``N`` uninitialised vectors of
    ``VB`` bytes on the stack (vector-aligned), seen as elements of ``arr.dtype``."""
    if not isinstance(proto, types.Array) or not isinstance(n, types.IntegerLiteral):
        return None
    w = _lanes(proto.dtype, vbytes)
    if w is None:
        return None
    dtype = proto.dtype

    def codegen(context, builder, signature, args):
        elt = context.get_data_type(dtype)
        p = cgutils.alloca_once(builder, ir.VectorType(elt, w), size=n.literal_value)
        return builder.bitcast(p, elt.as_pointer())

    return types.CPointer(dtype)(proto, n, vbytes), codegen


@intrinsic
def stack_pointers(typingctx, proto, n):
    """``stack_pointers(arr, N)``: ``N`` uninitialised pointers to ``arr.dtype``
    on the stack (the rows of a micro-kernel tile)."""
    if not isinstance(proto, types.Array) or not isinstance(n, types.IntegerLiteral):
        return None
    pty = types.CPointer(proto.dtype)

    def codegen(context, builder, signature, args):
        return cgutils.alloca_once(builder, context.get_value_type(pty), size=n.literal_value)

    return types.CPointer(pty)(proto, n), codegen


@intrinsic
def vzero(typingctx, ptr, vbytes):
    """``vzero(p, VB)``: ``p[0:W] = 0``."""
    if not isinstance(ptr, types.CPointer):
        return None
    w = _lanes(ptr.dtype, vbytes)
    if w is None:
        return None

    def codegen(context, builder, signature, args):
        vp = _vec_ptr(builder, args[0], w)
        builder.store(ir.Constant(vp.type.pointee, None), vp, align=ptr.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.void(ptr, vbytes), codegen


@intrinsic
def vcopy(typingctx, dst, src, vbytes):
    """``vcopy(dst, src, VB)``: ``dst[0:W] = src[0:W]`` (unaligned)."""
    if not isinstance(dst, types.CPointer) or src != dst:
        return None
    w = _lanes(dst.dtype, vbytes)
    if w is None:
        return None
    align = dst.dtype.bitwidth // 8

    def codegen(context, builder, signature, args):
        v = builder.load(_vec_ptr(builder, args[1], w), align=align)
        builder.store(v, _vec_ptr(builder, args[0], w), align=align)
        return context.get_dummy_value()

    return types.void(dst, src, vbytes), codegen


@intrinsic
def vfma(typingctx, acc, x, b, vbytes):
    """``vfma(acc, x, b, VB)``: ``acc[0:W] += x * b[0:W]`` (``x`` broadcast).

    Written as a multiply and an add with fast-math flags, not ``llvm.fma``:
    where the CPU has FMA LLVM fuses them, where it has not (the generic
    configuration) an ``llvm.fma`` would become a slow exact library call.
    """
    if not isinstance(acc, types.CPointer) or b != acc:
        return None
    w = _lanes(acc.dtype, vbytes)
    if w is None:
        return None
    align = acc.dtype.bitwidth // 8

    def codegen(context, builder, signature, args):
        pa = _vec_ptr(builder, args[0], w)
        va = builder.load(pa, align=align)
        vb = builder.load(_vec_ptr(builder, args[2], w), align=align)
        vty = va.type
        one = builder.insert_element(ir.Constant(vty, ir.Undefined), args[1], ir.Constant(ir.IntType(32), 0))
        vx = builder.shuffle_vector(one, ir.Constant(vty, ir.Undefined),
                                    ir.Constant(ir.VectorType(ir.IntType(32), w), None))
        prod = builder.fmul(vx, vb, flags=("fast",))
        builder.store(builder.fadd(va, prod, flags=("fast",)), pa, align=align)
        return context.get_dummy_value()

    return types.void(acc, x, b, vbytes), codegen


@intrinsic
def vmuladd(typingctx, acc, a, b, vbytes):
    """``vmuladd(acc, a, b, VB)``: ``acc[0:W] += a[0:W] * b[0:W]`` (elementwise)."""
    if not isinstance(acc, types.CPointer) or a != acc or b != acc:
        return None
    w = _lanes(acc.dtype, vbytes)
    if w is None:
        return None
    align = acc.dtype.bitwidth // 8

    def codegen(context, builder, signature, args):
        pa = _vec_ptr(builder, args[0], w)
        va = builder.load(pa, align=align)
        v1 = builder.load(_vec_ptr(builder, args[1], w), align=align)
        v2 = builder.load(_vec_ptr(builder, args[2], w), align=align)
        prod = builder.fmul(v1, v2, flags=("fast",))
        builder.store(builder.fadd(va, prod, flags=("fast",)), pa, align=align)
        return context.get_dummy_value()

    return types.void(acc, a, b, vbytes), codegen


@intrinsic
def fetch_add(typingctx, arr, index, value):
    """``fetch_add(arr, i, v)``: atomically ``arr[i] += v``, returning the old
    ``arr[i]`` (``arr`` a 1-D int64 array; threads share it without the GIL)."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64
            and isinstance(index, types.Integer) and isinstance(value, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        i = context.cast(builder, args[1], signature.args[1], types.intp)
        v = context.cast(builder, args[2], signature.args[2], types.int64)
        # acq_rel: a chunk's output stores happen before chunk_done's add, and
        # whoever sees the count also sees them (free on x86; needed on ARM)
        return builder.atomic_rmw("add", builder.gep(data, [i]), v, "acq_rel")

    return types.int64(arr, index, value), codegen


@intrinsic
def atomic_read(typingctx, arr, index):
    """``atomic_read(arr, i)``: ``arr[i]`` of a 1-D int64 array that another
    thread writes, read afresh every time (a plain read in a loop may be
    hoisted out of it by the compiler)."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64
            and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        i = context.cast(builder, args[1], signature.args[1], types.intp)
        return builder.load_atomic(builder.gep(data, [i]), "acquire", 8)

    return types.int64(arr, index), codegen
