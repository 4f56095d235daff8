"""numba intrinsics of the u8s8 (8-bit) kernels: int32 vectors of u8 x s8 products.

The 8-bit half of :mod:`._intrinsics` (whose pointers, stack allocations and
vector conventions these share): the dot products of :mod:`.qgemm`, the
widening multiply-add of :mod:`.qdepthwise` and the requantization both
end with.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._intrinsics import _lanes, _vec_ptr

# The u8s8 kernels (:mod:`.qgemm`, :mod:`.qdepthwise`) accumulate int32 vectors
# of ``vbytes`` bytes (W = vbytes / 4 lanes). ``vdot4`` adds, per lane j, the
# dot product of four u8 activations (one int32 word ``x``, broadcast) with the
# four s8 weights of column j; ``kind`` (a literal) picks how:
#   DOT_GENERIC: portable LLVM vector code (widen, multiply, add): any CPU;
#   DOT_VNNI:    ``vpdpbusd`` (AVX-512 VNNI on zmm, AVX-VNNI / AVX512VL on ymm);
#   DOT_MADDWD:  AVX2 ``vpmaddwd`` on int16: the u8 pairs are zero-extended to
#                int16 and the weights are packed as int16, so no pair sum can
#                saturate (``vpmaddubsw`` would: 255*127*2 > 32767); each call
#                takes two int16 weight vectors (k pairs 0-2 and 1-3).
# x86 intrinsics compile only for CPUs that have them: the kernel configuration
# (:mod:`.configs`) never hands a kind to a CPU without its feature.

DOT_GENERIC, DOT_VNNI, DOT_MADDWD = 0, 1, 2


def _splat(builder, value, lanes: int):  # type: ignore[no-untyped-def]
    vty = ir.VectorType(value.type, lanes)
    one = builder.insert_element(ir.Constant(vty, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, ir.Constant(vty, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), lanes), None))


def _call(builder, name: str, ret, args):  # type: ignore[no-untyped-def]
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ret, [a.type for a in args]), name)
    return builder.call(fn, args)


@intrinsic
def load_u32(typingctx, ptr):
    """``load_u32(p)``: the four bytes at ``p`` (a u8 pointer, any alignment) as one int32."""
    if not (isinstance(ptr, types.CPointer) and ptr.dtype == types.uint8):
        return None

    def codegen(context, builder, signature, args):
        return builder.load(builder.bitcast(args[0], ir.IntType(32).as_pointer()), align=1)

    return types.int32(ptr), codegen


@intrinsic
def vdot4(typingctx, acc, x, b, vbytes, kind):
    """``vdot4(acc, x, b, VB, KIND)``: ``acc[j] += sum_q u8(x >> 8q) * b[4j + q]``,
    j < W (see the section comment; ``b`` is s8, or int16 for ``DOT_MADDWD``)."""
    if not (isinstance(acc, types.CPointer) and acc.dtype == types.int32 and isinstance(b, types.CPointer)
            and isinstance(kind, types.IntegerLiteral) and isinstance(x, types.Integer)):
        return None
    w = _lanes(acc.dtype, vbytes)
    k = kind.literal_value
    if w is None or b.dtype != (types.int16 if k == DOT_MADDWD else types.int8):
        return None
    i8, i16, i32 = ir.IntType(8), ir.IntType(16), ir.IntType(32)

    def codegen(context, builder, signature, args):
        pa = _vec_ptr(builder, args[0], w)
        va = builder.load(pa, align=4)
        xw = context.cast(builder, args[1], signature.args[1], types.int32)
        if k == DOT_VNNI:
            vb = builder.load(builder.bitcast(args[2], ir.VectorType(i32, w).as_pointer()), align=1)
            va = _call(builder, f"llvm.x86.avx512.vpdpbusd.{w * 32}", va.type, [va, _splat(builder, xw, w), vb])
        elif k == DOT_MADDWD:
            # (x0, x1, x2, x3) broadcast, seen as int16 lanes (x0 | x1 << 8, x2 | x3 << 8):
            # masked, the even bytes (x0, x2); shifted right 8, the odd ones (x1, x3); each
            # zero-extended, one cheap op apiece (no shuffle port), against weights packed
            # as the channel pairs (0, 2) and (1, 3)
            name = {4: "llvm.x86.sse2.pmadd.wd", 8: "llvm.x86.avx2.pmadd.wd",
                    16: "llvm.x86.avx512.pmaddw.d.512"}[w]
            v16 = ir.VectorType(i16, 2 * w)
            xb = builder.bitcast(_splat(builder, xw, w), v16)
            halves = (builder.and_(xb, ir.Constant(v16, [ir.Constant(i16, 0xFF)] * (2 * w))),
                      builder.lshr(xb, ir.Constant(v16, [ir.Constant(i16, 8)] * (2 * w))))
            for half in (0, 1):
                xs = halves[half]
                pb = builder.bitcast(builder.gep(args[2], [ir.Constant(i32, half * 2 * w)]), v16.as_pointer())
                va = builder.add(va, _call(builder, name, va.type, [xs, builder.load(pb, align=2)]))
        else:
            v4 = ir.VectorType(i32, 4 * w)
            xs = builder.zext(builder.bitcast(_splat(builder, xw, w), ir.VectorType(i8, 4 * w)), v4)
            vb = builder.sext(builder.load(builder.bitcast(args[2], ir.VectorType(i8, 4 * w).as_pointer()),
                                           align=1), v4)
            prod = builder.mul(xs, vb)
            for q in range(4):
                mask = ir.Constant(ir.VectorType(i32, w), [ir.Constant(i32, 4 * j + q) for j in range(w)])
                va = builder.add(va, builder.shuffle_vector(prod, ir.Constant(v4, ir.Undefined), mask))
        builder.store(va, pa, align=4)
        return context.get_dummy_value()

    return types.void(acc, x, b, vbytes, kind), codegen


@intrinsic
def vmuladd_u8s8(typingctx, acc, x, w, vbytes):
    """``vmuladd_u8s8(acc, x, w, VB)``: ``acc[j] += x[j] * w[j]``, j < W: u8 ``x``
    and s8 ``w`` widened to the int32 lanes of ``acc`` (depthwise)."""
    if not (isinstance(acc, types.CPointer) and acc.dtype == types.int32 and isinstance(x, types.CPointer)
            and x.dtype == types.uint8 and isinstance(w, types.CPointer) and w.dtype == types.int8):
        return None
    lanes_ = _lanes(acc.dtype, vbytes)
    if lanes_ is None:
        return None
    v8, v32 = ir.VectorType(ir.IntType(8), lanes_), ir.VectorType(ir.IntType(32), lanes_)

    def codegen(context, builder, signature, args):
        pa = _vec_ptr(builder, args[0], lanes_)
        vx = builder.zext(builder.load(builder.bitcast(args[1], v8.as_pointer()), align=1), v32)
        vw = builder.sext(builder.load(builder.bitcast(args[2], v8.as_pointer()), align=1), v32)
        builder.store(builder.add(builder.load(pa, align=4), builder.mul(vx, vw)), pa, align=4)
        return context.get_dummy_value()

    return types.void(acc, x, w, vbytes), codegen


@intrinsic
def vrequant(typingctx, out, acc, corr, mult, yzero, vbytes):
    """``vrequant(out, acc, corr, mult, yz, VB)``: ``out[j] = clamp(rint(float32(acc[j]
    + corr[j]) * mult[j]) + yz, 0, 255)`` as u8, j < W (the contract of :mod:`convbench.quant`).

    Exactly that, in fewer instructions: the product is clamped to ``[-yz, 255 - yz]``
    first (rint keeps integer bounds), then rounded by adding 1.5 * 2**23 (in that
    binade a float's unit is 1: the add rounds to nearest, ties to even, and the
    integer sits in the low mantissa bits, which ``+ yz`` and the u8 truncation
    read). No fast-math flags: the rounding is IEEE's."""
    if not (isinstance(out, types.CPointer) and out.dtype == types.uint8 and isinstance(acc, types.CPointer)
            and acc.dtype == types.int32 and corr == acc and isinstance(mult, types.CPointer)
            and mult.dtype == types.float32 and isinstance(yzero, types.Float)):
        return None
    w = _lanes(acc.dtype, vbytes)
    if w is None:
        return None
    f32, i32 = ir.FloatType(), ir.IntType(32)
    vf, vi = ir.VectorType(f32, w), ir.VectorType(i32, w)

    def codegen(context, builder, signature, args):
        s = builder.add(builder.load(_vec_ptr(builder, args[1], w), align=4),
                        builder.load(_vec_ptr(builder, args[2], w), align=4))
        f = builder.fmul(builder.sitofp(s, vf), builder.load(_vec_ptr(builder, args[3], w), align=4))
        yz = context.cast(builder, args[4], signature.args[4], types.float32)
        lo = _splat(builder, builder.fsub(ir.Constant(f32, 0.0), yz), w)
        hi = _splat(builder, builder.fsub(ir.Constant(f32, 255.0), yz), w)
        f = builder.select(builder.fcmp_ordered("<", f, lo), lo, f)
        f = builder.select(builder.fcmp_ordered(">", f, hi), hi, f)
        r = builder.bitcast(builder.fadd(f, ir.Constant(vf, [ir.Constant(f32, 12582912.0)] * w)), vi)
        r = builder.add(r, _splat(builder, builder.fptosi(yz, i32), w))
        y = builder.trunc(r, ir.VectorType(ir.IntType(8), w))
        builder.store(y, builder.bitcast(args[0], y.type.as_pointer()), align=1)
        return context.get_dummy_value()

    return types.void(out, acc, corr, mult, yzero, vbytes), codegen
