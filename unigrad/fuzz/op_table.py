"""The table of ops the fuzzer generates: one row per operation, with its source in each framework.

Which rows are used is decided at run time by :func:`available_ops`: an op is generated only when
every namespace name it calls is in ``unigrad._namespace.GUARANTEED``, so a name removed from the
subset stops being generated, and :func:`unlisted_names` reports guaranteed names no row covers yet
(a name added to the subset needs a row here: its arity, domain and kinks cannot be guessed).

The order matters to shrinking: Hypothesis shrinks towards the first op, so simple ops come first.

Example:
    >>> from unigrad.fuzz.op_table import available_ops
    >>> ops = available_ops()
    >>> ops["abs"].requires, ops["clip"].name in ops
    (('abs',), True)
"""

from __future__ import annotations

from unigrad.fuzz.ops import Binary, Op, Unary
from unigrad.fuzz.ops_select import Clip, Where
from unigrad.fuzz.ops_structured import Matmul, PowConstant, Rearrange, Reduce, Shift, SquareMatrix, Take


def _unary(name: str, torch: str, tf: str, jax: str, numpy: str, **flags: object) -> Unary:
    return Unary(name, {"torch": torch, "tensorflow": tf, "jax": jax, "numpy": numpy}, **flags)  # type: ignore[arg-type]


def _same(name: str, **flags: object) -> Unary:
    """A unary op named alike everywhere: torch.X, tf.math.X, jnp.X, np.X."""
    return _unary(name, f"torch.{name}", f"tf.math.{name}", f"jnp.{name}", f"np.{name}", **flags)


def _binary(name: str, torch: str, tf: str, jax: str, numpy: str, **flags: object) -> Binary:
    return Binary(name, {"torch": torch, "tensorflow": tf, "jax": jax, "numpy": numpy}, **flags)  # type: ignore[arg-type]


def _reduce(name: str, torch: str, tf: str, jax: str, numpy: str, **flags: object) -> Reduce:
    return Reduce(name, {"torch": torch, "tensorflow": tf, "jax": jax, "numpy": numpy}, **flags)  # type: ignore[arg-type]


_KEEP = "{x}, axis={axis}, keepdims={keepdims}"


TABLE: tuple[Op, ...] = (
    _same("sin", max_abs=100.0),
    _same("negative"),
    _same("square"),
    _same("exp"),
    _same("cos", max_abs=100.0),
    _same("tanh"),
    _same("abs", kink=(0.0, 1.0, -1.0)),
    _unary("relu", "torch.relu", "tf.nn.relu", "jax.nn.relu", "_np_relu", kink=(0.5, 0.0, 1.0)),
    _same("log"),
    _same("log1p"),
    _same("expm1"),
    _same("sqrt", singular_at=(0.0,)),
    _same("tan", max_abs=100.0),
    _same("sinh"),
    _same("cosh"),
    _unary("atan", "torch.atan", "tf.math.atan", "jnp.atan", "np.arctan"),
    _same("sign", jump="zero"),
    _same("floor", jump="integer"),
    _unary("asin", "torch.asin", "tf.math.asin", "jnp.asin", "np.arcsin", singular_at=(-1.0, 1.0)),
    _unary("acos", "torch.acos", "tf.math.acos", "jnp.acos", "np.arccos", singular_at=(-1.0, 1.0)),
    _unary("asinh", "torch.asinh", "tf.math.asinh", "jnp.asinh", "np.arcsinh"),
    _unary("acosh", "torch.acosh", "tf.math.acosh", "jnp.acosh", "np.arccosh", singular_at=(1.0,)),
    _unary("atanh", "torch.atanh", "tf.math.atanh", "jnp.atanh", "np.arctanh"),
    _unary("log2", "torch.log2", "_tf_log2", "jnp.log2", "np.log2"),
    _unary("log10", "torch.log10", "_tf_log10", "jnp.log10", "np.log10"),
    _same("reciprocal"),
    _unary("positive", "torch.positive", "tf.identity", "jnp.positive", "np.positive"),
    _same("ceil", jump="integer"),
    _same("round", jump="half-integer"),
    _unary("trunc", "torch.trunc", "_tf_trunc", "jnp.trunc", "np.trunc", jump="integer"),
    _unary("sigmoid", "torch.sigmoid", "tf.math.sigmoid", "jax.nn.sigmoid", "_np_sigmoid"),
    _unary("softplus", "_torch_softplus", "tf.math.softplus", "jax.nn.softplus", "_np_softplus"),
    _unary("erf", "torch.special.erf", "tf.math.erf", "jax.scipy.special.erf", "_np_erf"),
    _unary("rsqrt", "torch.rsqrt", "tf.math.rsqrt", "jax.lax.rsqrt", "_np_rsqrt"),
    _binary("op_add", "", "", "", "", operator="+"),
    _binary("op_sub", "", "", "", "", operator="-"),
    _binary("op_mul", "", "", "", "", operator="*"),
    _binary("op_div", "", "", "", "", operator="/", singular="tiny denominator"),
    _binary("add", "torch.add", "tf.math.add", "jnp.add", "np.add"),
    _binary("subtract", "torch.subtract", "tf.math.subtract", "jnp.subtract", "np.subtract"),
    _binary("multiply", "torch.multiply", "tf.math.multiply", "jnp.multiply", "np.multiply"),
    _binary(
        "divide", "torch.divide", "tf.math.truediv", "jnp.divide", "np.divide", singular="tiny denominator"
    ),
    _binary(
        "hypot",
        "torch.hypot",
        "_tf_hypot",
        "jnp.hypot",
        "np.hypot",
        singular="both zero",
        pairs=((0.0, 0.0), (0.5, 0.5), (1.0, 0.0), (0.0, 1.0)),
    ),
    _binary("maximum", "torch.maximum", "tf.math.maximum", "jnp.maximum", "np.maximum", tie=True),
    _binary("minimum", "torch.minimum", "tf.math.minimum", "jnp.minimum", "np.minimum", tie=True),
    _binary("atan2", "torch.atan2", "tf.math.atan2", "jnp.atan2", "np.arctan2", singular="both zero"),
    _binary("pow", "torch.pow", "tf.math.pow", "jnp.pow", "np.power", singular="zero base"),
    _binary("logaddexp", "torch.logaddexp", "_tf_logaddexp", "jnp.logaddexp", "np.logaddexp"),
    Shift(),
    PowConstant({"torch": "torch.pow", "tensorflow": "_tf_pow", "jax": "jnp.pow", "numpy": "np.power"}),
    Clip({"torch": "torch.clamp", "tensorflow": "", "jax": "jnp.clip", "numpy": "np.clip"}),
    Where({"torch": "torch.where", "tensorflow": "tf.where", "jax": "jnp.where", "numpy": "np.where"}),
    _reduce(
        "sum",
        "torch.sum({x}, dim={dims}, keepdim={keepdims})",
        "tf.math.reduce_sum(" + _KEEP + ")",
        "jnp.sum(" + _KEEP + ")",
        "np.sum(" + _KEEP + ")",
    ),
    _reduce(
        "mean",
        "torch.mean({x}, dim={dims}, keepdim={keepdims})",
        "tf.math.reduce_mean(" + _KEEP + ")",
        "jnp.mean(" + _KEEP + ")",
        "np.mean(" + _KEEP + ")",
    ),
    _reduce(
        "max",
        "torch.amax({x}, dim={dims}, keepdim={keepdims})",
        "tf.math.reduce_max(" + _KEEP + ")",
        "jnp.max(" + _KEEP + ")",
        "np.max(" + _KEEP + ")",
        tie="max",
    ),
    _reduce(
        "min",
        "torch.amin({x}, dim={dims}, keepdim={keepdims})",
        "tf.math.reduce_min(" + _KEEP + ")",
        "jnp.min(" + _KEEP + ")",
        "np.min(" + _KEEP + ")",
        tie="min",
    ),
    _reduce(
        "prod",
        "torch.prod({x}, dim={axis}, keepdim={keepdims})|torch.prod({x})",
        "tf.math.reduce_prod(" + _KEEP + ")",
        "jnp.prod(" + _KEEP + ")",
        "np.prod(" + _KEEP + ")",
    ),
    _reduce(
        "var",
        "torch.var({x}, dim={dims}, correction=0, keepdim={keepdims})",
        "_tf_var(" + _KEEP + ")",
        "jnp.var(" + _KEEP + ")",
        "np.var(" + _KEEP + ")",
    ),
    _reduce(
        "std",
        "torch.std({x}, dim={dims}, correction=0, keepdim={keepdims})",
        "tf.math.sqrt(_tf_var(" + _KEEP + "))",
        "jnp.std(" + _KEEP + ")",
        "np.std(" + _KEEP + ")",
        singular="constant slice",
    ),
    _reduce(
        "logsumexp",
        "torch.logsumexp({x}, dim={dims}, keepdim={keepdims})",
        "tf.math.reduce_logsumexp(" + _KEEP + ")",
        "jax.nn.logsumexp(" + _KEEP + ")",
        "_np_logsumexp(" + _KEEP + ")",
    ),
    _reduce(
        "vector_norm",
        "torch.linalg.vector_norm({x}, ord=2, dim={dims}, keepdim={keepdims})",
        "_tf_vector_norm(" + _KEEP + ")",
        "jnp.linalg.vector_norm({x}, axis={axis}, keepdims={keepdims}, ord=2)",
        "np.sqrt(np.sum(np.square({x}), axis={axis}, keepdims={keepdims}))",
        singular="zero vector",
        requires=("linalg.vector_norm",),
    ),
    _reduce(
        "cumulative_sum",
        "torch.cumsum({x}, dim={axis})",
        "tf.math.cumsum({x}, axis={axis})",
        "jnp.cumulative_sum({x}, axis={axis})",
        "np.cumsum({x}, axis={axis})",
        axis_required=True,
        keeps_shape=True,
    ),
    _reduce(
        "softmax",
        "torch.softmax({x}, dim={axis})",
        "tf.nn.softmax({x}, axis={axis})",
        "jax.nn.softmax({x}, axis={axis})",
        "_np_softmax({x}, axis={axis})",
        axis_required=True,
        keeps_shape=True,
    ),
    _reduce(
        "log_softmax",
        "torch.log_softmax({x}, dim={axis})",
        "tf.nn.log_softmax({x}, axis={axis})",
        "jax.nn.log_softmax({x}, axis={axis})",
        "_np_log_softmax({x}, axis={axis})",
        axis_required=True,
        keeps_shape=True,
    ),
    Matmul(
        "matmul",
        ("matmul",),
        {
            "torch": "torch.matmul({x}, {y})",
            "tensorflow": "_tf_matmul({x}, {y})",
            "jax": "jnp.matmul({x}, {y})",
            "numpy": "np.matmul({x}, {y})",
        },
    ),
    Take(
        "take",
        ("take",),
        {
            "torch": "_torch_take({x}, {indices}, axis={axis})",
            "tensorflow": "_tf_take({x}, {indices}, axis={axis})",
            "jax": "jnp.take({x}, jnp.asarray({indices}), axis={axis})",
            "numpy": "np.take({x}, {indices}, axis={axis})",
        },
    ),
    Rearrange(
        "flip",
        ("flip",),
        {
            "torch": "torch.flip({x}, {dims})",
            "tensorflow": "tf.reverse({x}, {dims})",
            "jax": "jnp.flip({x}, axis={axis})",
            "numpy": "np.flip({x}, axis={axis})",
        },
    ),
    Rearrange(
        "matrix_transpose",
        ("matrix_transpose",),
        {
            "torch": "{x}.mT",
            "tensorflow": "tf.linalg.matrix_transpose({x})",
            "jax": "jnp.matrix_transpose({x})",
            "numpy": "np.swapaxes({x}, -1, -2)",
        },
    ),
    Rearrange(
        "reshape",
        ("reshape",),
        {
            "torch": "torch.reshape({x}, {shape})",
            "tensorflow": "tf.reshape({x}, {shape})",
            "jax": "jnp.reshape({x}, {shape})",
            "numpy": "np.reshape({x}, {shape})",
        },
    ),
    Matmul(
        "outer",
        ("linalg.outer",),
        {
            "torch": "torch.outer({x}, {y})",
            "tensorflow": "({x}[:, None] * {y}[None, :])",
            "jax": "jnp.linalg.outer({x}, {y})",
            "numpy": "np.outer({x}, {y})",
        },
    ),
    SquareMatrix(
        "trace",
        ("linalg.trace",),
        {
            "torch": "torch.sum(torch.diagonal({x}, offset=0, dim1=-2, dim2=-1), dim=-1)",
            "tensorflow": "tf.math.reduce_sum(tf.linalg.diag_part({x}), axis=-1)",
            "jax": "jnp.linalg.trace({x})",
            "numpy": "np.trace({x})",
        },
    ),
    SquareMatrix(
        "det",
        ("linalg.det",),
        {
            "torch": "torch.linalg.det({x})",
            "tensorflow": "tf.linalg.det({x})",
            "jax": "jnp.linalg.det({x})",
            "numpy": "np.linalg.det({x})",
        },
    ),
    SquareMatrix(
        "inv",
        ("linalg.inv",),
        {
            "torch": "torch.linalg.inv({x})",
            "tensorflow": "tf.linalg.inv({x})",
            "jax": "jnp.linalg.inv({x})",
            "numpy": "np.linalg.inv({x})",
        },
    ),
    SquareMatrix(
        "solve",
        ("linalg.solve",),
        {
            "torch": "torch.linalg.solve({x}, {y})",
            "tensorflow": "_tf_solve({x}, {y})",
            "jax": "jnp.linalg.solve({x}, {y})",
            "numpy": "np.linalg.solve({x}, {y})",
        },
        arity=2,
    ),
    SquareMatrix(
        "slogdet",
        ("linalg.slogdet",),
        {
            "torch": "torch.linalg.slogdet({x}).logabsdet",
            "tensorflow": "tf.linalg.slogdet({x})[1]",
            "jax": "jnp.linalg.slogdet({x})[1]",
            "numpy": "np.linalg.slogdet({x})[1]",
        },
    ),
    SquareMatrix(
        "eigvalsh",
        ("linalg.eigh", "matrix_transpose"),
        {
            "torch": "torch.linalg.eigh(({x} + {x}.mT) / 2).eigenvalues",
            "tensorflow": "tf.linalg.eigh(({x} + tf.linalg.matrix_transpose({x})) / 2)[0]",
            "jax": "jnp.linalg.eigh(({x} + jnp.matrix_transpose({x})) / 2)[0]",
            "numpy": "np.linalg.eigh(({x} + np.swapaxes({x}, -1, -2)) / 2)[0]",
        },
    ),
)


def _guaranteed() -> frozenset[str]:
    from unigrad._namespace import GUARANTEED

    return frozenset(GUARANTEED)


def available_ops() -> dict[str, Op]:
    """The ops whose namespace names are all guaranteed now, by name, in the table's order."""
    guaranteed = _guaranteed()
    return {op.name: op for op in TABLE if all(name in guaranteed for name in op.requires)}


#: Guaranteed names the fuzzer leaves out on purpose: creation, casts, comparisons and predicates
#: (boolean or integer results: nothing to differentiate), complex parts.
NOT_FUZZED = frozenset(
    {
        "asarray", "zeros", "ones", "zeros_like", "ones_like", "full", "eye", "arange", "astype",
        "isfinite", "real", "imag", "conj", "full_like", "linspace", "meshgrid",
        "all", "any", "argmax", "argmin", "argsort", "equal", "not_equal", "greater", "greater_equal",
        "less", "less_equal", "isinf", "isnan", "signbit", "logical_and", "logical_not", "logical_or",
        "logical_xor",
    }
)  # fmt: skip


def unlisted_names() -> list[str]:
    """Guaranteed names no row of the table calls (and not deliberately left out), sorted."""
    covered = {name for op in TABLE for name in op.requires}
    return sorted(_guaranteed() - covered - NOT_FUZZED)


#: Ops where a zero operand is a kind of input of its own (a domain edge or a special case of the
#: framework's derivative), so findings there are kept apart from findings elsewhere.
ZERO_IS_SPECIAL = frozenset(
    {"op_div", "divide", "pow", "pow_const", "log", "log2", "log10", "sqrt", "rsqrt", "reciprocal", "atan2"}
    | {"hypot", "prod", "vector_norm", "std"}
)
for _op in TABLE:
    _op.zero_is_special = _op.name in ZERO_IS_SPECIAL
