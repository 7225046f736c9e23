"""MLX's declared differences from the reference, case by case, each with its reason and measured error.

Kept apart from the case definitions so that a backend's findings live in one module of its own:
:mod:`unigrad.conformance.cases` adds them to the cases named here (a name that is no case is an
error). Errors were measured with ``unigrad check --backends torch,jax,mlx --dtypes float64`` on
MLX 0.32.4 (CPU), as the largest relative error of any gradient element against the reference.

Example:
    >>> from unigrad.conformance.cases.mlx_differences import DIFFERENCES
    >>> DIFFERENCES["elementwise_exp"][0].dtypes
    ('float64',)
"""

from __future__ import annotations

from unigrad.conformance.case import KnownDifference

_UPSTREAM = "ml-explore/mlx issue #3047"


def _float32_kernel(ops: str, measured: str) -> KnownDifference:
    return KnownDifference(
        ("mlx",),
        f"MLX computes float64 {ops} with a float32 approximation ({_UPSTREAM}), so its float64 gradient "
        f"is only float32-accurate: measured max relative error {measured} on this case's inputs "
        f"(PyTorch and JAX: about 1e-10, the finite-difference floor)",
        dtypes=("float64",),
    )


def _no_vjp(primitive: str, ops: str) -> KnownDifference:
    return KnownDifference(
        ("mlx",),
        f"MLX 0.32 implements no gradient (VJP) for {primitive}, which {ops} uses: "
        f"differentiating it raises ValueError",
    )


DIFFERENCES: dict[str, tuple[KnownDifference, ...]] = {
    # float64 transcendental kernels with float32 accuracy (tanh, log, sqrt, expm1 are exact).
    "elementwise_exp": (_float32_kernel("exp", "9.3e-8"),),
    "elementwise_sin": (_float32_kernel("sin", "2.6e-7"),),
    "elementwise_cos": (_float32_kernel("cos", "9.9e-8"),),
    "elementwise_tan": (_float32_kernel("tan (sin / cos)", "7.2e-8"),),
    "elementwise_erf": (_float32_kernel("erf", "4.2e-7"),),
    "elementwise_sigmoid": (_float32_kernel("sigmoid (through exp)", "1.5e-7"),),
    "elementwise_softplus": (_float32_kernel("softplus (logaddexp, through exp)", "6.9e-8"),),
    # The same kernels inside longer chains, found at the default float64 tolerance (1e-6).
    "linalg_matmul_batched": (_float32_kernel("cos (of a matmul)", "1.6e-6"),),
    "pytree_many_small_leaves": (_float32_kernel("sin and exp (in a sum of functions)", "2.8e-6"),),
    # Kinks: MLX follows the same arithmetic as PyTorch / JAX / TensorFlow here.
    "kink_norm_at_zero": (
        KnownDifference(
            ("mlx",),
            "the norm's gradient x / ||x|| is evaluated as 0 / 0 = nan, as TensorFlow and JAX do",
        ),
    ),
    "kink_where_unsafe_branch": (
        KnownDifference(
            ("mlx",),
            "the untaken branch's local derivative (inf or nan) times the zero cotangent gives nan, "
            "as PyTorch and JAX do. Portable fix: sqrt(where(x > 0, x, 1))",
        ),
    ),
    # Linear algebra without gradients in MLX.
    "linalg_solve": (
        KnownDifference(
            ("mlx",),
            "MLX 0.32's solve differentiates through its LU pivots and raises ValueError ([gather_axis] "
            "cannot calculate VJP with respect to indices)",
        ),
    ),
    "linalg_inv": (_no_vjp("Inverse", "linalg.inv"),),
    "linalg_slogdet": (_no_vjp("LUF (the LU factorisation)", "linalg.slogdet"),),
    "linalg_cholesky": (_no_vjp("Cholesky", "linalg.cholesky"),),
    "linalg_eigh": (_no_vjp("Eigh", "linalg.eigh"),),
    "linalg_qr": (_no_vjp("QRF", "linalg.qr"),),
}
